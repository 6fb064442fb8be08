"""The reader's confidence model: how sure an answer is, learned from real data (logistic regression on the
Kamervragen pairs' train split, `train/train_reader.py`, calibrated on a part the fit did not see; docs/reader.md)
over the chosen sentence's score and features and the evidence of the whole retrieval."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from qa.answer.reader import FEATURES, Candidate
from qa.embed.embedding import TUNED_MODEL

MODEL_FILE = Path(__file__).with_name("reader_model.json")
# The confidence features include cosines, whose scale is the embedding model's: a model whose scores differ gets its
# own fit (train/train_reader.py on an index of that model). Any model not named here uses MODEL_FILE.
MODEL_FILES = {TUNED_MODEL: MODEL_FILE.with_name(f"reader_model-{TUNED_MODEL}.json")}

CONFIDENCE_FEATURES = (
    "best_score",  # the sentence scorer's score for the chosen sentence
    "score_margin",  # ... minus the next best candidate's
    "best_cosine",  # question · chosen sentence
    "best_coverage",
    "best_fact_match",
    "passage_cosine",  # question · best passage
    "corpus_lift",  # best passage cosine minus the question's cosine to the corpus's mean passage
    "missing_idf",  # share of the question's idf mass that no read passage holds
    "absent_terms",  # share of the question's idf mass in terms no letter in the index holds
    "bias",
)


def confidence_features(
    best: Candidate, best_score: float, margin: float, passage_cosine: float, corpus_lift: float,
    missing_idf: float, absent_terms: float,
) -> np.ndarray:
    names = FEATURES
    return np.asarray([
        best_score, margin, best.cosine, best.features[names.index("coverage")],
        best.features[names.index("fact_match")], passage_cosine, corpus_lift, missing_idf, absent_terms, 1.0,
    ], dtype=np.float32)


@dataclass(frozen=True)
class ReaderModel:
    """The learned confidence model, with where it came from (`train/train_reader.py` writes the file)."""

    confidence_weights: np.ndarray
    decline_below: float  # chosen with the weights, on held-out data (see `trained_on`)
    trained_on: str

    def confidence(self, features: np.ndarray) -> float:
        return float(1 / (1 + math.exp(-float(np.clip(features @ self.confidence_weights, -30, 30)))))

    def to_json(self) -> dict[str, object]:
        return {
            "confidence_features": list(CONFIDENCE_FEATURES),
            "confidence_weights": [round(float(w), 6) for w in self.confidence_weights],
            "decline_below": self.decline_below,
            "trained_on": self.trained_on,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ReaderModel:
        if data.get("confidence_features") != list(CONFIDENCE_FEATURES):
            raise ValueError("the reader model was trained on other features; retrain with train/train_reader.py")
        return cls(
            np.asarray(data["confidence_weights"], dtype=np.float32),
            float(data.get("decline_below", 0.0)),  # type: ignore[arg-type]
            str(data.get("trained_on", "")),
        )


def model_file(embedding_model: str) -> Path:
    return MODEL_FILES.get(embedding_model, MODEL_FILE)


def load_model(path: Path = MODEL_FILE) -> ReaderModel:
    return _load(path)  # one cache key per file, however it was named


@cache
def _load(path: Path) -> ReaderModel:
    return ReaderModel.from_json(json.loads(path.read_text(encoding="utf-8")))


def model_for(embedding_model: str) -> ReaderModel:
    return load_model(model_file(embedding_model))

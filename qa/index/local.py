"""The index on disk: FAISS vectors, BM25, passages, letters and a manifest.

Layout of an index folder::

    index/CURRENT           name of the live generation (replaced atomically)
    index/gen-<time>/       manifest.json, letters.jsonl, passages.jsonl, vectors.faiss, bm25/,
                            sentence_spans.npy + sentence_vectors.npy (each passage's sentences, for answers)
    index/.lock             held while a build or update writes
    index/.build/           vectors of the batches an unfinished build embedded, so that running it again
                            resumes (qa/embed/batches.py); removed when a change completes

Every change writes a complete new generation and then swaps CURRENT, so a failed or killed
build leaves the previous index untouched and readers never see a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa.core.errors import IndexStateError
from qa.core.locks import exclusive
from qa.embed.embedding import TextEmbedder
from qa.embed.onnx_runtime import LEGACY_BACKEND
from qa.index import generations
from qa.index import vectors as vector_index
from qa.index.filters import Filters
from qa.index.generations import (  # a store's shared constants and errors; callers of the local store find them here too
    BUILD_FOLDER,
    FORMAT_VERSION,
    KEEP_GENERATIONS,
    WRITE_BATCH,
    IndexBusy,
    IndexOutdated,
    Target,
    UpdateSummary,
    by_score,
    letters_summary,
)
from qa.index.lexical import LexicalIndex, tokenize
from qa.ingest.chunking import CHUNKER_VERSION, Passage
from qa.ingest.letter import Letter

__all__ = ["BUILD_FOLDER", "FORMAT_VERSION", "KEEP_GENERATIONS", "WRITE_BATCH", "IndexBusy", "IndexOutdated", "Target", "UpdateSummary", "by_score",
           "letters_summary", "Index", "LocalTarget", "LocalWriter", "load", "exists", "live_generation", "no_index", "update", "info", "write_lock"]

POINTER = "CURRENT"


@dataclass
class Index:
    folder: Path
    manifest: dict
    letters: dict[str, Letter]
    passages: list[Passage]
    vectors: faiss.Index
    lexical: LexicalIndex
    sentence_spans: np.ndarray  # (n, 3) int64: passage row, start, end (offsets in the letter), by row
    sentence_vectors: np.ndarray  # (n, dimension) float16, memory-mapped when loaded
    letter_passages: dict[str, list[int]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)  # passage id -> row
    generation: str | None = None  # the gen-* folder it was loaded from (a server reloads when CURRENT moves on)

    def __post_init__(self) -> None:
        for row, passage in enumerate(self.passages):
            self.letter_passages.setdefault(passage.letter_id, []).append(row)
            self.rows[passage.id] = row
        self._sentence_bounds = np.searchsorted(self.sentence_spans[:, 0], np.arange(len(self.passages) + 1))

    def sentences(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """A passage's sentence spans (k, 2) and their in-context vectors (k, dimension)."""
        start, end = self._sentence_bounds[row], self._sentence_bounds[row + 1]
        return self.sentence_spans[start:end, 1:], self.sentence_vectors[start:end]

    def sentences_of(self, rows: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        return [self.sentences(row) for row in rows]

    def passages_of(self, letter_id: str) -> list[Passage]:
        """A letter's passages in text order (none for an unknown letter)."""
        return [self.passages[row] for row in self.letter_passages.get(letter_id, [])]

    @property
    def model(self) -> str:
        return str(self.manifest["model"])

    @property
    def backend(self) -> str:
        return str(self.manifest.get("backend", LEGACY_BACKEND))

    @property
    def dimension(self) -> int:
        return int(self.vectors.d)

    @property
    def location(self) -> str:
        return str(self.folder)

    def passage_vectors(self, rows: list[int]) -> np.ndarray:
        if not rows:
            return np.zeros((0, self.vectors.d), dtype=np.float32)
        return self.vectors.reconstruct_batch(np.asarray(rows, dtype=np.int64)).astype(np.float32)

    def mean_vector(self) -> np.ndarray:
        total = self.vectors.ntotal
        mean = np.zeros(self.vectors.d, dtype=np.float64)
        for start in range(0, total, 50_000):
            mean += self.passage_vectors(list(range(start, min(total, start + 50_000)))).sum(axis=0)
        return (mean / max(total, 1)).astype(np.float32)

    def allowed_rows(self, filters: Filters) -> np.ndarray | None:
        """Passage rows that pass the filters, or None when nothing is filtered."""
        if filters.is_empty():
            return None
        rows = [row for letter_id, letter_rows in self.letter_passages.items()
                if filters.accepts(self.letters[letter_id]) for row in letter_rows]
        return np.asarray(sorted(rows), dtype=np.int64)

    def dense_ranking(self, query_vector: np.ndarray, filters: Filters, limit: int) -> list[tuple[int, float]]:
        rows = self.allowed_rows(filters)
        if self.vectors.ntotal == 0 or (rows is not None and len(rows) == 0):
            return []
        limit = min(limit, self.vectors.ntotal if rows is None else len(rows))
        params = None if rows is None else vector_index.search_parameters(self.vectors, rows)
        scores, ids = self.vectors.search(query_vector, limit, params=params)
        return by_score([(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0])

    def lexical_ranking(self, query: str, filters: Filters, limit: int | None) -> list[tuple[int, float]]:
        scores = self.lexical.scores(tokenize(query))
        rows = self.allowed_rows(filters)
        if rows is not None:
            masked = np.full_like(scores, -1.0)
            masked[rows] = scores[rows]
            scores = masked
        if limit is None:
            top = np.flatnonzero(scores > 0)
        else:
            top = np.argpartition(-scores, min(limit, len(scores) - 1))[:limit] if len(scores) else np.array([], dtype=int)
        return by_score([(int(i), float(scores[i])) for i in top if scores[i] > 0])

    def info(self) -> dict[str, object]:
        return info(self)


# --- reading -------------------------------------------------------------------------------


def live_generation(folder: Path) -> Path | None:
    pointer = folder / POINTER
    if not pointer.is_file():
        return None
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise IndexStateError(f"{folder}: unreadable {POINTER} ({error}); rebuild with `qa index build`") from error
    generation = folder / name
    if not name.startswith("gen-") or "/" in name or not generation.is_dir():
        raise IndexStateError(f"{folder}: {POINTER} points to {name!r}, which is missing; rebuild with `qa index build`")
    return generation


def exists(folder: Path) -> bool:
    return (folder / POINTER).is_file()


def no_index(folder: Path) -> IndexStateError:
    """What to say where an index was expected: the absolute folder (the user may be in another folder) and both ways out."""
    return IndexStateError(f"no index in {folder.absolute()}; build one with `qa index build` or pass --index DIR")


def load(folder: Path) -> Index:
    """Load the live generation, refusing anything incomplete or of another format."""
    generation = live_generation(folder)
    if generation is None:
        raise no_index(folder)
    try:
        manifest = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise IndexStateError(f"{generation}: unreadable manifest ({error}); rebuild with `qa index build`") from error
    if not isinstance(manifest, dict):
        raise IndexStateError(f"{generation}: damaged manifest (not a JSON object); rebuild with `qa index build`")
    if manifest.get("format_version") != FORMAT_VERSION or manifest.get("chunker_version") != CHUNKER_VERSION:
        hashes, model = manifest.get("letters"), manifest.get("model")
        raise IndexOutdated(
            f"{folder} was built by another version of qa (format {manifest.get('format_version')}, "
            f"chunker {manifest.get('chunker_version')}; this qa writes format {FORMAT_VERSION}, chunker {CHUNKER_VERSION}, "
            "which parses and cuts letters differently); rebuild it with `qa index build PATH ...` from its letters",
            tuple(hashes) if isinstance(hashes, dict) else (), model if isinstance(model, str) else None,
        )
    try:
        letters = {letter.id: letter for letter in _read_letters(generation / "letters.jsonl")}
        passages = list(_read_passages(generation / "passages.jsonl", letters))
        vectors = vector_index.prepare(faiss.read_index(str(generation / "vectors.faiss")))
        lexical = LexicalIndex.load(generation / "bm25", len(passages))
        sentence_spans = np.load(generation / "sentence_spans.npy")
        sentence_vectors = _load_sentence_vectors(generation / "sentence_vectors.npy")
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        raise IndexStateError(f"{generation}: damaged index ({error}); rebuild with `qa index build`") from error
    counts = (len(letters), len(passages), vectors.ntotal)
    try:
        expected = (manifest["counts"]["letters"], manifest["counts"]["passages"], manifest["counts"]["passages"])
        dimension, _, _ = manifest["dimension"], manifest["model"], manifest["built_at"]
    except (KeyError, TypeError) as error:
        raise IndexStateError(f"{generation}: damaged manifest (no {error}); rebuild with `qa index build`") from error
    if counts != expected or vectors.d != dimension:
        raise IndexStateError(f"{generation}: damaged index (found {counts}, manifest says {expected}); rebuild it")
    rows = sentence_spans[:, 0] if sentence_spans.ndim == 2 and sentence_spans.shape[1] == 3 else None
    if (rows is None or sentence_vectors.shape != (len(sentence_spans), dimension)
            or (len(rows) and (rows.min() < 0 or rows.max() >= len(passages) or np.any(np.diff(rows) < 0)))):
        raise IndexStateError(f"{generation}: damaged sentence vectors; rebuild it with `qa index build`")
    return Index(folder, manifest, letters, passages, vectors, lexical, sentence_spans, sentence_vectors, generation=generation.name)


# Sentence vectors up to this size are read into memory; larger ones are memory-mapped. A mapped file
# that is overwritten in place (`cp` over it) kills the process with SIGBUS, so a generation is
# immutable: its files are made read-only when it is written, and `qa index build/add` always writes a
# new generation (docs/reliability.md). 1 GB is ~1.3 M sentences of e5-small in float16, ~250k passages.
MMAP_ABOVE_BYTES = 1_000_000_000


def _load_sentence_vectors(path: Path) -> np.ndarray:
    if path.stat().st_size > MMAP_ABOVE_BYTES:
        return np.load(path, mmap_mode="r")
    return np.load(path)


def _read_letters(path: Path) -> Iterator[Letter]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            record["page_starts"] = tuple(record["page_starts"])
            yield Letter(**record)


def _read_passages(path: Path, letters: dict[str, Letter]) -> Iterator[Passage]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            text = letters[record["letter_id"]].text[record["start"] : record["end"]]
            yield Passage(text=text, **record)


# --- writing -------------------------------------------------------------------------------


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


def info(index: Index) -> dict[str, object]:
    """A summary for `qa index info` and the health endpoint."""
    generation = index.folder / index.generation if index.generation else live_generation(index.folder)
    size = sum(path.stat().st_size for path in generation.rglob("*") if path.is_file()) if generation else 0
    return {
        "folder": str(index.folder),
        "model": index.model,
        "backend": index.backend,
        "dimension": index.manifest["dimension"],
        "built_at": index.manifest["built_at"],
        "letters": len(index.letters),
        "passages": len(index.passages),
        "vector_index": vector_index.kind_of(index.vectors),
        **letters_summary(index.letters.values()),
        "size_bytes": size,
        "format_version": index.manifest["format_version"],
        "generation": index.generation,
    }

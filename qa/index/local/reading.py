"""Reading the local index: the live generation's folder loaded into an `Index` (FAISS, BM25, passages, letters,
sentences), refusing anything incomplete or of another format; the folder's layout is in qa/index/local/__init__.py."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from qa.core.errors import IndexStateError
from qa.index import vectors as vector_index
from qa.index.filters import Filters
from qa.index.generations import FORMAT_VERSION, IndexOutdated, ManifestFields, by_score, letters_summary
from qa.index.lexical import LexicalIndex, tokenize
from qa.ingest.chunking import CHUNKER_VERSION, Passage
from qa.ingest.letter import Letter

POINTER = "CURRENT"


@dataclass
class Index(ManifestFields):
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
        hashes = manifest.get("letters")
        raise IndexOutdated(
            f"{folder} was built by another version of qa (format {manifest.get('format_version')}, "
            f"chunker {manifest.get('chunker_version')}; this qa writes format {FORMAT_VERSION}, chunker {CHUNKER_VERSION}, "
            "which parses and cuts letters differently); rebuild it with `qa index build PATH ...` from its letters",
            tuple(hashes) if isinstance(hashes, dict) else (), manifest,
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

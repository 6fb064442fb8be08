"""What every store's update shares: embed only the letters that changed (in checkpointed batches), write a complete
new generation through the store's writer, and make it live at once; plus the format constants and errors of a store."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from qa.core import progress as reporting
from qa.core.errors import IndexStateError
from qa.embed.batches import BatchedEmbedding, LocalRunner, Runner
from qa.embed.embedding import TextEmbedder
from qa.embed.onnx_runtime import LEGACY_BACKEND, vector_identity
from qa.ingest.chunking import Passage, chunk_letter
from qa.ingest.letter import Letter

if TYPE_CHECKING:
    from qa.index.protocol import Store, StoreWriter

FORMAT_VERSION = 2
BUILD_FOLDER = ".build"  # checkpoints of an unfinished build's batches (qa/embed/batches.py)
KEEP_GENERATIONS = 2  # the live one and its predecessor, which a running server may still read


class IndexBusy(IndexStateError):
    pass


class IndexOutdated(IndexStateError):
    """An index whose letters were parsed and cut by another version of qa (its manifest's format or chunker
    version differs): its passages, sections and quotable sentences are not what this qa makes of the letters.
    Refused, never read as if current; `qa index build` (or `qa update`, from its letters folder) rebuilds it."""

    def __init__(self, message: str, letter_ids: tuple[str, ...] = (), manifest: dict | None = None) -> None:
        super().__init__(message)
        self.letter_ids = letter_ids  # what the old index holds, for a rebuild from the same letters
        model = (manifest or {}).get("model")
        self.model = model if isinstance(model, str) else None
        self.backend = manifest_backend(manifest or {})  # a rebuild keeps it: its saved questions' vectors are of it


class ManifestFields:
    """What every store reads the same way from its generation's manifest: the model and the backend that embedded it."""

    manifest: dict

    @property
    def model(self) -> str:
        return str(self.manifest["model"])

    @property
    def backend(self) -> str:
        return manifest_backend(self.manifest)


def manifest_backend(manifest: dict) -> str:
    return str(manifest.get("backend", LEGACY_BACKEND))  # an index from before backends were recorded


def by_score(ranking: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Best first, equal scores by row: every store orders ties alike (BM25 gives many, e.g. two passages that
    hold a query's one rare word once and are equally long)."""
    return sorted(ranking, key=lambda item: (-item[1], item[0]))


Progress = Callable[[str], None]


@dataclass(frozen=True)
class UpdateSummary:
    added: list[str]
    replaced: list[str]
    removed: list[str]
    unchanged: int
    letters: int
    passages: int
    embedded: int  # passages run through the model now
    seconds: float
    resumed: int = 0  # passages whose vectors an interrupted build had saved


class Target(Protocol):
    """Where `update` writes: the local folder (`LocalTarget`) or another store (`qa.index.milvus.Target`)."""

    def lock(self) -> AbstractContextManager[object]: ...

    def exists(self) -> bool: ...

    def load(self) -> Store: ...

    def writer(self, model: str, dimension: int, backend: str) -> StoreWriter: ...

    def no_index(self) -> IndexStateError: ...

    @property
    def checkpoints(self) -> Path:
        """The local folder where an unfinished build's batches are kept (qa/embed/batches.py)."""
        ...


WRITE_BATCH = 1_000  # passages a writer call; Milvus inserts them in one request (docs/benchmarks.md, "Stores")


def update(
    target: Target,
    embedder: TextEmbedder | None,
    add: Iterable[Letter] = (),
    remove: Iterable[str] = (),
    replace_all: bool = False,
    log: Progress = lambda message: None,
    progress_bar: bool = False,
    runner: Runner | None = None,
    batch_size: int | None = None,
) -> UpdateSummary:
    """Write a new generation with letters added, replaced or removed, then swap it in.

    Unchanged letters keep their vectors, so only new and changed letters are embedded, in checkpointed
    batches (qa/embed/batches.py): by `runner` (default: `embedder` in this process; qa/embed/cluster.py's on Ray), and
    an interrupted update run again embeds only the batches it had not finished.
    With `replace_all` the new index holds exactly the letters given (a full build). Without an
    `embedder` (removing letters) nothing may need embedding, and the model is not loaded at all.
    `target` is where the store writes: `qa.index.local.LocalTarget` or `qa.index.milvus.Target`."""
    started = time.perf_counter()
    with target.lock():
        old = target.load() if target.exists() and not replace_all else None
        if embedder is not None:
            model, dimension, backend = embedder.name, int(embedder.dimension), embedder.backend
        elif old is not None:
            model, dimension, backend = old.model, int(old.manifest["dimension"]), old.backend
        else:
            raise target.no_index()
        if old is not None and (old.model, old.backend) != (model, backend):
            raise IndexStateError(
                f"{old.location} was built with model {old.model!r} on {old.backend}, not {model!r} on {backend}; "
                f"use --model {old.model} --backend {old.backend} or rebuild with `qa index build`"
            )
        letters: dict[str, Letter] = dict(old.letters) if old else {}
        hashes: dict[str, str] = dict(old.manifest["letters"]) if old else {}
        removed = [letter_id for letter_id in remove if letters.pop(letter_id, None) is not None]
        for letter_id in removed:
            hashes.pop(letter_id, None)
        unknown = [letter_id for letter_id in remove if letter_id not in removed]
        if unknown:
            raise IndexStateError(f"not in the index: {', '.join(unknown)}")

        added: list[str] = []
        replaced: list[str] = []
        fresh = []
        for letter in add:
            content_hash = letter.content_hash()
            if hashes.get(letter.id) == content_hash:
                continue
            (replaced if letter.id in letters else added).append(letter.id)
            letters[letter.id] = letter
            hashes[letter.id] = content_hash
            fresh.append(letter.id)

        # Passages in letter order; reuse vectors of letters whose content did not change.
        fresh_set = set(fresh)
        passages: list[Passage] = []
        reuse_rows: list[int] = []
        reuse_positions: list[int] = []
        new_positions: list[int] = []
        for letter_id, letter in letters.items():
            if old is not None and letter_id not in fresh_set and letter_id in old.letter_passages:
                for row in old.letter_passages[letter_id]:
                    reuse_rows.append(row)
                    reuse_positions.append(len(passages))
                    passages.append(old.passages[row])
            else:
                for passage in chunk_letter(letter):
                    new_positions.append(len(passages))
                    passages.append(passage)

        texts, letter_spans, text_spans = [], [], []
        for i in new_positions:
            passage = passages[i]
            text = passage.index_text(letters[passage.letter_id].title)
            sentences = np.asarray(passage.sentences(), dtype=np.int64).reshape(-1, 2)
            cores = np.asarray(passage.sentence_cores(), dtype=np.int64).reshape(-1, 2)  # what each one's vector is read from
            texts.append(text)
            letter_spans.append(sentences)
            text_spans.append(cores + (len(text) - len(passage.text) - passage.start))  # the passage ends its index text
        vectors = np.zeros((len(passages), dimension), dtype=np.float32)
        sentences_by_row: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros((0, 2), np.int64), np.zeros((0, dimension)))] * len(passages)
        embedded = resumed = 0
        if new_positions:
            if embedder is None:
                raise ValueError(f"{len(new_positions)} passages to embed, but no embedder was given")
            job = BatchedEmbedding(vector_identity(model, backend), dimension, texts, text_spans, target.checkpoints, batch_size)
            saved = job.resumable
            log(f"embedding {len(new_positions)} passages of {len(fresh)} letters with {model} ({backend})"
                + (f"; {saved} were embedded by an interrupted build and are read back" if saved else ""))
            bar = reporting.progress(len(new_positions) - saved, "Embedding", "passages") if progress_bar and len(new_positions) > saved else None
            try:
                for done in job.run(runner or LocalRunner(embedder)):
                    for j, vector, span_vectors in zip(done.batch.positions, done.vectors, done.sentence_vectors):
                        vectors[new_positions[j]] = vector
                        sentences_by_row[new_positions[j]] = (letter_spans[j], span_vectors)
                    if done.resumed:
                        resumed += len(done.batch.positions)
                    else:
                        embedded += len(done.batch.positions)
                        if bar is not None:
                            bar.update(len(done.batch.positions))
            finally:
                if bar is not None:
                    bar.close()
        if reuse_rows and old is not None:
            vectors[reuse_positions] = old.passage_vectors(reuse_rows)
            for i, row in zip(reuse_positions, reuse_rows):
                sentences_by_row[i] = old.sentences(row)

        log("writing the index")
        writer = target.writer(model, dimension, backend)
        try:
            writer.add_letters(letters.values(), hashes)
            for start in range(0, len(passages), WRITE_BATCH):
                end = start + WRITE_BATCH
                writer.add_passages(passages[start:end], vectors[start:end], sentences_by_row[start:end])
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        shutil.rmtree(target.checkpoints, ignore_errors=True)  # the change is complete: its checkpoints are spent
    return UpdateSummary(
        added=added,
        replaced=replaced,
        removed=removed,
        unchanged=len(letters) - len(fresh),
        letters=len(letters),
        passages=len(passages),
        embedded=embedded,
        seconds=time.perf_counter() - started,
        resumed=resumed,
    )


def letters_summary(letters: Iterable[Letter]) -> dict[str, object]:
    """How many letters of each type, and their date range: what `info` tells of any store's letters."""
    types: dict[str, int] = {}
    dates = []
    for letter in letters:
        types[letter.type or "onbekend"] = types.get(letter.type or "onbekend", 0) + 1
        if letter.date:
            dates.append(letter.date)
    return {"types": types, "date_range": [min(dates), max(dates)] if dates else None}

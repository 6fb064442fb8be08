"""The index layer's face: where an index lives, and what the engine, retrieval, pages, facets, Kamervragen and watches read from it.

Two stores implement `Store`: the local generation folder (`qa.index.local.Index`: FAISS + BM25, the default) and Milvus
(`qa.index.milvus`, milvus-lite in a file or a Milvus server: `pip install -e '.[milvus]'`). A store string picks one:

    local               the --index folder (default)
    milvus-lite:PATH    a Milvus Lite database file (the real Milvus server binary as a child process)
    milvus://HOST:PORT  a Milvus server (Standalone or Distributed); milvus://HOST:PORT/PREFIX for a collection prefix

Both hold letters and passages in memory for the pages and facets (a letter's text is what a passage quotes); the
Milvus store keeps vectors, BM25 and sentence vectors in Milvus and fetches a passage's sentences when it is read.
Writers take batches (`StoreWriter`) and make a new generation live at once on `commit`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from qa.core.errors import IndexStateError, SettingsError
from qa.index import local
from qa.index.generations import Target
from qa.index.generations import update as update_generation
from qa.index.location import STORE_ENV, Location, locate
from qa.index.protocol import Ranking, Store, StoreWriter, TermStatistics

if TYPE_CHECKING:
    from qa.embed.embedding import TextEmbedder
    from qa.index.generations import UpdateSummary
    from qa.ingest.letter import Letter

__all__ = ["STORE_ENV", "IndexStateError", "SettingsError", "Location", "Ranking", "Store", "StoreWriter", "TermStatistics", "exists", "live_generation",
           "load", "locate", "no_index", "target", "update", "copy"]


def _milvus() -> Any:
    """The optional backend, imported only when a Milvus store is used."""
    try:
        milvus = importlib.import_module("qa.index.milvus")
    except ImportError as error:
        raise SettingsError(f"the Milvus store needs its packages: pip install -c constraints.txt -e '.[milvus]' ({error})") from error
    return milvus


def exists(location: Location) -> bool:
    if location.kind == "local":
        return local.exists(location.data_dir)
    return _milvus().exists(location)


def load(location: Location) -> Store:
    """The live generation; IndexStateError when there is none or it cannot be read."""
    if location.kind == "local":
        return local.load(location.data_dir)
    return _milvus().load(location)


def live_generation(location: Location) -> str | None:
    """The name of the live generation (None: no index), cheaply: what a watching server polls."""
    if location.kind == "local":
        generation = local.live_generation(location.data_dir)
        return generation.name if generation else None
    return _milvus().live_generation(location)


def target(location: Location) -> Target:
    """Where a change of the store at `location` is written: its lock, its loader and its `StoreWriter`s."""
    return local.LocalTarget(location.data_dir) if location.kind == "local" else _milvus().Target(location)


def update(location: Location, embedder: TextEmbedder | None, add: Iterable[Letter] = (), remove: Iterable[str] = (),
           replace_all: bool = False, log: Callable[[str], None] = lambda message: None, progress_bar: bool = False,
           **options: Any) -> UpdateSummary:
    """`qa.index.generations.update` on any store: add, replace or remove letters by content hash, then swap the new generation in
    (`options`: its runner and batch size)."""
    return update_generation(target(location), embedder, add, remove, replace_all, log, progress_bar, **options)


def no_index(location: Location) -> IndexStateError:
    if location.kind == "local":
        return local.no_index(location.data_dir)
    return IndexStateError(f"no index in {location}; build one with `qa index build --store {location}`")


COPY_BATCH = 1_000  # passages a batch when copying a store (the writers' batch, qa.index.local.WRITE_BATCH)


def copy(source: Store, location: Location, log: Callable[[str], None] = lambda message: None) -> str:
    """Write `source` as a new generation of the store at `location` and make it live, without embedding anything:
    a local index moves into Milvus (or back) with the same vectors. Returns the new generation's name."""
    writing = target(location)
    with writing.lock():
        writer = writing.writer(source.model, source.dimension, source.backend)
        try:
            writer.add_letters(source.letters.values(), source.manifest["letters"])
            for start in range(0, len(source.passages), COPY_BATCH):
                rows = list(range(start, min(start + COPY_BATCH, len(source.passages))))
                writer.add_passages([source.passages[row] for row in rows], source.passage_vectors(rows), [source.sentences(row) for row in rows])
                log(f"copied {rows[-1] + 1} of {len(source.passages)} passages")
            return writer.commit()
        except BaseException:
            writer.abort()
            raise

"""Where an index lives, and what the engine, retrieval, pages, facets, Kamervragen and watches read from it.

Two stores implement `Store`: the local generation folder (`qa.index.Index`: FAISS + BM25, the default) and Milvus
(`qa.store.milvus`, milvus-lite in a file or a Milvus server: `pip install -e '.[milvus]'`). A store string picks one:

    local               the --index folder (default)
    milvus-lite:PATH    a Milvus Lite database file (the real Milvus server binary as a child process)
    milvus://HOST:PORT  a Milvus server (Standalone or Distributed); milvus://HOST:PORT/PREFIX for a collection prefix

Both hold letters and passages in memory for the pages and facets (a letter's text is what a passage quotes); the
Milvus store keeps vectors, BM25 and sentence vectors in Milvus and fetches a passage's sentences when it is read.
Writers take batches (`StoreWriter`) and make a new generation live at once on `commit`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from qa.core.errors import IndexStateError, SettingsError
from qa.store.protocol import Ranking, Store, StoreWriter, TermStatistics

if TYPE_CHECKING:
    from qa.embed.embedding import TextEmbedder
    from qa.index import UpdateSummary
    from qa.ingest.letter import Letter

__all__ = ["STORE_ENV", "IndexStateError", "SettingsError", "Location", "Ranking", "Store", "StoreWriter", "TermStatistics", "exists", "live_generation",
           "load", "locate", "no_index", "update"]
STORE_ENV = "QA_STORE"


Kind = Literal["local", "milvus-lite", "milvus"]
_SYNTAX = "expected local, milvus-lite:PATH or milvus://HOST:PORT[/PREFIX]"


@dataclass(frozen=True)
class Location:
    """Where an index lives. `data_dir` (the --index folder) holds the local index and, for every store, the
    user data (qa.sqlite3: feedback and saved questions)."""

    kind: Kind
    data_dir: Path
    target: str = ""  # milvus-lite: the database file; milvus: http://HOST:PORT
    prefix: str = "qa"  # milvus: the collections' name prefix

    def __str__(self) -> str:
        if self.kind == "local":
            return str(self.data_dir)
        return f"milvus-lite:{self.target}" if self.kind == "milvus-lite" else f"milvus://{self.target.removeprefix('http://')}/{self.prefix}"


def locate(data_dir: Path, store: str | None = None) -> Location:
    """The store a string names (None: $QA_STORE, else local); a malformed one is a SettingsError saying the syntax."""
    text = (store if store is not None else os.environ.get(STORE_ENV) or "local").strip()
    if text in ("", "local"):
        return Location("local", data_dir)
    if text.startswith("milvus-lite:"):
        path = text.removeprefix("milvus-lite:")
        if not path or path.endswith("/"):
            raise SettingsError(f"store {text!r}: milvus-lite needs a database file, e.g. milvus-lite:index/milvus.db")
        return Location("milvus-lite", data_dir, str(Path(path).absolute()))
    if text.startswith("milvus://"):
        rest = text.removeprefix("milvus://")
        address, _, prefix = rest.partition("/")
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"store {text!r}: {_SYNTAX} (a host and a port, e.g. milvus://127.0.0.1:19530)")
        prefix = prefix.strip("/") or "qa"
        if not prefix.replace("_", "a").isalnum() or not prefix[0].isalpha():
            raise SettingsError(f"store {text!r}: the prefix must be letters, digits and _, starting with a letter")
        return Location("milvus", data_dir, f"http://{host}:{port}", prefix)
    raise SettingsError(f"store {text!r}: {_SYNTAX}")


def _milvus() -> Any:
    """The optional backend, imported only when a Milvus store is used."""
    try:
        milvus = importlib.import_module("qa.store.milvus")
    except ImportError as error:
        raise SettingsError(f"the Milvus store needs its packages: pip install -c constraints.txt -e '.[milvus]' ({error})") from error
    return milvus


def exists(location: Location) -> bool:
    if location.kind == "local":
        from qa import index as local

        return local.exists(location.data_dir)
    return _milvus().exists(location)


def load(location: Location) -> Store:
    """The live generation; IndexStateError when there is none or it cannot be read."""
    if location.kind == "local":
        from qa import index as local

        return local.load(location.data_dir)
    return _milvus().load(location)


def live_generation(location: Location) -> str | None:
    """The name of the live generation (None: no index), cheaply: what a watching server polls."""
    if location.kind == "local":
        from qa import index as local

        generation = local.live_generation(location.data_dir)
        return generation.name if generation else None
    return _milvus().live_generation(location)


def update(location: Location, embedder: TextEmbedder | None, add: Iterable[Letter] = (), remove: Iterable[str] = (),
           replace_all: bool = False, log: Callable[[str], None] = lambda message: None, progress_bar: bool = False,
           **options: Any) -> UpdateSummary:
    """`qa.index.update` on any store: add, replace or remove letters by content hash, then swap the new generation in
    (`options`: its runner and batch size)."""
    from qa import index as local

    target = location.data_dir if location.kind == "local" else _milvus().Target(location)
    return local.update(target, embedder, add, remove, replace_all, log, progress_bar, **options)


def no_index(location: Location) -> IndexStateError:
    if location.kind == "local":
        from qa import index as local

        return local.no_index(location.data_dir)
    return IndexStateError(f"no index in {location}; build one with `qa index build --store {location}`")


COPY_BATCH = 1_000  # passages a batch when copying a store (the writers' batch, qa.index.WRITE_BATCH)


def copy(source: Store, location: Location, log: Callable[[str], None] = lambda message: None) -> str:
    """Write `source` as a new generation of the store at `location` and make it live, without embedding anything:
    a local index moves into Milvus (or back) with the same vectors. Returns the new generation's name."""
    from qa import index as local

    target = local.LocalTarget(location.data_dir) if location.kind == "local" else _milvus().Target(location)
    with target.lock():
        writer = target.writer(source.model, source.dimension, source.backend)
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

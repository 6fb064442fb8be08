"""Where an index lives: a store string (local, milvus-lite:PATH, milvus://HOST:PORT[/PREFIX]) read once into a `Location`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from qa.core.errors import SettingsError

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

"""The one way qa keeps a second writer out: an advisory lock file, refused at once rather than waited for."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(path: Path, busy: Exception) -> Iterator[None]:
    """Hold a lock on `path` (its folder made if need be) while the block runs; a second holder gets `busy` at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise busy from error
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

"""The one way qa keeps a second writer out: an advisory lock file, refused at once rather than waited for; and the
one way a derived folder (a converted model, an ONNX export) is made once by processes that start together."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
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


def make_once(target: Path, complete: Callable[[Path], bool], make: Callable[[Path], None]) -> Path:
    """`target`, made on first use by `make(folder)` into a private folder beside it and renamed into place, under a
    lock beside it: processes that start together make it once (the others wait, then find it complete), a reader
    never sees half of it, and what an interrupted run left is removed first. Raises OSError when it cannot be written."""
    if complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # blocks while another process makes it
        if complete(target):
            return target
        for stale in [target, *target.parent.glob(f"{target.name}.tmp-*")]:
            shutil.rmtree(stale, ignore_errors=True)  # holding the lock: leftovers of an interrupted run
        folder = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=target.parent))
        try:
            make(folder)
            folder.chmod(0o755)  # mkdtemp made it private; the cache is an ordinary folder
            os.rename(folder, target)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return target

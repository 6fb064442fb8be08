"""Swapping in a rebuilt index without a restart, on request or by watching the live generation (CURRENT, or a store's pointer)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import anyio

from qa import services
from qa.index import stores as store
from qa.server.service import Service

log = logging.getLogger("qa.server")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _snapshot(service: Service) -> dict[str, tuple[int, int, int]]:
    """(size, mtime, inode) of each file of the generation a service serves."""
    index = service.engine.index
    folder_of = getattr(index, "folder", None)  # only a local index has files (another store's are not ours to watch)
    if not index.generation or folder_of is None:
        return {}
    folder = folder_of / index.generation
    try:
        return {str(path.relative_to(folder)): (info.st_size, info.st_mtime_ns, info.st_ino)
                for path in folder.rglob("*") if path.is_file() and (info := path.stat())}
    except OSError:
        return {}


class ReloadError(Exception):
    """The index on disk cannot be loaded; the running service keeps the index it has."""


class Reloader:
    """Holds the live `Service`; a reload loads the new index fully off the event loop, then one assignment."""

    def __init__(self, service: Service, location: store.Location | Path, watch_seconds: float = 0.0, state_dir: Path | None = None) -> None:
        self.service = service
        self.location = store.Location("local", location) if isinstance(location, Path) else location
        self.index_dir = self.location.data_dir  # the user data (saved questions) for every store
        self.watch_seconds = watch_seconds
        self.state_dir = state_dir  # with --workers N: each worker notes there which generation it serves
        self._lock = asyncio.Lock()  # one reload at a time
        self.last_error: str | None = None
        self._files = _snapshot(service)
        self._changed_logged = False
        self.watch_check: asyncio.Task[None] | None = None  # the saved questions' check after the last reload

    async def reload(self, force: bool = False) -> tuple[bool, float]:
        """(whether a new index was swapped in, seconds taken); raises ReloadError and keeps the old index."""
        async with self._lock:
            started = time.perf_counter()
            old = self.service
            live: str | None = None
            try:
                live = store.live_generation(self.location)
                if live is None:
                    raise store.IndexStateError(f"no index in {self.location}")
                if live == old.engine.index.generation and not force:
                    return False, time.perf_counter() - started
                fresh = await anyio.to_thread.run_sync(self._load, old)
            except Exception as error:  # noqa: BLE001 - any generation we cannot serve is a failed reload, not a dead watcher
                # A hand-edited or damaged generation can fail anywhere (a numeric date made info() raise
                # TypeError, issue 12): whatever it is, keep the old index, say why, and try again later.
                message = str(error) if isinstance(error, (store.IndexStateError, OSError, ValueError)) else (
                    f"{live if live else self.location}: cannot be served ({type(error).__name__}: {error}); rebuild it with `qa index build`")
                self.last_error = message
                log.error("reload failed, still serving %s: %s", old.engine.index.generation, message)
                raise ReloadError(message) from error
            self.service = fresh
            self.last_error = None
            self._files, self._changed_logged = _snapshot(fresh), False
            self.mark_served()
            log.warning("reloaded the index: now %s (%d letters)", fresh.engine.index.generation, len(fresh.engine.index.letters))
            self.watch_check = asyncio.get_running_loop().create_task(self.check_watches(fresh))
            return True, time.perf_counter() - started

    async def check_watches(self, service: Service) -> None:
        """The saved questions against the letters the new index brought (issue 17), in the engine's thread, after
        the swap: requests are served meanwhile, and a failing check is logged, never a failed reload."""
        try:
            report, _ = await service.run(lambda engine: services.check_saved_questions(self.index_dir, engine))
        except Exception:  # noqa: BLE001 - the reload is done; a check that fails must not undo or hide it
            log.exception("checking the saved questions after the reload failed")
            return
        if report is not None:
            log.warning("saved questions: %s", report.line())

    def _load(self, old: Service) -> Service:
        index = store.load(self.location)
        running = old.engine.index
        if (index.model, index.backend) != (running.model, running.backend):  # the loaded embedder makes the queries
            raise store.IndexStateError(
                f"{self.location} is now built with model {index.model!r} on {index.backend}, the service runs "
                f"{running.model!r} on {running.backend}; restart `qa serve` to switch"
            )
        return old.with_index(index)

    def mark_served(self) -> None:
        """With --workers N: note which generation this worker serves, so a reload can wait for all of them."""
        if self.state_dir is None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        marker = self.state_dir / f"served-{os.getpid()}"
        marker.with_suffix(".tmp").write_text(self.service.engine.index.generation or "")
        marker.with_suffix(".tmp").replace(marker)

    async def workers_serving(self, generation: str | None, workers: int, timeout: float) -> int:
        """How many workers serve `generation`, waiting up to `timeout` s for all `workers` of them."""
        deadline = time.monotonic() + timeout
        while True:
            serving = sum(1 for marker in (self.state_dir or Path("/nonexistent")).glob("served-*")
                          if marker.suffix != ".tmp" and _read(marker) == (generation or ""))
            if serving >= workers or time.monotonic() > deadline:
                return serving
            await asyncio.sleep(0.2)

    async def watch(self) -> None:
        """Poll CURRENT; a bad new index is logged (and shown in /api/health), the old one keeps serving."""
        while True:
            await asyncio.sleep(self.watch_seconds)
            try:
                await self.reload()
            except ReloadError:
                pass
            except Exception:  # noqa: BLE001 - the watcher must outlive anything; it is the only one looking
                log.exception("the index watcher hit an error; it keeps watching")
            self.check_unchanged()

    def check_unchanged(self) -> None:
        """A served generation must never change on disk (a memory-mapped file overwritten in place is a
        SIGBUS): when its files change anyway, say so in the log and in /api/health's reload_error."""
        changed = sorted(name for name, stamp in _snapshot(self.service).items() if self._files.get(name) != stamp)
        changed += sorted(set(self._files) - set(_snapshot(self.service)))
        if not changed:
            return
        generation = self.service.engine.index.generation
        self.last_error = (f"{generation}: {', '.join(changed)} changed on disk while served; a generation must not be "
                           "modified: run `qa index build` or `qa index add`, which write a new one")
        if not self._changed_logged:
            log.error("%s", self.last_error)
            self._changed_logged = True

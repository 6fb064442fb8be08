"""Swapping in a rebuilt index without a restart, on request or by watching the CURRENT pointer."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import anyio

from qa import index as index_store
from qa.server.service import Service

log = logging.getLogger("qa.server")


class ReloadError(Exception):
    """The index on disk cannot be loaded; the running service keeps the index it has."""


class Reloader:
    """Holds the live `Service`; a reload loads the new index fully off the event loop, then one assignment."""

    def __init__(self, service: Service, index_dir: Path, watch_seconds: float = 0.0) -> None:
        self.service = service
        self.index_dir = index_dir
        self.watch_seconds = watch_seconds
        self._lock = asyncio.Lock()  # one reload at a time
        self.last_error: str | None = None

    async def reload(self, force: bool = False) -> tuple[bool, float]:
        """(whether a new index was swapped in, seconds taken); raises ReloadError and keeps the old index."""
        async with self._lock:
            started = time.perf_counter()
            old = self.service
            try:
                live = index_store.live_generation(self.index_dir)
                if live is None:
                    raise index_store.IndexStateError(f"no index in {self.index_dir}")
                if live.name == old.engine.index.generation and not force:
                    return False, time.perf_counter() - started
                fresh = await anyio.to_thread.run_sync(self._load, old)
            except (index_store.IndexStateError, OSError, ValueError) as error:
                self.last_error = str(error)
                log.error("reload failed, still serving %s: %s", old.engine.index.generation, error)
                raise ReloadError(str(error)) from error
            self.service = fresh
            self.last_error = None
            log.warning("reloaded the index: now %s (%d letters)", fresh.engine.index.generation, len(fresh.engine.index.letters))
            return True, time.perf_counter() - started

    def _load(self, old: Service) -> Service:
        index = index_store.load(self.index_dir)
        if index.model != old.engine.index.model:
            raise index_store.IndexStateError(
                f"{self.index_dir} is now built with model {index.model!r}, the service runs "
                f"{old.engine.index.model!r}; restart `qa serve` to switch models"
            )
        return old.with_index(index)

    async def watch(self) -> None:
        """Poll CURRENT; a bad new index is logged (and shown in /api/health), the old one keeps serving."""
        while True:
            await asyncio.sleep(self.watch_seconds)
            try:
                await self.reload()
            except ReloadError:
                pass

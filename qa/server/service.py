"""The engine as the web layer uses it: one worker thread, one lock, timings per call."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from qa.answer.engine import Engine
from qa.answer.kamervragen import PairIndex, RankedPairs
from qa.index import stores as store
from qa.ingest.ministries import ministry_label

T = TypeVar("T")


class Service:
    """The shared engine behind a lock: the tokenizer of a model must not run in two threads at once.

    A reload builds a new Service around the new index and the same model (`with_index`, so the same lock
    and thread), and then replaces the live reference: requests already running finish on the old one."""

    def __init__(self, engine: Engine, lock: threading.Lock | None = None, executor: ThreadPoolExecutor | None = None) -> None:
        self.engine = engine
        self.info = engine.index.info()
        self._lock = lock or threading.Lock()
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-engine")
        letters = engine.index.letters.values()
        self.senders = sorted({letter.sender for letter in letters if letter.sender})
        self.ministries = sorted({label for letter in letters if (label := ministry_label(letter.signer))})  # the facet
        self.types = sorted({letter.type for letter in letters if letter.type})
        self.kamervragen = RankedPairs(PairIndex.build(engine.index))  # the index's earlier Kamervragen (milliseconds)

    def with_index(self, index: store.Store) -> Service:
        """A service for another index with the same model, lock and thread, warmed up (call off the event loop)."""
        service = Service(Engine(index, self.engine.embedder), self._lock, self._executor)
        with self._lock:
            service.engine.search("opwarmen", k=1)
        return service

    async def run(self, work: Callable[[Engine], T]) -> tuple[T, dict[str, float]]:
        """Run `work` in the worker thread; returns its result and how long it waited and worked (ms)."""

        def locked() -> tuple[T, dict[str, float]]:
            queued = time.perf_counter()
            with self._lock:
                started = time.perf_counter()
                result = work(self.engine)
                done = time.perf_counter()
            return result, {"queue": round((started - queued) * 1000, 2), "engine": round((done - started) * 1000, 2)}

        # One dedicated thread instead of anyio's pool: the work is serialised by the lock anyway, and each pool
        # thread that ran the model would keep its own malloc arena (~+800 MB RSS under 32 clients, measured).
        return await asyncio.get_running_loop().run_in_executor(self._executor, locked)

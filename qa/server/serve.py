"""Running the app under uvicorn: one process sharing the engine loaded here, or N worker processes.

uvicorn's defaults suit a server behind a proxy, not one facing clients: no limit on header size
(httptools), no time limit for a request to arrive (400 slowloris connections were held for a minute).
Here: h11 with MAX_HEADER_BYTES, REQUEST_TIMEOUT for headers and body, MAX_CONNECTIONS, and an access
log that escapes control characters. In production put a reverse proxy in front as well (README)."""

from __future__ import annotations

import asyncio
import copy
import errno
import faulthandler
import json
import logging
import os
import socket
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import h11
from litestar import Litestar
from uvicorn.logging import AccessFormatter
from uvicorn.protocols.http.h11_impl import H11Protocol

from qa.bootstrap import load_engine
from qa.core.errors import SettingsError
from qa.embed.onnx_runtime import THREADS_ENV
from qa.index import stores as store
from qa.server.app import create_app
from qa.server.security import log_safe
from qa.server.settings import (
    MAX_CONNECTIONS,
    MAX_HEADER_BYTES,
    REQUEST_TIMEOUT,
    REQUEST_TIMEOUT_ENV,
    SETTINGS_ENV,
    WORKER_WATCH_SECONDS,
    Settings,
)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class TimedH11Protocol(H11Protocol):
    """h11, with a deadline for each request to arrive whole (headers and body): a client that has not sent
    it within $QA_REQUEST_TIMEOUT seconds is disconnected. Answering may take as long as it takes."""

    _request_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # the next request on a kept-alive connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        seconds = float(os.environ.get(REQUEST_TIMEOUT_ENV) or REQUEST_TIMEOUT)
        self._request_deadline: asyncio.TimerHandle | None = self.loop.call_later(seconds, self._request_timed_out)

    def _disarm(self) -> None:
        handle = getattr(self, "_request_deadline", None)
        if handle is not None:
            handle.cancel()
            self._request_deadline = None

    def _request_timed_out(self) -> None:
        if self.transport.is_closing() or self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
            return  # the request is in; the app may still be working on it
        self.logger.info("%s: request not received within the time limit; connection closed", _client(self.client))
        self.transport.close()


def _client(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "client"


class SafeAccessFormatter(AccessFormatter):
    """The access log with control characters escaped: a path with %0a could forge log lines (issue 12)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record = copy.copy(record)
        if isinstance(record.args, tuple):
            record.args = tuple(log_safe(value) for value in record.args)
        return super().formatMessage(record)


def log_config() -> dict[str, Any]:
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"]["()"] = f"{__name__}.SafeAccessFormatter"
    return config


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The limits, in one place (documented in docs/reliability.md and the README)."""
    os.environ.setdefault(REQUEST_TIMEOUT_ENV, str(settings.request_timeout))
    return {
        "http": TimedH11Protocol, "h11_max_incomplete_event_size": MAX_HEADER_BYTES, "limit_concurrency": MAX_CONNECTIONS,
        "timeout_keep_alive": 5, "log_config": log_config(), "log_level": "info", "proxy_headers": False,
    }


def check_port(host: str, port: int) -> None:
    """Bind the address as uvicorn will (SO_REUSEADDR, IPv6 for a host with ':') and let it go again, so a busy
    port is one line at once instead of after the model has loaded (~20 s) or the sample index was built."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise SettingsError(f"port {port} on {host} is already in use (another qa serve?); stop it or choose another with --port") from error
            raise SettingsError(f"cannot listen on {host}:{port} ({error.strerror or error}); check --host and --port") from error


WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """The index and model load (or the sample index is built) before the server starts, so a problem is one line."""
    import uvicorn

    check_port(host, port)
    if host not in WILDCARD_ADDRESSES:  # the address it listens on is one of its names
        settings = replace(settings, allowed_hosts=(*settings.allowed_hosts, host))
    faulthandler.enable()  # a fatal signal (SIGBUS from a memory-mapped file changed on disk) leaves a traceback in the log
    if workers == 1:
        app = create_app(settings, engine=load_engine(settings.location(), settings.model, settings.build_sample))
        _say(f"Serving on http://{host}:{port}/ (API docs at /api/docs)")
        uvicorn.run(app, host=host, port=port, **uvicorn_options(settings))
        return
    # Each worker process loads its own engine; check (or build) the index here first, so a problem
    # is one clear line and not N tracebacks.
    if store.exists(settings.location()):
        store.load(settings.location())
    else:
        load_engine(settings.location(), settings.model, settings.build_sample)
    threads = max(1, (os.cpu_count() or 1) // workers)
    with tempfile.TemporaryDirectory(prefix="qa-serve-") as state_dir:
        # Every worker watches CURRENT (so POST /api/admin/reload reaches them all) and shares the rate limit's counts.
        handed = replace(settings, build_sample=False, workers=workers, state_dir=Path(state_dir),
                         watch_seconds=min(settings.watch_seconds or WORKER_WATCH_SECONDS, WORKER_WATCH_SECONDS))
        os.environ[SETTINGS_ENV] = json.dumps({"threads": threads, "settings": handed.to_dict()})
        _say(f"Serving on http://{host}:{port}/ with {workers} workers (API docs at /api/docs)")
        uvicorn.run("qa.server.serve:app_from_environment", factory=True, workers=workers, host=host, port=port,
                    **uvicorn_options(settings))


def app_from_environment() -> Litestar:
    """The app in one of `qa serve --workers N`'s processes; the cores are shared out between them."""
    import torch

    faulthandler.enable()
    handed = json.loads(os.environ[SETTINGS_ENV])
    torch.set_num_threads(handed["threads"])
    os.environ[THREADS_ENV] = str(handed["threads"])  # ONNX Runtime's sessions (qa/embed/onnx_runtime.py) read it
    return create_app(Settings.from_dict(handed["settings"]))

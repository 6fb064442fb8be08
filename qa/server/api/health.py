"""Health: which index is served, whether the service is ready, and whether its chat model answers."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Literal

import anyio
import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from qa.answer.llm.client import LLMClient
from qa.server.reloader import Reloader
from qa.server.service import Service
from qa.server.settings import Settings
from qa.users import db as userdb
from qa.users import feedback

log = logging.getLogger("qa.server")


class Health(msgspec.Struct):
    status: Literal["ok"]
    ready: bool
    model: str
    letters: int
    passages: int
    built_at: str
    dimension: int
    date_range: list[str] | None
    types: dict[str, int]
    generation: str | None = None  # the index generation being served
    reload_error: str | None = None  # why the last reload failed (the index above is still served)
    feedback: int | None = 0  # feedback stored beside the index (null when its database cannot be read)
    llm: LLMHealth | None = None  # the chat model, when one is configured


class LLMHealth(msgspec.Struct):
    reachable: bool
    model: str | None
    detail: str | None = None


def stored_feedback(data_dir: Path) -> int | None:
    """How much feedback there is, without creating or migrating anything; None when it cannot be read."""
    if not userdb.exists(data_dir):
        return 0
    try:
        with closing(userdb.connect(data_dir, readonly=True)) as connection:
            return feedback.count(connection)["total"]
    except (userdb.UserDataError, sqlite3.Error) as error:
        log.warning("feedback count unavailable: %s", error)
        return None


class HealthController(Controller):
    path = "/api/health"
    tags = ["service"]

    @get("/", summary="Which index is loaded, whether the service is ready, and whether its chat model answers")
    async def health(self, service: NamedDependency[Service], reloader: NamedDependency[Reloader], settings: NamedDependency[Settings],
                     llm: NamedDependency[LLMClient | None]) -> Health:
        info = service.info
        checked = await llm.health() if llm else None
        return Health(
            feedback=await anyio.to_thread.run_sync(stored_feedback, settings.index_dir),  # SQLite: off the event loop
            generation=service.engine.index.generation, reload_error=reloader.last_error,
            status="ok", ready=True, model=str(info["model"]), letters=int(info["letters"]),  # type: ignore[call-overload]
            passages=int(info["passages"]), built_at=str(info["built_at"]), dimension=int(info["dimension"]),  # type: ignore[call-overload]
            date_range=info["date_range"], types=info["types"],  # type: ignore[arg-type]
            llm=LLMHealth(checked.reachable, checked.model, checked.detail) if checked else None,
        )

"""Saved questions: follow a question, read its hits, stop following it; the admin key lists them all."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from qa.core import limits
from qa.schemas import WatchOut, watch_out
from qa.server import security
from qa.server.api.fields import FiltersIn, Question, parse_filters
from qa.server.api.userdata import user_data
from qa.server.service import Service
from qa.server.settings import Settings
from qa.users import db as userdb
from qa.users import watches

log = logging.getLogger("qa.server")


class WatchIn(msgspec.Struct, forbid_unknown_fields=True):
    """A question to follow: a hit is recorded when a newly indexed letter answers it this surely."""

    question: Question
    threshold: Annotated[float, Meta(ge=0, le=1, description="The reader's confidence a hit needs (default 0.6).")] | None = None
    filters: FiltersIn = msgspec.field(default_factory=FiltersIn)

    def __post_init__(self) -> None:
        self.question = limits.check_question(self.question)
        parse_filters(self.filters)


class WatchList(msgspec.Struct):
    watches: list[WatchOut]


WATCHES_UNAVAILABLE = "saved questions cannot be stored: the server's data folder is not writable or its database is damaged (see the server log)"
WATCHES_UNREADABLE = "saved questions cannot be read: the server's database cannot be opened or is damaged (see the server log)"
Token = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


class WatchController(Controller):
    path = "/api/watches"
    tags = ["watches"]

    @post("/", status_code=201, summary="Follow a question: alert when a new letter answers it", sync_to_thread=True)
    def add(self, data: JSONBody[WatchIn], service: NamedDependency[Service], settings: NamedDependency[Settings]) -> WatchOut:
        """Only letters indexed from now on can fire it. Keep `token`: the feed (`feed_url`) and the page (`page_url`)
        are at URLs made of it, and it deletes the watch. 503 when the data folder is read-only."""
        index = service.engine.index
        with user_data(settings.index_dir, WATCHES_UNAVAILABLE, "saved question not stored") as connection:
            return watch_out(watches.add(connection, index, data.question, data.threshold, parse_filters(data.filters)))

    @get("/", summary="Every saved question (needs the admin key)", sync_to_thread=True)
    def all(self, request: Request[Any, Any, Any], settings: NamedDependency[Settings]) -> WatchList:
        """Listing every saved question hands out every token: `Authorization: Bearer $QA_ADMIN_KEY` (401 without
        it, 403 when the server has no key)."""
        security.admin_guard(settings)(request, None)  # type: ignore[arg-type]
        if not userdb.exists(settings.index_dir):
            return WatchList([])
        with user_data(settings.index_dir, WATCHES_UNREADABLE, "saved questions unreadable", readonly=True) as connection:
            return WatchList([watch_out(watch) for watch in watches.watches(connection)])

    @get("/{token:str}", summary="A saved question and its hits, newest first", sync_to_thread=True)
    def one(self, token: FromPath[Token], settings: NamedDependency[Settings]) -> WatchOut:
        """Read without writing: a read-only data folder serves it too."""
        return watch_out(*_watch_and_hits(settings, token))

    @delete("/{token:str}", status_code=204, summary="Stop following a question (its hits go too)", sync_to_thread=True)
    def remove(self, token: FromPath[Token], settings: NamedDependency[Settings]) -> None:
        _watch_and_hits(settings, token)
        with user_data(settings.index_dir, WATCHES_UNAVAILABLE, "saved question not removed") as connection:
            watches.remove(connection, token)


def _watch_and_hits(settings: Settings, token: str) -> tuple[watches.Watch, list[watches.WatchHit]]:
    """The watch of a token, or a 404 that does not say whether the folder or the token is wrong."""
    try:
        return watches.open_watch(settings.index_dir, token)
    except watches.WatchNotFound:
        raise NotFoundException("no saved question with this token") from None
    except userdb.UserDataError as error:
        log.error("saved questions unreadable: %s", error)
        raise HTTPException(WATCHES_UNREADABLE, status_code=503) from error

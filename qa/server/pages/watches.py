"""Saved questions: a page and an Atom feed per watch, at URLs made of its token."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from qa.schemas import letter_href, watch_hit_out
from qa.server import security
from qa.server.errors import PageNotFound, PageUnavailable
from qa.server.settings import Settings
from qa.users import db as userdb
from qa.users import watches

WATCHES_UNREADABLE = "De gevolgde vragen zijn nu niet te lezen: de server kan zijn gegevens niet openen. Probeer het later opnieuw."
log = logging.getLogger("qa.server")


class WatchPages(Controller):
    path = "/watches"
    include_in_schema = False

    @staticmethod
    async def _load(settings: Settings, token: str) -> tuple[watches.Watch, list[watches.WatchHit]]:
        """The watch and its hits, read in a thread (SQLite may wait for another process's write) without writing,
        so a read-only data folder serves them; a database that cannot be read is a 503 page in Dutch."""
        try:
            return await anyio.to_thread.run_sync(watches.open_watch, settings.index_dir, token)
        except watches.WatchNotFound:
            raise PageNotFound("Er is geen gevolgde vraag met deze link. Misschien is hij verwijderd of verkeerd overgenomen.") from None
        except userdb.UserDataError as error:
            log.error("saved questions unreadable: %s", error)
            raise PageUnavailable(WATCHES_UNREADABLE) from error

    @get("/{token:str}", name="watch")
    async def watch(self, settings: NamedDependency[Settings], token: FromPath[Annotated[str, msgspec.Meta(max_length=100)]]) -> Template:
        """The hits of one saved question, newest first, with its feed's address."""
        watch, found = await self._load(settings, token)
        context = {"watch": watch, "hits": [watch_hit_out(hit) for hit in found], "feed": watches.feed_path(watch.token)}
        return Template("watch.html", context=context)

    @get("/{token:str}/feed.atom", name="watch_feed", media_type="application/atom+xml")
    async def feed(self, request: Request[Any, Any, Any], settings: NamedDependency[Settings],
                   token: FromPath[Annotated[str, msgspec.Meta(max_length=100)]]) -> Response[bytes]:
        """Atom (RFC 4287): feed readers and mail-to-RSS services poll it; links are absolute, on the configured base URL."""
        watch, found = await self._load(settings, token)
        base = security.public_base_url(request, settings)
        body = watches.atom_feed(watch, found, base, lambda hit: letter_href(hit.letter_id, hit.passage_id, hit.quote_start, hit.quote_end))
        return Response(body, media_type="application/atom+xml; charset=utf-8")

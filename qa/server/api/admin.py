"""The admin API: reload the index after `qa index build/add`, behind the admin key's guard."""

from __future__ import annotations

import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException

from qa.server.reloader import Reloader, ReloadError
from qa.server.settings import Settings

RELOAD_WAIT_SECONDS = 30.0  # with --workers N: how long a reload waits for the other workers (they poll every second)


class ReloadOut(msgspec.Struct):
    reloaded: bool  # false: CURRENT still points to the generation being served
    generation: str | None
    letters: int
    passages: int
    seconds: float
    workers: int = 1  # with --workers N: how many serve this generation now (all of them, or the reload failed)


class AdminController(Controller):
    path = "/api/admin"
    tags = ["service"]

    @post("/reload", status_code=200, summary="Load the index again after `qa index build/add` (needs the admin key)")
    async def reload(self, reloader: NamedDependency[Reloader], settings: NamedDependency[Settings]) -> ReloadOut:
        """Send the key of $QA_ADMIN_KEY as `Authorization: Bearer KEY`. 403 when the server has no key; 409 when
        the index on disk cannot be loaded (the service keeps answering from the index it has).
        The key is checked by the guard `qa.server.security.admin_guard`, which the app puts on this controller."""
        try:
            reloaded, seconds = await reloader.reload()
        except ReloadError as error:
            raise ClientException(f"reload failed, still serving the previous index: {error}", status_code=409) from error
        index = reloader.service.engine.index
        workers = 1
        if settings.workers > 1:
            # This request reached one worker; the others watch CURRENT every WORKER_WATCH_SECONDS. Answer when
            # all serve the new generation, so "reloaded" is true for every worker (issue 12), or say it is not.
            workers = await reloader.workers_serving(index.generation, settings.workers, RELOAD_WAIT_SECONDS)
            if workers < settings.workers:
                raise ClientException(
                    f"reload incomplete: {workers} of {settings.workers} workers serve {index.generation} after "
                    f"{RELOAD_WAIT_SECONDS:.0f} s; see the server log", status_code=409)
        return ReloadOut(reloaded, index.generation, len(index.letters), len(index.passages), round(seconds, 3), workers)

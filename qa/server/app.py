"""The app factory: wires the controllers, the live service and the protections together; no logic of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from litestar import Litestar, Router
from litestar.di import Provide
from litestar.logging.config import LoggingConfig
from litestar.static_files import create_static_files_router
from litestar.stores.file import FileStore

from qa.answer.engine import Engine
from qa.answer.llm.client import LLMClient
from qa.bootstrap import load_engine
from qa.server import api, errors, openapi, pages, security
from qa.server.reloader import Reloader
from qa.server.service import Service
from qa.server.settings import Settings


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Litestar:
    """The app; pass `engine` to share one already loaded (tests), else it loads at start-up."""
    settings = settings or Settings()
    live: dict[str, Reloader] = {}
    llm_settings = settings.llm()
    llm: dict[str, LLMClient | None] = {"client": None}

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        loaded = engine if engine is not None else await anyio.to_thread.run_sync(load_engine, settings.location(), settings.model, settings.build_sample)
        reloader = live["reloader"] = Reloader(Service(loaded), settings.location(), settings.watch_seconds, settings.state_dir)
        reloader.mark_served()
        watcher = asyncio.create_task(reloader.watch()) if settings.watch_seconds > 0 else None
        client = llm["client"] = LLMClient(llm_settings) if llm_settings else None  # on this event loop, which it then serves
        try:
            yield
        finally:
            if watcher:
                watcher.cancel()
            if client:
                await client.aclose()

    return Litestar(
        route_handlers=[
            *api.CONTROLLERS,
            Router("/", route_handlers=[api.AdminController], guards=[security.admin_guard(settings)]),
            *pages.CONTROLLERS,
            create_static_files_router("/static", [settings.web_dir / "static"], include_in_schema=False),
            openapi.swagger_files(),
        ],
        lifespan=[lifespan],
        dependencies={
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "reloader": Provide(lambda: live["reloader"], sync_to_thread=False),
            "service": Provide(lambda: live["reloader"].service, sync_to_thread=False),
            "llm": Provide(lambda: llm["client"], sync_to_thread=False),  # None: no chat model configured
        },
        template_config=pages.template_config(settings.web_dir),
        openapi_config=openapi.openapi_config(),
        exception_handlers=errors.HANDLERS,
        before_send=[security.security_headers],
        before_request=security.request_checks(settings),
        # Litestar would set the root logger to INFO, and sentence-transformers then draws a progress bar per query.
        logging_config=LoggingConfig(configure_root_logger=False, log_exceptions="never"),
        request_max_body_size=settings.max_body_bytes,
        middleware=[security.rate_limit_middleware(settings.rate_limit)] if settings.rate_limit else [],
        # One count for all workers (it was one per worker: 3/minute with 2 workers allowed 6).
        stores={security.RATE_LIMIT_STORE: FileStore(settings.state_dir / "rate-limit", create_directories=True)} if settings.state_dir else None,
        debug=settings.debug,
    )

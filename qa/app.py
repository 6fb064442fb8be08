"""The web service: a Litestar app factory around one shared `Engine`.

The index and the embedding model load once, at start-up, and every request shares them; the
server keeps no per-user state (a conversation lives in the page and comes back as `history`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import msgspec
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Litestar, MediaType, Request, Response
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.logging.config import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar.types import Message, Scope

from qa import index as index_store
from qa.engine import Engine
from qa.settings import SAMPLE_CORPUS, default_index_dir

log = logging.getLogger("qa.app")
T = TypeVar("T")

MAX_BODY_BYTES = 64 * 1024
WEB_ENV = "QA_WEB_DIR"
ADMIN_KEY_ENV = "QA_ADMIN_KEY"
RATE_LIMIT_ENV = "QA_RATE_LIMIT"
RATE_UNITS = ("second", "minute", "hour", "day")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI sets inline styles; its page shows no letter text, only our own schema.
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
DOCS_PATH = "/api/docs"


def default_web_dir() -> Path:
    """web/ beside the package (editable install or checkout), else installed as data files."""
    candidates = [Path(os.environ[WEB_ENV])] if os.environ.get(WEB_ENV) else []
    candidates += [Path(__file__).resolve().parent.parent / "web", Path(sys.prefix) / "share" / "kamerbrieven-qa" / "web"]
    for candidate in candidates:
        if (candidate / "templates").is_dir():
            return candidate
    raise RuntimeError(f"cannot find the web/ folder (templates and static files); set ${WEB_ENV}")


@dataclass(frozen=True)
class Settings:
    index_dir: Path = field(default_factory=default_index_dir)
    model: str | None = None  # None: the model the index was built with
    build_sample: bool = True  # no index yet: build one from the bundled sample letters
    web_dir: Path = field(default_factory=default_web_dir)
    max_body_bytes: int = MAX_BODY_BYTES
    debug: bool = False
    admin_key: str | None = field(default_factory=lambda: os.environ.get(ADMIN_KEY_ENV) or None)  # None: admin API off
    rate_limit: str | None = field(default_factory=lambda: os.environ.get(RATE_LIMIT_ENV) or None)  # "60/minute"; None: off
    watch_seconds: float = 0.0  # > 0: poll the index's CURRENT pointer and reload when it changes


SETTINGS_ENV = "QA_SERVE_SETTINGS"


def settings_to_environment(settings: Settings, threads: int) -> str:
    """Settings for worker processes, which uvicorn starts from an import string."""
    fields = {name: getattr(settings, name) for name in ("model", "build_sample", "debug", "admin_key", "rate_limit", "watch_seconds")}
    return json.dumps(fields | {"index_dir": str(settings.index_dir), "web_dir": str(settings.web_dir), "threads": threads})


def app_from_environment() -> Litestar:
    """The app in one of `qa serve --workers N`'s processes; the cores are shared out between them."""
    import torch

    fields = json.loads(os.environ[SETTINGS_ENV])
    torch.set_num_threads(fields.pop("threads"))
    return create_app(Settings(**fields | {"index_dir": Path(fields["index_dir"]), "web_dir": Path(fields["web_dir"])}))


def parse_rate_limit(value: str) -> tuple[str, int]:
    """'60/minute' -> ('minute', 60); a bad value is an error at start-up, not a silent no-limit."""
    count, _, unit = value.strip().partition("/")
    unit = unit.strip().lower().removesuffix("s")
    if not count.strip().isdigit() or int(count) < 1 or unit not in RATE_UNITS:
        raise ValueError(f"rate limit {value!r}: expected N/unit with unit one of {', '.join(RATE_UNITS)}, e.g. 60/minute")
    return unit, int(count)


class Service:
    """The shared engine behind a lock: the tokenizer of a model must not run in two threads at once.

    A reload builds a new Service around the new index and the same model (and so the same lock), and
    then replaces the app's reference: requests already running finish on the old one."""

    def __init__(self, engine: Engine, lock: threading.Lock | None = None, executor: ThreadPoolExecutor | None = None) -> None:
        self.engine = engine
        self.info = index_store.info(engine.index)
        self._lock = lock or threading.Lock()
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-engine")
        letters = engine.index.letters.values()
        self.senders = sorted({letter.sender for letter in letters if letter.sender})
        self.types = sorted({letter.type for letter in letters if letter.type})

    async def run(self, work: Callable[[Engine], T]) -> tuple[T, dict[str, float]]:
        """Run `work` in a worker thread; returns its result and how long it waited and worked (ms)."""

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


class ReloadError(Exception):
    """The index on disk cannot be loaded; the running service keeps the index it has."""


class Reloader:
    """Swaps in a rebuilt index without a restart: loads it fully off the event loop, then one assignment."""

    def __init__(self, app: Litestar, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self._lock = asyncio.Lock()  # one reload at a time
        self.last_error: str | None = None

    @property
    def generation(self) -> str | None:
        return self.app.state.service.engine.index.generation

    async def reload(self, force: bool = False) -> tuple[bool, float]:
        """(whether a new index was swapped in, seconds taken); raises ReloadError and keeps the old index."""
        async with self._lock:
            started = time.perf_counter()
            old: Service = self.app.state.service
            try:
                live = index_store.live_generation(self.settings.index_dir)
                if live is None:
                    raise index_store.IndexStateError(f"no index in {self.settings.index_dir}")
                if live.name == old.engine.index.generation and not force:
                    return False, time.perf_counter() - started
                fresh = await anyio.to_thread.run_sync(self._load, old)
            except (index_store.IndexStateError, OSError, ValueError) as error:
                self.last_error = str(error)
                log.error("reload failed, still serving %s: %s", old.engine.index.generation, error)
                raise ReloadError(str(error)) from error
            self.app.state.service = fresh
            self.last_error = None
            log.warning("reloaded the index: now %s (%d letters)", fresh.engine.index.generation, len(fresh.engine.index.letters))
            return True, time.perf_counter() - started

    def _load(self, old: Service) -> Service:
        index = index_store.load(self.settings.index_dir)
        if index.model != old.engine.index.model:
            raise index_store.IndexStateError(
                f"{self.settings.index_dir} is now built with model {index.model!r}, the service runs "
                f"{old.engine.index.model!r}; restart `qa serve` to switch models"
            )
        service = Service(Engine(index, old.engine.embedder), old._lock, old._executor)  # same model, lock and thread
        with old._lock:
            service.engine.search("opwarmen", k=1)
        return service

    async def watch(self) -> None:
        """Poll CURRENT; a bad new index is logged (and shown in /api/health), the old one keeps serving."""
        while True:
            await asyncio.sleep(self.settings.watch_seconds)
            try:
                await self.reload()
            except ReloadError:
                pass


def load_engine(settings: Settings, say: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True)) -> Engine:
    """Open the index; on a first run build the bundled sample letters, or say what to run."""
    if not index_store.exists(settings.index_dir):
        if not settings.build_sample:
            raise index_store.IndexStateError(
                f"no index in {settings.index_dir}. Build one with `qa index build --index {settings.index_dir}` "
                f"(the bundled sample letters) or `qa index build PATH ... --index {settings.index_dir}` (your own letters)."
            )
        from qa.embedding import Embedder, default_model_name
        from qa.letters import read_letters

        model = settings.model or default_model_name()
        report = read_letters([SAMPLE_CORPUS])
        say(f"No index in {settings.index_dir} yet: building one from the {len(report.letters)} bundled sample letters with {model}.")
        say(f"(For your own letters: qa index build PATH ... --index {settings.index_dir})")
        embedder = Embedder(model)
        summary = index_store.update(settings.index_dir, embedder, add=report.letters, replace_all=True, log=say, progress_bar=True)
        say(f"Index ready: {summary.letters} letters, {summary.passages} passages in {summary.seconds:.0f} s.")
        engine = Engine(index_store.load(settings.index_dir), embedder)  # the model is loaded already
    else:
        say(f"Loading the index in {settings.index_dir} and its model ...")
        engine = Engine.open(settings.index_dir, settings.model)
    engine.search("opwarmen", k=1)  # the first query pays for lazy initialisation, not the first user
    say(f"Ready: {len(engine.index.letters)} letters, {len(engine.index.passages)} passages, model {engine.index.model}.")
    return engine


# --- errors --------------------------------------------------------------------------------


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api") and "text/html" in request.headers.get("accept", "")


def _detail(exc: HTTPException) -> str:
    """A validation error names the field and the rule, not just 'Validation failed'."""
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list) and exc.extra:
        parts = []
        for item in exc.extra:
            if isinstance(item, dict):
                key = item.get("key")
                parts.append(f"{key}: {item.get('message')}" if key and key != "data" else str(item.get("message")))
        if parts:
            return "Invalid request: " + "; ".join(parts)
    return str(exc.detail)


def _error_response(request: Request, status: int, detail: str, extra: Any = None, headers: dict[str, str] | None = None) -> Response[Any]:
    if _wants_html(request):
        return Template("error.html", context={"status": status, "detail": detail}, status_code=status, headers=headers)
    body: dict[str, Any] = {"status_code": status, "detail": detail}
    if extra:
        body["extra"] = extra
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)


def http_error(request: Request, exc: HTTPException) -> Response[Any]:
    cause = exc.__cause__
    if exc.status_code == 500 and isinstance(cause, msgspec.ValidationError):
        # Litestar turns some errors in nested bodies (an unknown field in `filters`) into a 500; they are the
        # client's, so say what is wrong like any other validation error.
        message, _, where = str(cause).partition(" - at `$.")
        where = where.rstrip("`").removeprefix("data").lstrip(".")
        return _error_response(request, 400, f"Invalid request: {where + ': ' if where else ''}{message}")
    # exc.headers: Allow on a 405, RateLimit-* on a 429
    return _error_response(request, exc.status_code, _detail(exc), exc.extra if isinstance(exc.extra, list) else None, exc.headers)


def not_utf8(request: Request, exc: UnicodeDecodeError) -> Response[Any]:
    return _error_response(request, 400, "Invalid request: the body is not valid UTF-8")


def too_deep(request: Request, exc: RecursionError) -> Response[Any]:
    """msgspec gives up on JSON nested thousands deep with a RecursionError: the client's doing, not a bug."""
    return _error_response(request, 400, "Invalid request: the JSON body is nested too deeply")


def unexpected_error(request: Request, exc: Exception) -> Response[Any]:
    """Never a bare 500 page: log the traceback, answer with JSON (or the error page)."""
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return _error_response(request, 500, "Internal error: the server could not handle this request.")


# --- security headers ----------------------------------------------------------------------


async def security_headers(message: Message, scope: Scope) -> None:
    """On every response, errors and static files included (a before-send hook sees them all)."""
    if message["type"] != "http.response.start":
        return
    path = scope.get("path", "")
    headers = [(name, value) for name, value in message.get("headers", []) if name.lower() != b"content-security-policy"]
    csp = DOCS_CSP if path.startswith(DOCS_PATH) else CSP
    headers += [
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
    ]
    message["headers"] = headers


# --- OpenAPI docs without a CDN ------------------------------------------------------------


class LocalSwaggerPlugin(OpenAPIRenderPlugin):
    """Swagger UI from the swagger-ui-bundle-v2 package (no CDN), started by a static script (strict CSP)."""

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        title = openapi_schema["info"]["title"]
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title} API</title>'
            '<link rel="stylesheet" href="/static/swagger/swagger-ui.css"><link rel="icon" href="/static/favicon.svg"></head>'
            f'<body><div id="swagger-ui" data-spec="{self.get_openapi_json_route(request)}"></div>'
            '<script src="/static/swagger/swagger-ui-bundle.js"></script><script src="/static/docs.js"></script>'
            "</body></html>"
        ).encode()


def _static_routers() -> list[Any]:
    routers = []
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # the docs page then has no UI, the JSON schema still works
        log.warning("swagger-ui-bundle-v2 is not installed: %s shows no interactive UI", DOCS_PATH)
    else:
        routers.append(create_static_files_router("/static/swagger", [swagger_ui_path], name="swagger", include_in_schema=False))
    return routers


# --- the app -------------------------------------------------------------------------------


def _templates(web_dir: Path) -> TemplateConfig:
    from qa import pages

    environment = Environment(
        loader=FileSystemLoader(web_dir / "templates"), autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True
    )
    environment.globals.update(pages.template_globals())
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Litestar:
    """The app; pass `engine` to share one already loaded (tests), else it loads at start-up."""
    from qa import api, pages

    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        loaded = engine or await anyio.to_thread.run_sync(load_engine, settings)
        app.state.service = Service(loaded)
        app.state.reloader = Reloader(app, settings)
        watcher = asyncio.create_task(app.state.reloader.watch()) if settings.watch_seconds > 0 else None
        try:
            yield
        finally:
            if watcher:
                watcher.cancel()

    def provide_service(state: State) -> Service:
        return state.service

    handlers: Sequence[Any] = [
        *api.CONTROLLERS,
        *pages.CONTROLLERS,
        create_static_files_router("/static", [settings.web_dir / "static"], include_in_schema=False),
        *_static_routers(),
    ]
    middleware = []
    if settings.rate_limit:
        from litestar.middleware.rate_limit import RateLimitConfig

        # Per client address, on the API only (pages and static files are cheap); health stays open for probes.
        middleware.append(RateLimitConfig(
            rate_limit=parse_rate_limit(settings.rate_limit),  # type: ignore[arg-type]
            check_throttle_handler=lambda request: request.url.path.startswith("/api/") and not request.url.path.startswith(("/api/health", "/api/docs")),
        ).middleware)
    app = Litestar(
        route_handlers=handlers,
        lifespan=[lifespan],
        dependencies={"service": Provide(provide_service, sync_to_thread=False)},
        template_config=_templates(settings.web_dir),
        openapi_config=OpenAPIConfig(
            title="Kamerbrieven QA",
            version="0.1.0",
            description="Questions about Dutch parliamentary letters, answered with verbatim, cited quotes.",
            path=DOCS_PATH,  # the UI here, the schema at /api/docs/openapi.json
            render_plugins=[LocalSwaggerPlugin(path="/")],
        ),
        exception_handlers={HTTPException: http_error, RecursionError: too_deep, UnicodeDecodeError: not_utf8, Exception: unexpected_error},
        before_send=[security_headers],
        # Litestar would set the root logger to INFO, and sentence-transformers then draws a progress bar per query.
        logging_config=LoggingConfig(configure_root_logger=False, log_exceptions="never"),
        request_max_body_size=settings.max_body_bytes,
        middleware=middleware,
        debug=settings.debug,
    )
    app.state.settings = settings
    return app


def admin_key_matches(settings: Settings, given: str | None) -> bool:
    """Constant-time, so the key cannot be guessed a character at a time from response times."""
    return bool(settings.admin_key and given) and hmac.compare_digest(str(given).encode(), str(settings.admin_key).encode())

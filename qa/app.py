"""The web service: a Litestar app factory around one shared `Engine`.

The index and the embedding model load once, at start-up, and every request shares them; the
server keeps no per-user state (a conversation lives in the page and comes back as `history`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
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


class Service:
    """The shared engine behind a lock: the tokenizer of a model must not run in two threads at once."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.info = index_store.info(engine.index)
        self._lock = threading.Lock()
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

        return await anyio.to_thread.run_sync(locked)


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


def _error_response(request: Request, status: int, detail: str, extra: Any = None) -> Response[Any]:
    if _wants_html(request):
        return Template("error.html", context={"status": status, "detail": detail}, status_code=status)
    body: dict[str, Any] = {"status_code": status, "detail": detail}
    if extra:
        body["extra"] = extra
    return Response(body, status_code=status, media_type=MediaType.JSON)


def http_error(request: Request, exc: HTTPException) -> Response[Any]:
    cause = exc.__cause__
    if exc.status_code == 500 and isinstance(cause, msgspec.ValidationError):
        # Litestar turns some errors in nested bodies (an unknown field in `filters`) into a 500; they are the
        # client's, so say what is wrong like any other validation error.
        message, _, where = str(cause).partition(" - at `$.")
        where = where.rstrip("`").removeprefix("data").lstrip(".")
        return _error_response(request, 400, f"Invalid request: {where + ': ' if where else ''}{message}")
    return _error_response(request, exc.status_code, _detail(exc), exc.extra if isinstance(exc.extra, list) else None)


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
        yield

    def provide_service(state: State) -> Service:
        return state.service

    handlers: Sequence[Any] = [
        *api.CONTROLLERS,
        *pages.CONTROLLERS,
        create_static_files_router("/static", [settings.web_dir / "static"], include_in_schema=False),
        *_static_routers(),
    ]
    return Litestar(
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
        exception_handlers={HTTPException: http_error, Exception: unexpected_error},
        before_send=[security_headers],
        # Litestar would set the root logger to INFO, and sentence-transformers then draws a progress bar per query.
        logging_config=LoggingConfig(configure_root_logger=False, log_exceptions="never"),
        request_max_body_size=settings.max_body_bytes,
        debug=settings.debug,
    )

"""Every error becomes JSON under /api (and for clients that do not want HTML), the error page elsewhere."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Template
from litestar.types import ExceptionHandlersMap

from qa.errors import InvalidQuery
from qa.server.security import log_safe

log = logging.getLogger("qa.server")


def _wants_html(request: Request[Any, Any, Any]) -> bool:
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


def error_response(
    request: Request[Any, Any, Any], status: int, detail: str, extra: Any = None, headers: dict[str, str] | None = None,
    code: str | None = None,
) -> Response[Any]:
    """`code`: the rule of qa/rules.py the request broke, so a client (chat.js) can say it in its own words."""
    if _wants_html(request):
        return Template("error.html", context={"status": status, "detail": detail}, status_code=status, headers=headers)
    body: dict[str, Any] = {"status_code": status, "detail": detail}
    if code:
        body["code"] = code
    if extra:
        body["extra"] = extra
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    cause = exc.__cause__
    if exc.status_code == 500 and isinstance(cause, msgspec.ValidationError):
        # Litestar turns some errors in nested bodies (an unknown field in `filters`) into a 500; they are the
        # client's, so say what is wrong like any other validation error.
        message, _, where = str(cause).partition(" - at `$.")
        where = where.rstrip("`").removeprefix("data").lstrip(".")
        return error_response(request, 400, f"Invalid request: {where + ': ' if where else ''}{message}")
    if isinstance(cause, msgspec.ValidationError) and isinstance(cause.__cause__, InvalidQuery):
        # a rule of qa/rules.py checked in a request body's __post_init__
        return error_response(request, 400, f"Invalid request: {cause.__cause__}", code=cause.__cause__.code)
    # exc.headers: Allow on a 405, RateLimit-* on a 429
    return error_response(request, exc.status_code, _detail(exc), exc.extra if isinstance(exc.extra, list) else None, exc.headers)


def invalid_query(request: Request[Any, Any, Any], exc: InvalidQuery) -> Response[Any]:
    """A broken rule of qa/rules.py found outside request parsing (a query parameter, a dependency)."""
    return error_response(request, 400, f"Invalid request: {exc}", code=exc.code)


def not_utf8(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[Any]:
    return error_response(request, 400, "Invalid request: the body is not valid UTF-8")


def too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    """msgspec gives up on JSON nested thousands deep with a RecursionError: the client's doing, not a bug."""
    return error_response(request, 400, "Invalid request: the JSON body is nested too deeply")


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Never a bare 500 page: log the traceback, answer with JSON (or the error page)."""
    log.exception("unexpected error on %s %s", request.method, log_safe(request.url.path))
    return error_response(request, 500, "Internal error: the server could not handle this request.")


HANDLERS: ExceptionHandlersMap = {
    HTTPException: http_error, InvalidQuery: invalid_query, RecursionError: too_deep, UnicodeDecodeError: not_utf8, Exception: unexpected_error,
}

"""Every error becomes JSON under /api (and for clients that do not want HTML), the error page elsewhere."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Template
from litestar.types import ExceptionHandlersMap

from qa.core.errors import InvalidQuery
from qa.server.security import CrossSiteRequest, log_safe

log = logging.getLogger("qa.server")


# What a page says in Dutch for a status whose message is not already Dutch (a PageError's is).
DUTCH_STATUS = {
    400: "Het adres of het formulier bevat een waarde die niet klopt.",
    403: "Dit verzoek is geweigerd.",
    404: "Deze pagina bestaat niet. Misschien is de link oud of verkeerd overgenomen.",
    405: "Deze pagina kan zo niet worden opgevraagd.",
    413: "Het verzoek is te groot.",
    415: "Het formulier is verzonden in een vorm die deze pagina niet aanneemt.",
    429: "Te veel verzoeken in korte tijd. Wacht even en probeer het opnieuw.",
    500: "Er ging iets mis op de server. Probeer het later opnieuw.",
}


# The query parameters of the pages, as the error page names them.
QUERY_NAMES = {"page": "het paginanummer", "start": "het begin van het citaat", "end": "het einde van het citaat",
               "h": "het aantal eerdere vragen", "q": "de vraag", "passage": "de passage"}


class PageError(HTTPException):
    """An error a page raises with its message already in Dutch (shown as it is on the error page)."""


class PageNotFound(PageError):
    status_code = 404


class PageUnavailable(PageError):
    status_code = 503  # the server's own data cannot be used now (its database); nothing the visitor did


def _wants_html(request: Request[Any, Any, Any]) -> bool:
    """Pages answer errors as a page unless the client asks for JSON only; /api and /static answer JSON
    unless the client asks for HTML (a browser always does)."""
    accept = request.headers.get("accept", "")
    path = request.scope["path"]  # not request.url, which raises ValueError on a Host header like "a:1:2"
    if path.startswith(("/api", "/static")):
        return "text/html" in accept
    return "text/html" in accept or "json" not in accept


def _dutch(request: Request[Any, Any, Any], status: int, exc: HTTPException | None) -> str:
    """The message of the error page: the page's own Dutch one, or which part of the address is wrong, or the status's."""
    if isinstance(exc, PageError):
        return str(exc.detail)
    if isinstance(exc, CrossSiteRequest):
        return exc.dutch
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        names = [str(item.get("key")) for item in exc.extra if isinstance(item, dict) and item.get("key") and item.get("source") == "query"]
        if names:
            shown = ", ".join(f"{QUERY_NAMES.get(name, repr(name))} ({request.query_params.get(name, '')[:40]!r})" for name in dict.fromkeys(names))
            return f"In het adres klopt {shown} niet."
    return DUTCH_STATUS.get(status, DUTCH_STATUS[500] if status >= 500 else DUTCH_STATUS[400])


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
    code: str | None = None, exc: HTTPException | None = None,
) -> Response[Any]:
    """`code`: the rule of qa/core/limits.py the request broke, so a client (chat.js) can say it in its own words.
    The error page is all Dutch: the English `detail` is for API clients only."""
    if _wants_html(request):
        context = {"status": status, "detail": _dutch(request, status, exc)}
        return Template("error.html", context=context, status_code=status, headers=headers)
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
        # a rule of qa/core/limits.py checked in a request body's __post_init__
        return error_response(request, 400, f"Invalid request: {cause.__cause__}", code=cause.__cause__.code)
    # exc.headers: Allow on a 405, RateLimit-* on a 429
    return error_response(request, exc.status_code, _detail(exc), exc.extra if isinstance(exc.extra, list) else None, exc.headers,
                          exc=exc)


def invalid_query(request: Request[Any, Any, Any], exc: InvalidQuery) -> Response[Any]:
    """A broken rule of qa/core/limits.py found outside request parsing (a query parameter, a dependency)."""
    return error_response(request, 400, f"Invalid request: {exc}", code=exc.code)


def not_utf8(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[Any]:
    return error_response(request, 400, "Invalid request: the body is not valid UTF-8")


def too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    """msgspec gives up on JSON nested thousands deep with a RecursionError: the client's doing, not a bug."""
    return error_response(request, 400, "Invalid request: the JSON body is nested too deeply")


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Never a bare 500 page: log the traceback, answer with JSON (or the error page)."""
    log.exception("unexpected error on %s %s", request.method, log_safe(request.scope["path"]))
    return error_response(request, 500, "Internal error: the server could not handle this request.")


HANDLERS: ExceptionHandlersMap = {
    HTTPException: http_error, InvalidQuery: invalid_query, RecursionError: too_deep, UnicodeDecodeError: not_utf8, Exception: unexpected_error,
}

"""What protects the service: security headers on every response, the admin-key guard, the rate limit, the Host check,
and the refusal of requests from other sites."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from litestar.connection import ASGIConnection
from litestar.exceptions import ClientException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.types import Guard, Message, Scope

from qa.server.settings import ADMIN_KEY_ENV, ALLOWED_HOSTS_ENV, ANY_HOST, BASE_URL_ENV, HOST_NAME, IP_ADDRESS, Settings, parse_rate_limit

DOCS_PATH = "/api/docs"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI sets inline styles; its page shows no letter text, only our own schema.
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
# Open to probes and readers of the docs even when the API is rate limited.
UNLIMITED_PATHS = ("/api/health", DOCS_PATH)


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


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LOG_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def log_safe(value: object) -> object:
    """A string for a log line with control characters escaped (`\\x0a`): a request path with %0a must not
    forge log lines (issue 12). Other values pass unchanged."""
    if not isinstance(value, str):
        return value
    return _LOG_CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}" if ord(match.group()) < 256 else f"\\u{ord(match.group()):04x}", value)


def reject_control_paths(request: Any) -> None:
    """A decoded path with NUL or another control character names no page or file: 400, not a 500 from the
    file system ("embedded null byte" for /static/chat.js%00.html), and it never reaches a log (issue 12)."""
    if _CONTROL.search(request.scope.get("path", "")):
        raise ClientException("the path contains control characters")


def reject_malformed_host(request: Any) -> None:
    """A Host header Litestar lets through but cannot parse ("a:1:2") made `request.url` raise ValueError inside
    Litestar, in a validation error or an error handler: a 500 (issue 29). 400 at once instead."""
    host = request.headers.get("host")
    if host is not None and _HOST.fullmatch(host) is None:
        raise ClientException("the Host header is malformed")


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OWN_SITE = ("same-origin", "none")  # Sec-Fetch-Site of this site's own pages, and of what a user typed or bookmarked


class CrossSiteRequest(PermissionDeniedException):
    """403: a browser sent it from another site's page (CSRF). `dutch`: what the error page says."""

    dutch = "Dit verzoek komt van een andere website en is daarom geweigerd. Stel uw vraag op deze site zelf."


def is_own_origin(origin: str, connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> bool:
    """An Origin header of this site: the base URL's, or this request's own Host when that is one of ours (the scheme
    is not compared: behind a TLS proxy the page is https and the request reaches qa serve as http)."""
    parts = urlsplit(origin.strip().lower())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
        return False  # "null" (a sandboxed frame, a file:// page) included
    if settings.base_url and parts.netloc == urlsplit(settings.base_url.lower()).netloc:
        return True
    return parts.netloc == connection.headers.get("host", "").lower() and is_our_host(parts.netloc, settings)


def _json_or_no_body(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    content_type = connection.headers.get("content-type")
    if content_type is None:
        return connection.headers.get("content-length", "0") == "0" and "transfer-encoding" not in connection.headers
    return content_type.partition(";")[0].strip().lower() == "application/json"


def refuse_cross_site(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> None:
    """A page on another site may make a browser POST here: a form (urlencoded, multipart, text/plain) or a no-cors
    fetch, both without a CORS preflight. Litestar read any of those bodies as JSON, so they stored feedback and
    saved questions (issue 29). Refused: every POST, PUT, PATCH or DELETE whose Origin or Sec-Fetch-Site says another
    site (403), and on /api a body that is not `application/json` (415), which no such page can send without a preflight.
    Clients that are no browser (curl, `qa --url`) send neither header and keep working."""
    if connection.scope.get("method") not in UNSAFE_METHODS:
        return
    site = connection.headers.get("sec-fetch-site")
    origin = connection.headers.get("origin")
    if (site is not None and site.strip().lower() not in OWN_SITE) or (origin is not None and not is_own_origin(origin, connection, settings)):
        raise CrossSiteRequest("refused: a request from another site (its Origin or Sec-Fetch-Site header says so)")
    if connection.scope["path"].startswith("/api/") and not _json_or_no_body(connection):
        raise ClientException("the body must be JSON, sent with Content-Type: application/json", status_code=415)


def request_checks(settings: Settings) -> Callable[[Any], None]:
    """What every request must pass before its handler runs or its body is read (the app's before-request hook)."""

    def check(request: Any) -> None:
        reject_control_paths(request)
        reject_malformed_host(request)
        refuse_cross_site(request, settings)

    return check


def admin_key_matches(admin_key: str | None, given: str | None) -> bool:
    """Constant-time, so the key cannot be guessed a character at a time from response times."""
    return bool(admin_key and given) and hmac.compare_digest(str(given).encode(), str(admin_key).encode())


# A Host header: a name or an address (IPv6 in brackets), and a port. Anything else ("evil/x", "a@b", "a b") is no host.
_HOST = re.compile(rf"(?P<name>{HOST_NAME}|\[{IP_ADDRESS}\])(?::[0-9]{{1,5}})?")
UNKNOWN_HOST = (f"the Host header names no host of this server; set {BASE_URL_ENV} (qa serve --base-url) or {ALLOWED_HOSTS_ENV} "
                "(--allowed-hosts) to the name clients use")


def is_our_host(host: str, settings: Settings) -> bool:
    """Whether a Host header (or an Origin's host and port) names this server: `Settings.host_names`, or any with "*"."""
    match = _HOST.fullmatch(host)
    if match is None:
        return False
    return ANY_HOST in settings.allowed_hosts or match["name"].lower().strip("[]") in settings.host_names()


def own_host(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> str:
    """The request's Host when it names this server, else 400: the one check behind the admin API and absolute links."""
    host = connection.headers.get("host", "")
    if not is_our_host(host, settings):
        raise ClientException(UNKNOWN_HOST)
    return host.lower()


def public_base_url(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> str:
    """Where links that must be absolute (Atom feeds) point: the configured base URL, else this request's scheme and
    Host once it is one of ours. Never a client's Host as sent: a forged one would put its site in the links (issue 29)."""
    if settings.base_url:
        return settings.base_url
    host = own_host(connection, settings)  # first: `connection.url` raises ValueError on a Host like "a:1:2"
    return f"{connection.scope['scheme']}://{host}"


def admin_guard(settings: Settings) -> Guard:
    """403 when the server has no key (the admin API is off), 401 unless `Authorization: Bearer KEY` matches; 400 for
    a Host that is not this server's (a DNS-rebinding page reaches 127.0.0.1 under its own name)."""
    admin_key = settings.admin_key

    def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        own_host(connection, settings)
        if not admin_key:
            raise PermissionDeniedException(f"the admin API is disabled: start the server with {ADMIN_KEY_ENV} set")
        scheme, _, given = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not admin_key_matches(admin_key, given.strip()):
            raise NotAuthorizedException("wrong or missing admin key (Authorization: Bearer KEY)")

    return guard


def _throttled(request: Any) -> bool:
    """The API, and the chat form's POST / and share links GET /?q=…, which run the engine just the same (issue 12)."""
    path: str = request.scope["path"]  # not request.url: it raises on a Host header like "a:1:2"
    if path == "/" and (request.method == "POST" or request.query_params.get("q")):
        return True
    return path.startswith("/api/") and not path.startswith(UNLIMITED_PATHS)


RATE_LIMIT_STORE = "rate_limit"


def rate_limit_middleware(rate_limit: str) -> Any:
    """Per client address, on the API and the chat form (other pages and static files are cheap). The counts
    live in the app's `rate_limit` store: in memory, or with --workers N a file store the workers share."""
    unit, count = parse_rate_limit(rate_limit)
    return RateLimitConfig(rate_limit=(unit, count), check_throttle_handler=_throttled,  # type: ignore[arg-type]
                           store=RATE_LIMIT_STORE).middleware

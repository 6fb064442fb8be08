"""A polite HTTP client: one request at a time at a set rate, retries with backoff, a named User-Agent.

Both sources are free public services run by small teams; hammering them gets a project blocked,
so every request of a run goes through one `PoliteClient`.
"""

from __future__ import annotations

import email.utils
import json
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from qa.core.errors import FetchError


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kamerbrieven-qa")
    except PackageNotFoundError:
        return "dev"


USER_AGENT = f"kamerbrieven-qa/{_version()} (question answering over Dutch parliamentary letters; python-httpx)"
RETRY_STATUS = {429, 500, 502, 503, 504}
REDIRECT_STATUS = {301, 302, 303, 307, 308}
MAX_BYTES = 100_000_000  # per body, counted as it streams in (after gzip decoding): the largest real letter PDF is ~20 MB
MAX_REDIRECTS = 5
DEADLINE = 300.0  # seconds for one whole download: a server that drips one byte at a time cannot hold a run forever


@dataclass(frozen=True)
class Fetched:
    """A response whose whole body was read within the limits."""

    url: str
    status_code: int
    headers: httpx.Headers
    content: bytes


def origin(url: str | httpx.URL) -> tuple[str, str, int | None]:
    parsed = httpx.URL(str(url))
    return parsed.scheme, parsed.host.lower(), parsed.port


@dataclass
class PoliteClient:
    rate: float = 2.0  # requests per second, at most
    retries: int = 4
    backoff: float = 1.0  # seconds before the first retry; doubles each time
    max_wait: float = 120.0  # cap on a single wait, also on a server's Retry-After
    timeout: float = 60.0  # per connect/read
    deadline: float = DEADLINE  # per download, all reads together
    max_bytes: int = MAX_BYTES
    # Where requests, redirects and next-page links may go: (scheme, host, port) of the source's base URL
    # plus any allowed with --allow-host; empty = anywhere (a bare client, as in tests of the client itself).
    allowed: set[tuple[str, str, int | None]] = field(default_factory=set)
    sleep: Callable[[float], None] = time.sleep
    transport: httpx.BaseTransport | None = None
    requests: int = 0
    _last: float = field(default=0.0, repr=False)
    _retry_after: float | None = field(default=None, repr=False)
    _client: httpx.Client | None = field(default=None, repr=False)

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}, timeout=self.timeout, follow_redirects=False, transport=self.transport
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _pace(self) -> None:
        if self.rate > 0:
            wait = self._last + 1.0 / self.rate - time.monotonic()
            if wait > 0:
                self.sleep(wait)
        self._last = time.monotonic()

    def allow(self, url: str) -> None:
        """Let requests go to the origin of `url` (a source's base URL, or --allow-host)."""
        self.allowed.add(origin(url))

    def check_allowed(self, url: str | httpx.URL) -> None:
        if self.allowed and origin(url) not in self.allowed:
            raise FetchError(f"{url}: another host than the source's; not followed (allow it with --allow-host)")

    def get(self, url: str, params: dict[str, Any] | None = None, accept: str = "*/*") -> Fetched:
        """GET with the whole body streamed in under `max_bytes` and `deadline`, checked against
        Content-Length; redirects followed only to allowed hosts; retries transient failures."""
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                wait = self._retry_after if self._retry_after is not None else self.backoff * 2 ** (attempt - 1)
                self.sleep(min(self.max_wait, wait))
            self._retry_after = None
            self._pace()
            self.requests += 1
            try:
                response = self._get_following(url, params, accept)
            except httpx.HTTPError as error:  # refused, reset, timed out, body cut off
                problem = f"{type(error).__name__}: {error}"
                continue
            except _Incomplete as incomplete:
                problem = str(incomplete)
                continue
            if response.status_code in RETRY_STATUS:
                problem = f"HTTP {response.status_code}"
                self._retry_after = _retry_after(response.headers.get("Retry-After"))
                continue
            if response.status_code >= 400:
                raise FetchError(f"{response.url}: HTTP {response.status_code}")
            return response
        raise FetchError(f"{_show(url, params)}: {problem} (gave up after {self.retries + 1} attempts)")

    def _get_following(self, url: str, params: dict[str, Any] | None, accept: str) -> Fetched:
        target = httpx.URL(url, params=params) if params else httpx.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            self.check_allowed(target)
            fetched = self._read(target, accept)
            location = fetched.headers.get("Location")
            if fetched.status_code not in REDIRECT_STATUS or not location:
                return fetched
            target = target.join(location)
        raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")

    def _read(self, url: httpx.URL, accept: str) -> Fetched:
        """One request, its body read piece by piece: never more than `max_bytes` in memory (also
        for a gzip bomb: the count is after decoding), never longer than `deadline` in all."""
        started = time.monotonic()
        with self.client.stream("GET", url, headers={"Accept": accept}) as response:
            if response.status_code in REDIRECT_STATUS or response.status_code >= 400:
                return Fetched(str(response.url), response.status_code, response.headers, b"")
            expected = response.headers.get("Content-Length")
            if expected and expected.isascii() and expected.isdigit() and int(expected) > self.max_bytes:
                raise FetchError(f"{response.url}: larger than {self.max_bytes:,} bytes (Content-Length {int(expected):,})")
            body = bytearray()
            for piece in _decoded(response):
                body += piece
                if len(body) > self.max_bytes:
                    raise FetchError(f"{response.url}: larger than {self.max_bytes:,} bytes")
                if time.monotonic() - started > self.deadline:
                    raise FetchError(f"{response.url}: not downloaded within {self.deadline:.0f} s")
            if (expected and expected.isascii() and expected.isdigit() and "Content-Encoding" not in response.headers
                    and int(expected) != len(body)):
                raise _Incomplete(f"incomplete body ({len(body)} of {expected} bytes)")
            return Fetched(str(response.url), response.status_code, response.headers, bytes(body))

    def get_json(self, url: str, params: dict[str, Any] | None = None) -> Any:
        response = self.get(url, params, accept="application/json")
        try:
            return json.loads(response.content)
        except ValueError as error:
            raise FetchError(f"{response.url}: not JSON ({error})") from error


DECODE_STEP = 1 << 20  # bytes decoded at a time, so the body limit is checked before a bomb fills memory


def _decoded(response: httpx.Response) -> Iterator[bytes]:
    """The body as it arrives, gzip/deflate decoded here in steps of DECODE_STEP: httpx's own decoder
    inflates each network chunk whole (64 KB of a gzip bomb → 64 MB at once)."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        yield from response.iter_raw()
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise FetchError(f"{response.url}: unsupported Content-Encoding {encoding!r}")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS)
    try:
        for raw in response.iter_raw():
            data = raw
            while data:
                yield inflater.decompress(data, DECODE_STEP)
                data = inflater.unconsumed_tail
        yield inflater.flush()
    except zlib.error as error:
        raise FetchError(f"{response.url}: body is not valid {encoding} ({error})") from error


class _Incomplete(Exception):
    """A body shorter than its Content-Length: retried."""


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number, or an HTTP date."""
    if not value:
        return None
    if value.strip().isascii() and value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _show(url: str, params: dict[str, Any] | None) -> str:
    return str(httpx.URL(url, params=params)) if params else url

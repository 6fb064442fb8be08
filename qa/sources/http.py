"""A polite HTTP client: one request at a time at a set rate, retries with backoff, a named User-Agent.

Both sources are free public services run by small teams; hammering them gets a project blocked,
so every request of a run goes through one `PoliteClient`.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kamerbrieven-qa")
    except PackageNotFoundError:
        return "dev"


USER_AGENT = f"kamerbrieven-qa/{_version()} (question answering over Dutch parliamentary letters; python-httpx)"
RETRY_STATUS = {429, 500, 502, 503, 504}
MAX_BYTES = 100_000_000


class FetchError(Exception):
    """A request that failed for good (after retries); the message names the URL and why."""


@dataclass
class PoliteClient:
    rate: float = 2.0  # requests per second, at most
    retries: int = 4
    backoff: float = 1.0  # seconds before the first retry; doubles each time
    max_wait: float = 120.0  # cap on a single wait, also on a server's Retry-After
    timeout: float = 60.0
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
                headers={"User-Agent": USER_AGENT}, timeout=self.timeout, follow_redirects=True, transport=self.transport
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

    def get(self, url: str, params: dict[str, Any] | None = None, accept: str = "*/*") -> httpx.Response:
        """GET with the whole body read and checked against Content-Length; retries transient failures."""
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                wait = self._retry_after if self._retry_after is not None else self.backoff * 2 ** (attempt - 1)
                self.sleep(min(self.max_wait, wait))
            self._retry_after = None
            self._pace()
            self.requests += 1
            try:
                response = self.client.get(url, params=params, headers={"Accept": accept})
            except httpx.HTTPError as error:  # refused, reset, timed out, body cut off
                problem = f"{type(error).__name__}: {error}"
                continue
            if response.status_code in RETRY_STATUS:
                problem = f"HTTP {response.status_code}"
                self._retry_after = _retry_after(response.headers.get("Retry-After"))
                continue
            if response.status_code >= 400:
                raise FetchError(f"{response.url}: HTTP {response.status_code}")
            expected = response.headers.get("Content-Length")
            if expected and expected.isdigit() and "Content-Encoding" not in response.headers and int(expected) != len(response.content):
                problem = f"incomplete body ({len(response.content)} of {expected} bytes)"
                continue
            if len(response.content) > MAX_BYTES:
                raise FetchError(f"{response.url}: larger than {MAX_BYTES:,} bytes")
            return response
        raise FetchError(f"{_show(url, params)}: {problem} (gave up after {self.retries + 1} attempts)")

    def get_json(self, url: str, params: dict[str, Any] | None = None) -> Any:
        response = self.get(url, params, accept="application/json")
        try:
            return json.loads(response.content)
        except ValueError as error:
            raise FetchError(f"{response.url}: not JSON ({error})") from error


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number, or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _show(url: str, params: dict[str, Any] | None) -> str:
    return str(httpx.URL(url, params=params)) if params else url

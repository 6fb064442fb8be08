"""`qa ask` and `qa search` against a running `qa serve` (`--url`, `$QA_URL`): the model and the index stay
loaded in the server, so a question costs a request (tens of ms) instead of loading both (10-30 s).

Only httpx and the rules are imported here, never numpy, FAISS or torch: what makes the client fast is
what it does not load. Every failure is a `RemoteError` with one line that says what to do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from qa.core.errors import QAError
from qa.index.filters import Filters

URL_ENV = "QA_URL"
CONNECT_SECONDS = 3.0  # a server on this machine or the LAN accepts in milliseconds; longer means it is not there
ANSWER_SECONDS = 120.0  # a busy server queues questions (p50 0.7 s at concurrency 32, docs/benchmarks.md); leave room


class RemoteError(QAError):
    """The server cannot be reached, or refused or failed the request."""


def check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RemoteError(f"--url {url!r} is not a server address like http://127.0.0.1:8000")
    return url.strip().rstrip("/")


class Remote:
    """The JSON API of one server; `ask` and `search` return its JSON bodies."""

    def __init__(self, url: str) -> None:
        self.url = check_url(url)
        self._client = httpx.Client(base_url=self.url, timeout=httpx.Timeout(ANSWER_SECONDS, connect=CONNECT_SECONDS),
                                    headers={"accept": "application/json"}, follow_redirects=False)

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    def ask(self, question: str, k: int, filters: Filters) -> dict[str, Any]:
        """The extractive answer, as `qa ask` gives locally (a server with a chat model would otherwise generate one)."""
        body = {"question": question, "k": k, "filters": _given(filters), "mode": "extractive"}
        return self._request("POST", "/api/ask", json=body)

    def search(self, query: str, k: int, filters: Filters, mode: str) -> dict[str, Any]:
        return self._request("GET", "/api/search", params={"q": query, "k": k, "mode": mode, **_given(filters)})

    def _request(self, method: str, path: str, **arguments: Any) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, **arguments)
        except httpx.TimeoutException as error:
            raise RemoteError(f"the qa server at {self.url} did not answer in time ({type(error).__name__})") from error
        except httpx.HTTPError as error:
            reason = str(error) or type(error).__name__
            raise RemoteError(f"cannot reach a qa server at {self.url} ({reason}); start one with `qa serve`, or drop --url/$QA_URL") from error
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            detail = body.get("detail") if isinstance(body, dict) else None
            raise RemoteError(f"the qa server at {self.url} answered {response.status_code}: {detail or response.reason_phrase}")
        if not isinstance(body, dict):
            raise RemoteError(f"{self.url} did not answer with the JSON of a qa server; is it `qa serve`?")
        return body


def _given(filters: Filters) -> dict[str, str]:
    return {name: value for name, value in vars(filters).items() if value}

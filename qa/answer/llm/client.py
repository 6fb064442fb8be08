"""The edge to a chat model the user runs: any OpenAI-compatible server (Ollama, llama.cpp's server, vLLM,
LM Studio, OpenAI or Azure OpenAI behind such a URL), through the `openai` package's async client.

What is decided here: where the server is and how long to wait for it (`LLMSettings`, from
$QA_LLM_URL, $QA_LLM_MODEL, $QA_LLM_API_KEY, $QA_LLM_TIMEOUT, $QA_LLM_TOTAL_TIMEOUT or the flags of
`qa serve`/`qa ask`), how much of it to take (one deadline and one size limit for a whole answer,
whatever the server sends: keep-alive comments, tokens past max_tokens, a line without end), which failures are retried (the client's own rule: a connection that could not be made, a timeout
before the answer started, 408/409/429/5xx, with backoff; never a stream that has started), and
what the user is told when the server cannot be used: one `LLMError` line that names the server and
the cause, never the key.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

import openai

from qa.core.errors import QAError, SettingsError

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

URL_ENV = "QA_LLM_URL"
MODEL_ENV = "QA_LLM_MODEL"
KEY_ENV = "QA_LLM_API_KEY"
TIMEOUT_ENV = "QA_LLM_TIMEOUT"
PROMPT_CHARS_ENV = "QA_LLM_PROMPT_CHARS"
TOTAL_TIMEOUT_ENV = "QA_LLM_TOTAL_TIMEOUT"
GRAMMAR_ENV = "QA_LLM_GRAMMAR"


class LLMError(QAError):
    """The language model server could not be used: unreachable, too slow, refusing, or answering garbage."""


@dataclass(frozen=True)
class LLMSettings:
    """Where the chat model is and how patient to be with it."""

    url: str  # the OpenAI-compatible base URL, e.g. http://127.0.0.1:11434/v1 (a bare host gets /v1)
    model: str = ""  # "": the first model the server lists (llama.cpp serves one; Ollama needs a name)
    api_key: str | None = field(default=None, repr=False)  # never logged, shown or sent anywhere but the server
    connect_timeout: float = 5.0  # seconds to open the connection
    # Seconds to wait for any byte, the first token included: a CPU model reads a 2,000-token prompt before it
    # writes; SmolLM2-135M needs ~3 s here, a 7B model on a laptop CPU can need a minute.
    read_timeout: float = 90.0
    # The whole answer at most, from asking which model to the last token, all attempts included: a server that
    # drips keep-alive comments never trips the read timeout, and 3 attempts of 90 s would be 270 s.
    total_timeout: float = 240.0
    # Bytes of one response at most, keep-alive comments and all. llama-cpp-python's server sends ~240 bytes of
    # JSON per token (measured: 15 kB for 62 tokens), so a concept of 800 tokens is ~0.2 MB; past 4 MB a server
    # is flooding (tokens past max_tokens, one line without end, which the SSE decoder would keep whole in memory).
    max_response_bytes: int = 4_000_000
    max_tokens: int = 400  # an answer of at most five sentences: ~120 Dutch words, ~250 tokens, with room
    concept_max_tokens: int = 800  # a concept-antwoord of up to 250 words
    retries: int = 2  # of a request that has not started answering (see the module docstring)
    temperature: float = 0.0  # the same passages give the same answer; verification does not need variety
    # Characters of passages in a prompt (qa/answer/llm/prompt.py PromptBudget has the measurement); less for a small context.
    max_prompt_chars: int = 6_000
    # Send llama.cpp's `grammar` with each request (qa/answer/llm/prompt.py citation_grammar): the model can write only
    # sentences that end in [n]. Off by default: OpenAI and some other servers refuse a field they do not know.
    grammar: bool = False

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(f"language model URL {self.shown_url!r}: expected http(s)://host[:port][/v1]")
        if self.read_timeout <= 0 or self.connect_timeout <= 0 or self.total_timeout <= 0:
            raise SettingsError("language model timeouts must be positive")
        if self.max_response_bytes <= 0:
            raise SettingsError("the language model's response limit must be positive")

    @classmethod
    def from_env(cls, url: str | None = None, model: str | None = None, api_key: str | None = None,
                 timeout: float | None = None) -> LLMSettings | None:
        """Settings from the flags given, else the environment; None when no URL is configured (extractive only)."""
        url = url or os.environ.get(URL_ENV) or None
        if not url:
            return None
        if timeout is None:
            timeout = _seconds(TIMEOUT_ENV, "90")
        settings = cls(url.strip(), (model or os.environ.get(MODEL_ENV) or "").strip(), api_key or os.environ.get(KEY_ENV) or None)
        if total := _seconds(TOTAL_TIMEOUT_ENV, "240"):
            settings = replace(settings, total_timeout=total)
        if os.environ.get(PROMPT_CHARS_ENV):
            chars = os.environ[PROMPT_CHARS_ENV]
            if not chars.isdigit() or int(chars) < 200:
                raise SettingsError(f"${PROMPT_CHARS_ENV}={chars!r}: expected a number of characters, at least 200")
            settings = replace(settings, max_prompt_chars=int(chars))
        grammar = os.environ.get(GRAMMAR_ENV, "").strip().lower()
        if grammar not in ("", "0", "1", "gbnf"):
            raise SettingsError(f"${GRAMMAR_ENV}={grammar!r}: expected 1 (llama.cpp's server: constrain the output) or 0")
        settings = replace(settings, grammar=grammar in ("1", "gbnf"))
        return replace(settings, read_timeout=timeout) if timeout else settings

    @property
    def base_url(self) -> str:
        """The URL the client talks to: a bare host ("http://localhost:11434") gets the usual "/v1"."""
        parts = urlsplit(self.url.rstrip("/"))
        path = parts.path if parts.path not in ("", "/") else "/v1"
        return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))

    @property
    def shown_url(self) -> str:
        """The URL fit for a log or a page: without user:password@ and query (where keys sometimes hide)."""
        parts = urlsplit(self.url)
        host = parts.hostname or "?"
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _seconds(name: str, example: str) -> float | None:
    """Seconds from the environment variable `name`, None when it is not set."""
    value = os.environ.get(name)
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise SettingsError(f"${name}={value!r}: expected seconds, e.g. {example}") from None


@dataclass(frozen=True)
class ServerHealth:
    reachable: bool
    model: str | None  # the model answers come from
    detail: str | None = None  # why not reachable, or that the configured model is not listed


# How long /api/health waits for the model server's answer before it says "not yet" (the check goes on, once, in
# the background, and its answer is kept for the next): a local server lists its models in milliseconds, a
# hosted one in a few hundred; a health check must not take the 3 s a hanging server would hold it.
HEALTH_WAIT_SECONDS = 0.5
HEALTH_PROBE_SECONDS = 3.0  # the check itself, at most


class ResponseTooLarge(Exception):
    """A model server's response passed LLMSettings.max_response_bytes (raised while it is read)."""


def _http_library() -> Any:
    """The HTTP library the openai client is built on: httpx for openai 1.x, httpx2 for later versions."""
    for cls in openai.DefaultAsyncHttpxClient.__mro__:
        if cls.__module__.startswith(("httpx.", "httpx2.")):
            return importlib.import_module(cls.__module__.split(".")[0])
    raise ImportError("the openai client is not built on httpx or httpx2")


_ByteStream: Any = _http_library().AsyncByteStream  # what a response's body must be for it to be read asynchronously


class _BoundedStream(_ByteStream):
    """A response body that raises ResponseTooLarge the moment it passes `limit` bytes."""

    def __init__(self, inner: Any, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self._inner:
            received += len(chunk)
            if received > self._limit:
                raise ResponseTooLarge(f"more than {self._limit:,} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def _bounded_http_client(limit: int) -> Any:
    """openai's default HTTP client, with every response body limited to `limit` bytes."""

    async def bound(response: Any) -> None:
        response.stream = _BoundedStream(response.stream, limit)

    return openai.DefaultAsyncHttpxClient(event_hooks={"response": [bound]})


def _kind_of(error: BaseException, name: str) -> bool:
    """Is this one of the HTTP transport's errors of that name? openai 1.x raises httpx's, later versions httpx2's
    (the same classes): errors in the middle of a stream come from the transport, not wrapped by the client."""
    return any(cls.__name__ == name and cls.__module__.startswith(("httpx", "httpx2")) for cls in type(error).__mro__)


def _cause(error: BaseException) -> str:
    """A short reason from an exception chain, without secrets: the class and the first line of the message."""
    while error.__cause__ is not None and isinstance(error, openai.APIConnectionError):
        error = error.__cause__
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text[:160]}" if text else type(error).__name__


class LLMClient:
    """One async client per process (its connection pool belongs to the event loop that uses it)."""

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self._client = openai.AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key or "none",  # local servers need none; the client insists on a value
            timeout=openai.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            max_retries=settings.retries,
            http_client=_bounded_http_client(settings.max_response_bytes),
        )
        self._model: str | None = settings.model or None
        self._health: tuple[float, ServerHealth] | None = None
        self._probe: asyncio.Task[ServerHealth] | None = None  # the health check under way (one at a time)

    @property
    def known_model(self) -> str | None:
        """The model answers come from, once configured or listed; None before the server named one."""
        return self._model

    def _error(self, error: BaseException, started: float | None = None) -> LLMError:
        where = f"the language model server at {self.settings.shown_url}"
        attempts = f" ({self.settings.retries + 1} attempts)" if self.settings.retries else ""
        if isinstance(error, TimeoutError):  # the total deadline (asyncio's), not a read timeout
            return LLMError(f"{where} took longer than {self.settings.total_timeout:g} s for one answer")
        if isinstance(error, ResponseTooLarge) or isinstance(error.__cause__, ResponseTooLarge):
            return LLMError(f"{where} sent more than {self.settings.max_response_bytes:,} bytes for one answer; stopped reading")
        if isinstance(error, openai.APITimeoutError):
            return LLMError(f"{where} did not answer within {self.settings.read_timeout:g} s{attempts}")
        if isinstance(error, openai.APIConnectionError):
            return LLMError(f"{where} is not reachable{attempts}: {_cause(error)}")
        if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
            return LLMError(f"{where} refused the API key (HTTP {error.status_code}); check ${KEY_ENV}")
        if isinstance(error, openai.NotFoundError):
            return LLMError(f"{where} has no model {self._model or '?'!r} or no chat endpoint (HTTP 404); check ${MODEL_ENV} and the URL")
        if isinstance(error, openai.APIStatusError):
            return LLMError(f"{where} refused the request: HTTP {error.status_code}")
        if _kind_of(error, "TimeoutException"):
            return LLMError(f"{where} stopped sending for {self.settings.read_timeout:g} s in the middle of an answer")
        if _kind_of(error, "HTTPError"):
            return LLMError(f"{where} broke off the answer: {_cause(error)}")
        return LLMError(f"{where} sent a malformed response: {_cause(error)}")

    async def model(self) -> str:
        """The model to ask: the configured one, else the first the server lists (asked once)."""
        if self._model is None:
            try:
                listed = await self._client.models.list()
            except Exception as error:  # the client's and its transport's errors, JSON it could not parse
                raise self._error(error) from None
            names = [item.id for item in listed.data]
            if not names:
                raise LLMError(f"the language model server at {self.settings.shown_url} lists no model; set ${MODEL_ENV}")
            self._model = names[0]
        return self._model

    async def stream(self, messages: Sequence[dict[str, str]], max_tokens: int | None = None, grammar: str | None = None) -> AsyncGenerator[str, None]:
        """The answer's text as the server sends it, piece by piece. Raises `LLMError` (also after some pieces).
        `grammar` (GBNF) is sent when the settings ask for it (`LLMSettings.grammar`).

        Everything, from asking which model to the last piece, is within one deadline (`total_timeout`): each wait
        for the server gets what is left of it, so no byte pattern keeps the answer going longer."""
        deadline = asyncio.get_running_loop().time() + self.settings.total_timeout
        try:
            async with asyncio.timeout_at(deadline):
                model = await self.model()
                response = await self._client.chat.completions.create(
                    model=model, messages=cast("list[ChatCompletionMessageParam]", list(messages)), stream=True,
                    max_tokens=max_tokens or self.settings.max_tokens, temperature=self.settings.temperature,
                    extra_body={"grammar": grammar} if grammar and self.settings.grammar else None,
                )
            async with response:
                chunks = response.__aiter__()
                while True:
                    async with asyncio.timeout_at(deadline):  # not around the yield: the caller's time is its own
                        try:
                            chunk = await chunks.__anext__()
                        except StopAsyncIteration:
                            break
                    if chunk.choices and chunk.choices[0].delta and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content
        except LLMError:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the deadline, the size limit, the client's and its transport's errors, bad JSON
            raise self._error(error) from None

    async def health(self, max_age: float = 10.0) -> ServerHealth:
        """Can the server be reached, and which model answers? Asked at most every `max_age` seconds, one check at a
        time, and waited for at most HEALTH_WAIT_SECONDS: a server that hangs does not make the health check hang.
        Meanwhile the last answer stands (a server busy writing an answer may list its models late)."""
        if self._health and time.monotonic() - self._health[0] < max_age:
            return self._health[1]
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._check_health())
        try:
            return await asyncio.wait_for(asyncio.shield(self._probe), HEALTH_WAIT_SECONDS)
        except TimeoutError:
            if self._health:
                return self._health[1]
            return ServerHealth(False, self.settings.model or None, f"no answer within {HEALTH_WAIT_SECONDS:g} s")

    async def _check_health(self) -> ServerHealth:
        started = time.monotonic()
        try:
            client = self._client.with_options(timeout=min(HEALTH_PROBE_SECONDS, self.settings.read_timeout), max_retries=0)
            listed = await client.models.list()
            names = [item.id for item in listed.data]
            model = self.settings.model or (names[0] if names else None)
            detail = None
            if self.settings.model and names and self.settings.model not in names:
                detail = f"model {self.settings.model!r} is not among the server's models ({', '.join(names[:5])})"
            health = ServerHealth(True, model, detail)
        except Exception as error:  # shown on a public endpoint: the cause, not the server's address
            health = ServerHealth(False, self.settings.model or None, "timed out" if isinstance(error, openai.APITimeoutError) else _cause(error))
        self._health = (started, health)
        return health

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        await self._client.close()


def describe(settings: LLMSettings | None) -> dict[str, Any]:
    """The settings as a page or a log may show them: never the key, only whether there is one."""
    if settings is None:
        return {"configured": False}
    return {"configured": True, "url": settings.shown_url, "model": settings.model or None, "api_key": bool(settings.api_key)}

"""A model server that never answers, drips, floods or never ends its stream, and a browser that leaves mid-answer
(issue 29): the answer ends at its deadline or size limit with the extractive fallback, nothing else waits for it,
and the work is freed. Fast tier: the fake model servers of tests/llm_servers.py, the fast engine, and the app
under a real uvicorn in a thread of this process (real sockets, so a client can really go away)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from conftest import copy_index
from llm_servers import DrippingServer, StalledServer, free_port

from qa.answer.engine import Engine
from qa.answer.llm.client import TOTAL_TIMEOUT_ENV, LLMClient, LLMError, LLMSettings
from qa.answer.llm.generate import NOTICE_UNREACHABLE
from qa.index import local as index_store
from qa.server.app import create_app
from qa.server.settings import Settings

QUESTION = "Wanneer moet de afbouw van Resolute Support afgerond zijn?"
DEADLINE = 1.2  # the answer's total deadline in these tests (240 s in production: LLMSettings.total_timeout)
PROMPT = 1.5  # seconds within which the other requests must answer meanwhile (each takes milliseconds)


async def _drain(settings: LLMSettings) -> str:
    client = LLMClient(settings)
    try:
        async for _ in client.stream([{"role": "user", "content": "Hallo"}]):
            pass
    finally:
        await client.aclose()
    return "ended"


def stream_error(settings: LLMSettings, guard: float = 20.0) -> tuple[str, float]:
    """The LLMError a whole stream ends in, and after how many seconds; fails when it is still going after `guard`."""
    started = time.monotonic()
    try:
        asyncio.run(asyncio.wait_for(_drain(settings), guard))
    except LLMError as error:
        return str(error), time.monotonic() - started
    except TimeoutError:
        pytest.fail(f"the stream was still going after {guard:.0f} s")
    pytest.fail("the stream ended without an error")


# --- the client: a total deadline and a size limit, whatever the server sends ------------------------------


def test_keep_alive_comments_forever_end_at_the_total_deadline() -> None:
    """`: ping` every 50 ms: every byte arrives well within the read timeout and no token ever does, so the old
    deadline (checked when a token arrived) never fired: the stream went on for as long as the server wanted."""
    server = DrippingServer("comments")
    try:
        message, seconds = stream_error(LLMSettings(server.url, model="drip", total_timeout=DEADLINE, retries=0))
    finally:
        server.stop()
    assert f"took longer than {DEADLINE:g} s for one answer" in message, message
    assert seconds < DEADLINE + 2


def test_a_model_server_that_never_answers_ends_at_the_total_deadline_not_after_every_retry() -> None:
    """Accepts and says nothing: each attempt waited the whole read timeout (90 s), three attempts: 270 s."""
    stalled = StalledServer()
    try:
        message, seconds = stream_error(LLMSettings(stalled.url, model="x", read_timeout=30, total_timeout=DEADLINE))
    finally:
        stalled.stop()
    assert f"took longer than {DEADLINE:g} s" in message and seconds < DEADLINE + 2, (message, seconds)


@pytest.mark.parametrize("mode", ["flood", "line"])
def test_a_stream_past_the_size_limit_is_cut_off(mode: str) -> None:
    """"flood": tokens as fast as they can be written, ignoring max_tokens; "line": `data: ` and then "x" without end,
    which the SSE decoder keeps whole in memory. Both ran until the deadline (4 minutes; the line forever: no
    token), holding everything received."""
    server = DrippingServer(mode, interval=0.01)
    limit = 1_000_000
    try:
        message, seconds = stream_error(LLMSettings(server.url, model="drip", max_response_bytes=limit, total_timeout=60, retries=0))
    finally:
        server.stop()
    assert f"sent more than {limit:,} bytes for one answer" in message, message
    assert seconds < 20


def test_the_deadline_and_size_limit_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOTAL_TIMEOUT_ENV, "7.5")
    settings = LLMSettings.from_env("http://127.0.0.1:9/v1")
    assert settings is not None and settings.total_timeout == 7.5
    monkeypatch.setenv(TOTAL_TIMEOUT_ENV, "soon")
    with pytest.raises(Exception, match=TOTAL_TIMEOUT_ENV):
        LLMSettings.from_env("http://127.0.0.1:9/v1")


# --- the app under uvicorn: nothing else waits, and a browser that leaves frees the work ---------------------


@dataclass
class Served:
    url: str
    server: uvicorn.Server

    def tasks(self) -> int:
        """The asyncio tasks alive on the server's event loop (the one asking is not counted)."""

        async def count() -> int:
            return len(asyncio.all_tasks()) - 1

        return asyncio.run_coroutine_threadsafe(count(), self.server.servers[0].get_loop()).result(10)


@contextmanager
def running(app: Any) -> Iterator[Served]:
    """The app under uvicorn (h11, as `qa serve`) in a thread of this process."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http="h11", log_config=None, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def index_copy(tmp_path_factory: pytest.TempPathFactory, fast_index_dir: Path) -> Path:
    return copy_index(fast_index_dir, tmp_path_factory.mktemp("serve-llm") / "index")


def app_for(index: Path, fast_engine: Engine, model_url: str) -> Any:
    engine = Engine(index_store.load(index), fast_engine.embedder, fast_engine.policy)
    return create_app(Settings(index_dir=index, build_sample=False, llm_url=model_url, llm_model="drip", admin_key=None), engine=engine)


def timed(call: Callable[[], httpx.Response]) -> tuple[int, float]:
    started = time.monotonic()
    response = call()
    return response.status_code, time.monotonic() - started


@pytest.mark.parametrize("kind", ["stalled", "comments"])
def test_while_an_answer_waits_on_the_model_the_rest_answers_and_it_falls_back_at_the_deadline(
        kind: str, index_copy: Path, fast_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model server that accepts and never answers (also its /models: health), or one that sends keep-alive
    comments forever. /api/health asked it for 3 s each time, while the answer waited 270 s (three attempts of
    90 s) or forever."""
    monkeypatch.setenv(TOTAL_TIMEOUT_ENV, str(DEADLINE))
    model = StalledServer() if kind == "stalled" else DrippingServer("comments")
    try:
        with running(app_for(index_copy, fast_engine, model.url)) as served, httpx.Client(base_url=served.url, timeout=30) as client, \
                ThreadPoolExecutor(2) as pool:
            started = time.monotonic()
            asked = pool.submit(client.post, "/api/ask", json={"question": QUESTION, "mode": "generative"})
            streamed = pool.submit(lambda: client.post("/api/ask/stream", json={"question": QUESTION, "mode": "generative"}).text)
            time.sleep(0.3)
            for call in (lambda: client.get("/api/search", params={"q": QUESTION}), lambda: client.get("/"),
                         lambda: client.get("/letters"), lambda: client.get("/api/health"), lambda: client.get("/api/health")):
                status, seconds = timed(call)
                assert status == 200 and seconds < PROMPT, (status, seconds)
            answer = asked.result(timeout=DEADLINE + 15)
            ended = time.monotonic() - started
            stream = streamed.result(timeout=15)
            health = client.get("/api/health").json()["llm"]
    finally:
        model.stop()
    assert answer.status_code == 200 and ended < DEADLINE + 5, (answer.status_code, ended)
    body = answer.json()
    assert body["mode"] == "extractive" and body["notice"] == NOTICE_UNREACHABLE and body["citations"], body
    assert f"took longer than {DEADLINE:g} s" in body["generation"]["error"]
    done = [json.loads(line[len("data: "):]) for line in stream.splitlines() if line.startswith("data: ")][-1]
    assert done["mode"] == "extractive" and done["notice"] == NOTICE_UNREACHABLE, done
    assert health["reachable"] is (kind != "stalled")



@pytest.mark.slow  # twenty streams on a real uvicorn: 3-4 s
def test_a_browser_that_leaves_mid_stream_frees_the_models_stream_and_the_server_keeps_serving(
        index_copy: Path, fast_engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    """Twenty clients each read the first model token of /api/ask/stream and hang up: each model stream is closed
    at once (none left writing), no error is logged, no thread or task is left behind, and answers go on. (It held
    before issue 29 too: the handler closes the model's stream with `aclosing`; this keeps it so.)"""
    model = DrippingServer("tokens", interval=0.05)
    caplog.set_level(logging.WARNING)
    try:
        with running(app_for(index_copy, fast_engine, model.url)) as served:
            url = served.url
            with httpx.Client(base_url=url, timeout=30) as client:
                assert client.get("/api/search", params={"q": QUESTION}).status_code == 200
            threads, tasks = threading.active_count(), served.tasks()
            for _ in range(20):
                with httpx.Client(base_url=url, timeout=30) as client, \
                        client.stream("POST", "/api/ask/stream", json={"question": QUESTION, "mode": "generative"}) as response:
                    for line in response.iter_lines():
                        if line.startswith("event: token"):
                            break
                assert model.wait_closed(5), f"{model.open_streams} model stream(s) still open after the client left"
            assert model.streams == 20
            with httpx.Client(base_url=url, timeout=30) as client:
                assert client.get("/api/search", params={"q": QUESTION}).status_code == 200
                assert client.get("/api/health").status_code == 200
            assert threading.active_count() <= threads + 2, (threads, threading.enumerate())
            assert served.tasks() <= tasks, (tasks, served.tasks())  # no answer's task left behind
    finally:
        model.stop()
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR or record.exc_info]
    assert not errors, [record.getMessage() for record in errors]

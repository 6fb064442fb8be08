"""Generated answers against a REAL chat model server on loopback: llama.cpp's server with SmolLM2-135M-Instruct.

The model's Dutch is poor and it invents facts, which is what these tests need: what it invents must be
dropped, and what is kept must stand in the passage it cites. Also: streaming through the API, follow-ups,
a server that stalls, one that goes away mid-answer, one that refuses or answers garbage, and the fallback.
Skipped, saying why, when llama-cpp-python[server] or the GGUF is not installed (tests/llm_servers.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from llm_servers import BrokenServer, LlamaServer, StalledServer, free_port, missing

from qa.answer.engine import FILTERED_OUT, Engine, Turn
from qa.answer.llm.client import LLMClient, LLMError, LLMSettings
from qa.answer.llm.generate import (
    NOTICE_BROKEN_OFF,
    NOTICE_UNREACHABLE,
    NOTICE_UNSUPPORTED,
    REPEATED,
    Finished,
    Generated,
    Options,
    Token,
    direct,
    events,
    generate,
    prompt_for,
)
from qa.answer.llm.verify import VerifyPolicy, facts, header, source_facts
from qa.answer.retrieval import Filters
from qa.server.app import create_app
from qa.server.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.model]
if reason := missing():
    pytestmark.append(pytest.mark.skip(reason=reason))

# Questions on the sample letters; SmolLM2 answers each with a mix of copied and invented sentences.
QUESTIONS = [
    "Wanneer moet de afbouw van Resolute Support afgerond zijn?",
    "Hoeveel kost de registratie van een drone?",
    "Waarom stopt Nederland met de missie in Afghanistan?",
    "Wat doet het kabinet tegen de krapte op de woningmarkt?",
]
SECRET = "sk-test-key-that-must-not-leak-1234"


@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaServer]:
    server = LlamaServer()
    yield server
    server.stop()


# SmolLM2 on a busy 2-core machine reads ~70 prompt tokens a second: a short prompt keeps each answer near 15 s.
PROMPT_CHARS = 2400
MAX_TOKENS = 100


def settings_for(url: str, **changes: Any) -> LLMSettings:
    base = LLMSettings(url, read_timeout=60.0, retries=0, max_prompt_chars=PROMPT_CHARS, max_tokens=MAX_TOKENS)
    return LLMSettings(**{**base.__dict__, **changes})


def ask(engine: Engine, settings: LLMSettings, question: str, history: tuple[Turn, ...] = (), options: Options = Options(),
        filters: Filters = Filters()) -> Generated:
    async def run() -> Generated:
        client = LLMClient(settings)
        try:
            return await generate(question, 5, filters, history, run=direct(engine), client=client, options=options)
        finally:
            await client.aclose()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def answers(engine: Engine, llama: LlamaServer) -> dict[str, Generated]:
    return {question: ask(engine, settings_for(llama.url), question) for question in QUESTIONS}


def test_invented_claims_are_dropped_and_what_remains_is_supported(answers: dict[str, Generated], engine: Engine) -> None:
    dropped = 0
    for question, generated in answers.items():
        assert generated.total >= 1, (question, generated.sentences)  # the model wrote something to check
        passages = engine.read(question, 5).passages
        for verdict in generated.sentences:
            cited = [passages[n - 1] for n in verdict.cited if 1 <= n <= len(passages)]
            if verdict.attributed or (not verdict.cited and verdict.supports):  # no marker: the passage it was checked against
                cited = [passages[s.passage] for s in verdict.supports]
            grounded = source_facts(" ".join(p.hit.passage.text + " " + header(p) for p in cited))
            if verdict.kept:
                assert cited and all(fact in grounded for fact in facts(verdict.raw)), verdict
                assert all(s.coverage >= VerifyPolicy().min_coverage for s in verdict.supports)
            elif not verdict.decline:
                dropped += 1
                assert verdict.reason, verdict
                if verdict.missing:  # the invented fact really is in none of the cited passages
                    assert all(fact not in grounded for fact in verdict.missing), verdict
    # SmolLM2-135M invents numbers, names and claims: some of its sentences must have been caught.
    assert dropped >= 1, [g.sentences for g in answers.values()]


def test_every_kept_sentence_quotes_its_support_inside_the_cited_passage(answers: dict[str, Generated]) -> None:
    for generated in (g for g in answers.values() if g.mode == "generative"):
        answer = generated.answer
        numbers = [int(n) for n in re.findall(r"\[(\d+)\]", answer.text)]
        assert numbers and set(numbers) == {c.n for c in answer.citations}, answer.text
        for citation in answer.citations:
            hit = next(h for h in answer.hits if h.passage.id == citation.passage_id)
            assert hit.letter.text[citation.quote_start : citation.quote_end] == citation.quote
            assert hit.passage.start <= citation.quote_start < citation.quote_end <= hit.passage.end
        # The answer is the kept sentences and nothing else (without show_unsupported, dropped ones are gone).
        assert re.sub(r"(?: \[\d+\])+", "", answer.text) == " ".join(v.text for v in generated.sentences if v.kept)


def test_with_the_grammar_every_sentence_the_model_writes_cites_a_passage_it_was_shown(engine: Engine, llama: LlamaServer) -> None:
    """QA_LLM_GRAMMAR: llama.cpp samples only the verifier's shape, so nothing is echoed and nothing floats free."""
    for question in QUESTIONS[:2]:
        generated = ask(engine, settings_for(llama.url, grammar=True), question)
        shown = len(prompt_for(question, (), engine.read(question, 5), engine.ask(question), Options(), PROMPT_CHARS)[0])
        assert generated.sentences, question
        *finished, last = generated.sentences
        if not re.search(r"\[\d+\]\s*$", last.raw):  # cut off by max_tokens mid-sentence: the grammar cannot end it
            assert len(last.raw) > 100, last
        else:
            finished.append(last)
        for verdict in finished:
            assert verdict.decline or (verdict.cited and all(1 <= n <= shown for n in verdict.cited)), verdict
        for verdict in generated.sentences:
            assert not verdict.raw.lstrip().startswith(("Vraag", "Antwoord", "Passages")), verdict


def test_an_answer_without_a_supported_sentence_is_the_extractive_one_with_a_notice(engine: Engine, llama: LlamaServer) -> None:
    question = QUESTIONS[0]
    impossible = Options(verify=VerifyPolicy(min_coverage=1.01))  # nothing can pass: the real model's answer, all removed
    generated = ask(engine, settings_for(llama.url), question, options=impossible)
    assert generated.fallback and generated.mode == "extractive" and generated.kept == 0 and generated.total >= 1
    assert generated.notice == NOTICE_UNSUPPORTED
    assert generated.answer.text == engine.ask(question).text


def test_a_follow_up_uses_the_conversation(engine: Engine, llama: LlamaServer) -> None:
    first = ask(engine, settings_for(llama.url), "Wat is de missie Resolute Support?")
    history = (Turn("Wat is de missie Resolute Support?", first.answer.text),)
    follow_up = ask(engine, settings_for(llama.url), "En wanneer moet die afgerond zijn?", history)
    assert "Resolute Support" in follow_up.answer.query  # retrieval borrowed the earlier question
    assert follow_up.answer.citations or follow_up.answer.abstained or follow_up.fallback
    assert any(c.letter_id == "kst-27925-781" for c in follow_up.answer.citations) or follow_up.answer.abstained


def test_the_model_server_that_stalls_times_out_into_the_extractive_answer(engine: Engine) -> None:
    stalled = StalledServer()
    try:
        started = time.monotonic()
        generated = ask(engine, LLMSettings(stalled.url, model="x", read_timeout=1.0, retries=0), QUESTIONS[0])
        elapsed = time.monotonic() - started
    finally:
        stalled.stop()
    assert generated.fallback and generated.notice == NOTICE_UNREACHABLE
    assert generated.error and "did not answer within 1 s" in generated.error
    assert elapsed < 10 and generated.answer.text == engine.ask(QUESTIONS[0]).text


def test_a_retry_is_made_only_before_the_answer_starts(engine: Engine) -> None:
    stalled = StalledServer()
    try:
        generated = ask(engine, LLMSettings(stalled.url, model="x", read_timeout=0.5, retries=1), QUESTIONS[0])
    finally:
        stalled.stop()
    assert generated.error and "(2 attempts)" in generated.error and len(stalled.accepted) == 2


def test_the_server_going_away_mid_answer(engine: Engine) -> None:
    server = LlamaServer()
    seen: list[object] = []

    async def run() -> Generated:
        client = LLMClient(settings_for(server.url))
        try:
            async for event in events(QUESTIONS[0], 5, Filters(), (), run=direct(engine), client=client):
                seen.append(event)
                if isinstance(event, Token) and sum(isinstance(e, Token) for e in seen) == 3:
                    server.kill()  # three tokens in: the server process is gone
                if isinstance(event, Finished):
                    return event.generated
        finally:
            await client.aclose()
        raise AssertionError("no answer")

    try:
        generated = asyncio.run(run())
    finally:
        server.stop()
    assert generated.error and ("broke off" in generated.error or "not reachable" in generated.error), generated.error
    assert generated.notice in (NOTICE_BROKEN_OFF, NOTICE_UNREACHABLE)
    if generated.fallback:
        assert generated.answer.text == engine.ask(QUESTIONS[0]).text


def test_a_refused_connection_and_a_malformed_stream(engine: Engine) -> None:
    closed = ask(engine, LLMSettings(f"http://127.0.0.1:{free_port()}/v1", model="x", retries=0, connect_timeout=2), QUESTIONS[0])
    assert closed.fallback and closed.error and "is not reachable" in closed.error
    broken = BrokenServer()
    try:
        garbage = ask(engine, LLMSettings(broken.url, retries=0), QUESTIONS[0])
    finally:
        broken.stop()
    assert garbage.fallback and garbage.error and "malformed response" in garbage.error
    assert garbage.model == "broken"  # the model came from the server's list


# No letter is this old: a question the letters answer is declined only because of the filters.
BEFORE_ANY_LETTER = Filters(date_to="1970-01-01")
OFF_TOPIC = "Mag Nexperia zijn chipfabriek in Nijmegen aan een Chinese eigenaar verkopen?"  # no letter answers it


def test_a_fallback_decline_under_filters_says_whether_they_are_why(engine: Engine) -> None:
    """The generated answer's extractive fallback attributes a decline as `Engine.ask` does (one rule, both paths)."""
    refused = LLMSettings(f"http://127.0.0.1:{free_port()}/v1", model="x", retries=0, connect_timeout=2)  # fallback at once
    declined = ask(engine, refused, QUESTIONS[0], filters=BEFORE_ANY_LETTER)
    assert declined.fallback and declined.answer.abstained
    assert declined.answer.decline_reason == FILTERED_OUT == engine.ask(QUESTIONS[0], filters=BEFORE_ANY_LETTER).decline_reason
    within = ask(engine, refused, OFF_TOPIC, filters=Filters(date_from="2000-01-01"))
    assert within.fallback and within.answer.abstained
    assert within.answer.decline_reason == engine.ask(OFF_TOPIC).decline_reason != FILTERED_OUT  # its own reason stands
    unfiltered = ask(engine, refused, QUESTIONS[0])
    assert unfiltered.fallback and not unfiltered.answer.abstained  # answerable: the filters were why


def test_a_refused_key_and_the_key_never_in_logs_or_messages(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    server = LlamaServer(api_key=SECRET)
    try:
        caplog.set_level(logging.DEBUG)
        wrong = ask(engine, settings_for(server.url, api_key="sk-wrong-key"), QUESTIONS[0])
        right = ask(engine, settings_for(server.url, api_key=SECRET), QUESTIONS[0])
    finally:
        server.stop()
    assert wrong.fallback and wrong.error and "refused the API key (HTTP 401)" in wrong.error
    assert right.error is None and right.model == "smollm2-135m"
    assert SECRET not in caplog.text and "sk-wrong-key" not in caplog.text
    assert SECRET not in repr(settings_for(server.url, api_key=SECRET)) and SECRET not in str(right)


# --- through the API -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def llm_client(web_index: Path, web_engine: Engine, llama: LlamaServer) -> Iterator[TestClient]:
    patch = pytest.MonkeyPatch()
    patch.setenv("QA_LLM_PROMPT_CHARS", str(PROMPT_CHARS))
    app = create_app(Settings(index_dir=web_index, build_sample=False, llm_url=llama.url), engine=web_engine)
    with TestClient(app, timeout=120) as client:
        yield client
    patch.undo()


def sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    import json

    found = []
    for block in re.split(r"\r?\n\r?\n", text.strip()):
        lines = block.splitlines()
        event = next(line[6:].strip() for line in lines if line.startswith("event:"))
        found.append((event, json.loads("\n".join(line[5:].removeprefix(" ") for line in lines if line.startswith("data:")))))
    return found


def test_api_ask_is_generative_when_a_model_is_configured(llm_client: TestClient) -> None:
    body = llm_client.post("/api/ask", json={"question": QUESTIONS[0]}).json()
    assert body["mode"] in ("generative", "extractive") and body["generation"]["model"] == "smollm2-135m"
    generation = body["generation"]
    not_claims = ("het model vond geen antwoord in de passages", REPEATED)  # a decline and a repeat count as no claim
    assert generation["total"] == sum(1 for s in generation["sentences"] if s.get("reason") not in not_claims)
    assert generation["kept"] == sum(s["kept"] for s in generation["sentences"])
    if body["mode"] == "generative":
        for citation in body["citations"]:
            assert f"start={citation['quote_start']}" in citation["href"] and citation["href"].endswith("#quote")
    extractive = llm_client.post("/api/ask", json={"question": QUESTIONS[0], "mode": "extractive"}).json()
    assert extractive["mode"] == "extractive" and "generation" not in extractive and "notice" not in extractive


def test_api_stream_sends_sources_then_the_models_tokens_then_checked_sentences(llm_client: TestClient) -> None:
    response = llm_client.post("/api/ask/stream", json={"question": QUESTIONS[1], "show_unsupported": True})
    assert response.status_code == 200
    found = sse(response.text)
    kinds = [kind for kind, _ in found]
    assert kinds[:2] == ["start", "sources"] and kinds[-1] == "done" and "error" not in kinds
    assert kinds.count("token") > 3 and kinds.index("token") < kinds.index("sentence")
    done = found[-1][1]
    tokens = "".join(data["text"] for kind, data in found if kind == "token")
    sentences = [data for kind, data in found if kind == "sentence"]
    assert len(sentences) == len(done["generation"]["sentences"]) and tokens.strip()
    if done["mode"] == "generative":
        shown = " ".join(s["text"] for s in sentences if s["text"])
        assert done["answer"] == shown  # the answer is exactly the checked sentences, marked ones included
        marked = [s for s in sentences if not s["kept"] and s["text"]]
        assert all(s["text"].endswith("(niet gevonden in de bron)") and not s["citations"] for s in marked)
        assert {c["n"] for s in sentences for c in s["citations"]} == {c["n"] for c in done["citations"]}


def test_api_stream_and_ask_attribute_a_decline_under_filters_to_them(llm_client: TestClient) -> None:
    """The real model answers from no passage, nothing holds, and the fallback's reason names the filters."""
    request = {"question": QUESTIONS[0], "filters": {"date_to": "1970-01-01"}}
    found = sse(llm_client.post("/api/ask/stream", json=request).text)
    assert [kind for kind, _ in found][:2] == ["start", "sources"] and found[-1][0] == "done"
    done = found[-1][1]
    assert done["mode"] == "extractive" and done["abstained"] and done["generation"]["model"] == "smollm2-135m"
    assert done["decline_reason"] == FILTERED_OUT and done["notice"]
    whole = llm_client.post("/api/ask", json=request).json()
    assert whole["abstained"] and whole["decline_reason"] == FILTERED_OUT and whole["generation"]["model"] == "smollm2-135m"


def test_api_health_reports_the_model(llm_client: TestClient, web_index: Path, web_engine: Engine) -> None:
    assert llm_client.get("/api/health").json()["llm"] == {"reachable": True, "model": "smollm2-135m", "detail": None}
    app = create_app(Settings(index_dir=web_index, build_sample=False, llm_url=f"http://127.0.0.1:{free_port()}/v1"), engine=web_engine)
    with TestClient(app) as client:
        health = client.get("/api/health").json()["llm"]
        assert health["reachable"] is False and "127.0.0.1" not in (health["detail"] or "")
        fallback = client.post("/api/ask", json={"question": QUESTIONS[0]}).json()
        assert fallback["mode"] == "extractive" and fallback["notice"] == NOTICE_UNREACHABLE


def test_generative_mode_without_a_model_is_a_clear_400(web_index: Path, web_engine: Engine) -> None:
    with TestClient(create_app(Settings(index_dir=web_index, build_sample=False, llm_url=None), engine=web_engine)) as client:
        response = client.post("/api/ask", json={"question": QUESTIONS[0], "mode": "generative"})
        assert response.status_code == 400 and "QA_LLM_URL" in response.json()["detail"]
        assert client.get("/api/health").json()["llm"] is None


# --- the CLI -------------------------------------------------------------------------------


def test_cli_ask_llm(llama: LlamaServer, web_index: Path) -> None:
    from qa.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["ask", QUESTIONS[0], "--llm", "--llm-url", llama.url, "--index", str(web_index), "--json"])
    assert result.exit_code == 0, result.output
    import json

    body = json.loads(result.output)
    assert body["generation"]["model"] == "smollm2-135m" and body["mode"] in ("generative", "extractive")
    dead = runner.invoke(main, ["ask", QUESTIONS[0], "--llm", "--llm-url", f"http://127.0.0.1:{free_port()}", "--index", str(web_index)])
    assert dead.exit_code == 3 and "Taalmodel: the language model server at" in dead.output and "not reachable" in dead.output
    assert NOTICE_UNREACHABLE in dead.output
    usage = runner.invoke(main, ["ask", QUESTIONS[0], "--concept", "--index", str(web_index)])
    assert usage.exit_code == 2 and "--llm" in usage.output


def test_llm_error_is_a_qa_error() -> None:
    from qa.core.errors import QAError

    assert issubclass(LLMError, QAError)  # the CLI prints it as one line


# --- the benchmark ---------------------------------------------------------------------------


def test_bench_llm_quick(sample_index_dir: Path, tmp_path: Path) -> None:
    """bench/llm.py in its --quick mode (two questions, a small calibration), so it cannot rot; figures not judged."""
    import subprocess
    import sys

    out = tmp_path / "report.md"
    result = subprocess.run([sys.executable, str(Path(__file__).resolve().parents[2] / "bench" / "llm.py"), "--quick", "--out", str(out),
                             "--index", str(sample_index_dir)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = out.read_text()
    for name in ("llm", "llm-verifier"):
        assert f"<!-- bench:{name} -->" in report and "cores" in report
    assert re.search(r"generated sentences kept \| \d+ of \d+", report) and "own passage accepted" in report

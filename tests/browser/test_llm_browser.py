"""The chat page with a chat model, end to end: a real `qa serve --llm-url` against a real llama.cpp server
(SmolLM2-135M), driven by headless Chromium. The answer must stream (the model's tokens, then each sentence
checked), say which kind of answer it is, and every citation of it must open its quote highlighted.

Skipped, saying why, without llama-cpp-python[server], the GGUF, playwright or Chromium."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ARTIFACTS, serving
from llm_servers import LlamaServer, missing

CHROMIUM = Path("/usr/bin/chromium")
RESOLUTE = "Wanneer moet de afbouw van Resolute Support afgerond zijn?"

sync_api = pytest.importorskip("playwright.sync_api", reason="the Python package playwright is not installed (pip install playwright)")
pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")]
if reason := missing():
    pytestmark.append(pytest.mark.skip(reason=reason))
expect = sync_api.expect


@pytest.fixture(scope="module")
def llm_server(web_index: Path) -> Iterator[str]:
    """`qa serve --llm-url` as a user starts it, with SmolLM2 behind it."""
    llama = LlamaServer()
    try:
        with serving(web_index, "server-llm.log", "--llm-url", llama.url, env={**os.environ, "QA_LLM_PROMPT_CHARS": "2400"}) as url:
            yield url
    finally:
        llama.stop()


def test_the_chat_streams_a_checked_generated_answer(llm_server: str) -> None:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"], headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="nl-NL")
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(llm_server + "/")
        choice = page.get_by_label("Soort antwoord")
        expect(choice).to_have_value("generative")  # /api/health says the model answers
        box = page.get_by_label("Uw vraag")
        box.fill(RESOLUTE)
        with page.expect_response("**/api/ask/stream", timeout=180_000) as streamed:
            box.press("Enter")
        answer = page.locator(".turn .answer").last
        expect(answer).to_have_attribute("aria-busy", "false", timeout=180_000)
        body = streamed.value.text()
        assert json.loads(streamed.value.request.post_data or "{}")["mode"] == "generative"
        events = re.findall(r"^event: (\w+)", body, re.M)
        assert events[:2] == ["start", "sources"] and events.count("token") > 3 and "sentence" in events and events[-1] == "done"
        done = json.loads(body.rsplit("event: done", 1)[1].split("data: ", 1)[1].split("\n\n", 1)[0])
        kind = answer.locator(".answer-kind")
        if done["mode"] == "generative":
            expect(kind).to_contain_text(f"{done['generation']['kept']} van {done['generation']['total']} zinnen gecontroleerd")
        else:  # SmolLM2 rarely writes a sentence its passages back: the fallback, with the notice saying so
            expect(answer.locator(".notice")).to_have_text(done["notice"])
            expect(kind).to_have_text("Letterlijke zinnen uit de brieven.")
        expect(answer.locator(".draft")).to_have_count(0)  # nothing unchecked is left on the page
        page.screenshot(path=str(ARTIFACTS / "chat-llm.png"), full_page=True)
        # Every citation opens its letter with exactly its quote highlighted.
        for citation in done["citations"]:
            page.goto(llm_server + citation["href"])
            expect(page.locator("mark.quote").first).to_be_visible()
            highlighted = " ".join(page.locator("mark.quote").all_text_contents())
            assert " ".join(citation["quote"].split())[:60] in " ".join(highlighted.split()), (citation["quote"], highlighted)
        assert done["citations"], done
        assert not errors, errors
        browser.close()

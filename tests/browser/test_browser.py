"""End to end in headless Chromium against a real `qa serve`: ask, watch the answer stream in, follow [1]
to the letter and find the passage highlighted; plus follow-ups, a new conversation and the page without JS.

Screenshots go to test-artifacts/; those the README and docs show are made by tests/browser/test_browser_chat.py."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
RESOLUTE = "Wanneer moet de afbouw van Resolute Support afgerond zijn?"
LETTER = "kst-27925-781"

sync_api = pytest.importorskip("playwright.sync_api", reason="the Python package playwright is not installed (pip install playwright)")
pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")]
expect = sync_api.expect


@pytest.fixture(scope="module")
def server(live_server: str) -> str:
    """`qa serve` as a user starts it, on a free port, against the test index (tests/conftest.py)."""
    return live_server


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    """A fresh tab that fails the test on any console error (a CSP violation shows up there too)."""
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="nl-NL")
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.console_errors = errors  # type: ignore[attr-defined]  # a test may take out the errors it expects
    yield tab
    context.close()
    assert not errors, errors


def _ask(page, question: str):  # type: ignore[no-untyped-def]
    """Type a question and send it with Enter, as a keyboard user would; returns the finished answer."""
    box = page.get_by_label("Uw vraag")
    box.fill(question)
    with page.expect_response("**/api/ask/stream") as streamed:
        box.press("Enter")
    assert streamed.value.ok
    answer = page.locator(".turn .answer").last
    expect(answer).to_have_attribute("aria-busy", "false", timeout=90_000)
    return answer, json.loads(streamed.value.request.post_data or "{}")


def test_ask_stream_and_open_the_cited_passage(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")
    expect(page.get_by_role("heading", name="Vraag het de Kamerbrieven")).to_be_visible()
    answer, sent = _ask(page, RESOLUTE)
    assert sent["history"] == [] and sent["question"] == RESOLUTE
    assert page.url == server + "/", "answered by the streaming API, not by a form post"
    expect(answer.locator(".answer-text")).to_contain_text("[1]")
    expect(answer.locator(".confidence")).to_have_text(re.compile(r"^Zekerheid: (hoog|middel|laag) \(\d+%\)$"))
    first = answer.locator("a.cite").first
    expect(first).to_have_text("[1]")
    assert f"/letters/{LETTER}?passage=" in (first.get_attribute("href") or "")
    cards = answer.locator(".cards .card")
    expect(cards.first).to_contain_text("Bestrijding internationaal terrorisme")
    expect(cards.first.get_by_role("link", name=re.compile("Officiële publicatie"))).to_have_attribute(
        "href", f"https://zoek.officielebekendmakingen.nl/{LETTER}.html"
    )
    expect(page.locator("#examples")).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)

    first.click()
    page.wait_for_url(re.compile(rf"/letters/{LETTER}\?passage="))
    highlighted = " ".join(page.locator("mark.passage, mark.quote").all_text_contents())
    assert "11 september" in highlighted
    expect(page.locator("mark.quote").first).to_be_in_viewport()
    expect(page.get_by_role("link", name=re.compile("Officiële publicatie"))).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "letter.png"))


def test_follow_up_new_conversation_and_examples(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")
    _ask(page, "Wat gebeurt er met de NAVO-missie Resolute Support in Afghanistan?")
    page.goto(server + "/letters")
    page.go_back()
    expect(page.locator(".turn")).to_have_count(1)  # the conversation lives in the page's session
    answer, sent = _ask(page, "En wanneer is dat afgerond?")
    assert [turn["question"] for turn in sent["history"]] == ["Wat gebeurt er met de NAVO-missie Resolute Support in Afghanistan?"]
    expect(answer.locator(".answer-text")).not_to_be_empty()
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "no sideways scrolling on a phone"
    page.screenshot(path=str(ARTIFACTS / "chat-phone.png"), full_page=True)

    page.get_by_role("link", name="Nieuw gesprek").click()
    expect(page.locator(".turn")).to_have_count(0)
    expect(page.locator("#examples")).to_be_visible()
    with page.expect_response("**/api/ask/stream"):
        page.locator("button.example").first.click()
    expect(page.locator(".turn .answer").last).to_have_attribute("aria-busy", "false", timeout=90_000)
    expect(page.locator(".turn .question")).to_have_text([re.compile("Resolute Support")])


def test_clear_states_for_no_answer_and_bad_input(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")
    answer, _ = _ask(page, "Wie won de Tour de France in 1989?")
    expect(answer).to_have_class(re.compile("abstained"))
    expect(answer).to_contain_text("Ik kan deze vraag niet beantwoorden")
    expect(answer.locator(".decline-reason")).to_contain_text("De brieven in de index noemen 'Tour'")  # and why
    expect(answer.locator(".cards.related")).to_have_count(0)  # nothing close enough to show as "closest"
    page.get_by_label("Uw vraag").press("Enter")  # empty
    expect(page.get_by_role("alert")).to_have_text("Typ eerst een vraag.")
    page.locator("summary", has_text="Filters").click()
    page.locator("#date_from").fill("2022-01-01")
    page.locator("#date_to").fill("2021-01-01")
    page.get_by_label("Uw vraag").fill(RESOLUTE)
    with page.expect_response("**/api/ask/stream") as refused:
        page.get_by_role("button", name="Vraag", exact=True).click()
    assert refused.value.status == 400  # the server's rule (qa/core/limits.py), said in Dutch by the page
    expect(page.get_by_role("alert")).to_have_text("De begindatum ligt na de einddatum.")
    expect(page.get_by_label("Uw vraag")).to_have_value(RESOLUTE)  # nothing lost
    expect(page.locator(".turn")).to_have_count(1)  # the refused question is not a turn of the conversation
    errors = page.console_errors
    assert [error for error in errors if "status of 400" in error], errors  # Chromium logs the refused request
    errors[:] = [error for error in errors if "status of 400" not in error]


def test_the_api_docs_page_renders_the_schema(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/api/docs")
    expect(page.locator(".opblock-summary-path", has_text="/api/ask/stream")).to_be_visible(timeout=30_000)


def test_the_chat_works_without_javascript(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(server + "/")
    page.get_by_label("Uw vraag").fill(RESOLUTE)
    page.get_by_role("button", name="Vraag", exact=True).click()
    page.wait_for_load_state()
    cite = page.locator(".answer a.cite").first
    expect(cite).to_have_text("[1]")
    page.screenshot(path=str(ARTIFACTS / "chat-nojs.png"), full_page=True)
    cite.click()
    assert "11 september" in " ".join(page.locator("mark.passage, mark.quote").all_text_contents())
    context.close()


EVACUEES = "Hoe lang kan men reageren op de internetconsultatie over de huisvesting van evacués en wat gebeurt er daarna?"


def test_earlier_kamervragen_beside_the_answer_and_on_their_page(server: str, page) -> None:  # type: ignore[no-untyped-def]
    """Issue 17: the chat shows the matching earlier Kamervraag with its answer; opening it highlights the pair in its letter."""
    page.goto(server + "/")
    with page.expect_response("**/api/kamervragen?**") as panel_request:
        answer, _ = _ask(page, EVACUEES)
    assert panel_request.value.ok
    panel = answer.locator(".kamervragen-panel")
    expect(panel.get_by_role("heading", name="Eerder gestelde Kamervragen")).to_be_visible()
    first = panel.locator(".kv").first
    expect(first.locator(".kv-question")).to_contain_text("Tot wanneer loopt deze internetconsultatie")
    expect(first.locator(".kv-answer")).to_contain_text("De internetconsultatie loopt tot 20 maart 2024.")
    expect(first).to_contain_text("Gesteld door Keijzer (BBB)")
    page.screenshot(path=str(ARTIFACTS / "chat-kamervragen.png"), full_page=True)

    # A server that cannot store saved questions (a read-only data folder: 503) says so in Dutch; the button stays.
    page.route("**/api/watches", lambda route: route.fulfill(status=503, content_type="application/json",
                                                             body='{"status_code": 503, "detail": "saved questions cannot be stored"}'))
    answer.get_by_role("button", name="Volg deze vraag").click()
    expect(answer.locator(".follow .turn-error")).to_have_text(re.compile(r"Volgen kan nu niet: de server kan op dit moment geen vragen bewaren"))
    page.unroute("**/api/watches")
    page.console_errors[:] = [e for e in page.console_errors if "status of 503" not in e]  # the 503 asked for above
    with page.expect_response("**/api/watches") as saved:  # "Volg deze vraag": a saved question with its own feed
        answer.get_by_role("button", name="Volg deze vraag").click()
    assert saved.value.status == 201
    feed_link = answer.locator(".follow").get_by_role("link", name="de feed")
    expect(feed_link).to_have_attribute("href", re.compile(r"^/watches/[A-Za-z0-9_-]{24,}/feed\.atom$"))
    feed = page.request.get(server + (feed_link.get_attribute("href") or ""))
    assert feed.ok and feed.headers["content-type"].startswith("application/atom+xml") and b"<feed" in feed.body()

    first.locator("a.kv-open").click()
    page.wait_for_url(re.compile(r"/letters/ah-tk-20232024-1292\?start=\d+&end=\d+#quote"))
    marked = " ".join(page.locator("mark.quote").all_text_contents())
    assert "Tot wanneer loopt deze internetconsultatie" in marked and "De internetconsultatie loopt tot 20 maart 2024." in marked
    expect(page.locator("mark.quote").first).to_be_in_viewport()

    page.goto(server + "/kamervragen")
    page.get_by_label("Uw vraag").fill(EVACUEES)
    page.get_by_role("button", name="Zoek").click()
    page.wait_for_url(re.compile(r"/kamervragen\?q="))
    expect(page.locator(".kv-list .kv").first.locator(".kv-question")).to_contain_text("Tot wanneer loopt deze internetconsultatie")
    page.screenshot(path=str(ARTIFACTS / "kamervragen.png"), full_page=True)
    page.locator(".kv-list a.kv-open").first.click()
    page.wait_for_url(re.compile(r"/letters/ah-tk-20232024-1292\?"))
    assert "Tot wanneer loopt deze internetconsultatie" in " ".join(page.locator("mark.quote").all_text_contents())

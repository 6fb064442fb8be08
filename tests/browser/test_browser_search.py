"""Headless Chromium against the session's real `qa serve` (issue 14, items 5 and 6): the search view with marked
words, facets, chips and sorting; the full-text letters overview; Nuttig / Niet nuttig with a comment stored in the real SQLite file
beside the index. Screenshots go to docs/screenshots/ (the README shows them)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import test_browser
from test_browser import CHROMIUM, ROOT, sync_api

# test_browser.py's fixtures (a real `qa serve`, Chromium, a tab that fails on console errors), used here as they are
server, browser, page = test_browser.server, test_browser.browser, test_browser.page

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")]
expect = sync_api.expect
SCREENSHOTS = ROOT / "docs" / "screenshots"
DATE = re.compile(r"(\d{1,2}) (\w+) (\d{4})")
MONTHS = ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober", "november", "december")


def iso(label: str) -> str:
    day, month, year = DATE.fullmatch(label.strip()).groups()  # type: ignore[union-attr]
    return f"{year}-{MONTHS.index(month) + 1:02d}-{int(day):02d}"


def test_the_search_view_marks_words_narrows_by_facet_and_sorts(server: str, page) -> None:  # type: ignore[no-untyped-def]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(server + "/")
    page.get_by_role("link", name="Zoeken").click()
    page.get_by_label("Zoekwoorden").fill("Afghanistan missie")
    page.get_by_label("Zoekwoorden").press("Enter")
    page.wait_for_url(re.compile(r"/zoeken\?q=Afghanistan"))
    results = page.locator(".result")
    expect(results.first).to_be_visible()
    expect(results.first.locator("mark.hit").first).to_have_text(re.compile(r"^(Afghanistan|missie)$", re.I))
    expect(results.first.locator(".type-badge")).to_have_text(re.compile(r"Brief van de regering|Antwoorden op Kamervragen|Motie|Mededeling"))
    page.screenshot(path=str(SCREENSHOTS / "search.png"), full_page=True)

    facet = page.locator('[data-facet="type"] li a').first
    label, count = facet.locator(".facet-label").inner_text(), int(facet.locator(".count").inner_text())
    facet.click()
    expect(page.locator(".chip")).to_contain_text(label)
    expect(results).to_have_count(min(count, 50))  # the facet said how many it leaves
    assert {text.strip() for text in results.locator(".type-badge").all_inner_texts()} == {label}

    page.get_by_role("link", name="Nieuwste eerst").click()
    expect(page.locator(".sort strong")).to_have_text("Nieuwste eerst")
    dates = [iso(text) for text in page.locator(".result time").all_inner_texts() if DATE.fullmatch(text.strip())]
    assert dates == sorted(dates, reverse=True) and dates
    page.locator(".chip a").first.click()  # remove the filter: the query stays
    expect(page.locator(".chip")).to_have_count(0)
    expect(page.get_by_label("Zoekwoorden")).to_have_value("Afghanistan missie")

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "no sideways scrolling on a phone"
    page.screenshot(path=str(SCREENSHOTS / "search-phone.png"), full_page=True)


def test_the_letters_overview_finds_words_in_the_text(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/letters")
    page.get_by_label("Zoek in de tekst, titel of kenmerk").fill("Afghanistan")
    page.get_by_role("button", name="Zoek").click()
    expect(page.locator(".status")).to_contain_text(re.compile(r"[1-9]\d* brie"))
    expect(page.locator(".letter-title", has_text="Bestrijding internationaal terrorisme")).to_be_visible()  # the title says nothing of Afghanistan
    expect(page.locator('[data-facet="year"]')).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "letters.png"), full_page=True)


def _feedback_count(server: str) -> int:
    with urllib.request.urlopen(f"{server}/api/health", timeout=10) as response:
        return int(json.load(response)["feedback"])


def test_feedback_on_an_answer_is_stored_in_the_database(server: str, page, web_index: Path) -> None:  # type: ignore[no-untyped-def]
    before = _feedback_count(server)
    page.goto(server + "/")
    box = page.get_by_label("Uw vraag")
    box.fill("Wanneer moet de afbouw van Resolute Support afgerond zijn?")
    with page.expect_response("**/api/ask/stream"):
        box.press("Enter")
    answer = page.locator(".turn .answer").last
    expect(answer).to_have_attribute("aria-busy", "false", timeout=90_000)
    answer.get_by_label("Toelichting (optioneel)").fill("Het antwoord noemt de datum, maar niet de reden.")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    answer.screenshot(path=str(SCREENSHOTS / "feedback.png"))
    with page.expect_response("**/api/feedback") as sent:
        answer.get_by_role("button", name="Niet nuttig").click()
    assert sent.value.status == 201
    expect(answer.locator(".feedback-done")).to_have_text("Bedankt voor uw feedback.")
    assert _feedback_count(server) == before + 1

    listed = subprocess.run([sys.executable, "-m", "qa", "feedback", "list", "--rating", "down", "--limit", "1", "--json", "--index", str(web_index)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert listed.returncode == 0, listed.stderr
    newest = json.loads(listed.stdout)[0]
    assert newest["comment"] == "Het antwoord noemt de datum, maar niet de reden."
    assert newest["question"].startswith("Wanneer moet de afbouw") and "[1]" in newest["answer"]
    assert newest["citations"] and newest["citations"][0]["letter_id"] == "kst-27925-781" and newest["generation"].startswith("gen-")

    page.reload()  # the conversation comes back from the page's session, with the feedback already given
    expect(page.locator(".turn .feedback-done")).to_have_count(1)

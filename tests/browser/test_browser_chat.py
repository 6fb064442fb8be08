"""The chat page as people use it, in headless Chromium against a real `qa serve` (issue 14, part A): the
question box pinned to the bottom on desktop and phone sizes, filters as chips, source cards with every
quote and the document type, a preview on [n], share links, copying, the stop button, dark mode, printing,
the way back from a letter, and the page without JavaScript.

Screenshots go to docs/screenshots/ (the README and docs show them)."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import test_browser as base
from test_browser import ROOT, expect
from test_browser import _ask as _ask_and_wait

server, browser, page = base.server, base.browser, base.page  # the same fixtures: `qa serve`, Chromium, a checked tab

SHOTS = ROOT / "docs" / "screenshots"
RESOLUTE = "Wanneer moet de afbouw van Resolute Support afgerond zijn?"
FIRST = "Wat gebeurt er met de NAVO-missie Resolute Support in Afghanistan?"
LETTER = "kst-27925-781"

pytestmark = base.pytestmark


def _ask(tab, question: str):  # type: ignore[no-untyped-def]
    """Ask with Enter and wait until the page is ready for the next question (the box focused again)."""
    answer, sent = _ask_and_wait(tab, question)
    expect(tab.locator("#ask-button")).to_be_enabled()
    expect(tab.locator("#question")).to_be_focused()
    return answer, sent


def _shot(tab, name: str, **options) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / name), **options)


def _box(locator) -> dict:  # type: ignore[no-untyped-def]
    box = locator.bounding_box()
    assert box, "not rendered"
    return box


@pytest.mark.parametrize(("size", "viewport"), [("desktop", (1100, 900)), ("phone", (390, 844))])
def test_the_question_box_stays_pinned_and_each_new_answer_starts_in_view(server: str, page, size: str, viewport) -> None:  # type: ignore[no-untyped-def]
    width, height = viewport
    page.set_viewport_size({"width": width, "height": height})
    page.goto(server + "/")
    _ask(page, FIRST)
    _ask(page, "En wanneer is dat afgerond?")
    _ask(page, RESOLUTE)
    composer = _box(page.locator("#ask-form"))
    assert composer["y"] >= 0 and composer["y"] + composer["height"] <= height + 1, composer  # the whole box on screen
    last = _box(page.locator(".turn").last)
    assert 0 <= last["y"] < composer["y"] - 40, (last, composer)  # the new question and the start of its answer are visible
    assert page.evaluate("document.documentElement.scrollHeight") > height * 1.5, "the conversation is longer than the window"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "no sideways scrolling"
    _shot(page, f"chat-{size}.png")
    page.mouse.wheel(0, -4000)  # read back up: the box stays at the bottom of the window
    page.wait_for_timeout(300)
    again = _box(page.locator("#ask-form"))
    assert abs((again["y"] + again["height"]) - (composer["y"] + composer["height"])) < 2


def test_filters_show_as_chips_are_kept_per_turn_and_survive_a_reload(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")
    summary = page.locator("summary", has_text="Filters")
    expect(summary).to_have_text("Filters")
    summary.click()
    page.locator("#sender").select_option("Defensie")
    page.locator("#date_from").fill("2021-01-01")
    page.locator("#date_from").dispatch_event("change")
    chips = page.locator("#active-filters .chip")
    expect(chips).to_have_text([re.compile("^Vanaf 1 januari 2021"), re.compile("^Ministerie: Defensie")])
    expect(summary).to_have_text("Filters (2 actief)")
    answer, sent = _ask(page, RESOLUTE)
    assert sent["filters"] == {"date_from": "2021-01-01", "sender": "Defensie"}
    expect(page.locator(".turn").last.locator(".turn-filters .chip")).to_have_text(["Vanaf 1 januari 2021", "Ministerie: Defensie"])
    _shot(page, "chat-filters.png")

    page.reload()
    expect(page.locator("#sender")).to_have_value("Defensie")
    expect(page.locator("#date_from")).to_have_value("2021-01-01")
    expect(chips).to_have_count(2)
    expect(page.locator(".turn .turn-filters .chip")).to_have_count(2)  # the turn remembers what it was asked within

    page.get_by_role("button", name="Filter Ministerie: Defensie verwijderen").click()
    expect(page.locator("#sender")).to_have_value("")
    expect(chips).to_have_text([re.compile("^Vanaf 1 januari 2021")])
    expect(summary).to_have_text("Filters (1 actief)")
    expect(page.get_by_role("button", name="Filter Vanaf 1 januari 2021 verwijderen")).to_be_focused()

    if page.locator("details.filters").get_attribute("open") is None:
        summary.click()
    page.locator("#date_from").fill("2030-01-01")
    page.locator("#date_to").fill("2030-12-31")
    page.locator("#date_to").dispatch_event("change")
    declined, _ = _ask(page, RESOLUTE)
    expect(declined).to_have_class(re.compile("abstained"))
    expect(declined.locator(".decline-reason")).to_contain_text("Binnen de gekozen filters")
    with page.expect_response("**/api/ask/stream") as again:
        declined.get_by_role("button", name="Vraag het zonder filters").click()
    assert json.loads(again.value.request.post_data or "{}")["filters"] == {}
    retried = page.locator(".turn .answer").last
    expect(retried).to_have_attribute("aria-busy", "false")
    expect(retried).not_to_have_class(re.compile("abstained"))
    expect(page.locator(".turn").last.locator(".turn-filters")).to_have_count(0)
    expect(chips).to_have_count(0)


def test_source_cards_show_every_quote_the_type_and_a_preview_on_each_citation(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")
    answer, _ = _ask(page, RESOLUTE)
    markers = answer.locator("a.cite")
    assert markers.count() >= 2
    card = answer.locator(".cards .card").first
    expect(card.locator(".kind")).to_have_text("Brief van de regering")
    quotes = card.locator("blockquote")
    assert quotes.count() == markers.count() >= 2, "each quote of the one cited passage"  # [1] twice, two quotes
    texts = [quotes.nth(i).inner_text() for i in range(quotes.count())]
    september = next((i for i, text in enumerate(texts) if "11 september" in text), None)
    assert september is not None, texts

    markers.nth(september).hover()
    preview = page.locator("#cite-preview")
    expect(preview).to_be_visible()
    expect(preview).to_contain_text("11 september")
    expect(preview.locator(".kind")).to_have_text("Brief van de regering")
    _shot(page, "cite-preview.png")
    page.mouse.move(5, 5)
    expect(preview).to_be_hidden()
    markers.first.focus()  # the keyboard gets the same preview, described by it, and Escape closes it
    expect(preview).to_be_visible()
    expect(markers.first).to_have_attribute("aria-describedby", "cite-preview")
    page.keyboard.press("Escape")
    expect(preview).to_be_hidden()

    page.locator("summary", has_text="Filters").click()
    page.locator("#type").select_option("motie")
    motion, _ = _ask(page, "Wat vraagt de Kamer over het btw-tarief op logies?")
    expect(motion.locator(".cards .card .kind").first).to_have_text("Motie van Kamerleden")


def test_the_feedback_buttons_are_drawn_and_named(server: str, page) -> None:  # type: ignore[no-untyped-def]
    """They were 👍 and 👎: empty boxes in this headless Chromium, which has no emoji font (issue 29). Now an SVG
    thumb each, named by hidden Dutch text (and a tooltip), with no glyph a font could lack."""
    page.goto(server + "/")
    answer, _ = _ask(page, RESOLUTE)
    for name in ("Nuttig", "Niet nuttig"):
        button = answer.get_by_role("button", name=name, exact=True)
        expect(button).to_be_visible()
        expect(button).to_have_attribute("title", name)
        drawn = _box(button.locator("svg path"))
        assert drawn["width"] >= 12 and drawn["height"] >= 12, drawn
        assert _box(button)["width"] >= 28, _box(button)
        assert not button.evaluate("b => [...b.childNodes].some(n => n.nodeType === Node.TEXT_NODE && n.textContent.trim())")


def test_a_tap_previews_before_it_opens_the_letter(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True, locale="nl-NL")
    tab = context.new_page()
    tab.goto(server + "/")
    answer, _ = _ask(tab, RESOLUTE)
    marker = answer.locator("a.cite").first
    marker.tap()
    expect(tab.locator("#cite-preview")).to_be_visible()
    assert tab.url.rstrip("/") == server  # the first tap only shows the quote
    marker.tap()
    tab.wait_for_url(re.compile(rf"/letters/{LETTER}"))
    context.close()


def test_the_share_link_reproduces_the_question_with_and_without_javascript(server: str, page, browser) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")
    page.locator("summary", has_text="Filters").click()
    page.locator("#sender").select_option("Defensie")
    answer, _ = _ask(page, RESOLUTE)
    link = answer.get_by_role("link", name="Link naar deze vraag")
    href = link.get_attribute("href") or ""
    assert parse_qs(urlsplit(href).query) == {"q": [RESOLUTE], "sender": ["Defensie"]}
    text = answer.locator(".answer-text").inner_text()

    context = browser.new_context(java_script_enabled=False)
    plain = context.new_page()
    plain.goto(server + href)
    expect(plain.locator(".answer-text")).to_have_text(text)  # rendered by the server
    expect(plain.locator(".turn-filters .chip")).to_have_text(["Ministerie: Defensie"])
    expect(plain.locator("#sender")).to_have_value("Defensie")
    expect(plain.get_by_role("link", name="Link naar deze vraag")).to_have_attribute("href", href)
    _shot(plain, "share-link-nojs.png")
    context.close()

    page.goto(server + href)  # with the script: the same turn, and a reload keeps the conversation, not the link
    expect(page.locator(".turn")).to_have_count(1)
    expect(page.locator(".answer-text")).to_have_text(text)
    page.wait_for_url(server + "/")
    expect(page.get_by_role("button", name="Kopieer antwoord met bronnen")).to_be_visible()
    _, sent = _ask(page, "En wanneer is dat afgerond?")
    assert [turn["question"] for turn in sent["history"]] == [RESOLUTE]
    follow = page.locator(".turn").last.get_by_role("link", name="Link naar deze vraag").get_attribute("href") or ""
    assert parse_qs(urlsplit(follow).query)["h"] == [RESOLUTE]  # a follow-up's link carries the question it leans on


def test_copy_the_answer_with_its_sources_as_text_and_markdown(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="nl-NL")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    tab = context.new_page()
    tab.goto(server + "/")
    answer, _ = _ask(tab, RESOLUTE)
    quote = answer.locator(".cards blockquote").first.evaluate("node => node.firstChild.textContent")
    answer.get_by_role("button", name="Kopieer antwoord met bronnen").click()
    expect(tab.locator("#status")).to_have_text("Antwoord met bronnen gekopieerd.")
    text = tab.evaluate("navigator.clipboard.readText()")
    assert text.startswith(f"Vraag: {RESOLUTE}\n\n") and "[1]" in text and "\nBronnen:\n[1] Bestrijding internationaal terrorisme" in text
    assert "Brief van de regering, 12 mei 2021" in text and " ".join(quote.split()) in text
    assert f"{server}/letters/{LETTER}?passage=" in text and f"https://zoek.officielebekendmakingen.nl/{LETTER}.html" in text
    assert f"Link naar deze vraag: {server}/?q=" in text

    answer.get_by_role("button", name="Kopieer als Markdown").click()
    expect(tab.locator("#status")).to_have_text("Antwoord met bronnen gekopieerd als Markdown.")
    markdown = tab.evaluate("navigator.clipboard.readText()")
    assert markdown.startswith(f"**Vraag:** {RESOLUTE}\n\n") and "[^1]" in markdown.split("\n\n")[1]
    assert "[1]" not in markdown.split("\n\n")[1], "markers become footnote references"
    footnote = next(line for line in markdown.splitlines() if line.startswith("[^1]: "))
    assert footnote.startswith(f"[^1]: [Bestrijding internationaal terrorisme; Brief van de minister van Defensie]({server}/letters/{LETTER}?passage=")
    assert "„" in footnote and f"([officiële publicatie](https://zoek.officielebekendmakingen.nl/{LETTER}.html))" in footnote
    context.close()


def test_the_stop_button_ends_a_slow_answer(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send("Network.emulateNetworkConditions", {"offline": False, "latency": 1500, "downloadThroughput": 800, "uploadThroughput": -1})
    box = page.get_by_label("Uw vraag")
    box.fill(RESOLUTE)
    box.press("Enter")
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_visible()
    expect(page.get_by_role("button", name="Bezig…")).to_be_disabled()
    _shot(page, "chat-streaming.png")
    stop.click()
    answer = page.locator(".turn .answer").last
    expect(answer).to_have_attribute("aria-busy", "false")
    expect(answer).to_contain_text("Gestopt")
    expect(stop).to_be_hidden()
    expect(page.get_by_role("button", name="Vraag", exact=True)).to_be_enabled()
    expect(page.locator("#status")).to_have_text("Gestopt.")
    expect(box).to_have_value(RESOLUTE)  # ask again with one key
    network.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    _, sent = _ask(page, RESOLUTE)
    assert sent["history"] == [], "a stopped answer is not context for the next question"


def test_dark_mode_follows_the_system(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    for scheme, dark in (("light", False), ("dark", True)):
        context = browser.new_context(viewport={"width": 1100, "height": 900}, color_scheme=scheme, locale="nl-NL")
        tab = context.new_page()
        for path in ("/", f"/letters/{LETTER}", "/letters"):
            tab.goto(server + path)
            if path == "/":
                _ask(tab, RESOLUTE)
            colours = tab.evaluate("""() => [document.body, document.querySelector('.answer, .letter-text, .letter-list li') || document.body]
                .map(node => getComputedStyle(node).backgroundColor.match(/\\d+/g).slice(0, 3).map(Number))""")
            lightness = [sum(rgb) / 3 for rgb in colours]
            assert all((value < 60) == dark for value in lightness), (scheme, path, colours)
            ink = tab.evaluate("getComputedStyle(document.body).color.match(/\\d+/g).slice(0, 3).map(Number)")
            assert (sum(ink) / 3 > 180) == dark, (scheme, path, ink)
            if dark and path == "/":
                _shot(tab, "chat-dark.png")
        context.close()


def test_print_shows_the_answer_and_its_sources_without_the_controls(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")
    _ask(page, RESOLUTE)
    page.emulate_media(media="print")
    expect(page.locator("#ask-form")).to_be_hidden()
    expect(page.locator(".turn-actions").first).to_be_hidden()
    assert page.locator("button:visible").count() == 0, "no controls on paper"
    expect(page.locator(".cards .card").first).to_be_visible()
    expect(page.locator(".answer-text").first).to_be_visible()
    _shot(page, "chat-print.png", full_page=True)
    page.pdf(path=str(ROOT / "test-artifacts" / "chat-print.pdf"))


def test_from_a_letter_back_to_the_answer(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")
    _ask(page, FIRST)
    answer, _ = _ask(page, RESOLUTE)
    answer.locator("a.cite").first.click()
    page.wait_for_url(re.compile(rf"/letters/{LETTER}\?passage="))
    back = page.get_by_role("link", name="← Terug naar het antwoord")
    expect(back).to_be_visible()
    _shot(page, "letter-back.png")
    back.click()
    page.wait_for_url(server + "/#beurt-2")
    expect(page.locator(".turn")).to_have_count(2)
    expect(page.locator("#beurt-2")).to_be_in_viewport()


def test_without_javascript_earlier_turns_keep_their_sources_and_the_help_is_true(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1100, "height": 900})
    tab = context.new_page()
    tab.goto(server + "/")
    expect(tab.get_by_text("Enter verstuurt")).to_be_hidden()
    for question in (RESOLUTE, "Hoeveel kost de registratie van een drone?"):
        tab.get_by_label("Uw vraag").fill(question)
        tab.get_by_role("button", name="Vraag", exact=True).click()
        tab.wait_for_load_state()
    turns = tab.locator(".turn")
    expect(turns).to_have_count(2)
    first = turns.first
    expect(first.locator("a.cite").first).to_have_text("[1]")
    expect(first.locator(".cards .card").first).to_contain_text("Bestrijding internationaal terrorisme")
    expect(turns.last).to_be_in_viewport()  # the page opens at the new answer (#antwoord)
    _shot(tab, "chat-nojs.png")
    first.locator("a.cite").first.click()
    assert "11 september" in " ".join(tab.locator("mark.passage, mark.quote").all_text_contents())
    context.close()

    with_script = browser.new_context()
    tab = with_script.new_page()
    tab.goto(server + "/")
    expect(tab.get_by_text("Enter verstuurt")).to_be_visible()
    with_script.close()


def test_error_pages_are_dutch_in_the_browser(server: str, page) -> None:  # type: ignore[no-untyped-def]
    for path, heading, message in (
        ("/bestaat-niet", "Niet gevonden", "Deze pagina bestaat niet"),
        ("/letters?page=abc", "Dit verzoek klopt niet", "In het adres klopt het paginanummer ('abc') niet."),
    ):
        response = page.goto(server + path)
        assert response and response.status in (400, 404)
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        expect(page.get_by_role("alert")).to_contain_text(message)
        assert not re.search(r"Not Found|Invalid request|Expected", page.content())
    page.console_errors.clear()  # Chromium logs the 404 and 400 responses themselves
    page.goto(server + "/letters?page=99")
    expect(page.locator(".status")).to_have_text(re.compile(r"pagina (\d+) van \1$"))

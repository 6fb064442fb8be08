"""The search view (/zoeken), the full-text letters overview (/letters, /api/letters) and facet counts
(issue 14, item 6), on the fast tier: the sample letters indexed with the deterministic embedder."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from conftest import copy_index
from litestar.testing import TestClient

from qa.answer.engine import Engine
from qa.answer.retrieval import Filters, full_text, matching_letters
from qa.core import display
from qa.index import facets
from qa.index import local as index_store
from qa.index.lexical import fold
from qa.server.app import create_app
from qa.server.pages.highlight import excerpt
from qa.server.settings import Settings

AFGHANISTAN = "kst-27925-781"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, fast_index_dir: Path, fast_engine: Engine) -> Engine:
    folder = copy_index(fast_index_dir, tmp_path_factory.mktemp("search") / "index")
    return Engine(index_store.load(folder), fast_engine.embedder, fast_engine.policy)


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(index_dir=engine.index.folder, build_sample=False), engine=engine)) as test_client:
        yield test_client


def letters_with_word(engine: Engine, word: str) -> set[str]:
    """The oracle: letters whose cleaned text has the word, found with a plain regex, not the index."""
    pattern = re.compile(rf"\b{fold(word)}\b")
    return {letter.id for letter in engine.index.letters.values() if pattern.search(fold(letter.text))}


# --- core ----------------------------------------------------------------------------------


def test_ministry_reads_the_office_and_stays_linear_on_hostile_senders() -> None:
    assert facets.ministry("Minister van Defensie") == "Defensie"
    # The register's labels (qa/ingest/ministries.py, issue 15): the official name and its abbreviation.
    assert facets.ministry("De staatssecretaris van Infrastructuur en Waterstaat, mede namens") == "Infrastructuur en Waterstaat (IenW)"
    assert facets.ministry("Minister De Jonge (Binnenlandse Zaken en Koninkrijksrelaties)") == "Binnenlandse Zaken en Koninkrijksrelaties (BZK)"
    assert facets.ministry("Tweede Kamerlid Jansen") is None and facets.ministry(None) is None
    started = time.perf_counter()
    facets.ministry("Minister van x" + " " * 30_000 + "y")
    assert time.perf_counter() - started < 0.5


def test_facet_counts_are_what_a_plain_count_says(engine: Engine) -> None:
    letters = list(engine.index.letters.values())
    counted = facets.count(letters)
    assert counted.total == len(letters) == 43
    assert dict(counted.type) == Counter(letter.type for letter in letters if letter.type)
    assert dict(counted.year) == Counter(letter.date[:4] for letter in letters if letter.date)
    assert [year for year, _ in counted.year] == sorted({letter.date[:4] for letter in letters if letter.date}, reverse=True)
    assert [n for _, n in counted.type] == sorted((n for _, n in counted.type), reverse=True)
    assert sum(n for _, n in counted.ministry) == sum(1 for letter in letters if facets.ministry(letter.sender))


def test_full_text_finds_every_letter_that_holds_the_words(engine: Engine) -> None:
    found = full_text(engine.index, "Afghanistan")
    assert AFGHANISTAN in found and set(found) == letters_with_word(engine, "Afghanistan")
    both = set(full_text(engine.index, "Resolute Support"))
    assert both and both <= letters_with_word(engine, "Resolute") & letters_with_word(engine, "Support")
    # diacritics folded, and stemmed: "beëindigd" is found too
    assert AFGHANISTAN in letters_with_word(engine, "beëindiging") <= set(full_text(engine.index, "beeindiging"))
    assert full_text(engine.index, "de van het") == {} and full_text(engine.index, "Xylofoonfabriek") == {}


def test_matching_letters_sorts_and_filters(engine: Engine) -> None:
    index = engine.index
    newest = [letter.date or "" for letter in matching_letters(index, Filters())]
    assert newest == sorted(newest, reverse=True)
    oldest = [letter.date or "" for letter in matching_letters(index, Filters(), sort="oldest")]
    assert oldest == sorted(oldest)
    by_reference = matching_letters(index, Filters(), "kst-27925")
    assert by_reference and all(letter.id.startswith("kst-27925") for letter in by_reference[:1])
    motions = matching_letters(index, Filters(type="motie"), "btw")
    assert motions and all(letter.type == "motie" for letter in motions)


def test_an_excerpt_is_a_window_around_the_first_marked_word() -> None:
    text = "Aanloop " * 80 + "De afbouw van Resolute Support moet uiterlijk 11 september zijn afgerond. " + "Slot " * 80
    pieces = excerpt(text, "Resolute Support")
    shown = "".join(piece for piece, _ in pieces)
    assert [piece for piece, marked in pieces if marked] == ["Resolute", "Support"]
    assert shown.startswith("…") and shown.endswith("…") and len(shown) <= 430
    assert excerpt("Kort.", "niets") == [("Kort.", False)]


# --- JSON API ------------------------------------------------------------------------------


def test_api_letters_is_full_text_sortable_and_counts_facets(client: TestClient, engine: Engine) -> None:
    body = client.get("/api/letters", params={"q": "Afghanistan", "per_page": 100}).json()
    assert {letter["id"] for letter in body["letters"]} == letters_with_word(engine, "Afghanistan") and body["total"] >= 1
    assert sum(value["count"] for value in body["facets"]["type"]) == body["total"]  # every sample letter has a type
    everything = client.get("/api/letters", params={"per_page": 5, "sort": "oldest"}).json()
    assert sum(value["count"] for value in everything["facets"]["type"]) == everything["total"] == 43  # over all, not the page
    dated = sum(1 for letter in engine.index.letters.values() if letter.date)
    assert sum(value["count"] for value in everything["facets"]["year"]) == dated <= 43  # undated letters count under no year
    # (since issue 15 every sample letter has a date: the OCR date lines are read)
    dates = [letter["date"] or "" for letter in everything["letters"]]
    assert dates == sorted(dates)
    assert client.get("/api/letters", params={"sort": "random"}).status_code == 400


def test_api_search_counts_facets_over_its_results_and_sorts_by_date(client: TestClient) -> None:
    body = client.get("/api/search", params={"q": "drones registratie", "k": 20, "sort": "newest"}).json()
    results = body["results"]
    assert len(results) == 20
    dates = [result["date"] or "" for result in results]
    assert dates == sorted(dates, reverse=True)
    assert body["matches"] == sum(value["count"] for value in body["facets"]["type"]) > 0
    assert {value["label"] for value in body["facets"]["type"]} <= set(display.TYPE_LABELS.values())
    for value in body["facets"]["type"]:  # a facet's count is what filtering by it leaves
        narrowed = client.get("/api/search", params={"q": "drones registratie", "type": value["value"]}).json()
        assert narrowed["matches"] == value["count"] and all(r["letter_id"] for r in narrowed["results"])
    year = body["facets"]["year"][0]
    start, end = facets.year_range(year["value"])
    assert client.get("/api/search", params={"q": "drones registratie", "date_from": start, "date_to": end}).json()["matches"] == year["count"]
    ranked = client.get("/api/search", params={"q": "drones registratie", "k": 20}).json()
    assert sorted(r["passage_id"] for r in ranked["results"]) == sorted(r["passage_id"] for r in results)  # the same passages, re-sorted
    assert ranked["facets"] == body["facets"]


# --- the pages -----------------------------------------------------------------------------


def test_the_letters_overview_finds_afghanistan_in_the_text(client: TestClient, engine: Engine) -> None:
    page = client.get("/letters", params={"q": "Afghanistan"})
    expected = letters_with_word(engine, "Afghanistan")
    assert page.status_code == 200 and page.text.count('class="letter-title"') == len(expected) >= 1
    assert f"{len(expected)} brie" in page.text and f"/letters/{AFGHANISTAN}" in page.text
    assert 'data-facet="type"' in page.text and 'data-facet="year"' in page.text


def test_the_search_view_marks_words_and_narrows_by_facet(client: TestClient) -> None:
    page = client.get("/zoeken", params={"q": "Afghanistan"})
    assert page.status_code == 200 and '<h1>Zoeken in de brieven</h1>' in page.text
    assert re.search(r'<mark class="hit">Afghanistan</mark>', page.text)
    assert 'class="type-badge"' in page.text and "<time>" in page.text
    link = re.search(r'data-facet="type".*?<a href="([^"]+)"[^>]*><span class="facet-label">([^<]+)</span> <span class="count"[^>]*>(\d+)<', page.text, re.S)
    assert link
    narrowed = client.get(unescape(link.group(1)))
    assert narrowed.status_code == 200
    assert narrowed.text.count('class="result"') == min(50, int(link.group(3)))  # the facet said how many
    assert f"{link.group(3)} passage" in narrowed.text
    assert set(re.findall(r'class="type-badge">([^<]+)<', narrowed.text)) == {unescape(link.group(2))}
    chip = re.search(r'<li class="chip">([^<]+) <a href="([^"]+)"', narrowed.text)
    assert chip and unescape(chip.group(1)).strip() == f"Soort: {unescape(link.group(2))}"
    assert "type=" not in unescape(chip.group(2)) and "q=Afghanistan" in unescape(chip.group(2))  # removing keeps the query


def test_the_search_view_sorts_and_explains_bad_input_in_dutch(client: TestClient) -> None:
    newest = client.get("/zoeken", params={"q": "Resolute Support", "sort": "newest"}).text
    assert '<strong aria-current="true">Nieuwste eerst</strong>' in newest
    bad_date = client.get("/zoeken", params={"q": "drone", "date_from": "morgen"})
    assert bad_date.status_code == 400 and "Vanaf: 'morgen' is geen datum" in unescape(bad_date.text)
    bad_sort = client.get("/zoeken", params={"q": "drone", "sort": "willekeurig"})
    assert bad_sort.status_code == 400 and "Volgorde: 'willekeurig' is geen geldige waarde." in unescape(bad_sort.text)
    empty = client.get("/zoeken")
    assert empty.status_code == 200 and "Typ een of meer woorden" in empty.text and 'class="result"' not in empty.text
    nothing = client.get("/zoeken", params={"q": "drone", "type": "motie", "date_to": "1900-01-01"})
    assert "Geen passage bevat deze woorden binnen de gekozen filters." in nothing.text and 'class="result"' not in nothing.text
    escaped = client.get("/zoeken", params={"q": "<script>alert(1)</script>"}).text
    assert "<script>alert(1)</script>" not in escaped

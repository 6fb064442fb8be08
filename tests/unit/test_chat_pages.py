"""The chat page and the error pages as the server renders them (fast tier: the deterministic test embedder).

Share links (`/?q=…`) answer on the server, so they work without JavaScript; earlier turns of the no-JS
form keep their sources (rebuilt from the index, not taken from the client); every error page is Dutch."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import copy_index
from litestar.testing import TestClient

from qa.answer.engine import Engine
from qa.core import limits
from qa.index import local as index_store
from qa.server.app import create_app
from qa.server.pages.rendering import back_link, with_back
from qa.server.pages.turns import share_href
from qa.server.settings import Settings

RESOLUTE = "Wanneer moet de afbouw van Resolute Support afgerond zijn?"
LETTER = "kst-27925-781"
HTML = {"accept": "text/html"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, fast_index_dir: Path, fast_engine: Engine) -> Iterator[TestClient]:
    index_dir = copy_index(fast_index_dir, tmp_path_factory.mktemp("chat-pages") / "index")
    engine = Engine(index_store.load(index_dir), fast_engine.embedder, fast_engine.policy)
    with TestClient(create_app(Settings(index_dir=index_dir, build_sample=False), engine=engine)) as test_client:
        yield test_client


def _turns(page: str) -> list[dict]:
    return json.loads(html.unescape(re.search(r'data-turns="([^"]*)"', page).group(1)))


def _history(page: str) -> str:
    return html.unescape(re.search(r'name="history" value="([^"]*)"', page).group(1))


def test_a_share_link_asks_on_the_server_with_its_filters(client: TestClient) -> None:
    link = share_href(RESOLUTE, {"sender": "Defensie", "date_from": "2021-01-01"}, [])
    assert parse_qs(urlsplit(link).query) == {"q": [RESOLUTE], "date_from": ["2021-01-01"], "sender": ["Defensie"]}
    page = client.get(link)
    assert page.status_code == 200
    text = page.text
    assert text.count('class="turn"') == 1 and f"<p>{RESOLUTE}</p>" in text
    assert re.search(r'<a class="cite" href="/letters/[^"]+\?passage=', text)  # the answer, with its citation links
    assert '<li class="chip">Vanaf 1 januari 2021</li>' in text and '<li class="chip">Ministerie: Defensie</li>' in text
    assert 'value="2021-01-01"' in text and '<option value="Defensie" selected>' in text  # a follow-up stays within them
    assert "(2 actief)" in text  # the collapsed panel counts them
    assert f'<a class="share" href="{link.replace("&", "&amp;")}">Link naar deze vraag</a>' in text
    turn = _turns(text)[0]
    assert turn["question"] == RESOLUTE and turn["filters"] == {"date_from": "2021-01-01", "sender": "Defensie"} and turn["citations"]
    assert all(c["type"] == "brief_regering" and c["type_label"] == "Brief van de regering" for c in turn["citations"] if c["letter_id"] == LETTER)
    assert client.get("/").text.count('class="turn"') == 0  # without q, just the page


def test_a_share_link_with_bad_input_says_so_in_dutch(client: TestClient) -> None:
    page = client.get("/", params={"q": RESOLUTE, "date_from": "2022-01-01", "date_to": "2021-01-01"})
    assert page.status_code == 400 and "De begindatum ligt na de einddatum." in page.text and 'class="turn"' not in page.text
    blank = client.get("/", params={"q": "   "})
    assert blank.status_code == 400 and "Typ eerst een vraag." in blank.text


def test_a_follow_up_link_carries_the_question_it_leans_on(client: TestClient) -> None:
    first = client.post("/", data={"question": "Wat gebeurt er met de NAVO-missie Resolute Support in Afghanistan?", "history": "[]"})
    follow = client.post("/", data={"question": "En wanneer is dat afgerond?", "history": _history(first.text)})
    turns = _turns(follow.text)
    assert [t["question"] for t in turns] == ["Wat gebeurt er met de NAVO-missie Resolute Support in Afghanistan?", "En wanneer is dat afgerond?"]
    assert turns[1]["context"] == [turns[0]["question"]] and turns[0]["context"] == []
    shared = client.get(share_href(turns[1]["question"], {}, turns[1]["context"]))
    assert _turns(shared.text)[0]["answer"] == turns[1]["answer"]  # the link reproduces the answer


def test_without_javascript_earlier_turns_keep_their_sources(client: TestClient) -> None:
    first = client.post("/", data={"question": RESOLUTE, "history": "[]", "sender": "Defensie"})
    assert first.status_code == 200
    second = client.post("/", data={"question": "Hoeveel kost de registratie van een drone?", "history": _history(first.text)})
    turns = re.findall(r'<li class="turn" id="beurt-\d+">(.*?)</li>\s*(?=<li class="turn"|</ol>)', second.text, re.S)
    assert len(turns) == 2
    earlier = turns[0]
    assert '<a class="cite" href="/letters/' in earlier and "Bronnen" in earlier and "Lees in de brief" in earlier
    assert '<li class="chip">Ministerie: Defensie</li>' in earlier  # the turn's own filters, not the form's
    assert 'id="antwoord"' in turns[1] and 'action="/#antwoord"' in second.text  # the new answer is where the page opens


def test_earlier_turns_are_rebuilt_from_the_index_not_from_the_client(client: TestClient) -> None:
    first = client.post("/", data={"question": RESOLUTE, "history": "[]"})
    past = json.loads(_history(first.text))
    n, passage_id, start, end = past[0]["cites"][0]
    forged = [{**past[0], "cites": [[n, passage_id, start, end], [9, f"{LETTER}#999", 0, 10], [8, passage_id, end, end + 10**6]]}]
    page = client.post("/", data={"question": "Hoeveel kost de registratie van een drone?", "history": json.dumps(forged)})
    earlier = _turns(page.text)[0]
    assert [c["passage_id"] for c in earlier["citations"]] == [passage_id]  # unknown passages and spans outside it are dropped
    letter = client.get(f"/api/letters/{LETTER}").json()
    if passage_id.startswith(LETTER):
        assert earlier["citations"][0]["quote"] == letter["text"][start:end]
    garbage = client.post("/", data={"question": RESOLUTE, "history": '[{"question": 5}]'})
    assert garbage.status_code == 200 and garbage.text.count('class="turn"') == 1  # unreadable: a fresh start


def test_the_help_about_enter_is_only_for_the_script(client: TestClient) -> None:
    text = client.get("/").text
    assert re.search(r'<span class="js-only" hidden>Enter verstuurt', text)


def test_links_back_from_a_letter_to_the_answer() -> None:
    assert with_back("/letters/a?passage=a%231#passage", "/?q=x#antwoord") == "/letters/a?passage=a%231&terug=%2F%3Fq%3Dx%23antwoord#passage"
    assert with_back("/letters/a", "/#beurt-2") == "/letters/a?terug=%2F%23beurt-2"
    assert back_link("/?q=Resolute+Support&sender=Defensie#antwoord") and back_link("/#beurt-3") and back_link("/")
    for bad in ("https://evil.example/", "//evil.example/", "javascript:alert(1)", "/letters", "/\nx", None):
        assert back_link(bad) is None, bad


def test_the_letter_page_links_back(client: TestClient) -> None:
    page = client.get(f"/letters/{LETTER}", params={"terug": "/?q=Resolute#antwoord"})
    assert '<a class="back-link" href="/?q=Resolute#antwoord">← Terug naar het antwoord</a>' in page.text
    assert "Terug naar het antwoord" not in client.get(f"/letters/{LETTER}", params={"terug": "https://evil.example/"}).text
    assert "Terug naar het antwoord" not in client.get(f"/letters/{LETTER}").text


@pytest.mark.parametrize("accept", ["text/html", "*/*", ""])
def test_error_pages_are_dutch_html(client: TestClient, accept: str) -> None:
    headers = {"accept": accept} if accept else {}
    missing = client.get("/bestaat-niet", headers=headers)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "Niet gevonden" in missing.text and "Deze pagina bestaat niet" in missing.text and "Not Found" not in missing.text
    letter = client.get("/letters/kst-00000-0", headers=headers)
    assert letter.status_code == 404 and "Er is geen brief met kenmerk 'kst-00000-0'" in html.unescape(letter.text)
    bad_page = client.get("/letters", params={"page": "abc"}, headers=headers)
    assert bad_page.status_code == 400 and bad_page.headers["content-type"].startswith("text/html")
    assert "In het adres klopt het paginanummer ('abc') niet." in html.unescape(bad_page.text)
    for english in ("Invalid request", "Expected", "Validation", "Not Found"):
        assert english not in bad_page.text
    wrong_method = client.delete("/letters", headers=headers)
    assert wrong_method.status_code == 405 and "Deze pagina kan zo niet worden opgevraagd." in wrong_method.text


def test_api_clients_still_get_json(client: TestClient) -> None:
    assert client.get("/api/letters/kst-00000-0").json()["detail"] == "no letter with id 'kst-00000-0'"
    assert client.get("/letters", params={"page": "abc"}, headers={"accept": "application/json"}).json()["status_code"] == 400


def test_a_page_past_the_last_goes_to_the_last(client: TestClient) -> None:
    total = client.get("/api/letters").json()["total"]
    pages = -(-total // limits.PER_PAGE)
    assert pages > 1
    beyond = client.get("/letters", params={"page": 99, "type": "brief_regering"}, follow_redirects=False)
    motions = client.get("/api/letters", params={"type": "brief_regering"}).json()["pages"]
    assert beyond.status_code in (302, 303, 307) and beyond.headers["location"] == (
        f"/letters?type=brief_regering&page={motions}" if motions > 1 else "/letters?type=brief_regering")
    landed = client.get("/letters", params={"page": 99})
    assert landed.status_code == 200 and f"pagina {pages} van {pages}" in landed.text and "pagina 99" not in landed.text


def test_a_share_link_with_too_many_earlier_questions_is_refused_in_dutch(client: TestClient) -> None:
    many = [("h", f"Vraag {n}?") for n in range(limits.MAX_HISTORY_TURNS + 1)]
    page = client.get("/", params=[("q", RESOLUTE), *many])
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert "In het adres klopt het aantal eerdere vragen" in html.unescape(page.text) and "Invalid" not in page.text


def test_share_links_run_the_engine_so_the_rate_limit_counts_them(fast_index_dir: Path, fast_engine: Engine, tmp_path: Path) -> None:
    index_dir = copy_index(fast_index_dir, tmp_path / "index")
    app = create_app(Settings(index_dir=index_dir, build_sample=False, rate_limit="3/minute"), engine=fast_engine)
    with TestClient(app) as limited:
        assert [limited.get("/").status_code for _ in range(5)] == [200] * 5  # the plain page stays open
        statuses = [limited.get("/", params={"q": RESOLUTE}).status_code for _ in range(4)]
        assert statuses == [200] * 3 + [429]
        refused = limited.get("/", params={"q": RESOLUTE}, headers=HTML)
        assert "Te veel verzoeken" in refused.text and "Even geduld" in refused.text


def test_a_source_card_names_the_type_every_quote_and_the_role_the_sender_leaves_out() -> None:
    """The macro of the cards: a motie's badge, each quote with its own link, the role from the ministry register
    (issue 15's `role`) only when the sender does not already say it."""
    from qa.server.pages.rendering import template_config
    from qa.server.pages.turns import Source

    environment = template_config(ROOT / "web").instance.engine  # type: ignore[union-attr]
    card = environment.get_template("_macros.html").module.source_card
    base = {"n": 1, "letter_id": "kst-1-1", "title": "Motie van het lid X", "date_label": "1 mei 2024", "section": None, "page": 1,
            "url": None, "type": "motie", "type_label": "Motie van Kamerleden", "href": "/letters/kst-1-1?passage=p&start=0&end=5#quote"}
    motion = str(card(Source(1, {**base, "sender": "S.M. Beckerman", "role": "Kamerlid"}, [("Eén.", "/a#quote"), ("Twee.", "/b#quote")]), "/#beurt-1"))
    assert '<span class="kind kind-motie">Motie van Kamerleden</span>' in motion and "S.M. Beckerman (Kamerlid)" in motion
    assert motion.count("<blockquote>") == 2 and 'href="/b?terug=%2F%23beurt-1#quote">citaat 2 in de brief' in motion
    letter = str(card(Source(1, {**base, "sender": "Minister van Defensie", "role": "minister"}, [("Eén.", "/a#quote")]), None))
    assert "Minister van Defensie ·" in letter and "(minister)" not in letter and "citaat 1" not in letter


def test_a_decline_within_filters_offers_the_question_without_them(client: TestClient) -> None:
    page = client.get("/", params={"q": RESOLUTE, "date_from": "2030-01-01"})
    turn = _turns(page.text)[0]
    assert turn["abstained"] and "binnen de gekozen filters" in turn["reason"].lower()
    assert f'<a class="without-filters" href="{share_href(RESOLUTE, {}, []).replace("&", "&amp;")}">Vraag het zonder filters</a>' in page.text
    assert "Vraag het zonder filters" not in client.get("/", params={"q": RESOLUTE}).text

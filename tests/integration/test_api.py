"""The web app through Litestar's test client, on a real index of the sample letters and the real model."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BACKENDS
from litestar import get
from litestar.testing import TestClient

from qa.answer.answering import DECLINE
from qa.answer.engine import Engine
from qa.bootstrap import load_engine
from qa.index import local as index_store
from qa.server.app import create_app
from qa.server.settings import Settings

RESOLUTE = "Wanneer moet de afbouw van Resolute Support afgerond zijn?"
LETTER = "kst-27925-781"


@pytest.fixture(scope="module", params=BACKENDS)
def client(request: pytest.FixtureRequest, web_index: Path, web_engine: Engine) -> Iterator[TestClient]:
    """The app on the local index, and on the same index in Milvus (tests/conftest.py, milvus_copy)."""
    engine = web_engine if request.param == "local" else request.getfixturevalue("milvus_engine")
    app = create_app(Settings(index_dir=web_index, store=None if request.param == "local" else engine.index.location, build_sample=False),
                     engine=engine)

    @get("/api/test-only/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("a bug, not the user's fault")

    app.register(boom)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def resolute(client: TestClient) -> dict[str, Any]:
    response = client.post("/api/ask", json={"question": RESOLUTE})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def letter(client: TestClient) -> dict[str, Any]:
    response = client.get(f"/api/letters/{LETTER}")
    assert response.status_code == 200
    return response.json()


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in re.split(r"\r?\n\r?\n", text.strip()):
        lines = block.splitlines()
        event = next(line[6:].strip() for line in lines if line.startswith("event:"))
        data = "\n".join(line[5:].removeprefix(" ") for line in lines if line.startswith("data:"))
        events.append((event, json.loads(data)))
    return events


# --- health, docs, headers -----------------------------------------------------------------


def test_health_summarises_the_loaded_index(client: TestClient, web_engine: Engine) -> None:
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["ready"] is True
    assert body["model"] == web_engine.index.model == web_engine.embedder.name
    assert body["letters"] == 43 and body["passages"] == len(web_engine.index.passages)
    assert body["built_at"].startswith("20") and body["dimension"] > 0
    assert sum(body["types"].values()) == 43


def test_openapi_schema_and_docs_page_work_offline(client: TestClient) -> None:
    schema = client.get("/api/docs/openapi.json").json()
    assert {"/api/ask", "/api/ask/stream", "/api/search", "/api/letters", "/api/letters/{letter_id}", "/api/health"} <= set(schema["paths"])
    assert "/" not in schema["paths"]  # pages are not API
    ask_body = schema["components"]["schemas"]["AskIn"]["properties"]
    assert ask_body["question"]["maxLength"] == 2000 and ask_body["k"]["maximum"] == 50
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "http://" not in docs.text and "https://" not in docs.text  # no CDN: everything from /static
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', docs.text):
        assert client.get(asset).status_code == 200, asset


@pytest.mark.parametrize("path", ["/", "/api/health", "/letters", "/api/letters/nope", "/no-such-page", "/static/chat.js"])
def test_every_response_has_a_strict_content_security_policy(client: TestClient, path: str) -> None:
    response = client.get(path)
    policy = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'" and "unsafe-inline" not in policy["script-src"]
    assert response.headers["x-content-type-options"] == "nosniff"


# --- ask -----------------------------------------------------------------------------------


def test_ask_answers_with_citations_that_quote_the_letter(resolute: dict[str, Any], letter: dict[str, Any]) -> None:
    assert resolute["abstained"] is False
    assert re.search(r"\[1\]", resolute["answer"])
    first = resolute["citations"][0]
    assert first["letter_id"] == LETTER and first["n"] == 1
    assert {"n", "letter_id", "title", "date", "sender", "section", "page", "url", "quote", "passage_id", "score"} <= set(first)
    for citation in resolute["citations"]:
        if citation["letter_id"] == LETTER:
            assert letter["text"][citation["quote_start"] : citation["quote_end"]] == citation["quote"]
            assert " ".join(citation["quote"].split()) in resolute["answer"]
    assert resolute["passages"] and {"passage_id", "letter_id", "title", "date", "section", "page", "text", "score"} <= set(resolute["passages"][0])
    assert resolute["timings_ms"]["total"] >= resolute["timings_ms"]["engine"] > 0
    assert resolute["query"] == RESOLUTE


def test_the_cited_passage_says_when_it_must_be_done(resolute: dict[str, Any], letter: dict[str, Any]) -> None:
    chunks = {chunk["passage_id"]: chunk for chunk in letter["passage_spans"]}
    cited = [chunks[c["passage_id"]] for c in resolute["citations"] if c["letter_id"] == LETTER]
    assert any("11 september" in letter["text"][chunk["start"] : chunk["end"]] for chunk in cited)


def test_ask_abstains_on_a_question_the_letters_do_not_answer(client: TestClient) -> None:
    body = client.post("/api/ask", json={"question": "Wie won de Tour de France in 1989?"}).json()
    assert body["abstained"] is True
    assert body["answer"] == DECLINE and body["citations"] == []
    assert body["passages"], "the closest passages are still shown"


def test_a_question_of_exactly_2000_characters_is_accepted(client: TestClient) -> None:
    question = ("Resolute Support afbouw " * 100)[:2000]
    assert client.post("/api/ask", json={"question": question, "k": 1}).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"question": ""}, "question"),
        ({"question": "   \n "}, "question is empty"),
        ({"question": "x" * 2001}, "question"),
        ({}, "question"),
        ({"question": "Wanneer?", "k": 0}, "k"),
        ({"question": "Wanneer?", "k": 51}, "k"),
        ({"question": "Wanneer?", "k": "vijf"}, "k"),
        ({"question": "Wanneer?", "filters": {"date_from": "2021-13-01"}}, "filters.date_from"),
        ({"question": "Wanneer?", "filters": {"date_to": "gisteren"}}, "filters.date_to"),
        ({"question": "Wanneer?", "filters": {"date_from": "2022-01-01", "date_to": "2021-01-01"}}, "date_from is after"),
        ({"question": "Wanneer?", "filters": {"ministerie": "Defensie"}}, "ministerie"),
        ({"question": "Wanneer?", "history": "vorige vraag"}, "history"),
        ({"question": "Wanneer?", "history": [{"answer": "zonder vraag"}]}, "question"),
        ({"vraag": "Wanneer?", "question": "Wanneer?"}, "vraag"),
    ],
)
@pytest.mark.parametrize("path", ["/api/ask", "/api/ask/stream"])
def test_invalid_questions_are_400_with_a_clear_message(client: TestClient, path: str, body: dict[str, Any], field: str) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert field in response.json()["detail"]


def test_malformed_and_oversized_bodies_are_rejected_as_json(client: TestClient) -> None:
    malformed = client.post("/api/ask", content=b'{"question": ', headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and "detail" in malformed.json()
    huge = client.post("/api/ask", json={"question": "Wanneer?", "history": [{"question": "x" * 2000, "answer": "y" * 9000}] * 8})
    assert huge.status_code == 413 and huge.json()["status_code"] == 413


def test_unexpected_errors_are_json_not_a_bare_500(client: TestClient) -> None:
    response = client.get("/api/test-only/boom")
    assert response.status_code == 500
    assert response.json()["detail"].startswith("Internal error")
    assert "a bug" not in response.text  # no internals leak


def test_filters_limit_the_letters_an_answer_comes_from(client: TestClient, web_engine: Engine) -> None:
    letters = web_engine.index.letters
    motions = client.post("/api/ask", json={"question": "btw-tarief op logies", "filters": {"type": "motie"}}).json()
    assert motions["passages"] and all(letters[p["letter_id"]].type == "motie" for p in motions["passages"])
    before = client.post("/api/ask", json={"question": RESOLUTE, "filters": {"date_to": "2020-12-31"}}).json()
    assert before["passages"], "older letters still give the closest passages"
    assert all(p["date"] and p["date"] <= "2020-12-31" for p in before["passages"])
    assert {c["passage_id"] for c in before["citations"]} <= {p["passage_id"] for p in before["passages"]}  # answered or not
    assert LETTER not in {p["letter_id"] for p in before["passages"]}
    defence = client.post("/api/ask", json={"question": RESOLUTE, "filters": {"sender": "Defensie", "date_from": "2021-01-01", "date_to": "2021-12-31"}}).json()
    assert defence["passages"] and all("defensie" in (p["sender"] or "").lower() for p in defence["passages"])
    assert all("2021-01-01" <= p["date"] <= "2021-12-31" for p in defence["passages"])


def test_a_follow_up_uses_the_previous_turn_and_a_new_question_does_not(client: TestClient, resolute: dict[str, Any]) -> None:
    history = [{"question": "Wat gebeurt er met de NAVO-missie Resolute Support in Afghanistan?", "answer": resolute["answer"]}]
    follow_up = client.post("/api/ask", json={"question": "En wanneer is dat afgerond?", "history": history}).json()
    assert "Resolute Support" in follow_up["query"] and follow_up["query"].endswith("En wanneer is dat afgerond?")
    assert LETTER in {p["letter_id"] for p in follow_up["passages"][:3]}
    alone = client.post("/api/ask", json={"question": "En wanneer is dat afgerond?"}).json()
    assert alone["query"] == "En wanneer is dat afgerond?"
    fresh_question = "Hoeveel minder ruwe materialen wil het kabinet in 2030 verbruiken?"
    fresh = client.post("/api/ask", json={"question": fresh_question, "history": history}).json()
    assert fresh["query"] == fresh_question
    assert LETTER not in {c["letter_id"] for c in fresh["citations"]}


def test_only_questions_that_point_back_are_rewritten(client: TestClient) -> None:
    history = [
        {"question": "Wat gebeurt er met de NAVO-missie Resolute Support in Afghanistan?", "answer": ""},
        {"question": "En wanneer is dat afgerond?", "answer": ""},
    ]
    chained = client.post("/api/ask", json={"question": "En waarom gaat dat zo snel?", "history": history, "k": 3}).json()
    assert chained["query"].startswith("Wat gebeurt er met de NAVO-missie Resolute Support")  # the topic survives two follow-ups
    assert LETTER in {p["letter_id"] for p in chained["passages"]}
    standalone = client.post("/api/ask", json={"question": "Wat is het budget van Defensie?", "history": history, "k": 3}).json()
    assert standalone["query"] == "Wat is het budget van Defensie?"  # "het" is an article, not a reference


# --- streaming -----------------------------------------------------------------------------


def test_stream_sends_sources_then_the_answer_in_pieces_then_done(client: TestClient, resolute: dict[str, Any]) -> None:
    response = client.post("/api/ask/stream", json={"question": RESOLUTE})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[:2] == ["start", "sources"] and names[-1] == "done"
    assert set(names[2:-1]) == {"delta"} and len(names) > 4
    sources, done = events[1][1], events[-1][1]
    assert sources["citations"] == resolute["citations"]
    assert [p["passage_id"] for p in sources["passages"]] == [p["passage_id"] for p in resolute["passages"]]
    pieces = "".join(data["text"] for name, data in events if name == "delta")
    assert pieces == done["answer"] == resolute["answer"]
    assert all(re.fullmatch(r"[^\[\]]*(\[\d+\][^\[\]]*)*", data["text"]) for name, data in events if name == "delta")
    assert done["abstained"] is False and done["timings_ms"]["total"] > 0


def test_stream_uses_history_too(client: TestClient) -> None:
    history = [{"question": "Wat gebeurt er met de NAVO-missie Resolute Support in Afghanistan?", "answer": ""}]
    events = sse_events(client.post("/api/ask/stream", json={"question": "En wanneer is dat afgerond?", "history": history}).text)
    assert "Resolute Support" in dict(events)["sources"]["query"]


# --- search --------------------------------------------------------------------------------


def test_search_returns_passages_and_honours_k_mode_and_filters(client: TestClient) -> None:
    results = client.get("/api/search", params={"q": "afbouw Resolute Support", "k": 3}).json()["results"]
    assert len(results) == 3 and results[0]["letter_id"] == LETTER
    assert {"passage_id", "letter_id", "title", "date", "section", "page", "text", "score"} <= set(results[0])
    for mode in ("lexical", "dense"):
        assert client.get("/api/search", params={"q": "Resolute Support", "k": 2, "mode": mode}).json()["results"]
    motions = client.get("/api/search", params={"q": "btw", "type": "motie", "k": 10}).json()["results"]
    assert motions and {r["letter_id"] for r in motions} <= {r["id"] for r in client.get("/api/letters", params={"type": "motie"}).json()["letters"]}
    assert client.get("/api/search", params={"q": "Resolute Support", "date_from": "2030-01-01"}).json()["results"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [({"q": ""}, "q"), ({"q": "   "}, "q is empty"), ({}, "q"), ({"q": "x" * 2001}, "q"), ({"q": "a", "k": 0}, "k"),
     ({"q": "a", "k": 51}, "k"), ({"q": "a", "mode": "magic"}, "mode"), ({"q": "a", "date_from": "12-05-2021"}, "date_from"),
     ({"q": "a", "date_from": "2022-01-01", "date_to": "2021-01-01"}, "date_from is after")],
)
def test_invalid_searches_are_400(client: TestClient, params: dict[str, Any], field: str) -> None:
    response = client.get("/api/search", params=params)
    assert response.status_code == 400, response.text
    assert field in response.json()["detail"]


# --- letters -------------------------------------------------------------------------------


def test_letters_are_listed_newest_first_a_page_at_a_time(client: TestClient) -> None:
    first = client.get("/api/letters", params={"per_page": 10}).json()
    assert first["total"] == 43 and first["pages"] == 5 and len(first["letters"]) == 10
    dates = [letter["date"] or "" for letter in first["letters"]]
    assert dates == sorted(dates, reverse=True)
    last = client.get("/api/letters", params={"per_page": 10, "page": 5}).json()
    assert len(last["letters"]) == 3
    ids = set()
    for page in range(1, 6):
        ids |= {letter["id"] for letter in client.get("/api/letters", params={"per_page": 10, "page": page}).json()["letters"]}
    assert len(ids) == 43
    assert {"id", "title", "date", "dossier", "number", "sender", "type", "url", "passages"} <= set(first["letters"][0])


def test_letters_can_be_filtered(client: TestClient) -> None:
    motions = client.get("/api/letters", params={"type": "motie"}).json()
    assert motions["total"] == 6 and all(letter["type"] == "motie" for letter in motions["letters"])
    defence = client.get("/api/letters", params={"sender": "defensie", "date_from": "2021-01-01"}).json()["letters"]
    assert LETTER in {letter["id"] for letter in defence}
    assert all("Defensie" in letter["sender"] and letter["date"] >= "2021-01-01" for letter in defence)
    assert client.get("/api/letters", params={"dossier": "27 925"}).json()["letters"][0]["id"].startswith("kst-27925")
    resolute = client.get("/api/letters", params={"q": "resolute"}).json()  # full text (issue 14): the title does not say it
    assert [letter["id"] for letter in resolute["letters"]] == [LETTER] and "Resolute" not in (resolute["letters"][0]["title"] or "")
    assert client.get("/api/letters", params={"q": "27925-781"}).json()["letters"][0]["id"] == LETTER


@pytest.mark.parametrize("params", [{"page": 0}, {"per_page": 101}, {"date_to": "31-12-2021"}, {"page": "twee"}])
def test_invalid_letter_queries_are_400(client: TestClient, params: dict[str, Any]) -> None:
    assert client.get("/api/letters", params=params).status_code == 400


def test_one_letter_has_its_text_and_chunk_offsets(letter: dict[str, Any], web_engine: Engine) -> None:
    assert letter["id"] == LETTER and letter["date"] == "2021-05-12" and letter["url"].startswith("https://")
    assert "11 september" in letter["text"]
    assert letter["passage_spans"] and letter["passages"] == len(letter["passage_spans"])
    assert "chunks" not in letter
    for chunk in letter["passage_spans"]:
        assert letter["text"][chunk["start"] : chunk["end"]] == web_engine.index.passages[
            next(i for i, p in enumerate(web_engine.index.passages) if p.id == chunk["passage_id"])
        ].text
    assert letter["page_starts"][0] == 0


def test_an_unknown_letter_is_404_json(client: TestClient) -> None:
    response = client.get("/api/letters/kst-00000-0")
    assert response.status_code == 404
    assert response.json()["detail"] == "no letter with id 'kst-00000-0'"


# --- pages ---------------------------------------------------------------------------------


def test_chat_page_has_the_form_examples_filters_and_a_static_script(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<html lang="nl">' in html and 'name="question"' in html and 'maxlength="2000"' in html
    assert "Nieuw gesprek" in html and RESOLUTE in html
    assert '<option value="Defensie">' in html and '<option value="motie">Motie van Kamerleden</option>' in html
    assert '<script src="/static/chat.js" defer></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline scripts"
    assert client.get("/static/chat.js").status_code == 200 and client.get("/static/style.css").status_code == 200


def test_the_chat_works_without_javascript(client: TestClient) -> None:
    page = client.post("/", data={"question": RESOLUTE, "history": "[]"})
    assert page.status_code == 200
    link = re.search(r'<a class="cite" href="([^"]+)"', page.text)
    assert link and link.group(1).startswith(f"/letters/{LETTER}?passage=")
    assert "Bronnen" in page.text and "Officiële publicatie" in page.text
    history = re.search(r'name="history" value="([^"]*)"', page.text).group(1)
    follow_up = client.post("/", data={"question": "En wanneer is dat afgerond?", "history": history.replace("&#34;", '"').replace("&quot;", '"')})
    assert follow_up.status_code == 200 and follow_up.text.count('class="turn"') == 2


def test_the_chat_form_reports_bad_input_on_the_page(client: TestClient) -> None:
    empty = client.post("/", data={"question": "  "})
    assert empty.status_code == 400 and "Typ eerst een vraag." in empty.text
    dates = client.post("/", data={"question": "Wanneer?", "date_from": "2022-01-01", "date_to": "2021-01-01"})
    assert dates.status_code == 400 and "De begindatum ligt na de einddatum." in dates.text


def test_letter_text_and_questions_are_escaped(client: TestClient) -> None:
    page = client.post("/", data={"question": "<script>alert(1)</script> Resolute Support?"})
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_letter_page_marks_the_passage_and_the_quote(client: TestClient, resolute: dict[str, Any]) -> None:
    citation = next(c for c in resolute["citations"] if c["letter_id"] == LETTER)
    link = f"/letters/{LETTER}?passage={citation['passage_id'].replace('#', '%23')}&start={citation['quote_start']}&end={citation['quote_end']}"
    html = client.get(link).text
    marked = re.findall(r'<mark class="(passage|quote)">([^<]*)</mark>', html)
    quote = "".join(text for kind, text in marked if kind == "quote")
    passage = "".join(text for _, text in marked)
    assert quote == citation["quote"].replace('"', "&#34;")
    assert "11 september" in passage
    assert 'id="quote"' in html and 'id="passage"' in html
    assert 'href="https://zoek.officielebekendmakingen.nl/kst-27925-781.html"' in html
    only_passage = client.get(f"/letters/{LETTER}", params={"passage": citation["passage_id"]}).text
    assert '<mark class="quote">' not in only_passage and '<mark class="passage">' in only_passage


def test_letter_page_ignores_a_stale_quote_and_404s_an_unknown_letter(client: TestClient) -> None:
    stale = client.get(f"/letters/{LETTER}", params={"passage": f"{LETTER}#1", "start": 5000, "end": 5100})
    assert stale.status_code == 200 and '<mark class="quote">' not in stale.text
    missing = client.get("/letters/kst-00000-0", headers={"accept": "text/html"})
    assert missing.status_code == 404 and "Niet gevonden" in missing.text and "kst-00000-0" in missing.text


def test_letters_overview_filters_and_pages(client: TestClient) -> None:
    page = client.get("/letters", params={"type": "motie"})
    assert page.status_code == 200 and "6 brieven" in page.text
    assert page.text.count('class="letter-title"') == 6
    assert "Volgende" in client.get("/letters").text  # 43 letters, 20 a page
    bad = client.get("/letters", params={"date_from": "morgen"})
    assert bad.status_code == 400 and "is geen datum" in bad.text


# --- start-up ------------------------------------------------------------------------------


def test_without_an_index_start_up_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(index_store.IndexStateError, match=r"qa index build"):
        load_engine(tmp_path / "empty", build_sample=False, say=lambda message: None)

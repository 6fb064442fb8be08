"""The web app's logic on the fast tier: the sample index built with the deterministic test embedder.

What the model gets right (which passage answers, when to decline) is tested with the real model in
tests/integration/test_api.py; here it is the shapes, links, filters, pagination and reloads around it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BACKENDS, TEST_HOST, copy_index, milvus_copy, store_setting
from litestar.testing import TestClient

from qa.answer.answering import Citation
from qa.answer.engine import Engine
from qa.core import display, limits
from qa.index import stores as store
from qa.ingest.reading import make_letter
from qa.schemas import CitationOut
from qa.server.app import create_app
from qa.server.settings import Settings

RESOLUTE = "Wanneer moet de afbouw van Resolute Support afgerond zijn?"
LETTER = "kst-27925-781"
KEY = "fast-admin-key"


@pytest.fixture(scope="module", params=BACKENDS)
def index_copy(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fast_index_dir: Path) -> store.Location:
    """This module's own copy of the fast index: a local folder, and the same index in Milvus."""
    folder = tmp_path_factory.mktemp("web-fast")
    if request.param == "milvus":
        return milvus_copy(fast_index_dir, folder)
    return store.Location("local", copy_index(fast_index_dir, folder / "index"))


@pytest.fixture(scope="module")
def client(index_copy: store.Location, fast_engine: Engine) -> Iterator[TestClient]:
    engine = Engine(store.load(index_copy), fast_engine.embedder, fast_engine.policy)
    settings = Settings(index_dir=index_copy.data_dir, store=store_setting(index_copy), build_sample=False, admin_key=KEY,
                        allowed_hosts=(TEST_HOST,))
    with TestClient(create_app(settings, engine=engine)) as test_client:
        yield test_client


def test_a_citation_reaches_the_wire_under_its_own_field_names() -> None:
    """schemas.citation_out passes the answer's Citation through by name: CitationOut starts with its fields, in order."""
    names = [field.name for field in dataclasses.fields(Citation)]
    assert list(CitationOut.__struct_fields__[: len(names)]) == names


def test_an_answer_carries_links_and_dutch_dates_for_every_source(client: TestClient) -> None:
    body = client.post("/api/ask", json={"question": RESOLUTE}).json()
    assert not body["abstained"] and body["citations"], body
    letter = client.get(f"/api/letters/{LETTER}").json()
    for citation in body["citations"]:
        assert citation["href"] == (
            f"/letters/{citation['letter_id']}?passage={citation['passage_id'].replace('#', '%23')}"
            f"&start={citation['quote_start']}&end={citation['quote_end']}#quote"
        )
        assert citation["date_label"] == display.dutch_date(citation["date"]) and citation["date_label"][0].isdigit()
        if citation["letter_id"] == LETTER:
            assert letter["text"][citation["quote_start"] : citation["quote_end"]] == citation["quote"]
    for passage in body["passages"]:
        assert passage["href"].startswith(f"/letters/{passage['letter_id']}?passage=") and passage["href"].endswith("#passage")
    page = client.get(body["citations"][0]["href"])
    assert page.status_code == 200 and '<mark class="quote"' in page.text


def test_filters_and_k_shape_the_search(client: TestClient) -> None:
    motions = client.get("/api/search", params={"q": "btw tarief logies", "type": "motie", "k": 7}).json()["results"]
    assert 0 < len(motions) <= 7
    motion_ids = {letter["id"] for letter in client.get("/api/letters", params={"type": "motie"}).json()["letters"]}
    assert {hit["letter_id"] for hit in motions} <= motion_ids
    assert client.get("/api/search", params={"q": RESOLUTE, "date_from": "2030-01-01"}).json()["results"] == []


def test_letters_are_paged_the_same_in_the_api_and_the_overview(client: TestClient) -> None:
    total = client.get("/api/letters").json()["total"]
    pages = -(-total // limits.PER_PAGE)
    seen: list[str] = []
    for page in range(1, pages + 1):
        body = client.get("/api/letters", params={"page": page}).json()
        assert body["pages"] == pages and body["per_page"] == limits.PER_PAGE
        seen += [letter["id"] for letter in body["letters"]]
        html = client.get("/letters", params={"page": page}).text
        assert all(f'href="/letters/{letter_id}"' in html for letter_id in seen[-len(body["letters"]) :])
    assert len(seen) == len(set(seen)) == total
    assert client.get("/api/letters", params={"page": pages + 1}).json()["letters"] == []


def test_the_chat_without_javascript_keeps_at_most_the_allowed_turns(client: TestClient) -> None:
    import json
    import re

    history = json.dumps([{"question": f"Vraag {n} over Resolute Support?", "answer": ""} for n in range(limits.MAX_HISTORY_TURNS)])
    page = client.post("/", data={"question": RESOLUTE, "history": history})
    assert page.status_code == 200
    kept = json.loads(re.search(r'name="history" value="([^"]*)"', page.text).group(1).replace("&#34;", '"').replace("&quot;", '"'))
    assert len(kept) == limits.MAX_HISTORY_TURNS and kept[-1]["question"] == RESOLUTE


def test_the_admin_guard_and_a_reload_of_a_changed_index(client: TestClient, index_copy: store.Location, fake_embedder: Any) -> None:
    assert client.post("/api/admin/reload").status_code == 401
    assert client.post("/api/admin/reload", headers={"authorization": "Bearer wrong"}).status_code == 401
    before = client.get("/api/health").json()
    same = client.post("/api/admin/reload", headers={"authorization": f"Bearer {KEY}"}).json()
    assert same["reloaded"] is False and same["generation"] == before["generation"]
    extra = make_letter("Brief over de zeearend en de windparken op zee.\n\nDe zeearend broedt weer in Nederland.", None,
                        {"id": "kst-99999-1", "title": "Zeearend", "date": "2024-01-02", "type": "brief_regering"})
    store.update(index_copy, fake_embedder, add=[extra])
    after = client.post("/api/admin/reload", headers={"authorization": f"Bearer {KEY}"}).json()
    assert after["reloaded"] is True and after["letters"] == before["letters"] + 1
    assert client.get("/api/health").json()["generation"] == after["generation"] != before["generation"]
    assert client.get("/api/letters/kst-99999-1").status_code == 200


def test_settings_reach_worker_processes_whole(tmp_path: Path) -> None:
    """Workers get the settings as JSON: every field must come back with its value and type."""
    import json

    settings = Settings(index_dir=tmp_path / "i", web_dir=tmp_path, max_body_bytes=1234, admin_key="k", rate_limit="5/minute",
                        watch_seconds=2.5, workers=3, state_dir=tmp_path / "state", build_sample=False)
    assert Settings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


def test_letters_and_citations_carry_the_register_reading_of_their_sender(client: TestClient) -> None:
    """Ministry, role and person (qa/ingest/ministries.py) on the wire; the ministry filter uses the register's names."""
    letter = client.get(f"/api/letters/{LETTER}").json()
    assert (letter["ministry"], letter["ministry_abbreviation"], letter["role"]) == ("Defensie", "Defensie", "minister")
    assert letter["co_senders"] == [] and isinstance(letter["footnotes"], list)
    body = client.post("/api/ask", json={"question": RESOLUTE}).json()
    for item in body["citations"] + body["passages"]:
        assert {"ministry", "ministry_abbreviation", "role", "person"} <= set(item)
    listed = client.get("/api/letters", params={"sender": "Defensie"}).json()["letters"]
    assert listed and all(item["ministry"] == "Defensie" for item in listed)
    page = client.get("/").text
    assert '<option value="Defensie"' in page and "Onderwijs, Cultuur en Wetenschap (OCW)" in page
    for fragment in ('<option value="Cultuur"', '<option value="Onderwijs"', '<option value="Welzijn"'):
        assert fragment not in page


def test_the_letter_page_links_footnote_markers_to_their_notes(client: TestClient) -> None:
    page = client.get("/letters/rijksoverheid-kamerbrief-2023-02-03-npce").text
    assert '<a class="note-ref" href="#noot-1">¹</a>' in page and 'id="noot-1"' in page
    assert page.index('href="#noot-1"') < page.index('id="noot-1"')  # the marker in the body, the note at the end
    # the note is shown as a footnote, and its number leads back to where the letter cites it
    assert '<p class="footnote"><span id="noot-1" class="anchor"></span><a class="note-ref" href="#verwijzing-1">¹</a> Zie ook' in page
    assert page.index('id="verwijzing-1"') < page.index('href="#noot-1"') < page.index('href="#verwijzing-1"')
    assert page.count('class="footnote"') == 5  # all five notes, also 2 and 4, whose markers the text layer lost
    assert "P agina" not in page and "Inf rastructuur" not in page


def test_a_reload_refuses_an_index_built_on_another_backend(fast_index_dir: Path, tmp_path: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    """The running embedder makes the queries: an index rebuilt on another backend needs a restart, not a reload."""
    import json

    from qa.answer.engine import Engine
    from qa.index import local as index_store
    from qa.server.reloader import Reloader
    from qa.server.service import Service

    folder = tmp_path / "index"
    copy_index(fast_index_dir, folder)
    service = Service(Engine(index_store.load(folder), fake_embedder))
    generation = folder / index_store.live_generation(folder).name
    manifest = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
    (generation / "manifest.json").write_text(json.dumps({**manifest, "backend": "onnx-int8"}), encoding="utf-8")
    with pytest.raises(index_store.IndexStateError, match="on onnx-int8, the service runs .* on test; restart"):
        Reloader(service, folder)._load(service)

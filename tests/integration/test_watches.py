"""Saved questions (issue 17): stored in the users' SQLite file, checked after every index change against the
new letters only, delivered as an Atom feed, a page and `qa watch check`.

The fast tests use the deterministic embedder (threshold 0: any answer counts, the logic is what is tested);
the end-to-end test runs `qa` as a user does, with the real model and reader."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from conftest import TEST_HOST, TEST_MODEL, copy_index
from litestar.testing import TestClient

from qa.answer.engine import Engine
from qa.core.settings import SAMPLE_CORPUS
from qa.index import local as index_store
from qa.ingest.reading import make_letter
from qa.server.app import create_app
from qa.server.settings import Settings
from qa.users import db as userdb
from qa.users import watches

ROOT = Path(__file__).resolve().parents[2]
ATOM = "{http://www.w3.org/2005/Atom}"
KEY = "watch-admin-key"
RESOLUTE = "Wanneer moet de afbouw van Resolute Support afgerond zijn?"
# Mentions the question's words (Resolute Support, afbouw, afgerond) and answers nothing.
MENTIONS = """Tweede Kamer der Staten-Generaal

Vergaderjaar 2021–2022

27 925 Bestrijding internationaal terrorisme

Nr. 9001 BRIEF VAN DE MINISTER VAN DEFENSIE

Aan de Voorzitter van de Tweede Kamer der Staten-Generaal

Den Haag, 3 februari 2022

In het commissiedebat is met uw Kamer gesproken over de afbouw van de missie Resolute Support en over de vraag of die afbouw goed is afgerond. Ik heb toegezegd uw Kamer te informeren over de evaluatie van de Nederlandse inzet in Afghanistan.

Die evaluatie wordt uitgevoerd door een onafhankelijke commissie. Over de opzet van de evaluatie en de samenstelling van de commissie ontvangt u een aparte brief.

De Minister van Defensie,
H.G.J. Kamp
"""


def _letter(letter_id: str, text: str):  # type: ignore[no-untyped-def]
    return make_letter(text, None, {"id": letter_id, "title": f"Brief {letter_id}", "date": "2024-09-01", "type": "brief_regering"})


# --- the fast tier -----------------------------------------------------------------------------


@pytest.fixture
def fast_copy(tmp_path: Path, fast_index_dir: Path) -> Path:
    return copy_index(fast_index_dir, tmp_path / "index")


def test_a_check_reads_only_the_letters_new_since_the_last_one(fast_copy: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    from fake_embedder import FAST_POLICY

    def engine() -> Engine:
        return Engine(index_store.load(fast_copy), fake_embedder, FAST_POLICY)

    with closing(userdb.connect(fast_copy)) as connection:
        watch = watches.add(connection, engine().index, "Hoeveel kost de registratie van een drone?", threshold=0.0)
        assert len(watch.token) >= 24 and watch.checked_through > 0
        nothing = watches.check(connection, engine())
        assert nothing.new_letters == 0 and nothing.passages_read == 0 and not nothing.hits  # the index it was saved on

        new = _letter("kst-drone-1", "De registratie van een drone kost 20 euro per jaar bij de RDW. Dit geldt voor elke drone boven 250 gram.")
        index_store.update(fast_copy, fake_embedder, add=[new])
        first = watches.check(connection, engine())
        assert first.new_letters == 1 and first.passages_read == len(engine().index.letter_passages["kst-drone-1"])
        assert [hit.letter_id for _, hit in first.hits] == ["kst-drone-1"]
        assert "20 euro" in first.hits[0][1].quote
        again = watches.check(connection, engine())
        assert again.new_letters == 0 and not again.hits  # nothing new since

        changed = _letter("kst-drone-1", "De registratie van een drone kost vanaf 2025 30 euro per jaar bij de RDW.")
        index_store.update(fast_copy, fake_embedder, add=[changed])  # a new version is new
        assert watches.check(connection, engine()).new_letters == 1
        assert watches.get(connection, watch.token).hits == 2

        printed = watches.unreported(connection)
        assert len(printed) == 2 and all("\n" not in watches.hit_line(w, h) for w, h in printed)
        assert watches.unreported(connection) == []
        watches.remove(connection, str(watch.id))
        with pytest.raises(watches.WatchNotFound):
            watches.get(connection, watch.token)
        assert connection.execute("SELECT count(*) FROM watch_hits").fetchone()[0] == 0


def test_migrations_append_the_watch_tables(tmp_path: Path) -> None:
    with closing(userdb.connect(tmp_path)) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == len(userdb.MIGRATIONS) >= 2
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"feedback", "watches", "index_letters", "watch_hits"} <= tables


@pytest.fixture
def client(fast_copy: Path, fake_embedder) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    from fake_embedder import FAST_POLICY

    engine = Engine(index_store.load(fast_copy), fake_embedder, FAST_POLICY)
    with TestClient(create_app(Settings(index_dir=fast_copy, build_sample=False, admin_key=KEY, allowed_hosts=(TEST_HOST,)), engine=engine)) as test_client:
        yield test_client


def test_watches_over_the_api_and_a_reload_checks_them(client: TestClient, fast_copy: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    made = client.post("/api/watches", json={"question": "Hoeveel kost de registratie van een drone?", "threshold": 0.0,
                                             "filters": {"date_from": "2024-01-01"}})
    assert made.status_code == 201, made.text
    watch = made.json()
    assert watch["feed_url"] == f"/watches/{watch['token']}/feed.atom" and watch["filters"] == {"date_from": "2024-01-01"}
    assert client.get(f"/api/watches/{watch['token']}").json()["hit_count"] == 0
    assert client.get("/api/watches").status_code == 401  # listing hands out every token: admin only
    listed = client.get("/api/watches", headers={"Authorization": f"Bearer {KEY}"}).json()["watches"]
    assert [w["token"] for w in listed] == [watch["token"]]

    index_store.update(fast_copy, fake_embedder, add=[
        _letter("kst-drone-2", "De registratie van een drone kost 20 euro per jaar bij de RDW."),
        make_letter("De registratie van een drone kost 25 euro.", None, {"id": "kst-drone-old", "date": "2019-05-01"}),  # filtered out
    ])
    assert client.post("/api/admin/reload", headers={"Authorization": f"Bearer {KEY}"}).json()["reloaded"]
    deadline = time.monotonic() + 30
    while (state := client.get(f"/api/watches/{watch['token']}").json())["checked_at"] is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [hit["letter_id"] for hit in state["hits"]] == ["kst-drone-2"], state
    hit = state["hits"][0]
    assert hit["href"].startswith("/letters/kst-drone-2?") and "20 euro" in hit["quote"]

    feed = client.get(watch["feed_url"])
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("application/atom+xml")
    root = ElementTree.fromstring(feed.content)
    assert root.tag == f"{ATOM}feed" and root.findtext(f"{ATOM}id") and root.findtext(f"{ATOM}updated")
    [entry] = root.findall(f"{ATOM}entry")
    link = entry.find(f"{ATOM}link[@rel='alternate']")
    assert link is not None and link.get("href", "").startswith("http") and "/letters/kst-drone-2" in link.get("href", "")
    page = client.get(watch["page_url"])
    assert page.status_code == 200 and "20 euro" in page.text and watch["feed_url"] in page.text

    assert client.delete(f"/api/watches/{watch['token']}").status_code == 204
    assert client.get(f"/api/watches/{watch['token']}").status_code == 404
    assert client.get(watch["feed_url"], headers={"Accept": "text/html"}).status_code == 404


@pytest.mark.parametrize("body", [
    {"question": ""}, {"question": "x" * 2001}, {"question": "Wat?", "threshold": 1.5}, {"question": "Wat?", "threshold": "hoog"},
    {"question": "Wat?", "filters": {"date_from": "gisteren"}}, {"question": "Wat?", "filters": {"type": "brief"}}, {"question": "Wat?", "extra": 1},
    {},
])
def test_bad_watches_are_400_json(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/api/watches", json=body)
    assert response.status_code == 400 and response.json()["detail"].startswith("Invalid request"), response.text


def test_unknown_tokens_are_404(client: TestClient) -> None:
    for path in ("/api/watches/nope", "/api/watches/1"):
        response = client.get(path)
        assert response.status_code == 404 and response.headers["content-type"].startswith("application/json")
    assert client.delete("/api/watches/nope").status_code == 404
    assert client.get("/api/watches/..%2Fetc").status_code in (400, 404)
    page = client.get("/watches/nope", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "gevolgde vraag" in page.text


# --- issue 29: a read-only data folder and a damaged database --------------------------------------

READ_ONLY_CHILD = """
import json, sys
from pathlib import Path
sys.path.insert(0, "tests")
from fake_embedder import FakeEmbedder, FAST_POLICY
from litestar.testing import TestClient
from qa.index import local as index_store
from qa.answer.engine import Engine
from qa.server.app import create_app
from qa.server.settings import Settings
folder, token, key = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
engine = Engine(index_store.load(folder), FakeEmbedder(), FAST_POLICY)
html, admin = {"Accept": "text/html"}, {"Authorization": f"Bearer {key}"}
requests = [("page", "GET", f"/watches/{token}", html), ("feed", "GET", f"/watches/{token}/feed.atom", {}),
            ("one", "GET", f"/api/watches/{token}", {}), ("all", "GET", "/api/watches", admin),
            ("add", "POST", "/api/watches", {}), ("delete", "DELETE", f"/api/watches/{token}", {}),
            ("page again", "GET", f"/watches/{token}", html), ("search", "GET", "/api/search?q=drone", {}), ("chat", "GET", "/", html)]
out = {}
with TestClient(create_app(Settings(index_dir=folder, build_sample=False, admin_key=key, allowed_hosts=("testserver.local",)), engine=engine)) as client:
    for name, method, path, headers in requests:
        response = client.request(method, path, headers=headers, json={"question": "Wat kost een drone?"} if name == "add" else None)
        out[name] = [response.status_code, response.text]
print(json.dumps(out))
"""


def _serve_once(folder: Path, token: str, as_reader: bool) -> dict[str, list[Any]]:
    from test_feedback import run_without_write_access

    command = [sys.executable, "-c", READ_ONLY_CHILD, str(folder), token, KEY]
    result = run_without_write_access(command) if as_reader else subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]  # one log line per refusal, no 500's traceback
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_saved_questions_on_a_read_only_data_folder_are_shown_and_changes_are_refused_clearly(fast_copy: Path) -> None:
    """The folder (and the database) read-only to the server's user: the page and the feed were a 500 and
    GET /api/watches a 500 (every read opened the database for writing); now reads open it read-only and show the
    watch, a change is a 503 that says why, nothing is lost, and the rest serves."""
    with closing(userdb.connect(fast_copy)) as connection:
        watch = watches.add(connection, index_store.load(fast_copy), RESOLUTE)
    modes = {path: path.stat().st_mode for path in [fast_copy, *fast_copy.rglob("*")]}
    for path in modes:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        out = _serve_once(fast_copy, watch.token, as_reader=True)
    finally:
        for path, mode in modes.items():
            path.chmod(mode)
    for name in ("page", "feed", "one", "all", "page again", "search", "chat"):
        assert out[name][0] == 200, (name, out[name][0], out[name][1][:300])
    assert RESOLUTE in out["page"][1] and RESOLUTE in out["page again"][1] and RESOLUTE in out["feed"][1]
    for name in ("add", "delete"):
        assert out[name][0] == 503 and "not writable" in json.loads(out[name][1])["detail"], (name, out[name])
    with closing(userdb.connect(fast_copy, readonly=True)) as connection:
        assert [w.token for w in watches.watches(connection)] == [watch.token]  # nothing lost


def test_a_damaged_user_database_is_a_dutch_503_page_not_a_500(fast_copy: Path) -> None:
    """Were 500s (the error page's generic text) for the page and the feed; the API said 503 already."""
    userdb.path(fast_copy).write_bytes(b"dit is geen SQLite-bestand " * 100)
    out = _serve_once(fast_copy, "a" * 24, as_reader=False)
    for name in ("page", "page again", "feed"):
        assert out[name][0] == 503 and "De gevolgde vragen zijn nu niet te lezen" in out[name][1], (name, out[name][0], out[name][1][-500:])
    for name in ("one", "all", "add", "delete"):
        assert out[name][0] == 503, (name, out[name])
    assert out["search"][0] == 200 and out["chat"][0] == 200


# --- end to end, as a user runs it (real model, real reader) -------------------------------------


def qa(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QA_MODEL": TEST_MODEL}
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)


@pytest.mark.model
@pytest.mark.slow
def test_a_saved_question_fires_for_the_letter_that_answers_it_not_the_one_that_mentions_it(
        tmp_path: Path, sample_index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    index = copy_index(sample_index_dir, tmp_path / "index")
    removed = qa("index", "remove", "kst-27925-781", "--index", str(index))
    assert removed.returncode == 0, removed.stderr
    saved = qa("watch", "add", RESOLUTE, "--index", str(index), "--json")
    assert saved.returncode == 0, saved.stderr
    token = json.loads(saved.stdout)["token"]

    new = tmp_path / "new"
    new.mkdir()
    shutil.copy(SAMPLE_CORPUS / "letters" / "kst-27925-781.txt", new)  # answers it: "Uiterlijk 11 september ..."
    (new / "kst-27925-9001.txt").write_text(MENTIONS, encoding="utf-8")
    added = qa("index", "add", str(new), "--index", str(index), "--no-progress")
    assert added.returncode == 0, added.stderr
    assert "saved questions: checked 1 saved question(s) against 2 new letter(s): 1 new hit(s)" in added.stderr

    checked = qa("watch", "check", "--index", str(index))
    assert checked.returncode == 0, checked.stderr
    lines = checked.stdout.splitlines()
    assert len(lines) == 1 and "kst-27925-781" in lines[0] and "kst-27925-9001" not in lines[0], checked.stdout
    assert f'"{RESOLUTE}"' in lines[0] and "https://zoek.officielebekendmakingen.nl/kst-27925-781.html" in lines[0]
    second = qa("watch", "check", "--index", str(index))
    assert second.returncode == 0 and second.stdout == "", second.stdout

    listed = qa("watch", "list", "--index", str(index))
    assert "1 hit(s)" in listed.stdout and RESOLUTE in listed.stdout

    engine = Engine(index_store.load(index), embedder)
    with TestClient(create_app(Settings(index_dir=index, build_sample=False, allowed_hosts=(TEST_HOST,)), engine=engine)) as client:
        feed = client.get(f"/watches/{token}/feed.atom")
    assert feed.status_code == 200
    root = ElementTree.fromstring(feed.content)  # well-formed XML in the Atom namespace, with RFC 4287's required elements
    assert root.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated"):
        assert (root.findtext(f"{ATOM}{required}") or "").strip(), required
    assert root.find(f"{ATOM}author/{ATOM}name") is not None and root.find(f"{ATOM}link[@rel='self']") is not None
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == 1
    for required in ("id", "title", "updated"):
        assert (entries[0].findtext(f"{ATOM}{required}") or "").strip(), required
    link = entries[0].find(f"{ATOM}link[@rel='alternate']")
    assert link is not None and "/letters/kst-27925-781?" in link.get("href", "") and link.get("href", "").startswith("http://")
    assert "11 september" in (entries[0].findtext(f"{ATOM}summary") or "")
    assert "kst-27925-9001" not in feed.text

    removed_watch = qa("watch", "remove", token, "--index", str(index))
    assert removed_watch.returncode == 0 and qa("watch", "list", "--index", str(index)).stdout.strip() == "No saved questions."
    bad = qa("watch", "remove", "999", "--index", str(index))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_a_token_never_reads_as_a_command_line_option() -> None:
    from qa.users.watches import new_token
    tokens = [new_token() for _ in range(2000)]  # about 1 in 64 raw tokens opens with "-"
    assert not any(token.startswith("-") for token in tokens) and len(set(tokens)) == len(tokens)

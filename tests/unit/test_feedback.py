"""Feedback on answers (issue 14, item 5): the shared SQLite file qa/users/db.py, qa/users/feedback.py, POST /api/feedback,
the count in /api/health and `qa feedback list|export`. Real SQLite files, real processes writing at once, a
real read-only folder; the app on the fast tier (tests/fake_embedder.py). The browser test clicks the buttons."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import copy_index
from litestar.testing import TestClient

from qa.answer.engine import Engine
from qa.cli import main
from qa.core.errors import InvalidQuery
from qa.index import local as index_store
from qa.server.app import create_app
from qa.server.settings import Settings
from qa.users import db as userdb
from qa.users import feedback, watches

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "Wanneer moet de afbouw van Resolute Support afgerond zijn?"


def a_feedback(**changes: Any) -> feedback.Feedback:
    values: dict[str, Any] = {
        "rating": "down", "question": QUESTION, "answer": "Uiterlijk 11 september. [1]", "comment": "verkeerde brief",
        "citations": [feedback.Cited(1, "kst-27925-781", "kst-27925-781#2", "Uiterlijk 11 september.")], "generation": "gen-1",
    }
    return feedback.new(**{**values, **changes})


# --- qa/users/db.py --------------------------------------------------------------------------


def test_the_database_is_created_beside_the_index_in_wal_mode(tmp_path: Path, fast_index_dir: Path) -> None:
    index = copy_index(fast_index_dir, tmp_path / "index")
    with closing(userdb.connect(index)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA user_version").fetchone()[0] == len(userdb.MIGRATIONS) >= 1
    assert (index / "qa.sqlite3").is_file() and (index / "CURRENT").is_file()
    assert not list((index / (index / "CURRENT").read_text().strip()).glob("qa.sqlite3*")), "never inside a generation"
    with closing(userdb.connect(index)) as again:  # a second open migrates nothing
        assert again.execute("SELECT count(*) FROM feedback").fetchone()[0] == 0


def test_a_failing_migration_rolls_back_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    userdb.connect(tmp_path).close()
    monkeypatch.setattr(userdb, "MIGRATIONS", [*userdb.MIGRATIONS, "CREATE TABLE half (x);\nCREATE TABLE broken (;"])
    with pytest.raises(userdb.UserDataError):
        userdb.connect(tmp_path)
    monkeypatch.undo()
    with closing(sqlite3.connect(tmp_path / "qa.sqlite3")) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(userdb.MIGRATIONS)
        assert not raw.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchall(), "the first statement was rolled back too"


def test_a_newer_or_damaged_file_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    newer = tmp_path / "newer"
    userdb.connect(newer).close()
    with closing(sqlite3.connect(newer / "qa.sqlite3")) as raw:
        raw.execute("PRAGMA user_version = 99")
    for readonly in (False, True):
        with pytest.raises(userdb.UserDataError, match="newer version of qa"):
            userdb.connect(newer, readonly=readonly)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "qa.sqlite3").write_bytes(b"this is no database " * 100)
    with pytest.raises(userdb.UserDataError, match="damaged"):
        userdb.connect(damaged)


def test_a_migrations_statements_are_split_whole() -> None:
    script = "CREATE TABLE a (x);\nCREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE a SET x = 1;\nEND;\n"
    assert list(userdb.statements(script)) == ["CREATE TABLE a (x);", "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE a SET x = 1;\nEND;"]
    with pytest.raises(ValueError, match="incomplete"):
        list(userdb.statements("CREATE TABLE b (x"))


WRITER = textwrap.dedent("""
    import sys
    from contextlib import closing
    from pathlib import Path
    from qa.users import feedback
    from qa.users import db as userdb
    folder, worker, rows = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    for row in range(rows):
        with closing(userdb.connect(folder)) as connection:  # a connection per request, as the API opens them
            feedback.save(connection, feedback.new("up" if row % 2 else "down", f"vraag {worker}-{row}", "antwoord", generation="gen-1"))
""")


def test_several_processes_create_and_write_at_once_without_losing_a_row(tmp_path: Path) -> None:
    """Four processes (as `qa serve --workers 4`) open a database that does not exist yet and insert at the same time."""
    folder = tmp_path / "index"
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(worker), "40"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
                 for worker in range(4)]
    failures = [process.communicate(timeout=120)[1] for process in processes if process.wait(timeout=120) != 0]
    assert not failures, failures
    with closing(userdb.connect(folder, readonly=True)) as connection:
        assert feedback.count(connection) == {"up": 80, "down": 80, "total": 160}
        questions = {item.question for item in feedback.listing(connection)}
    assert questions == {f"vraag {worker}-{row}" for worker in range(4) for row in range(40)}


# --- qa/users/feedback.py ------------------------------------------------------------------------


def test_feedback_is_checked_and_stored_with_its_citations(tmp_path: Path) -> None:
    with closing(userdb.connect(tmp_path)) as connection:
        stored = feedback.save(connection, a_feedback())
        feedback.save(connection, a_feedback(rating="up", comment="   ", citations=[]))
        assert stored.id == 1 and stored.created_at.endswith("+00:00")
        newest, oldest = feedback.listing(connection)
        assert newest.rating == "up" and newest.comment is None  # a blank comment is no comment
        assert oldest == stored and oldest.citations[0].passage_id == "kst-27925-781#2"
        assert [item.rating for item in feedback.listing(connection, "down")] == ["down"]
        assert feedback.count(connection) == {"up": 1, "down": 1, "total": 2}
    for changes, code in (({"rating": "meh"}, "unknown_value"), ({"question": "  "}, "question_empty"),
                          ({"comment": "x" * 2001}, "text_too_long"), ({"answer": "x" * 10_001}, "text_too_long")):
        with pytest.raises(InvalidQuery) as refused:
            a_feedback(**changes)
        assert refused.value.code == code


def test_the_csv_export_is_a_spreadsheet_that_runs_no_formulas() -> None:
    items = [a_feedback(comment='=HYPERLINK("http://evil")', answer="regel 1\nregel 2, met komma"), a_feedback(rating="up", comment=None)]
    buffer = io.StringIO()
    assert feedback.write_csv(items, buffer) == 2
    rows = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert rows[0] == list(feedback.CSV_COLUMNS) and len(rows) == 3
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["comment"] == "'=HYPERLINK(\"http://evil\")" and first["answer"] == "regel 1\nregel 2, met komma"
    assert first["letters"] == "kst-27925-781" and first["passages"] == "kst-27925-781#2" and first["generation"] == "gen-1"


# --- the API -------------------------------------------------------------------------------


@pytest.fixture
def index_copy(tmp_path: Path, fast_index_dir: Path) -> Path:
    return copy_index(fast_index_dir, tmp_path / "index")


def app_client(index: Path, fast_engine: Engine, **settings: Any) -> TestClient:
    engine = Engine(index_store.load(index), fast_engine.embedder, fast_engine.policy)
    return TestClient(create_app(Settings(index_dir=index, build_sample=False, **settings), engine=engine))


GOOD = {"rating": "down", "question": QUESTION, "answer": "Uiterlijk 11 september. [1]", "comment": "klopt niet",
        "citations": [{"n": 1, "letter_id": "kst-27925-781", "passage_id": "kst-27925-781#2", "quote": "Uiterlijk 11 september."}]}


def test_post_feedback_stores_it_with_time_and_generation_and_health_counts_it(index_copy: Path, fast_engine: Engine) -> None:
    with app_client(index_copy, fast_engine) as client:
        assert client.get("/api/health").json()["feedback"] == 0
        assert not userdb.exists(index_copy), "reading the count creates nothing"
        response = client.post("/api/feedback", json=GOOD)
        assert response.status_code == 201, response.text
        body = response.json()
        generation = (index_copy / "CURRENT").read_text().strip()
        assert body["generation"] == generation and body["id"] == 1
        assert client.post("/api/feedback", json={**GOOD, "rating": "up", "comment": None, "abstained": True}).status_code == 201
        assert client.get("/api/health").json()["feedback"] == 2
    with closing(userdb.connect(index_copy, readonly=True)) as connection:
        up, down = feedback.listing(connection)
    assert down.question == QUESTION and down.comment == "klopt niet" and down.generation == generation
    assert down.created_at == body["created_at"] and down.citations == (feedback.Cited(1, "kst-27925-781", "kst-27925-781#2", "Uiterlijk 11 september."),)
    assert up.abstained and up.comment is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"rating": "meh"}, "rating"), ({"rating": None}, "rating"), ({"question": " "}, "question is empty"),
        ({"question": "x" * 2001}, "question"), ({"comment": "x" * 2001}, "comment"), ({"answer": 5}, "answer"),
        ({"citations": [{"n": 0, "letter_id": "a", "passage_id": "a#1"}]}, "citations[0].n"),
        ({"citations": [{"n": 1, "letter_id": "a", "passage_id": "a#1", "title": "x"}]}, "title"),
        ({"citations": "kst-27925-781"}, "citations"), ({"stars": 5}, "stars"),
    ],
)
def test_bad_feedback_is_a_400_in_json_and_stores_nothing(index_copy: Path, fast_engine: Engine, change: dict[str, Any], named: str) -> None:
    with app_client(index_copy, fast_engine) as client:
        response = client.post("/api/feedback", json={**GOOD, **change})
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/json") and named in response.json()["detail"]
        assert client.post("/api/feedback", content=b"{", headers={"content-type": "application/json"}).status_code == 400
        assert client.get("/api/health").json()["feedback"] == 0


def test_feedback_is_rate_limited_like_the_other_posts(index_copy: Path, fast_engine: Engine) -> None:
    with app_client(index_copy, fast_engine, rate_limit="3/minute") as client:
        statuses = [client.post("/api/feedback", json=GOOD).status_code for _ in range(5)]
        assert statuses == [201] * 3 + [429] * 2
        assert client.get("/api/health").json()["feedback"] == 3  # health is never limited


READ_ONLY_CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    sys.path.insert(0, "tests")
    from fake_embedder import FakeEmbedder, FAST_POLICY
    from litestar.testing import TestClient
    from qa.index import local as index_store
    from qa.answer.engine import Engine
    from qa.server.app import create_app
    from qa.server.settings import Settings
    folder = Path(sys.argv[1])
    engine = Engine(index_store.load(folder), FakeEmbedder(), FAST_POLICY)
    with TestClient(create_app(Settings(index_dir=folder, build_sample=False), engine=engine)) as client:
        given = client.post("/api/feedback", json=json.loads(sys.argv[2]))
        health = client.get("/api/health")
        ask = client.post("/api/ask", json={"question": "Resolute Support"})
    print(json.dumps({"status": given.status_code, "body": given.json(), "health": health.json()["feedback"], "ask": ask.status_code}))
""")


def run_without_write_access(command: list[str]) -> subprocess.CompletedProcess[str]:
    """As a user who may not write the folder. Root may write anywhere, so as root the child drops that capability."""
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if not setpriv:
            pytest.skip("running as root without setpriv: cannot make a folder read-only for the test")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--inh-caps=-all", "--", *command]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture
def read_only(index_copy: Path) -> Iterator[Path]:
    modes = {path: path.stat().st_mode for path in [index_copy, *index_copy.rglob("*")]}
    for path in modes:
        path.chmod(0o555 if path.is_dir() else 0o444)
    yield index_copy
    for path, mode in modes.items():
        path.chmod(mode)


@pytest.mark.parametrize("with_database", [False, True])
def test_a_read_only_index_folder_refuses_feedback_clearly_and_keeps_serving(index_copy: Path, with_database: bool, request: pytest.FixtureRequest) -> None:
    if with_database:
        with closing(userdb.connect(index_copy)) as connection:
            feedback.save(connection, a_feedback())
    folder = request.getfixturevalue("read_only")
    result = run_without_write_access([sys.executable, "-c", READ_ONLY_CHILD, str(folder), json.dumps(GOOD)])
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 503 and "not writable" in outcome["body"]["detail"], outcome
    assert str(folder) not in outcome["body"]["detail"], "no server paths in a response"
    assert "read-only" in result.stderr and "feedback not stored" in result.stderr  # the log says where and why
    assert outcome["health"] == (1 if with_database else 0) and outcome["ask"] == 200
    listed = run_without_write_access([sys.executable, "-m", "qa", "feedback", "list", "--index", str(folder), "--json"])
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == (1 if with_database else 0)


# --- issue 29: two workers writing feedback and saved questions at once -----------------------------------

WORKER_CHILD = textwrap.dedent("""
    import json, sys, threading, time
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path
    sys.path.insert(0, "tests")
    from fake_embedder import FakeEmbedder, FAST_POLICY
    from litestar.testing import TestClient
    from qa.index import local as index_store
    from qa.answer.engine import Engine
    from qa.server.app import create_app
    from qa.server.settings import Settings
    folder, worker, writes, go = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    engine = Engine(index_store.load(folder), FakeEmbedder(), FAST_POLICY)
    statuses, slowest, writing = [], [0.0], threading.Event()
    with TestClient(create_app(Settings(index_dir=folder, build_sample=False), engine=engine)) as client:
        def write(n):
            question = f"Vraag {worker}-{n}: wanneer is de afbouw van Resolute Support klaar?"
            if n % 2:
                response = client.post("/api/feedback", json={"rating": "up", "question": question, "answer": "Nu. [1]"})
            else:
                response = client.post("/api/watches", json={"question": question})
            statuses.append(response.status_code if response.status_code < 400 else f"{response.status_code} {response.text[:200]}")
        def search():  # another visitor meanwhile: answered in milliseconds, whoever holds the database
            while writing.is_set():
                started = time.monotonic()
                assert client.get("/api/search", params={"q": "drone"}).status_code == 200
                slowest[0] = max(slowest[0], time.monotonic() - started)
                time.sleep(0.05)
        (go.parent / f"ready-{worker}").touch()
        while not go.exists():
            time.sleep(0.01)
        writing.set()
        with ThreadPoolExecutor(5) as pool:
            searching = pool.submit(search)
            list(pool.map(write, range(writes)))
            writing.clear()
            searching.result()
    print(json.dumps({"statuses": statuses, "slowest_search": slowest[0]}))
""")
LOCK_HELD_SECONDS = 1.5  # another process's write (a `qa watch check`, a reload's check) holding the database meanwhile


@pytest.mark.slow  # two server processes and a lock held 1.5 s: 3 s
def test_two_workers_write_feedback_and_saved_questions_at_once_without_losing_one(index_copy: Path) -> None:
    """Two server processes (as `qa serve --workers 2`) on one new data folder, four threads each writing feedback and
    saved questions, while a third process holds the write lock for 1.5 s. No write is lost or refused (WAL, the busy
    timeout and IMMEDIATE transactions held before too); but POST /api/watches waited for the lock on the event
    loop, so a search meanwhile waited as long (1.5 s); now the watch endpoints run in a thread."""
    go = index_copy.parent / "go"
    writes = 40
    children = [subprocess.Popen([sys.executable, "-c", WORKER_CHILD, str(index_copy), str(worker), str(writes), str(go)], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for worker in range(2)]
    deadline = time.monotonic() + 120
    while not all((go.parent / f"ready-{worker}").exists() for worker in range(2)):
        assert time.monotonic() < deadline and all(child.poll() is None for child in children), "the workers did not start"
        time.sleep(0.05)
    with closing(userdb.connect(index_copy)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        go.touch()
        time.sleep(LOCK_HELD_SECONDS)
        holder.execute("COMMIT")
    outcomes = []
    for child in children:
        out, err = child.communicate(timeout=180)
        assert child.returncode == 0, err[-3000:]
        assert "locked" not in err and "Traceback" not in err, err[-3000:]
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    for outcome in outcomes:
        assert outcome["statuses"] == [201] * writes, outcome["statuses"]
        assert outcome["slowest_search"] < 1.0, outcome["slowest_search"]
    with closing(userdb.connect(index_copy, readonly=True)) as connection:
        assert feedback.count(connection)["total"] == writes
        assert len(watches.watches(connection)) == writes
        questions = {item.question for item in feedback.listing(connection)} | {watch.question for watch in watches.watches(connection)}
    assert questions == {f"Vraag {worker}-{n}: wanneer is de afbouw van Resolute Support klaar?" for worker in range(2) for n in range(writes)}


# --- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def with_feedback(tmp_path: Path) -> Path:
    with closing(userdb.connect(tmp_path)) as connection:
        feedback.save(connection, a_feedback(created_at="2026-12-01T10:00:00+00:00"))
        feedback.save(connection, a_feedback(rating="up", comment=None, question="Hoeveel kost een drone?", created_at="2026-12-01T11:00:00+00:00"))
        feedback.save(connection, a_feedback(comment="\x1b]0;gehackt\x07", created_at="2026-12-01T12:00:00+00:00"))
    return tmp_path


def test_qa_feedback_list_shows_the_newest_first_and_filters(with_feedback: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["feedback", "list", "--index", str(with_feedback)])
    assert listed.exit_code == 0, listed.output
    assert listed.output.index("#3 down") < listed.output.index("#2 up") < listed.output.index("#1 down")
    assert "opmerking: verkeerde brief" in listed.output and "bronnen:   kst-27925-781" in listed.output
    assert "\x1b" not in listed.output  # a comment cannot drive the terminal
    downs = json.loads(runner.invoke(main, ["feedback", "list", "--rating", "down", "--json", "--index", str(with_feedback)]).output)
    assert [item["id"] for item in downs] == [3, 1] and downs[1]["citations"][0]["letter_id"] == "kst-27925-781"
    assert runner.invoke(main, ["feedback", "list", "--limit", "1", "--json", "--index", str(with_feedback)]).output.count('"id"') == 1
    bad = runner.invoke(main, ["feedback", "list", "--rating", "meh", "--index", str(with_feedback)])
    assert bad.exit_code == 2 and "meh" in bad.output


def test_qa_feedback_export_writes_csv_oldest_first(with_feedback: Path, tmp_path: Path) -> None:
    out = tmp_path / "feedback.csv"
    exported = CliRunner().invoke(main, ["feedback", "export", "--csv", "--out", str(out), "--index", str(with_feedback)])
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert [row["id"] for row in rows] == ["1", "2", "3"] and rows[1]["question"] == "Hoeveel kost een drone?"
    lines = CliRunner().invoke(main, ["feedback", "export", "--jsonl", "--rating", "up", "--index", str(with_feedback)]).output.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [2]


def test_qa_feedback_without_a_database_says_so_and_creates_nothing(tmp_path: Path) -> None:
    listed = CliRunner().invoke(main, ["feedback", "list", "--index", str(tmp_path / "index")])
    assert listed.exit_code == 0 and "Geen feedback in" in listed.output
    header = CliRunner().invoke(main, ["feedback", "export", "--index", str(tmp_path / "index")]).output
    assert header.strip() == ",".join(feedback.CSV_COLUMNS)
    assert not (tmp_path / "index").exists()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "qa.sqlite3").write_text("no database")
    damaged = CliRunner().invoke(main, ["feedback", "list", "--index", str(tmp_path / "bad")])
    assert damaged.exit_code == 2 and "Traceback" not in damaged.output

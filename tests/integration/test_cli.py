"""The `qa` command end to end, as a user runs it: real processes, real model, real index."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEST_MODEL

from qa.core.settings import SAMPLE_CORPUS

pytestmark = [pytest.mark.model, pytest.mark.slow]  # every test builds an index with the real model in a child `qa`


def qa(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QA_MODEL": TEST_MODEL}
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def letters_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("letters")
    for name in ("kst-27925-781.txt", "kst-33279-1.txt", "ah-tk-20232024-1076.pdf"):
        shutil.copy(SAMPLE_CORPUS / "letters" / name, folder / name)
    return folder


def test_build_ask_search_info_add_remove(tmp_path: Path, letters_dir: Path) -> None:
    index = tmp_path / "index"
    built = qa("index", "build", str(letters_dir), "--index", str(index))  # with progress, into a pipe
    assert built.returncode == 0, built.stderr
    assert "3 letters" in built.stdout
    passages = int(built.stdout.split(" passages")[0].split()[-1])
    assert f"Embedding: {passages:,}/{passages:,} passages (100%)" in built.stderr  # progress lines, not a bar drawn with \r
    assert "\r" not in built.stderr

    asked = qa("ask", "Wanneer moet de terugtrekking uit Afghanistan afgerond zijn?", "--index", str(index), "--json")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert not answer["abstained"]
    assert answer["citations"][0]["letter_id"] == "kst-27925-781"
    assert any("11 september" in c["quote"] for c in answer["citations"])

    human = qa("ask", "Wanneer moet de terugtrekking uit Afghanistan afgerond zijn?", "--index", str(index))
    assert "Bronnen:" in human.stdout and "https://zoek.officielebekendmakingen.nl/kst-27925-781.html" in human.stdout

    found = qa("search", "Sinterklaasintocht", "--index", str(index), "--json", "-k", "2", "--type", "antwoord_kamervragen")
    results = json.loads(found.stdout)["results"]
    assert results and all(r["letter_id"] == "ah-tk-20232024-1076" for r in results)

    info = json.loads(qa("index", "info", "--index", str(index), "--json").stdout)
    assert info["letters"] == 3 and info["model"] == TEST_MODEL

    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(SAMPLE_CORPUS / "letters" / "kst-34700-6.txt", extra)
    added = qa("index", "add", str(extra), str(letters_dir), "--index", str(index), "--no-progress")
    assert added.returncode == 0, added.stderr
    assert "added 1" in added.stdout and "unchanged 3" in added.stdout

    removed = qa("index", "remove", "kst-33279-1", "--index", str(index))
    assert removed.returncode == 0 and "removed 1" in removed.stdout
    assert "embedding" not in removed.stderr  # removing loads no model and embeds nothing
    human = qa("index", "info", "--index", str(index))
    assert human.returncode == 0 and "letters:   3, dated " in human.stdout and "{" not in human.stdout
    assert json.loads(qa("index", "info", "--index", str(index), "--json").stdout)["letters"] == 3


def test_bad_input_gives_clear_messages_and_keeps_the_index(tmp_path: Path, letters_dir: Path) -> None:
    index = tmp_path / "index"
    assert qa("index", "build", str(letters_dir), "--index", str(index), "--no-progress").returncode == 0
    live = (index / "CURRENT").read_text()

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "junk.pdf").write_bytes(b"not a pdf at all")
    only_bad = qa("index", "build", str(bad), "--index", str(index))
    assert only_bad.returncode == 2 and "no readable letters" in only_bad.stderr
    assert (index / "CURRENT").read_text() == live

    shutil.copy(SAMPLE_CORPUS / "letters" / "kst-34700-6.txt", bad)
    partly = qa("index", "add", str(bad), "--index", str(index), "--no-progress")
    assert partly.returncode == 3  # EXIT_PARTIAL
    assert "junk.pdf" in partly.stderr and "added 1" in partly.stdout

    empty = qa("ask", "   ", "--index", str(index))
    assert empty.returncode == 2 and "empty" in empty.stderr
    assert qa("ask", "x" * 2001, "--index", str(index)).returncode == 2
    bad_date = qa("search", "defensie", "--from", "12-05-2021", "--index", str(index))
    assert bad_date.returncode == 2 and "not a date" in bad_date.stderr
    missing = qa("ask", "Wat?", "--index", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "qa index build" in missing.stderr
    assert "Traceback" not in missing.stderr + empty.stderr + partly.stderr
    unknown = qa("index", "remove", "kst-0-0", "--index", str(index))
    assert unknown.returncode == 2 and "not in the index" in unknown.stderr


def test_eval_reports_recall_and_declines(tmp_path: Path, letters_dir: Path) -> None:
    index = tmp_path / "index"
    assert qa("index", "build", str(letters_dir), "--index", str(index), "--no-progress").returncode == 0
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"question": "Wanneer moet de terugtrekking uit Afghanistan afgerond zijn?", "doc_id": "kst-27925-781",
                    "answer_span": "Uiterlijk 11 september dient dit te zijn afgerond", "answerable": True}) + "\n"
        + json.dumps({"question": "Wanneer gaat Lelystad Airport open voor vakantievluchten?", "doc_id": None,
                      "answer_span": None, "answerable": False}) + "\n"
    )
    result = qa("eval", str(questions), "--index", str(index), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["results"]
    assert report["hybrid"]["recall@5"] == 1.0 and report["lexical"]["recall@1"] == 1.0
    assert report["hybrid"]["declined_unanswerable"] == 1.0

"""The `qa` command as a new user meets it (issue 14, items 11, 12 and 14), in-process and with the
deterministic embedder of tests/fake_embedder.py: real index folders, real sockets, no model."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fake_embedder import FakeEmbedder

import qa.answer.engine
import qa.embed.embedding
import qa.server.serve
from qa.bootstrap import load_engine
from qa.cli import describe_index, main
from qa.core import progress as reporting
from qa.core.settings import SAMPLE_CORPUS
from qa.index import local as index_store
from qa.ingest.reading import read_letters

LETTERS = ("kst-27925-781.txt", "kst-33279-1.txt", "kst-34700-6.txt")


def _no_model(*_: object, **__: object) -> None:
    raise AssertionError("the embedding model was loaded")


@pytest.fixture
def small_index(tmp_path: Path, fake_embedder: FakeEmbedder) -> Path:
    """Three sample letters, indexed with the fake embedder."""
    letters = read_letters([SAMPLE_CORPUS / "letters" / name for name in LETTERS]).letters
    folder = tmp_path / "index"
    index_store.update(folder, fake_embedder, add=letters, replace_all=True)
    return folder


def _use_model(monkeypatch: pytest.MonkeyPatch, make: object) -> None:
    """What loading the model gives, wherever it is loaded (the CLI's index commands and the engine)."""
    monkeypatch.setattr(qa.embed.embedding, "Embedder", make)
    monkeypatch.setattr(qa.answer.engine, "Embedder", make)


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch, fake_embedder: FakeEmbedder) -> FakeEmbedder:
    _use_model(monkeypatch, lambda name=None, device=None, backend=None: fake_embedder)
    return fake_embedder


# --- item 11: `qa index add` takes letters only, `qa index remove` needs no model, `qa serve` checks its port ----------


def test_a_csv_named_on_the_command_line_is_skipped_not_indexed(tmp_path: Path, small_index: Path, fake_model: FakeEmbedder) -> None:
    table = tmp_path / "besluiten.csv"
    table.write_text("datum;onderwerp\n2021-05-12;Den Haag, 12 mei 2021. De minister van Defensie schrijft over drones.\n", encoding="utf-8")
    letter = tmp_path / "kst-9-9.txt"
    letter.write_text("Den Haag, 3 mei 2021\n\nDe proef met drones begon op 1 maart 2021 boven de Noordzee.\n", encoding="utf-8")
    before = set(index_store.load(small_index).letters)

    result = CliRunner().invoke(main, ["index", "add", str(table), str(letter), "--index", str(small_index), "--no-progress"])

    assert result.exit_code == 3, result.output  # EXIT_PARTIAL, as for any unreadable file
    assert f"skipped: {table}: not a letter file (.csv)" in result.stderr
    assert "added 1" in result.stdout
    index = index_store.load(small_index)
    assert set(index.letters) == before | {"kst-9-9"}
    assert not any(str(item.source).endswith(".csv") for item in index.letters.values())


def test_only_non_letter_files_change_nothing(tmp_path: Path, small_index: Path, fake_model: FakeEmbedder) -> None:
    (tmp_path / "notes.docx").write_bytes(b"PK\x03\x04 not a letter")
    (tmp_path / "README").write_text("Den Haag, 3 mei 2021. Over drones.", encoding="utf-8")
    live = (small_index / "CURRENT").read_text()
    result = CliRunner().invoke(main, ["index", "add", str(tmp_path / "notes.docx"), str(tmp_path / "README"), "--index", str(small_index)])
    assert result.exit_code == 2 and "no readable letters" in result.stderr, result.output
    assert "notes.docx: not a letter file (.docx)" in result.stderr and "README: not a letter file (no extension)" in result.stderr
    assert (small_index / "CURRENT").read_text() == live


def test_remove_keeps_the_other_letters_vectors_without_loading_the_model(small_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_model(monkeypatch, _no_model)
    before = index_store.load(small_index)
    kept = {passage.id: before.passage_vectors([row])[0] for passage_id, row in before.rows.items()
            if (passage := before.passages[row]).letter_id != "kst-33279-1"}

    result = CliRunner().invoke(main, ["index", "remove", "kst-33279-1", "--index", str(small_index)])

    assert result.exit_code == 0, result.output
    assert "removed 1" in result.stdout and "embedded 0 passages" in result.stdout
    assert "embedding" not in result.stderr, result.stderr  # no "embedding 0 passages of 0 letters"
    after = index_store.load(small_index)
    assert set(after.letters) == set(before.letters) - {"kst-33279-1"} and after.model == before.model
    assert {passage.id for passage in after.passages} == set(kept)
    for passage_id, vector in kept.items():
        np.testing.assert_array_equal(after.passage_vectors([after.rows[passage_id]])[0], vector)


def test_update_without_an_embedder_refuses_to_embed(small_index: Path, tmp_path: Path) -> None:
    """Removing needs no model; anything that would need one is a bug, and the index stays as it was."""
    live = (small_index / "CURRENT").read_text()
    letter = read_letters([SAMPLE_CORPUS / "letters" / "kst-31568-100.txt"]).letters
    with pytest.raises(ValueError, match="no embedder"):
        index_store.update(small_index, None, add=letter)
    assert (small_index / "CURRENT").read_text() == live
    with pytest.raises(index_store.IndexStateError, match="no index in"):
        index_store.update(tmp_path / "none", None, remove=["kst-27925-781"])


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_serve_on_a_busy_port_fails_at_once_before_loading(tmp_path: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qa.server.serve, "load_engine", _no_model)
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["serve", "--port", str(busy_port), "--index", str(tmp_path / "index")])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"Error: port {busy_port} on 127.0.0.1 is already in use (another qa serve?); stop it or choose another with --port"
    ]
    assert time.perf_counter() - started < 2
    assert not (tmp_path / "index").exists()  # nothing was built


def test_the_port_check_lets_a_free_port_pass_and_names_a_bad_host() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    qa.server.serve.check_port("127.0.0.1", free)
    qa.server.serve.check_port("127.0.0.1", free)  # and again: the check leaves the port free for uvicorn
    with pytest.raises(qa.server.serve.SettingsError, match=r"cannot listen on 192\.0\.2\.1:"):
        qa.server.serve.check_port("192.0.2.1", free)  # TEST-NET-1, an address of no interface here


@pytest.mark.slow  # a child process
def test_qa_serve_on_a_busy_port_as_a_process(tmp_path: Path, busy_port: int) -> None:
    env = {**os.environ, "QA_INDEX": str(tmp_path / "index")}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "qa", "serve", "--port", str(busy_port)], capture_output=True, text=True, env=env, timeout=120)
    seconds = time.perf_counter() - started
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"Error: port {busy_port} on 127.0.0.1 is already in use (another qa serve?); stop it or choose another with --port"
    ]
    assert "Serving" not in result.stdout + result.stderr and seconds < 15, seconds  # was ~20 s of loading first


# --- item 12: messages --------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["ask", "Wat?"], ["search", "drones"], ["index", "info"], ["index", "remove", "kst-1-1"], ["model", "info"]])
def test_no_index_names_the_absolute_folder_and_the_way_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    monkeypatch.delenv("QA_INDEX", raising=False)
    _use_model(monkeypatch, _no_model)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [f"Error: no index in {tmp_path / 'index'}; build one with `qa index build` or pass --index DIR"]
    assert not (tmp_path / "index").exists()


def test_first_start_says_where_it_builds_the_sample_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_model: FakeEmbedder) -> None:
    monkeypatch.chdir(tmp_path)
    said: list[str] = []
    with pytest.raises(index_store.IndexStateError, match=f"no index in {tmp_path / 'index'}\\. Build one"):
        load_engine(Path("index"), build_sample=False, say=said.append)
    engine = load_engine(Path("index"), say=said.append)
    assert said[0].startswith(f"No index in {tmp_path / 'index'} yet: building one from the 43 bundled sample letters")
    assert len(engine.index.letters) == 43
    said.clear()
    load_engine(Path("index"), say=said.append)
    assert said[0] == f"Loading the index in {tmp_path / 'index'} and its model ..."


def test_index_info_reads_like_a_summary_and_json_is_for_machines(fast_index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_model(monkeypatch, _no_model)
    runner = CliRunner()
    human = runner.invoke(main, ["index", "info", "--index", str(fast_index_dir)])
    machine = runner.invoke(main, ["index", "info", "--index", str(fast_index_dir), "--json"])
    assert human.exit_code == 0 and machine.exit_code == 0, human.output + machine.output
    summary = json.loads(machine.stdout)
    assert summary["letters"] == 43 and summary["folder"] == str(fast_index_dir.absolute())
    lines = human.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["index", "built", "model", "letters", "types", "passages", "size"]
    assert not any(mark in human.stdout for mark in "{}[]'"), human.stdout  # no Python dicts and lists
    low, high = summary["date_range"]
    assert f"letters:   43, dated {low} to {high}" in lines
    assert f"model:     test-hashed-words ({summary['dimension']} dimensions, run by test)" in lines
    assert f"passages:  {summary['passages']:,}, vector search exact (flat)" in lines
    most = max(summary["types"].items(), key=lambda item: item[1])
    assert lines[4].startswith(f"types:     {most[0]} {most[1]}")


def test_describe_index_without_dates_or_types() -> None:
    text = describe_index({"folder": "/x/index", "generation": "gen-1", "format_version": 2, "built_at": "2026-01-01T00:00:00+00:00",
                           "model": "m", "dimension": 8, "letters": 1234, "passages": 5678, "vector_index": "ivf",
                           "types": {}, "date_range": None, "size_bytes": 2_500_000})
    assert "letters:   1,234\n" in text and "types:     none" in text
    assert "passages:  5,678, vector search approximate (IVF)" in text and text.endswith("size:      2.5 MB on disk")


# --- item 14: progress in a log -----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_at_each_tenth() -> None:
    lines: list[str] = []
    clock = Clock()
    bar = reporting.ProgressLines(1000, "Embedding", "passages", write=lines.append, clock=clock)
    for _ in range(40):
        clock.now += 1
        bar.update(25)
    bar.close()
    assert len(lines) == 10, lines
    assert lines[0] == "Embedding: 100/1,000 passages (10%), 4 s, 25.0 passages/s, about 36 s left"
    assert lines[-1] == "Embedding: 1,000/1,000 passages (100%), 40 s, 25.0 passages/s"


def test_progress_lines_at_least_every_30_seconds_when_slow() -> None:
    lines: list[str] = []
    clock = Clock()
    bar = reporting.ProgressLines(1000, "Embedding", "passages", write=lines.append, clock=clock)
    for _ in range(9):  # 9 % in 90 s: no tenth reached, but a line every 30 s
        clock.now += 10
        bar.update(10)
    assert lines == ["Embedding: 30/1,000 passages (3%), 30 s, 1.0 passages/s, about 970 s left",
                     "Embedding: 60/1,000 passages (6%), 60 s, 1.0 passages/s, about 940 s left",
                     "Embedding: 90/1,000 passages (9%), 90 s, 1.0 passages/s, about 910 s left"]
    bar.close()  # an interrupted job ends with where it got to
    assert lines[-1].startswith("Embedding: 90/1,000")


def test_off_a_terminal_progress_is_lines_not_a_bar(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    assert isinstance(reporting.progress(10, "Embedding", "passages", stream), reporting.ProgressLines)
    slices = [list(range(i, min(i + 32, 300))) for i in range(0, 300, 32)]
    assert [len(s) for s in qa.embed.embedding._progress(slices, True, 300)] == [len(s) for s in slices]
    err = capsys.readouterr().err
    assert "\r" not in err and re.fullmatch(r"Embedding: 300/300 passages \(100%\), 0 s, [\d.]+ passages/s", err.splitlines()[-1])
    assert len(err.splitlines()) == 10  # 9 slices of 32 (each over a tenth) and the last 12


def test_slices_are_fine_enough_for_a_line_per_tenth_in_whole_batches() -> None:
    assert reporting.finer_slices(256, 1034, 32) == 128  # ~103 per tenth, rounded up to 4 batches of 32
    assert reporting.finer_slices(256, 100_000, 32) == 256  # never larger than the memory bound
    assert reporting.finer_slices(256, 30, 32) == 32  # never less than a batch
    assert reporting.finer_slices(256, 0, 32) == 32


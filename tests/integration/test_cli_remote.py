"""`qa ask` / `qa search` against a running `qa serve` (issue 14, item 10): the same output as answering
locally, without loading numpy, FAISS or torch; one clear line and exit 2 when no server answers.

The real-server tests share the session's `qa serve` (tests/conftest.py `live_server`, the real model
on the web tests' index); the failure cases need no server at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import free_port

from qa.cli import main

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "Wanneer moet de terugtrekking uit Afghanistan afgerond zijn?"
HEAVY = ("numpy", "faiss", "torch", "sentence_transformers", "bm25s", "scipy")


def qa(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "QA_URL"}
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**environment, "PYTHONPATH": str(ROOT), **env})


@pytest.mark.slow
def test_ask_and_search_through_the_server_print_what_the_local_path_prints(live_server: str, web_index: Path) -> None:
    remote = qa("ask", QUESTION, "--url", live_server)
    assert remote.returncode == 0, remote.stderr
    local = qa("ask", QUESTION, "--index", str(web_index))  # loads the model: the slow way, for comparison
    assert local.returncode == 0, local.stderr
    assert remote.stdout == local.stdout and "Bronnen:" in remote.stdout and "kst-27925-781" in remote.stdout
    remote_json = json.loads(qa("ask", QUESTION, "--json", "--url", live_server).stdout)
    assert remote_json["citations"][0]["letter_id"] == "kst-27925-781"
    local_json = json.loads(qa("ask", QUESTION, "--json", "--index", str(web_index)).stdout)
    assert remote_json.keys() == local_json.keys() and remote_json["answer"] == local_json["answer"]  # the local answer's fields, no more

    arguments = ("search", "Resolute Support", "-k", "3", "--type", "brief_regering", "--json")
    by_env = qa(*arguments, QA_URL=live_server)  # $QA_URL works like --url
    searched = qa(*arguments, "--index", str(web_index))
    assert by_env.returncode == searched.returncode == 0, by_env.stderr + searched.stderr
    assert json.loads(by_env.stdout) == json.loads(searched.stdout) and len(json.loads(by_env.stdout)["results"]) == 3


@pytest.mark.slow
def test_the_client_loads_none_of_the_heavy_libraries_and_answers_fast(live_server: str) -> None:
    """What makes `qa ask --url` fast is what it does not import; the wall time is measured in bench/cold.py."""
    started = time.perf_counter()
    traced = qa("ask", QUESTION, "--url", live_server, PYTHONPROFILEIMPORTTIME="1")
    seconds = time.perf_counter() - started
    assert traced.returncode == 0, traced.stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in traced.stderr.splitlines() if line.startswith("import time:")}
    assert "httpx" in imported and "click" in imported
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
    assert seconds < 5, f"qa ask --url took {seconds:.1f} s"  # about 0.5 s on a quiet machine (docs/benchmarks.md)


def test_no_server_at_the_url_is_one_line_and_exit_2() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for arguments in (["ask", QUESTION, "--url", url], ["search", "drone", "--url", url]):
        result = CliRunner().invoke(main, arguments)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: cannot reach a qa server at " + url) and "qa serve" in lines[0]
    via_env = CliRunner().invoke(main, ["ask", QUESTION], env={"QA_URL": url})
    assert via_env.exit_code == 2 and "cannot reach a qa server" in via_env.output


def test_bad_urls_options_and_input_are_refused_before_any_request() -> None:
    runner = CliRunner()
    url = f"http://127.0.0.1:{free_port()}"
    not_a_url = runner.invoke(main, ["ask", QUESTION, "--url", "localhost:8000"])
    assert not_a_url.exit_code == 2 and "is not a server address" in not_a_url.output
    both = runner.invoke(main, ["ask", QUESTION, "--url", url, "--index", "index"])
    assert both.exit_code == 2 and "--index cannot be used with --url" in both.output
    bad_type = runner.invoke(main, ["search", "drone", "--type", "brief", "--url", url])
    assert bad_type.exit_code == 2 and "'brief' is not one of" in bad_type.output and "reach" not in bad_type.output
    empty = runner.invoke(main, ["ask", "  ", "--url", url])
    assert empty.exit_code == 2 and "empty" in empty.output


def test_a_server_that_is_not_qa_is_said_plainly(tmp_path: Path) -> None:
    """Something else on the port (here a static file server) is not a qa server: one line, exit 2."""
    port = free_port()
    other = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            result = CliRunner().invoke(main, ["search", "drone", "--url", f"http://127.0.0.1:{port}"])
            if "cannot reach" not in result.output or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert result.exit_code == 2 and "answered 404" in result.output and len(result.output.strip().splitlines()) == 1
    finally:
        other.terminate()
        other.wait(timeout=10)

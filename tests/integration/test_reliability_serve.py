"""A real `qa serve` on loopback: a steady stream of /api/ask while the index is rebuilt by `qa index add` in
another process and reloaded (admin endpoint, then the CURRENT watcher) — zero failed requests, new answers
afterwards; security headers and a rate limit over real HTTP; and the quick load test with the server's RSS."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import TEST_MODEL, copy_index, stop_process

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "test-admin-key-0123456789"
NEW_LETTER = (
    "Den Haag, 2 juni 2031\n\nBRIEF VAN DE MINISTER VAN DEFENSIE\n\nGeachte voorzitter,\n\n"
    "De proef met onderwaterdrones bij Den Helder start op 14 juli 2031. De marine test daar twaalf onbemande vaartuigen.\n\n"
    "De Minister van Defensie"
)
NEW_QUESTION = "Wanneer start de proef met onderwaterdrones bij Den Helder?"
OLD_QUESTION = "Wanneer moet de afbouw van Resolute Support afgerond zijn?"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(index: Path, log: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    command = [sys.executable, "-m", "qa", "serve", "--port", str(port), "--index", str(index), "--no-build-sample", *extra]
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/api/health", timeout=2).json()["ready"]:
                return process, url
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "qa serve did not start"
        time.sleep(0.5)


@pytest.fixture()
def served(tmp_path: Path, web_index: Path) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    index = copy_index(web_index, tmp_path / "index")
    process, url = start_server(index, tmp_path / "server.log", "--watch-index", "1", env={"QA_ADMIN_KEY": ADMIN_KEY})
    try:
        yield process, url, index
    finally:
        stop_process(process)


class AskStream:
    """Clients asking one after another until stopped; records every failure."""

    def __init__(self, url: str, clients: int = 3) -> None:
        self.url, self.ok, self.failures = url, 0, []  # type: ignore[var-annotated]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(clients)]

    def _loop(self) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as client:
            while not self._stop.is_set():
                try:
                    response = client.post("/api/ask", json={"question": OLD_QUESTION, "k": 3})
                    if response.status_code == 200 and response.json()["citations"]:
                        self.ok += 1
                    else:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))

    def __enter__(self) -> AskStream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)


def index_add(index: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qa", "index", "add", str(folder), "--index", str(index), "--no-progress"],
                          capture_output=True, text=True, env={**os.environ, "QA_MODEL": TEST_MODEL}, timeout=300)


def cited(url: str, question: str) -> set[str]:
    body = httpx.post(f"{url}/api/ask", json={"question": question}, timeout=120).json()
    return {citation["letter_id"] for citation in body["citations"]}


def test_reindex_while_serving_drops_no_request(served: tuple[subprocess.Popen, str, Path], tmp_path: Path) -> None:
    _, url, index = served
    before = httpx.get(f"{url}/api/health").json()
    assert "kst-99999-1" not in cited(url, NEW_QUESTION)
    letters = tmp_path / "new"
    letters.mkdir()
    (letters / "kst-99999-1.txt").write_text(NEW_LETTER)
    with AskStream(url) as stream:
        time.sleep(1)
        added = index_add(index, letters)
        assert added.returncode == 0, added.stderr
        refused = httpx.post(f"{url}/api/admin/reload", headers={"authorization": "Bearer wrong"})
        assert refused.status_code == 401
        reload = httpx.post(f"{url}/api/admin/reload", headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=120)
        assert reload.status_code == 200, reload.text
        time.sleep(2)  # requests keep flowing on the new index
    assert stream.failures == [] and stream.ok >= 5, stream.failures[:3]
    after = httpx.get(f"{url}/api/health").json()
    assert after["generation"] != before["generation"] and after["letters"] == before["letters"] + 1
    assert after["generation"] == (index / "CURRENT").read_text().strip()
    assert "kst-99999-1" in cited(url, NEW_QUESTION)
    assert httpx.get(f"{url}/api/letters/kst-99999-1").status_code == 200

    # The watcher picks up the next rebuild by itself; a damaged one is refused and the old index keeps serving.
    (letters / "kst-99999-1.txt").unlink()
    (letters / "kst-99999-2.txt").write_text(NEW_LETTER.replace("Den Helder", "Vlissingen"))
    assert index_add(index, letters).returncode == 0
    deadline = time.monotonic() + 30
    while httpx.get(f"{url}/api/health").json()["letters"] != before["letters"] + 2:
        assert time.monotonic() < deadline, "the watcher did not reload"
        time.sleep(0.5)
    good = httpx.get(f"{url}/api/health").json()
    broken = index / "gen-99999999T999999999999"
    shutil.copytree(index / good["generation"], broken)
    (broken / "vectors.faiss").write_bytes(b"garbage")
    (index / "CURRENT").write_text(broken.name + "\n")
    reload = httpx.post(f"{url}/api/admin/reload", headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=120)
    assert reload.status_code == 409 and "damaged index" in reload.json()["detail"]
    health = httpx.get(f"{url}/api/health").json()
    assert health["generation"] == good["generation"] and "damaged index" in health["reload_error"]
    assert "kst-99999-2" in cited(url, NEW_QUESTION.replace("Den Helder", "Vlissingen"))


def test_headers_rate_limit_and_quick_load_over_real_http(tmp_path: Path, web_index: Path) -> None:
    process, url = start_server(web_index, tmp_path / "server.log")
    try:
        page = httpx.get(f"{url}/letters/kst-27925-781")
        assert "script-src 'self'" in page.headers["content-security-policy"] and page.headers["x-frame-options"] == "DENY"
        assert httpx.post(f"{url}/api/admin/reload").status_code == 403  # no QA_ADMIN_KEY: disabled
        load = subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"), "--url", url, "--quick", "--pid", str(process.pid)],
                              capture_output=True, text=True, timeout=300)
        report = json.loads(load.stdout)
        (tmp_path / "load.json").write_text(load.stdout)
        print(load.stdout)
        assert load.returncode == 0, load.stderr + load.stdout
        assert report["errors"] == 0 and report["requests"] > 20 and report["rss_mb_end"] - report["rss_mb_start"] < 50
    finally:
        stop_process(process)
    process, url = start_server(web_index, tmp_path / "limited.log", env={"QA_RATE_LIMIT": "10/minute"})
    try:
        statuses = [httpx.get(f"{url}/api/letters").status_code for _ in range(12)]
        assert statuses == [200] * 10 + [429] * 2
        assert httpx.get(f"{url}/api/health").status_code == 200
    finally:
        stop_process(process)

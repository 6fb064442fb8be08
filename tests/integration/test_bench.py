"""The benchmark scripts in their --quick mode, so they cannot rot; their figures are not judged here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from qa.embed import onnx_runtime

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run(script: str, out: Path, *extra: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([sys.executable, str(BENCH / script), "--quick", "--out", str(out), *extra],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return out.read_text()


def section(report: str, name: str) -> str:
    match = re.search(rf"<!-- bench:{name} -->(.*)<!-- /bench:{name} -->", report, re.S)
    assert match, f"no {name} section in the report"
    assert "cores" in match.group(1) and "|---|" in match.group(1)
    return match.group(1)


def test_indexing(shared_corpus: Path, tmp_path: Path) -> None:
    text = section(run("indexing.py", tmp_path / "report.md"), "indexing")
    ratio = float(re.search(r"overhead ratio.*?\*\*([\d.]+)\*\*", text).group(1))
    assert ratio > 0.5  # a build faster than half its own embedding time would mean the timing is wrong
    assert re.search(r"incremental `index add` of 2 documents \| [\d.]+ s \(\d+ chunks embedded", text)


def test_latency(sample_index_dir: Path, shared_corpus: Path, tmp_path: Path) -> None:
    text = section(run("latency.py", tmp_path / "report.md", "--index", str(sample_index_dir)), "latency")
    rows = re.findall(r"^\| (\d) \| (\d+) \| (\d+) \| [\d.]+ \|.*\| (\d+) \|$", text, re.M)
    assert [(workers, errors) for workers, _, _, errors in rows] == [("1", "0"), ("2", "0")]


@pytest.mark.parametrize("script, name", [("scale.py", "scale"), ("peer.py", "peer")])
def test_scale_and_peer(script: str, name: str, shared_corpus: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    report.write_text("# Benchmarks\n\n<!-- bench:other -->\nkept\n<!-- /bench:other -->\n")
    text = run(script, report)
    section(text, name)
    assert "kept" in text  # a script rewrites only its own section


def test_watches_and_kamervragen(sample_index_dir: Path, shared_corpus: Path, tmp_path: Path) -> None:
    report = run("watches.py", tmp_path / "report.md", "--index", str(sample_index_dir))
    text = section(report, "watches")
    assert re.search(r"\| passages read \| (\d+) \(the new letters have \1;", text), text  # only the new letters' passages
    assert re.search(r"`GET /api/kamervragen\?q=…` over HTTP \(0 errors\)", section(report, "kamervragen"))


def test_cold(sample_index_dir: Path, tmp_path: Path) -> None:
    text = section(run("cold.py", tmp_path / "report.md", "--index", str(sample_index_dir)), "cold")
    assert re.search(r"\| `qa ask --url` against a running `qa serve` .*\| \*\*[\d.]+ s\*\*", text)
    assert re.search(r"\| load the model's weights \| [\d.]+ \|", text)


def test_ray_embedding(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    short = Path(tempfile.mkdtemp(prefix="qa-test-", dir="/tmp"))  # Ray's sockets need a short TMPDIR (tests/integration/test_cluster.py)
    try:
        env = {**os.environ, "TMPDIR": str(short), "PYTHONPATH": str(BENCH.parent)}
        text = section(run("ray_embedding.py", tmp_path / "report.md", env=env), "ray_embedding")
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert re.search(r"\| local Ray cluster, \d+ actors \(cpu, one thread each\) \| (\d+) \|", text), text
    assert "the same passages and sentence spans" in text


def test_stores(shared_corpus: Path, tmp_path: Path) -> None:
    pytest.importorskip("pymilvus", reason="the Milvus store is not installed: pip install -c constraints.txt -e '.[milvus]'")
    text = section(run("stores.py", tmp_path / "report.md"), "stores")
    assert re.search(r"^\| 20,000 \| local \(FAISS \+ bm25s\) \| flat \|", text, re.M) and re.search(r"^\| 20,000 \| Milvus Lite \| flat \|", text, re.M)
    # Exact search in both stores, the same tokens: the same BM25 scores for every question (which of the repeated texts
    # tied at the cut each store keeps may differ).
    assert re.search(r"^\| 20,000 \| 1\.000 \| ", text, re.M), text


def test_backends(tmp_path: Path) -> None:
    text = section(run("backends.py", tmp_path / "report.md"), "backends")
    rows = re.findall(r"^\| (torch|torch-bf16|onnx|onnx-int8) \| [\d.]+ s \| ([\d.]+) \| [\d.]+× \| ([\d.]+) ms \| [\d.]+× \| ([\d.]+) \| \d+ \(\d+%\) \|$", text, re.M)
    assert [row[0] for row in rows] == onnx_runtime.runnable_backends(), text
    assert onnx_runtime.cpu_has_bf16() or "torch-bf16 is left out: this CPU has no bf16 instructions" in text
    assert all(float(rate) > 0 and float(p50) > 0 for _, rate, p50, _ in rows)
    cosines = {backend: float(cosine) for backend, _, _, cosine in rows}
    assert cosines["onnx"] > 0.9999 and cosines["onnx-int8"] > 0.98 and cosines.get("torch-bf16", 1.0) > 0.999  # int8 moves them a little
    assert re.search(r"averages \d+ tokens, [\d.]+ GFLOP .* ceiling, .* is \d+ GFLOP/s", text), text

"""The CLI's cold path: what one `qa ask` costs from a shell, where the time goes, and `qa ask --url` against a
running `qa serve`, which skips all of it.

    python bench/cold.py                        # the sample index (built first), 5 runs of each command
    python bench/cold.py --index /tmp/e5        # another index
    python bench/cold.py --before DIR           # also time the same commands on another checkout (a "before" column)
    python bench/cold.py --quick                # 1 run each (the test suite)

Every figure is the median wall time of fresh processes (`python -m qa ...`), as a user or a script meets it.
The phases of the local path are timed inside one child: imports, loading the index, loading the model
(sentence-transformers and torch included), and the first answer.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, parser, table, write_section  # noqa: E402

QUESTION = "Wanneer moet de terugtrekking uit Afghanistan afgerond zijn?"
PHASES = """
import json, sys, time
started = time.perf_counter()
marks = {}
from qa.index import local as index_store
from qa.embed.embedding import Embedder
from qa.answer.engine import Engine
marks["imports (qa.answer.engine, numpy, FAISS, bm25s)"] = time.perf_counter()
index = index_store.load(__import__("pathlib").Path(sys.argv[1]))
marks["load the index"] = time.perf_counter()
import torch
marks["import torch"] = time.perf_counter()
import sentence_transformers
marks["import sentence-transformers (transformers, scikit-learn, scipy)"] = time.perf_counter()
embedder = Embedder(index.model, backend=index.backend)
marks["load the model's weights"] = time.perf_counter()
Engine(index, embedder).ask(sys.argv[2])
marks["first answer (embedding the question, retrieval, reader)"] = time.perf_counter()
last, out = started, {}
for name, at in marks.items():
    out[name] = at - last
    last = at
print(json.dumps(out))
"""


def run(tree: Path, *args: str, env: dict[str, str] | None = None) -> float:
    """Seconds of one fresh `python -m qa ARGS` (or `python ARGS` when the first is -c) in `tree`."""
    command = [sys.executable, *args] if args[0] == "-c" else [sys.executable, "-m", "qa", *args]
    environment = {**os.environ, "PYTHONPATH": str(tree), **(env or {})}
    environment.pop("QA_URL", None)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=tree, env=environment, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {tree}: {result.stderr[-2000:]}")
    return seconds


def median(tree: Path, runs: int, *args: str) -> float:
    return statistics.median(run(tree, *args) for _ in range(runs))


def serve(index: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "qa", "serve", "--port", str(port), "--index", str(index), "--no-build-sample"],
                               cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as response:
                if json.load(response)["ready"]:
                    return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("qa serve did not become ready")


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--index", type=Path, default=None, help="Index to ask [default: the sample letters, built first].")
    arguments.add_argument("--before", type=Path, default=None, help="Another checkout to time the same commands on.")
    arguments.add_argument("--runs", type=int, default=5)
    args = arguments.parse_args()
    runs = 1 if args.quick else args.runs
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as workspace:
        index = args.index
        if index is None:
            index = Path(workspace) / "index"
            run(ROOT, "index", "build", "--index", str(index), "--no-progress")
        trees = [("this checkout", ROOT)] + ([("before", args.before)] if args.before else [])
        commands = [
            ("`python -c pass` (the interpreter alone)", ("-c", "pass")),
            ("`qa --help`", ("--help",)),
            (f"`qa ask` locally (`--index`, {index.name})", ("ask", QUESTION, "--index", str(index))),
        ]
        figures = {name: {label: median(tree, runs, *command) for label, tree in trees} for name, command in commands}
        print(json.dumps(figures, indent=1), flush=True)
        phases = json.loads(subprocess.run([sys.executable, "-c", PHASES, str(index), QUESTION], cwd=ROOT, capture_output=True, text=True,
                                           env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True, timeout=900).stdout)
        server, url = serve(index)
        try:
            run(ROOT, "ask", "opwarmen", "--url", url)  # the server's first question warms its caches
            remote = [run(ROOT, "ask", QUESTION, "--url", url) for _ in range(max(runs, 3))]
            remote_search = [run(ROOT, "search", "Resolute Support", "--url", url) for _ in range(max(runs, 3))]
        finally:
            server.terminate()
            server.wait(timeout=30)
    load = os.getloadavg()[0]
    labels = [label for label, _ in trees]
    rows = [[name, *(f"{figures[name][label]:.2f} s" for label in labels)] for name, _ in commands]
    rows.append([f"`qa ask --url` against a running `qa serve` (same index; max of {len(remote)})",
                 f"**{statistics.median(remote):.2f} s** (max {max(remote):.2f} s)", *(["– (no --url)"] if args.before else [])])
    rows.append(["`qa search --url`", f"{statistics.median(remote_search):.2f} s", *(["–"] if args.before else [])])
    local = figures[commands[2][0]]["this checkout"]
    body = f"""`python bench/cold.py{' --index ' + str(args.index) if args.index else ''}{' --before DIR' if args.before else ''}`; median of {runs} fresh process{'es' if runs > 1 else ''} each;
load average {load:.1f} on {os.cpu_count()} cores at the end (the machine is shared: figures move with it).
{'"before" is the same commands on the checkout before the CLI imported lazily (DIR).' if args.before else ''}

{table(["command", *labels], rows)}

Where a local `qa ask` spends its time (one child process, `{index.name}`):

{table(["phase", "seconds"], [[name, f"{seconds:.2f}"] for name, seconds in phases.items()])}

Almost all of a local `qa ask` is the model: importing torch and sentence-transformers (which imports
transformers, scikit-learn and scipy whether they are used or not) and reading its weights. Those are the
dependencies' own costs; what this project can cut is not paying them per question. A running server keeps
the model loaded: **`qa ask --url` takes {statistics.median(remote):.2f} s against {local:.1f} s locally**. The CLI
imports numpy, FAISS, bm25s and torch only in the commands that use them (`qa/cli/common.py` `_Deferred`), so `--help`,
`--url` and `qa feedback` start in about the time of the interpreter, click and httpx. A local `qa ask` needs all of
those libraries anyway, so the lazy imports do not shorten it (its two columns differ by the machine's noise).
"""
    write_section(args.out, "cold", "CLI cold path and `qa ask --url`", body)


if __name__ == "__main__":
    main()

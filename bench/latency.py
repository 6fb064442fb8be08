"""Query latency: in-process `search` and `ask`, and `/api/ask` over HTTP on loopback under concurrency.

    python bench/latency.py --index PATH       # an existing index (run_all.py passes the bulk index)
    python bench/latency.py                    # builds an index of the bundled sample letters first
    python bench/latency.py --quick            # 10 questions at concurrency 2, with 1 and 2 workers

Every timed call is a question the model has not seen in that process, so no query-embedding cache
helps: in-process the cache is cleared before each call, and each (workers, concurrency) run gets a
fresh `qa serve` that receives every question once. The floor is the bare `model.encode` of one
question; the target is `/api/ask` p50 at concurrency 1 ≤ 2 × that.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_questions, parser, percentiles, table, write_section  # noqa: E402
from qa.answer.engine import Engine  # noqa: E402
from qa.core.settings import SAMPLE_CORPUS  # noqa: E402
from qa.index import local as index_store  # noqa: E402
from qa.ingest.reading import read_letters  # noqa: E402


def milliseconds(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def in_process(engine: Engine, questions: list[str]) -> dict[str, list[float]]:
    embedder = engine.embedder
    timings: dict[str, list[float]] = {"bare query embedding (`model.encode`)": [], "search (hybrid, k=5)": [], "ask (search + answer)": []}
    engine.ask("opwarmen")
    for question in questions:
        started = time.perf_counter()
        embedder._embed_query(question)  # uncached: the bare model call, on the index's backend
        timings["bare query embedding (`model.encode`)"].append(milliseconds(started))
        embedder._query_cache.cache_clear()  # each timed call embeds its question
        started = time.perf_counter()
        engine.search(question, k=5)
        timings["search (hybrid, k=5)"].append(milliseconds(started))
        embedder._query_cache.cache_clear()
        started = time.perf_counter()
        engine.ask(question)
        timings["ask (search + answer)"].append(milliseconds(started))
    return timings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(index: Path, workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`qa serve` on a free port, once every worker has loaded its model ("Application startup complete")."""
    port = free_port()
    command = [sys.executable, "-m", "qa", "serve", "--index", str(index), "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 300
    while log.read_text(errors="replace").count("Application startup complete") < workers:
        if server.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            raise RuntimeError(f"qa serve did not start:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.5)
    return server, f"http://127.0.0.1:{port}"


def stop_server(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


async def load(url: str, questions: list[str], concurrency: int) -> tuple[list[float], int, float]:
    """Each question once, `concurrency` at a time: latencies (ms), errors, wall-clock seconds."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for question in questions:
        queue.put_nowait(question)
    latencies: list[float] = []
    errors = 0

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            question = queue.get_nowait()
            started = time.perf_counter()
            try:
                response = await client.post("/api/ask", json={"question": question, "k": 5})
                errors += response.status_code != 200
            except httpx.HTTPError:
                errors += 1
            latencies.append(milliseconds(started))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        return latencies, errors, time.perf_counter() - started


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--index", type=Path, default=None, help="Index to query [default: build one of the sample letters].")
    arguments.add_argument("--questions", type=int, default=None, help="Distinct questions [default: 240; --quick: 20].")
    args = arguments.parse_args()
    questions = bench_questions(args.questions or (10 if args.quick else 240))
    load_before = os.getloadavg()[1]  # 5-minute load: other processes on the machine slow every timing here
    levels, worker_counts = ((2,), (1, 2)) if args.quick else ((1, 8, 32), (1, 2))

    with tempfile.TemporaryDirectory(prefix="bench-latency-") as workspace:
        index = args.index
        if index is None:
            index = Path(workspace) / "index"
            from qa.embed.embedding import Embedder

            index_store.update(index, Embedder(), add=read_letters([SAMPLE_CORPUS]).letters, replace_all=True)
        engine = Engine.open(index)
        corpus = f"{len(engine.index.letters):,} letters, {len(engine.index.passages):,} passages, model {engine.index.model}"
        timings = in_process(engine, questions)
        del engine

        http_rows = []
        for workers in worker_counts:
            for concurrency in levels:
                server, url = start_server(index, workers, Path(workspace) / "server.log")
                try:
                    latencies, errors, seconds = asyncio.run(load(url, questions, concurrency))
                finally:
                    stop_server(server)
                p50, p95, p99 = percentiles(latencies)
                http_rows.append((workers, concurrency, len(latencies), len(latencies) / seconds, p50, p95, p99, errors))
                print(f"/api/ask workers={workers} concurrency={concurrency}: {http_rows[-1][3]:.1f} req/s, "
                      f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, {errors} errors", flush=True)

    process_rows = [(name, *percentiles(values)) for name, values in timings.items()]
    for row in process_rows:
        print(f"{row[0]:45} p50 {row[1]:7.1f} ms  p95 {row[2]:7.1f} ms  p99 {row[3]:7.1f} ms")
    embed_p50 = process_rows[0][1]
    ask_p50 = next(row[4] for row in http_rows if row[0] == 1)  # concurrency 1 (--quick: its lowest)
    ratio = ask_p50 / embed_p50
    print(f"/api/ask p50 at concurrency 1 / bare query embedding p50 = {ask_p50:.1f} / {embed_p50:.1f} = {ratio:.2f}")
    load_after = os.getloadavg()[1]
    body = "\n\n".join([
        f"Index: {corpus}. {len(questions)} distinct Dutch questions (`bench_questions`), each asked once per run. "
        f"Load average (5 min) {load_before:.1f} at the start, {load_after:.1f} at the end, on {os.cpu_count()} cores.",
        "In-process (one thread, model on all cores), milliseconds:\n\n" + table(["", "p50", "p95", "p99"], process_rows),
        "`POST /api/ask` over HTTP on loopback (`qa serve --workers N`; each worker gets cores / N threads):\n\n"
        + table(["workers", "concurrency", "requests", "requests/s", "p50 ms", "p95 ms", "p99 ms", "errors"], http_rows),
        f"**`/api/ask` p50 at concurrency 1 ÷ bare query embedding p50 = {ask_p50:.1f} / {embed_p50:.1f} = {ratio:.2f}** (target ≤ 2).",
    ])
    write_section(args.out, "latency", "Query latency", body)


if __name__ == "__main__":
    main()

"""Load test: N concurrent clients on loopback for D seconds against a running `qa serve`.

    python bench/load.py --url http://127.0.0.1:8000 --clients 32 --seconds 60 [--pid PID]
    python bench/load.py --url ... --quick          # 8 clients, 8 s (the test suite's mode)

Each client loops over a mix of requests (asks, searches, letter pages, health), one at a time. Prints requests/s,
p50/p99 latency per kind, error count, and the server's RSS (from /proc/PID) before and after a warm-up round,
and at the end. Exit 1 when a request failed or the RSS grew by more than --max-growth-mb."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

QUESTIONS = [
    "Wanneer moet de afbouw van Resolute Support afgerond zijn?",
    "Hoeveel minder ruwe materialen wil het kabinet in 2030 verbruiken?",
    "Welke taken heeft de Inspectie Leefomgeving en Transport?",
    "Hoeveel kost de registratie van een drone?",
]
MIX = [("ask", 2), ("search", 3), ("letters", 2), ("letter", 2), ("health", 1)]


def rss_mb(pid: int | None) -> float | None:
    if not pid:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


async def one(client: httpx.AsyncClient, kind: str, n: int) -> httpx.Response:
    question = QUESTIONS[n % len(QUESTIONS)]
    if kind == "ask":
        return await client.post("/api/ask", json={"question": question, "k": 5})
    if kind == "search":
        return await client.get("/api/search", params={"q": question, "k": 5})
    if kind == "letters":
        return await client.get("/api/letters", params={"page": 1 + n % 3})
    if kind == "letter":
        return await client.get("/api/letters/kst-27925-781")
    return await client.get("/api/health")


async def run(url: str, clients: int, seconds: float) -> dict[str, object]:
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    latencies: dict[str, list[float]] = {kind: [] for kind, _ in MIX}
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    async def client_loop(number: int, client: httpx.AsyncClient) -> None:
        n = number
        while time.monotonic() < deadline:
            kind = kinds[n % len(kinds)]
            started = time.perf_counter()
            try:
                response = await one(client, kind, n)
                if response.status_code != 200:
                    errors.append(f"{kind}: HTTP {response.status_code} {response.text[:120]}")
            except httpx.HTTPError as error:
                errors.append(f"{kind}: {type(error).__name__} {error}")
            latencies[kind].append(time.perf_counter() - started)
            n += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        started = time.monotonic()
        await asyncio.gather(*(client_loop(number, client) for number in range(clients)))
        elapsed = time.monotonic() - started
    total = sum(len(values) for values in latencies.values())

    def pct(values: list[float], q: float) -> float:
        return round(sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000, 1) if values else 0.0

    everything = [value for values in latencies.values() for value in values]
    return {
        "clients": clients, "seconds": round(elapsed, 1), "requests": total, "requests_per_s": round(total / elapsed, 1),
        "errors": len(errors), "error_samples": errors[:5], "p50_ms": pct(everything, 0.5), "p99_ms": pct(everything, 0.99),
        "per_kind": {kind: {"n": len(v), "p50_ms": pct(v, 0.5), "p99_ms": pct(v, 0.99),
                            "mean_ms": round(statistics.fmean(v) * 1000, 1) if v else 0.0} for kind, v in latencies.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--pid", type=int, help="the server's process id, to report its RSS")
    parser.add_argument("--quick", action="store_true", help="8 clients, 8 s, 3 s warm-up")
    parser.add_argument("--max-growth-mb", type=float, default=50, help="fail when the RSS grows more than this after warm-up")
    args = parser.parse_args(argv)
    clients, seconds, warmup = (8, 8.0, 3.0) if args.quick else (args.clients, args.seconds, 10.0)
    rss_cold = rss_mb(args.pid)
    asyncio.run(run(args.url, clients, warmup))  # first requests pay for lazy initialisation and allocator pools
    rss_start = rss_mb(args.pid)
    report = asyncio.run(run(args.url, clients, seconds))
    rss_end = rss_mb(args.pid)
    report.update(rss_mb_cold=rss_cold and round(rss_cold, 1), rss_mb_start=rss_start and round(rss_start, 1),
                  rss_mb_end=rss_end and round(rss_end, 1))
    print(json.dumps(report, indent=1))
    grew = (rss_end - rss_start) if rss_start and rss_end else 0.0
    if report["errors"] or grew > args.max_growth_mb:
        print(f"FAIL: {report['errors']} errors, RSS grew {grew:.1f} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

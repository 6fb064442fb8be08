"""The real Kamervragen test part as a user meets it: `qa serve` on the index of all 1,814 answers, asked over HTTP.

For each test question (SHA-1 digit c-f, train/data.py) whose answer has at least 150 characters: is its own answer
the first / among the first five letters `GET /api/search` ranks (hybrid, and dense alone), and is the first
citation of `POST /api/ask` from it? The answer index is built with `--model` when it is missing.

    python eval/kamervragen_split.py [--index /tmp/qa-kamervragen-index] [--model kamerbrieven-e5-small-v1] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "train"))

import data  # noqa: E402
from kamervragen import DEFAULT_INDEX, Pair, build_answer_index, read_pairs  # noqa: E402

from bench.latency import start_server, stop_server  # noqa: E402
from qa.index import local as index_store  # noqa: E402


def ranked_letters(client: httpx.Client, url: str, question: str, mode: str) -> list[str]:
    response = client.get(f"{url}/api/search", params={"q": question, "k": 20, "mode": mode})
    response.raise_for_status()
    return list(dict.fromkeys(result["letter_id"] for result in response.json()["results"]))


def measure(url: str, pairs: list[Pair]) -> dict[str, float]:
    counts = dict.fromkeys(["hybrid_r1", "hybrid_r5", "dense_r1", "dense_r5", "first_citation_own_answer", "declined"], 0)
    started = time.perf_counter()
    with httpx.Client(timeout=60) as client:
        for pair in pairs:
            for mode in ("hybrid", "dense"):
                ids = ranked_letters(client, url, pair.question, mode)
                counts[f"{mode}_r1"] += pair.answer_id in ids[:1]
                counts[f"{mode}_r5"] += pair.answer_id in ids[:5]
            response = client.post(f"{url}/api/ask", json={"question": pair.question})
            response.raise_for_status()
            result = response.json()
            counts["declined"] += bool(result["abstained"])
            counts["first_citation_own_answer"] += bool(result["citations"]) and result["citations"][0]["letter_id"] == pair.answer_id
    n = len(pairs) or 1
    return {"questions": len(pairs), **{name: round(count / n, 3) for name, count in counts.items()},
            "seconds": round(time.perf_counter() - started)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX)
    parser.add_argument("--model", default=None, help="the model of a new answer index (default: the default model)")
    parser.add_argument("--backend", default=None, help="the embedding backend of a new answer index (default: the default)")
    parser.add_argument("--part", default="test", choices=["test", "calibration"], help="test: report; calibration: tune")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not index_store.exists(args.index):
        build_answer_index(args.index, read_pairs(), args.model, args.backend)
    pairs = data.kamervragen(args.part, long_only=True)
    with tempfile.TemporaryDirectory() as folder:
        server, url = start_server(args.index, 1, Path(folder) / "serve.log")
        try:
            index = index_store.load(args.index)
            figures = {"model": index.model, "backend": index.backend, **measure(url, pairs)}
        finally:
            stop_server(server)
    print(json.dumps(figures, indent=1) if args.json else "\n".join(f"{key}: {value}" for key, value in figures.items()))


if __name__ == "__main__":
    main()

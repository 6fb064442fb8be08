"""Saved questions checked against new letters, and `/api/kamervragen` latency (issue 17).

    python bench/watches.py --index /tmp/e5     # a copy of an existing index (the shared corpus's)
    python bench/watches.py                     # builds an index of the shared corpus first
    python bench/watches.py --quick --index I   # 10 saved questions, 5 new letters, 10 requests

The check: the newest letters of the index are taken out (no model needed), 200 saved questions
(`bench_questions`) are saved, the letters are added back with `index_store.update` and every question is
checked against them, as `qa index add` does. It must read only the new letters' passages: the script
fails if the check read any other. Then `/api/kamervragen` over HTTP on loopback at concurrency 1, each
question once (a fresh `qa serve`, so no query-embedding cache helps).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SHARED_CORPUS, bench_questions, parser, percentiles, table, write_section  # noqa: E402
from bench.latency import milliseconds, start_server, stop_server  # noqa: E402
from qa.answer.engine import Engine  # noqa: E402
from qa.answer.kamervragen import PairIndex, RankedPairs, find  # noqa: E402
from qa.embed.embedding import Embedder  # noqa: E402
from qa.index import local as index_store  # noqa: E402
from qa.ingest.reading import read_letters  # noqa: E402
from qa.users import db as userdb
from qa.users import watches  # noqa: E402


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--index", type=Path, default=None, help="Index to copy [default: build one of the shared corpus].")
    arguments.add_argument("--watches", type=int, default=None, help="Saved questions [default: 200; --quick: 10].")
    arguments.add_argument("--letters", type=int, default=None, help="New letters [default: 50; --quick: 5].")
    arguments.add_argument("--requests", type=int, default=None, help="/api/kamervragen questions [default: 200; --quick: 10].")
    args = arguments.parse_args()
    n_watches = args.watches or (10 if args.quick else 200)
    n_letters = args.letters or (5 if args.quick else 50)
    n_requests = args.requests or (10 if args.quick else 200)
    questions = bench_questions(max(n_watches, n_requests))
    load_before = os.getloadavg()[1]

    with tempfile.TemporaryDirectory(prefix="bench-watches-") as workspace:
        folder = Path(workspace) / "index"
        embedder = Embedder()
        if args.index is not None:
            shutil.copytree(args.index, folder, ignore=shutil.ignore_patterns(".lock", userdb.FILENAME + "*"))
        else:
            index_store.update(folder, embedder, add=read_letters([SHARED_CORPUS]).letters, replace_all=True)
        full = index_store.load(folder)
        newest = sorted(full.letters.values(), key=lambda letter: (letter.date or "", letter.id))[-2 * n_letters:]
        first_batch, second_batch = newest[:n_letters], newest[n_letters:]
        index_store.update(folder, None, remove=[letter.id for letter in newest])

        runs = []
        with closing(userdb.connect(folder)) as connection:
            base = index_store.load(folder)
            started = time.perf_counter()
            for question in questions[:n_watches]:
                watches.add(connection, base, question)
            save_ms = milliseconds(started) / n_watches
            for batch in (first_batch, second_batch):
                index_store.update(folder, embedder, add=batch)
                engine = Engine(index_store.load(folder), embedder)
                engine.mean_vector()  # as a serving engine has it after its first answer
                new_passages = sum(len(engine.index.letter_passages[letter.id]) for letter in batch)
                report = watches.check(connection, engine)
                if report.passages_read > new_passages or report.new_letters != len(batch):
                    raise SystemExit(f"the check read {report.passages_read} passages of {report.new_letters} letters; "
                                     f"the {len(batch)} new letters have {new_passages}")
                runs.append((report, new_passages, len(engine.index.passages)))
                print(f"{report.line()} in {report.seconds:.2f} s; read {report.passages_read} of {len(engine.index.passages)} passages",
                      flush=True)
            again = watches.check(connection, engine)

        ranked = RankedPairs(PairIndex.build(engine.index))
        in_process = []
        for question in questions[:n_requests]:
            engine.embedder._query_cache.cache_clear()  # type: ignore[attr-defined]
            started = time.perf_counter()
            find(engine, ranked, question)
            in_process.append(milliseconds(started))
        embed = []
        for question in questions[:n_requests]:
            started = time.perf_counter()
            embedder._embed_query(question)  # uncached: the bare model call, on the index's backend
            embed.append(milliseconds(started))
        del engine

        server, url = start_server(folder, 1, Path(workspace) / "server.log")
        latencies, errors = [], 0
        try:
            with httpx.Client(base_url=url, timeout=120) as client:
                client.get("/api/kamervragen", params={"q": "opwarmen"})
                for question in questions[:n_requests]:
                    started = time.perf_counter()
                    response = client.get("/api/kamervragen", params={"q": question})
                    latencies.append(milliseconds(started))
                    errors += response.status_code != 200
        finally:
            stop_server(server)

    load = f"Load average (5 min) {load_before:.1f} at the start, {os.getloadavg()[1]:.1f} at the end, on {os.cpu_count()} cores: " + (
        "other processes shared the machine, so model runs took longer than on a quiet one (compare Query latency above)."
        if max(load_before, os.getloadavg()[1]) > (os.cpu_count() or 1) else "a quiet machine.")
    corpus = f"{len(full.letters):,} letters, {len(full.passages):,} passages, model {full.model}"
    (first, first_new, first_total), (later, later_new, later_total) = runs
    check_rows = [
        ("saving a question (`watches.add`)", f"{save_ms:.1f} ms each", ""),
        ("check time", f"{first.seconds:.2f} s ({first.seconds / n_watches * 1000:.1f} ms per question)",
         f"**{later.seconds:.2f} s** ({later.seconds / n_watches * 1000:.1f} ms per question)"),
        ("passages read", f"{first.passages_read:,} (the new letters have {first_new:,}; {first_total:,} in the index)",
         f"{later.passages_read:,} (the new letters have {later_new:,}; {later_total:,} in the index)"),
        ("hits recorded (default threshold 0.6)", str(len(first.hits)), str(len(later.hits))),
        ("a check with nothing new", "", f"{again.seconds * 1000:.1f} ms"),
    ]
    write_section(args.out, "watches", "Saved questions: a check after an index change", "\n\n".join([
        f"Index: {corpus}; its {2 * n_letters} newest letters taken out, {n_watches} saved questions (`bench_questions`), then "
        f"{n_letters} letters added back with `index_store.update` and every saved question checked against them, as "
        f"`qa index add` does, twice (`python bench/watches.py`). The first check embeds each question once and stores "
        "its vector; later checks (a daily `qa update`) run no model. The update's own embedding is not included. " + load,
        table(["", f"first check: {n_watches} questions × {n_letters} new letters", f"a later check: {n_watches} × {n_letters} others"],
              check_rows),
    ]))
    ranked_pairs = len(ranked.pairs)
    write_section(args.out, "kamervragen", "Earlier Kamervragen: `/api/kamervragen` latency", "\n\n".join([
        f"Index: {corpus}, {ranked_pairs} question/answer pairs. {n_requests} distinct questions, each once, at concurrency 1 "
        "on a fresh `qa serve` (`python bench/watches.py`), milliseconds. " + load,
        table(["", "p50", "p95", "p99"], [
            ("bare query embedding (`model.encode`)", *percentiles(embed)),
            ("`kamervragen.find` in-process (embedding, ranking all pairs, the reader on 30)", *percentiles(in_process)),
            (f"`GET /api/kamervragen?q=…` over HTTP ({errors} errors)", *percentiles(latencies)),
        ]),
    ]))


if __name__ == "__main__":
    main()

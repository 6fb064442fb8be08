"""The evaluation on both stores: the local index and the same index in Milvus (issue 18).

    python eval/compare_stores.py --index /tmp/e5-15                       # copies it into a milvus-lite file first
    python eval/compare_stores.py --index /tmp/e5-15 --store milvus://127.0.0.1:19530   # a Milvus server holding it

Runs `qa eval`'s evaluation (qa/answer/evaluation.py) on eval/questions.jsonl against each store and prints recall and
answer figures side by side (markdown), and how many questions get the same top 10 (hybrid, dense and BM25) and the
same answer on both. A copy (`qa index copy`) embeds nothing again, so the stores hold the same vectors.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from qa.answer.engine import Engine  # noqa: E402
from qa.answer.evaluation import evaluate, read_questions  # noqa: E402
from qa.index import stores as store  # noqa: E402
from qa.index.filters import Filters  # noqa: E402

ROWS = [("recall@1", "R@1"), ("recall@5", "R@5"), ("recall@10", "R@10"), ("mrr", "MRR")]
ANSWERS = [("answer_cites_right_letter", "answer cites the right letter"), ("answer_quotes_the_span", "a quote contains the answer span"),
           ("declined_unanswerable", "unanswerable questions declined"), ("declined_answerable", "answerable questions wrongly declined"),
           ("follow_up_quotes_the_span", "follow-ups: quote holds the span")]


def milvus_rrf(engine: Engine, questions: list) -> dict[str, float]:
    """Recall of Milvus's own hybrid_search on the answerable questions, scored as qa.answer.evaluation scores a ranking."""
    from qa.answer.evaluation import normalise

    answerable = [q for q in questions if q.answerable and q.doc_id and q.answer_span and not q.is_follow_up]
    ranks = []
    for question in answerable:
        rows = engine.index.native_hybrid(engine.embedder.embed_query(question.question), question.question, Filters(), 10)  # type: ignore[attr-defined]
        span = normalise(question.answer_span or "")
        passages = [engine.index.passages[row] for row, _ in rows]
        ranks.append(next((i + 1 for i, p in enumerate(passages) if p.letter_id == question.doc_id and span in normalise(p.text)), None))
    n = len(ranks) or 1
    return {"recall@1": sum(r is not None and r <= 1 for r in ranks) / n, "recall@5": sum(r is not None and r <= 5 for r in ranks) / n,
            "recall@10": sum(r is not None for r in ranks) / n, "mrr": sum(1 / r for r in ranks if r) / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path("/tmp/e5-15"), help="the local index")
    parser.add_argument("--store", default=None, help="a Milvus store holding the same index [default: a milvus-lite copy in a temporary folder]")
    parser.add_argument("--questions", type=Path, default=REPO / "eval" / "questions.jsonl")
    args = parser.parse_args()
    questions = read_questions(args.questions)
    local = Engine.open(args.index)
    with tempfile.TemporaryDirectory(prefix="qa-compare-") as temporary:
        if args.store:
            location = store.locate(Path(temporary), args.store)
        else:
            location = store.locate(Path(temporary), f"milvus-lite:{Path(temporary) / 'milvus.db'}")
            started = time.perf_counter()
            store.copy(local.index, location)
            print(f"copied {args.index} into {location} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        milvus = Engine(store.load(location), local.embedder)
        engines = {"local (FAISS + bm25s)": local, f"Milvus ({location.kind})": milvus}
        reports: dict[str, dict[str, dict[str, float]]] = {}
        for name, engine in engines.items():
            reports[name] = {mode: evaluate(engine, questions, mode=mode) for mode in ("lexical", "dense", "hybrid")}
        native = milvus_rrf(milvus, questions)
        same = {mode: sum([h.passage.id for h in local.search(q.question, k=10, mode=mode)] == [h.passage.id for h in milvus.search(q.question, k=10, mode=mode)]
                          for q in questions) for mode in ("lexical", "dense", "hybrid")}
        answers = sum(local.ask(q.question).text == milvus.ask(q.question).text for q in questions)
    names = list(engines)
    print(f"{len(questions)} questions of {args.questions.name}, index {args.index} ({len(local.index.passages)} passages, {local.index.model})\n")
    print("| retrieval (answerable questions) | store | R@1 | R@5 | R@10 | MRR |")
    print("| --- | --- | --- | --- | --- | --- |")
    for mode, label in (("lexical", "BM25 only"), ("dense", "dense"), ("hybrid", "hybrid (default)")):
        for name in names:
            print(f"| {label} | {name} | " + " | ".join(f"{reports[name][mode][key]:.3f}" for key, _ in ROWS) + " |")
    print(f"| hybrid, Milvus's own RRF (hybrid_search, RRFRanker k 60, unweighted) | {names[1]} | "
          + " | ".join(f"{native[key]:.3f}" for key, _ in ROWS) + " |")
    print()
    print("| answers (hybrid) | " + " | ".join(names) + " |")
    print("| --- " * (1 + len(names)) + "|")
    for key, label in ANSWERS:
        if key in reports[names[0]]["hybrid"]:
            print(f"| {label} | " + " | ".join(f"{reports[name]['hybrid'][key]:.3f}" for name in names) + " |")
    print()
    print("same top 10 on both stores: " + ", ".join(f"{mode} {count} of {len(questions)}" for mode, count in same.items())
          + f"; the same answer text: {answers} of {len(questions)}")


if __name__ == "__main__":
    main()

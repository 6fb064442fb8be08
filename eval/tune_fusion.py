"""Rank fusion's two numbers for a model (qa/index/fusion.py FUSION_BY_MODEL), chosen on dev parts, reported on test parts.

Each question's dense and BM25 rankings (the top `retrieval.CANDIDATES` passages of each, as `search` takes them) are
fetched once; every (weight, k) of the grid is then fused offline, exactly as `retrieval.search` fuses, and counted as
each set's own script counts (`rankings`).

- the letters' question set, eval/questions.jsonl: answerable first turns with a letter; dev part to choose, test to report;
- the Kamervragen pairs' long answers on the index of all answers (eval/kamervragen_split.py builds it): calibration
  part to choose, test part to report.

The choice maximises the mean of R@1 and R@5 over both dev parts (each set weighs the same), so neither set's test
part is looked at before it is made.

    python eval/tune_fusion.py --letters-index DIR --kamervragen-index DIR [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "train"))

import data  # noqa: E402

from qa.answer.engine import Engine  # noqa: E402
from qa.answer.evaluation import normalise, question_part, read_questions  # noqa: E402
from qa.answer.retrieval import CANDIDATES  # noqa: E402
from qa.index.filters import Filters  # noqa: E402
from qa.index.fusion import Fusion, fuse, fusion_for  # noqa: E402

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2)
KS = (1, 5, 10, 20, 30, 60, 100)

Ranking = tuple[list[int], list[int], dict[int, str], set[str]]  # dense rows, BM25 rows, what each row counts as, the right ones
Rankings = list[Ranking]


def rankings(engine: Engine, questions: list[tuple[str, str, str | None]]) -> Rankings:
    """Per question (text, letter, answer span or None) its two rankings. With a span a hit is a passage of the letter
    that holds the span, ranked among passages (as `qa eval` counts); without, the letter, among distinct letters
    (as eval/kamervragen_split.py counts)."""
    out = []
    for question, letter, span in questions:
        dense = [row for row, _ in engine.index.dense_ranking(engine.embedder.embed_query(question), Filters(), CANDIDATES)]
        lexical = [row for row, _ in engine.index.lexical_ranking(question, Filters(), CANDIDATES)]
        passages = {row: engine.index.passages[row] for row in dense + lexical}
        if span is None:
            out.append((dense, lexical, {row: passage.letter_id for row, passage in passages.items()}, {letter}))
        else:
            right = {str(row) for row, passage in passages.items() if passage.letter_id == letter and normalise(span) in normalise(passage.text)}
            out.append((dense, lexical, {row: str(row) for row in passages}, right))
    return out


def recall(found: Rankings, weight: float, k: int) -> tuple[float, float]:
    """R@1 and R@5 of fusing each question's rankings with BM25 at `weight` and RRF constant `k`."""
    first = five = 0
    for dense, lexical, unit_of, right in found:
        fused = fuse(dense, lexical, Fusion(weight, k))
        units = list(dict.fromkeys(unit_of[row] for row, _ in sorted(fused.items(), key=lambda item: -item[1])))
        first += bool(right.intersection(units[:1]))
        five += bool(right.intersection(units[:5]))
    return first / len(found), five / len(found)


def letter_questions(part: str) -> list[tuple[str, str, str | None]]:
    return [(q.question, q.doc_id, q.answer_span) for q in read_questions(REPO / "eval" / "questions.jsonl")
            if q.answerable and q.doc_id and q.answer_span and not q.is_follow_up and question_part(q.question) == part]


def kamervragen_questions(part: str) -> list[tuple[str, str, str | None]]:
    return [(pair.question, pair.answer_id, None) for pair in data.kamervragen(part, long_only=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--letters-index", type=Path, required=True)
    parser.add_argument("--kamervragen-index", type=Path, required=True)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    letters, kamervragen = Engine.open(args.letters_index), Engine.open(args.kamervragen_index)
    model = letters.embedder.name
    if kamervragen.embedder.name != model:
        parser.error(f"the two indexes are of different models ({model}, {kamervragen.embedder.name}): fusion is chosen per model")
    current = fusion_for(model)
    sets = {"letters": (rankings(letters, letter_questions("dev")), rankings(letters, letter_questions("test"))),
            "kamervragen": (rankings(kamervragen, kamervragen_questions("calibration")), rankings(kamervragen, kamervragen_questions("test")))}
    grid = {(w, k): {name: recall(dev, w, k) for name, (dev, _) in sets.items()} for w, k in itertools.product(WEIGHTS, KS)}
    chosen = max(grid, key=lambda key: (sum(sum(figures) for figures in grid[key].values()), key == (current.lexical_weight, current.k)))
    report = {"questions": {name: [len(dev), len(test)] for name, (dev, test) in sets.items()}, "model": model, "chosen": list(chosen)}
    for label, (w, k) in (("current", (current.lexical_weight, current.k)), ("chosen", chosen), ("dense only", (0.0, current.k))):
        report[label] = {name: {"dev": recall(dev, w, k), "test": recall(test, w, k)} for name, (dev, test) in sets.items()}
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"{model}: questions (dev, test) {report['questions']}; now {current}; chosen on the dev parts: Fusion({chosen[0]}, {chosen[1]})")
    for label in ("current", "chosen", "dense only"):
        for name, figures in report[label].items():
            (d1, d5), (t1, t5) = figures["dev"], figures["test"]
            print(f"{label:10s} {name:12s} dev R@1 {d1:.3f} R@5 {d5:.3f}   test R@1 {t1:.3f} R@5 {t5:.3f}")


if __name__ == "__main__":
    main()

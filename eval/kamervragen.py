"""How well earlier Kamervragen are found: eval/kamervragen.jsonl (rephrased Kamervragen, each with its pair).

    python eval/kamervragen.py --index /tmp/e5      # the shared corpus's index

Prints recall@1/3 and MRR of the pair ranking (qa/answer/kamervragen.py), and the scores that set the
thresholds of `PairPolicy`: the own pair's score for the rephrased Kamervragen, and the best pair's score
for the questions of eval/questions.jsonl whose letter is no answer to Kamervragen (no pair answers them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from qa.answer.engine import Engine  # noqa: E402
from qa.answer.kamervragen import DEFAULT_PAIR_POLICY, PairIndex, RankedPairs, question_view  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path("/tmp/e5"))
    parser.add_argument("--pairs", type=Path, default=REPO / "eval" / "kamervragen.jsonl")
    parser.add_argument("--others", type=Path, default=REPO / "eval" / "questions.jsonl")
    args = parser.parse_args()
    engine = Engine.open(args.index)
    ranked = RankedPairs(PairIndex.build(engine.index))
    policy = DEFAULT_PAIR_POLICY
    ranks, own = [], []
    for line in args.pairs.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        matches = ranked.rank(question_view(engine, record["question"]), policy=policy)
        ids = [m.info.pair.id for m in matches]
        rank = ids.index(record["pair"]) + 1 if record["pair"] in ids else len(ids) + 1
        ranks.append(rank)
        own.append(matches[rank - 1].score if rank <= len(matches) else 0.0)
    ranks_array = np.asarray(ranks)
    print(f"{len(ranks)} rephrased Kamervragen among {len(ranked.pairs)} pairs: R@1 {np.mean(ranks_array == 1):.2f}, "
          f"R@3 {np.mean(ranks_array <= 3):.2f}, MRR {np.mean(1 / ranks_array):.3f}; ranks {ranks}")
    best_other = []
    for line in args.others.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        letter = engine.index.letters.get(record.get("doc_id") or "")
        if letter is not None and letter.type == "antwoord_kamervragen":
            continue
        matches = ranked.rank(question_view(engine, record["question"]), policy=policy)
        best_other.append(matches[0].score if matches else 0.0)
    own_array, other = np.asarray(own), np.asarray(best_other)
    print(f"own pair's score: min {own_array.min():.3f}, p10 {np.percentile(own_array, 10):.3f}, median {np.median(own_array):.3f}")
    print(f"best pair's score for {len(other)} questions about other letters: median {np.median(other):.3f}, "
          f"p90 {np.percentile(other, 90):.3f}, p95 {np.percentile(other, 95):.3f}, max {other.max():.3f}")
    for threshold in (0.80, 0.85, 0.88, 0.90, 0.92, 0.95):
        print(f"  from {threshold:.2f}: own pairs shown {np.mean(own_array >= threshold):.2f}, "
              f"other questions with a pair shown {np.mean(other >= threshold):.2f}")


if __name__ == "__main__":
    main()

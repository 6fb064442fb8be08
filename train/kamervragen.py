"""The Kamervragen pairs as training and test data: a stable split, and an index of the answers.

`../shared/corpus/extra/kamervragen_qa_pairs_validation.csv` holds 2,033 real Kamervragen with the
government's real answers. The split is fixed by the SHA-1 of the stripped question: first hex
digit 0-b is train, c-f is test (518 questions). Each unique answer is indexed as one letter, so
"question -> its own answer" is a retrieval task with real distractors (the other 1,813 answers).

    python train/kamervragen.py [--csv PATH] [--index DIR]   # builds the answer index (about 5 min)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from qa.embed.embedding import Embedder  # noqa: E402
from qa.index import local as index_store  # noqa: E402
from qa.ingest.letter import Letter  # noqa: E402
from qa.ingest.reading import make_letter  # noqa: E402

DEFAULT_CSV = REPO.parent / "shared" / "corpus" / "extra" / "kamervragen_qa_pairs_validation.csv"
DEFAULT_INDEX = Path("/tmp/qa-kamervragen-index")
TEST_DIGITS = "cdef"


@dataclass(frozen=True)
class Pair:
    question: str
    answer: str
    negative: str
    answer_id: str  # the letter id of the answer in the answer index

    @property
    def split(self) -> str:
        return split_of(self.question)


def split_of(question: str) -> str:
    digest = hashlib.sha1(question.strip().encode("utf-8")).hexdigest()
    return "test" if digest[0] in TEST_DIGITS else "train"


def answer_id(answer: str) -> str:
    return "kv-" + hashlib.sha1(answer.strip().encode("utf-8")).hexdigest()[:12]


def read_pairs(path: Path = DEFAULT_CSV) -> list[Pair]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            Pair(row["anchor"].strip(), row["positive"].strip(), row["negative"].strip(), answer_id(row["positive"]))
            for row in csv.DictReader(handle)
            if row["anchor"].strip() and row["positive"].strip()
        ]


def answer_letters(pairs: list[Pair]) -> list[Letter]:
    """Each unique answer once, as an answer to Kamervragen (no title: the question must not leak in)."""
    letters: dict[str, Letter] = {}
    for pair in pairs:
        if pair.answer_id not in letters:
            letters[pair.answer_id] = make_letter(pair.answer, None, {"id": pair.answer_id, "type": "antwoord_kamervragen"})
    return list(letters.values())


def build_answer_index(folder: Path, pairs: list[Pair], model: str | None = None, backend: str | None = None) -> None:
    index_store.update(folder, Embedder(model, backend=backend), add=answer_letters(pairs), replace_all=True, progress_bar=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    pairs = read_pairs(args.csv)
    print(f"{len(pairs)} pairs: {sum(p.split == 'train' for p in pairs)} train, {sum(p.split == 'test' for p in pairs)} test")
    build_answer_index(args.index, pairs, args.model)
    print(f"answer index in {args.index}")


if __name__ == "__main__":
    main()

"""Validate eval/questions.jsonl against the Kamerbrieven corpus.

Checks every line for the expected JSON shape, that answerable questions point
to an existing document and that their answer span occurs in that document's
text after normalisation; prints counts per document type/era.

Usage:
    python eval/check_questions.py [--questions PATH] [--corpus DIR]

The corpus directory defaults to $KAMERBRIEVEN_CORPUS or /work/shared/corpus.
Exit status is 1 if any error was found.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

DEFAULT_QUESTIONS = Path(__file__).resolve().parent / "questions.jsonl"
DEFAULT_CORPUS = Path(os.environ.get("KAMERBRIEVEN_CORPUS", "/work/shared/corpus"))

KEYS = {"question": str, "doc_id": (str, type(None)),
        "answer_span": (str, type(None)), "answerable": bool}
MIN_SPAN_WORDS, MAX_SPAN_WORDS = 3, 15
MAX_PER_DOC = 3
MIN_UNANSWERABLE = 12

_HYPHEN_BREAK = re.compile(r"-\r?\n[ \t]*")
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Join hyphenated line breaks, lowercase, map non-alphanumerics to spaces."""
    text = _HYPHEN_BREAK.sub("", text).lower()
    text = "".join(ch if ch.isalnum() else " " for ch in text)
    return _SPACES.sub(" ", text).strip()


def category(meta: dict) -> str:
    """Bucket used for the counts: modern/historical letter, Kamervragen, motie."""
    if meta["type"] == "motie":
        return "motie"
    if meta["type"] in ("antwoord_kamervragen", "mededeling_kamervragen"):
        return "kamervragen (ah-tk)"
    if meta["era"].startswith("historical"):
        return "brief_regering historical (sgd)"
    return "brief_regering modern (kst/rijksoverheid)"


def load_corpus(corpus: Path) -> dict[str, dict]:
    with open(corpus / "letters.jsonl", encoding="utf-8") as fh:
        return {rec["id"]: rec for rec in map(json.loads, fh)}


def check(questions: Path, corpus: Path) -> int:
    letters = load_corpus(corpus)
    texts: dict[str, str] = {}
    errors: list[str] = []
    per_doc: Counter = Counter()
    per_cat: Counter = Counter()
    seen_questions: set[str] = set()
    n_total = n_unanswerable = 0

    with open(questions, encoding="utf-8") as fh:
        lines = [(i, line) for i, line in enumerate(fh, 1) if line.strip()]

    for lineno, line in lines:
        where = f"line {lineno}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{where}: invalid JSON ({exc})")
            continue
        n_total += 1
        if not isinstance(item, dict) or set(item) != set(KEYS):
            errors.append(f"{where}: keys must be exactly {sorted(KEYS)}")
            continue
        bad = [k for k, t in KEYS.items() if not isinstance(item[k], t)]
        if bad:
            errors.append(f"{where}: wrong type for {bad}")
            continue

        question = item["question"].strip()
        if not question:
            errors.append(f"{where}: empty question")
        if question.lower() in seen_questions:
            errors.append(f"{where}: duplicate question")
        seen_questions.add(question.lower())

        if not item["answerable"]:
            n_unanswerable += 1
            if item["doc_id"] is not None or item["answer_span"] is not None:
                errors.append(f"{where}: unanswerable item must have doc_id and answer_span null")
            continue

        doc_id, span = item["doc_id"], item["answer_span"]
        if doc_id is None or span is None:
            errors.append(f"{where}: answerable item needs doc_id and answer_span")
            continue
        if doc_id not in letters:
            errors.append(f"{where}: unknown doc_id {doc_id!r}")
            continue
        if doc_id.lower() in question.lower():
            errors.append(f"{where}: question mentions its doc_id")
        per_doc[doc_id] += 1
        per_cat[category(letters[doc_id])] += 1

        if doc_id not in texts:
            path = corpus / letters[doc_id]["file"]
            texts[doc_id] = normalise(path.read_text(encoding="utf-8"))
        norm_span = normalise(span)
        n_words = len(norm_span.split())
        if not MIN_SPAN_WORDS <= n_words <= MAX_SPAN_WORDS:
            errors.append(f"{where}: answer_span has {n_words} words "
                          f"(expected {MIN_SPAN_WORDS}-{MAX_SPAN_WORDS})")
        if f" {norm_span} " not in f" {texts[doc_id]} ":
            errors.append(f"{where}: answer_span not found in {doc_id}: {span!r}")

    for doc_id, n in per_doc.items():
        if n > MAX_PER_DOC:
            errors.append(f"{doc_id}: {n} questions (max {MAX_PER_DOC})")
    if n_unanswerable < MIN_UNANSWERABLE:
        errors.append(f"only {n_unanswerable} unanswerable questions (min {MIN_UNANSWERABLE})")

    print(f"questions: {n_total}  answerable: {n_total - n_unanswerable}  "
          f"unanswerable: {n_unanswerable}  distinct documents: {len(per_doc)}")
    for cat, n in sorted(per_cat.items()):
        print(f"  {cat:45s} {n:3d}")
    if errors:
        print(f"\n{len(errors)} error(s):", file=sys.stderr)
        for err in errors:
            print(f"  {err}", file=sys.stderr)
        return 1
    print("OK: all checks passed")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()
    return check(args.questions, args.corpus)


if __name__ == "__main__":
    sys.exit(main())

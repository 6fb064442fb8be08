"""Validate eval/questions.jsonl against the Kamerbrieven corpus.

Checks every line for the expected JSON shape, that answerable questions point
to an existing document and that their answer span occurs in that document's
text after normalisation, that two-turn follow-ups lean on a question of the
set about the same letter, and that the set is large and varied enough; prints
counts per document type/era, per kind of fact asked and per kind of
unanswerable question.

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

REQUIRED = {"question": str, "doc_id": (str, type(None)), "answer_span": (str, type(None)),
            "answerable": bool, "kind": str}
FOLLOWUP_KEYS = {"followup", "history", "standalone"}
OPTIONAL = {"unanswerable_kind", "also_spans"} | FOLLOWUP_KEYS

# The kind of fact a question asks for (see README, "Fields").
KINDS = ("date", "amount", "who", "reason", "what", "yesno", "keyword")
UNANSWERABLE_KINDS = ("off_corpus", "near_topic")

MIN_SPAN_WORDS, MAX_SPAN_WORDS = 3, 15
MAX_PER_DOC = 3            # standalone questions per document, so no letter dominates
MAX_FOLLOWUPS_PER_DOC = 2
# Size of the set asked for by issue 11 (>= 100 answerable, >= 30 unanswerable of both
# kinds, >= 10 follow-ups), with some headroom.
MIN_ANSWERABLE = 110       # standalone answerable questions; follow-ups are not counted
MIN_UNANSWERABLE = 36
MIN_PER_UNANSWERABLE_KIND = 12
MIN_FOLLOWUPS = 12
MIN_PER_CATEGORY = 15      # answerable questions per kind of document (see `category`)

# Function words left out when counting which words a question shares with its answer span.
STOPWORDS = frozenset("""
aan al alle als bij dan dat de deze die dit door een en er geen had heb heeft het hier hij hoe
hoeveel hun ik in is je kan kunnen maar met na naar niet nog nu of om on ook op over per sinds
te tot u uit van voor waar waarom wanneer wat welk welke werd wie wil wilde wordt worden zal
zich zij zijn zou zouden
""".split())

_HYPHEN_BREAK = re.compile(r"-\r?\n[ \t]*")
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Join hyphenated line breaks, lowercase, map non-alphanumerics to spaces."""
    text = _HYPHEN_BREAK.sub("", text).lower()
    text = "".join(ch if ch.isalnum() else " " for ch in text)
    return _SPACES.sub(" ", text).strip()


def shared_words(question: str, span: str) -> int:
    """Content words of the question that also occur in the span (compared on their first
    five letters, a crude stem), to show how often the answer is worded differently."""
    def stems(text: str) -> set[str]:
        return {w[:5] for w in normalise(text).split() if w not in STOPWORDS and len(w) > 2}
    return len(stems(question) & stems(span))


def category(meta: dict) -> str:
    """Bucket used for the counts: modern/historical letter, Kamervragen, motie."""
    if meta["type"] == "motie":
        return "motie"
    if meta["type"] in ("antwoord_kamervragen", "mededeling_kamervragen"):
        return "kamervragen (ah-tk)"
    if meta["era"].startswith("historical"):
        return "brief_regering historical (sgd)"
    return "brief_regering modern (kst/rijksoverheid)"


CATEGORIES = ("brief_regering modern (kst/rijksoverheid)", "brief_regering historical (sgd)",
              "kamervragen (ah-tk)", "motie")


def load_corpus(corpus: Path) -> dict[str, dict]:
    with open(corpus / "letters.jsonl", encoding="utf-8") as fh:
        return {rec["id"]: rec for rec in map(json.loads, fh)}


def _shape_errors(item: object) -> list[str]:
    """Errors in keys and types of one record; empty if the record is well-formed."""
    if not isinstance(item, dict):
        return ["not a JSON object"]
    missing = set(REQUIRED) - set(item)
    unknown = set(item) - set(REQUIRED) - OPTIONAL
    if missing or unknown:
        return [f"keys must be {sorted(REQUIRED)} plus optional {sorted(OPTIONAL)} "
                f"(missing {sorted(missing)}, unknown {sorted(unknown)})"]
    errors = [f"wrong type for {k!r}" for k, t in REQUIRED.items() if not isinstance(item[k], t)]
    if item["kind"] not in KINDS:
        errors.append(f"kind {item['kind']!r} not one of {KINDS}")
    if item["answerable"]:
        if "unanswerable_kind" in item:
            errors.append("answerable item must not have unanswerable_kind")
    elif item.get("unanswerable_kind") not in UNANSWERABLE_KINDS:
        errors.append(f"unanswerable item needs unanswerable_kind in {UNANSWERABLE_KINDS}")
    present = FOLLOWUP_KEYS & set(item)
    if present and present != FOLLOWUP_KEYS:
        errors.append(f"a follow-up needs all of {sorted(FOLLOWUP_KEYS)}")
    elif present:
        history = item["history"]
        if item["followup"] is not True:
            errors.append("followup must be true (leave the follow-up keys out otherwise)")
        if not (isinstance(history, list) and history
                and all(isinstance(h, str) and h.strip() for h in history)):
            errors.append("history must be a non-empty list of questions")
        if not isinstance(item["standalone"], str) or not item["standalone"].strip():
            errors.append("standalone must be a non-empty string")
        if not item["answerable"]:
            errors.append("follow-ups must be answerable")
    return errors


def check(questions: Path, corpus: Path) -> int:
    letters = load_corpus(corpus)
    texts: dict[str, str] = {}
    errors: list[str] = []
    per_doc: Counter = Counter()
    followups_per_doc: Counter = Counter()
    per_cat: Counter = Counter()
    followups_per_cat: Counter = Counter()
    per_kind: Counter = Counter()
    per_unanswerable_kind: Counter = Counter()
    overlap: Counter = Counter()  # answerable standalone questions by words shared with their span
    seen: set[str] = set()
    standalone_questions: dict[str, tuple[str | None, bool]] = {}  # question -> (doc_id, answerable)
    followups: list[tuple[str, dict]] = []
    n_total = n_answerable = n_unanswerable = n_followups = 0

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
        shape = _shape_errors(item)
        if shape:
            errors.extend(f"{where}: {err}" for err in shape)
            continue

        is_followup = "followup" in item
        question = item["question"].strip()
        if not question:
            errors.append(f"{where}: empty question")
        # A follow-up's short question ("En wanneer?") may recur; its turn pair and its
        # spelled-out form may not.
        key = (" || ".join(item["history"]) + " || " + question if is_followup else question).lower()
        if key in seen:
            errors.append(f"{where}: duplicate question")
        seen.add(key)
        if is_followup:
            n_followups += 1
            standalone = item["standalone"].strip()
            if standalone.lower() in seen:
                errors.append(f"{where}: duplicate standalone question")
            seen.add(standalone.lower())
            if standalone.lower() == question.lower():
                errors.append(f"{where}: standalone must spell out the follow-up, not repeat it")
            followups.append((where, item))
        else:
            standalone_questions[question] = (item["doc_id"], item["answerable"])
            per_kind[item["kind"]] += 1

        if not item["answerable"]:
            n_unanswerable += 1
            per_unanswerable_kind[item["unanswerable_kind"]] += 1
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
        asked = [question] + (item["history"] + [item["standalone"]] if is_followup else [])
        if any(doc_id.lower() in text.lower() for text in asked):
            errors.append(f"{where}: question mentions its doc_id")
        if is_followup:
            followups_per_doc[doc_id] += 1
            followups_per_cat[category(letters[doc_id])] += 1
        else:
            n_answerable += 1
            per_doc[doc_id] += 1
            per_cat[category(letters[doc_id])] += 1
            overlap[min(shared_words(question, span), 2)] += 1

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
        for also in item.get("also_spans", []):
            if not MIN_SPAN_WORDS <= len(normalise(also).split()) <= MAX_SPAN_WORDS or f" {normalise(also)} " not in f" {texts[doc_id]} ":
                errors.append(f"{where}: also_spans item not a {MIN_SPAN_WORDS}-{MAX_SPAN_WORDS} word span of {doc_id}: {also!r}")

    # The first turn of a follow-up is itself a question of the set, answerable from the same letter.
    for where, item in followups:
        first = item["history"][0].strip()
        if first not in standalone_questions:
            errors.append(f"{where}: history[0] is not a (non-follow-up) question of the set")
        elif standalone_questions[first] != (item["doc_id"], True):
            errors.append(f"{where}: history[0] must be answerable from the same document")

    for doc_id, n in per_doc.items():
        if n > MAX_PER_DOC:
            errors.append(f"{doc_id}: {n} questions (max {MAX_PER_DOC})")
    for doc_id, n in followups_per_doc.items():
        if n > MAX_FOLLOWUPS_PER_DOC:
            errors.append(f"{doc_id}: {n} follow-ups (max {MAX_FOLLOWUPS_PER_DOC})")
    minimums = [("answerable questions (without follow-ups)", n_answerable, MIN_ANSWERABLE),
                ("unanswerable questions", n_unanswerable, MIN_UNANSWERABLE),
                ("follow-ups", n_followups, MIN_FOLLOWUPS)]
    minimums += [(f"unanswerable {kind} questions", per_unanswerable_kind[kind], MIN_PER_UNANSWERABLE_KIND)
                 for kind in UNANSWERABLE_KINDS]
    minimums += [(f"answerable questions on {cat}", per_cat[cat], MIN_PER_CATEGORY) for cat in CATEGORIES]
    for what, n, minimum in minimums:
        if n < minimum:
            errors.append(f"only {n} {what} (min {minimum})")

    print(f"questions: {n_total}  answerable: {n_answerable}  unanswerable: {n_unanswerable}  "
          f"follow-ups: {n_followups} (on {len(followups_per_doc)} documents)  distinct documents: {len(per_doc | followups_per_doc)}")
    for cat in CATEGORIES:
        print(f"  {cat:45s} {per_cat[cat]:3d} questions  "
              f"{sum(1 for d in per_doc if category(letters[d]) == cat):3d} documents  "
              f"{followups_per_cat[cat]:3d} follow-ups")
    print("  kind (answerable and unanswerable, without follow-ups): "
          + ", ".join(f"{k} {per_kind[k]}" for k in KINDS))
    print(f"  answerable questions sharing 0 / 1 / 2+ content words with their span: "
          f"{overlap[0]} / {overlap[1]} / {overlap[2]}")
    print("  unanswerable: " + ", ".join(f"{k} {per_unanswerable_kind[k]}" for k in UNANSWERABLE_KINDS))
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

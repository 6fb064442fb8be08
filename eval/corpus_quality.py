"""How clean the parsed letters are (issue 15): the figures a reader of a source card notices.

Reads a letters folder (default: the shared corpus) the way `qa index build` does, chunks it, and
prints:
- the share of passages whose section is not a heading of the letter's body but letterhead,
  colophon, addressee, a reference block ("Kenmerk", "Uw brief", "Datum") or a footnote;
- which page-furniture patterns (derived from the corpus: sidebars, "Pagina x van y", letter-spaced
  text layers, glued footnote markers, private-use bullets) occur in passages, and how often;
- letters whose sender has no ministry in the register (`qa.ingest.ministries`), and the values of the
  ministry filter that are not a register ministry (fragments such as "Cultuur");
- letters with a date line in the text ("Den Haag, 12 mei 2021") but no date;
- answer spans of eval/questions.jsonl no longer found in their letter (cleaning must keep them).

Usage: python eval/corpus_quality.py [CORPUS] [--verbose] [--json]
The patterns below are the test's too (tests/unit/test_corpus_quality.py): one home.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))  # $PYTHONPATH (another checkout) wins

from qa.answer.evaluation import normalise, read_questions  # noqa: E402
from qa.ingest.chunking import Passage, chunk_letter  # noqa: E402
from qa.ingest.letter import Letter  # noqa: E402
from qa.ingest.reading import read_letters

DEFAULT_CORPUS = Path("/work/shared/corpus")
QUESTIONS = Path(__file__).resolve().parent / "questions.jsonl"

# Section headings that are no heading of the body, each seen in the corpus (OCR variants included).
NOT_A_BODY_SECTION: dict[str, str] = {
    "letterhead": r"^(?:Tweede\s+Kamer\s+der\s+Staten|Eerste\s+Kamer|Vergaderjaar|Kamerstuk(?:ken)?\b|Aanhangsel\s+van\s+de\s+Handelingen"
                  r"|Vragen\s+gesteld\s+door|Voorgesteld\b|Nr\.?\s*\d*$|Hoofdstuk\s+[IVXL]+\b|MOTIE\s+VAN|BRIEF\s+VAN|\d{1,3}(?:\s?\d{3})+\b)",
    "addressee": r"^(?:Aan\s+de\s+Voorzitter|De\s+voorzitter\s+van\s+de\s+Tweede\s+Kamer|der\s+Staten-Generaal|Postbus\b|\d{4}\s?[A-Z]{2}\b"
                 r"|>?\s*Retouradres)",
    "reference block": r"^(?:Kenmerk|Ons\s+kenmerk|Uw\s+(?:brief|kenmerk)|Datum|Betreft|Bijlage\(n\)|Bijlagen?\s*$|Contactpersoon|Onze\s+referentie"
                       r"|Ministerie\s+van\b|Inf\s?rastructuur\s+en\s*$|Waterstaat\s*$|Rijnstraat|[A-Z][a-z]+straat\s+\d+|T\s+0\s?7|F\s+0\s?7|www\.)",
    "colophon": r"^(?:ISSN|Sdu\b|Tweede\s+Kamer,\s+vergaderjaar|kst-|ah-tk-|Naar\s+boven|P\s?agina\s+\d)",
    "footnote": r"^(?:\d{1,2}|[¹²³⁴⁵⁶⁷⁸⁹⁰]+)\s+(?!\d)(?!(?:Vraag|Antwoord)\b)\S",
}
_NOT_A_BODY_SECTION = {kind: re.compile(pattern) for kind, pattern in NOT_A_BODY_SECTION.items()}

# Page furniture that must not stand in a passage: each pattern was found in the corpus before issue 15.
FURNITURE_PATTERNS: dict[str, str] = {
    "page x of y": r"\bP\s?agina\s+\d+\s+van\s+\d+\b",
    "letter-spaced Kamerstuk": r"\bKamers\s+tuk",
    "letter-spaced reference": r"\bI\s+E\s+NW/",
    "letter-spaced ministry sidebar": r"\bInf\s+rastructuur\b",
    "letter-spaced Den Haag": r"\bD\s+en\s+Haag\b",
    "letter-spaced postbus": r"\bP\s+ostbus\b",
    "split en": r"(?<!\w)e\s+n(?!\w)",
    "split als / we": r"(?<!\w)(?:a\s+ls|w\s+e)(?!\w)",
    "sidebar Kenmerk mid-text": r"\bKenmerk\s+I\s?E\s?NW",
    "sidebar phone numbers": r"\b[TF]\s+0\s?7\s?0-",
    "return address": r"Retouradres\s+Postbus",
    "ISSN colophon": r"\bISSN\s*0921",
    "running footer": r"Tweede\s+Kamer,\s+vergaderjaar\s+\d{4}\s*[-–]\s*\d{4},\s+[\dA-Z ]+,\s+nr\.\s+\d+\s+\d+\s*$",
    "private-use bullet": "[\ue000-\uf8ff]",
    "footnote number glued to a word": r"[a-zà-ÿ]{3}[.,;:?!)]\d{1,2}(?=\s+[A-Z])",
}
_FURNITURE = {name: re.compile(pattern, re.MULTILINE) for name, pattern in FURNITURE_PATTERNS.items()}

_MONTHS = "januari|februari|maart|april|mei|juni|juli|augustus|september|oktober|november|december"
# A date line of a letter: place (OCR variants of 's-Gravenhage), day, month, year.
DATE_LINE = re.compile(
    r"(?:Den\s+Haag|s[-.\s]?Gravenhage|Gravenhage|Datum)[,.:\s]+\d{1,2}\s*(?:" + _MONTHS + r")\s*(?:19|20)\d\d",
    re.IGNORECASE,
)


def section_kind(section: str | None) -> str | None:
    """Which kind of non-body text a section heading is, or None for a real heading (or none)."""
    if not section:
        return None
    for kind, pattern in _NOT_A_BODY_SECTION.items():
        if pattern.search(section):
            return kind
    return None


def furniture_in(text: str) -> list[str]:
    return [name for name, pattern in _FURNITURE.items() if pattern.search(text)]


def facet_value(letter: Letter) -> str | None:
    """What the ministry facet and filter of the pages and the API offer for this letter (qa/index/facets.py)."""
    from qa.index import facets

    if hasattr(facets, "letter_ministry"):
        return facets.letter_ministry(letter)
    return facets.ministry(letter.sender)  # before issue 15: a part of the sender string


def register_ministry(letter: Letter) -> str | None:
    """The register's ministry of the letter's first signer, as the letter itself carries it."""
    ministry = getattr(letter, "ministry", None)
    if ministry is not None:
        return str(getattr(ministry, "label", ministry))
    return None


def measure(letters: list[Letter]) -> dict[str, object]:
    from qa.ingest import ministries

    passages: list[Passage] = [passage for letter in letters for passage in chunk_letter(letter)]
    kinds = Counter(kind for passage in passages if (kind := section_kind(passage.section)))
    furniture: Counter[str] = Counter()
    furniture_examples: dict[str, str] = {}
    for passage in passages:
        for name in furniture_in(passage.text):
            furniture[name] += 1
            match = _FURNITURE[name].search(passage.text)
            assert match
            start = max(0, match.start() - 30)
            furniture_examples.setdefault(name, f"{passage.id}: …{passage.text[start:match.end() + 30]}…".replace("\n", " "))
    official = {ministry.label for ministry in ministries.REGISTER} | {ministry.name for ministry in ministries.REGISTER}
    with_sender = [letter for letter in letters if letter.sender and letter.type != "motie"]
    without_ministry = [letter.id for letter in with_sender if register_ministry(letter) is None]
    facets = Counter(value for letter in letters if (value := facet_value(letter)))
    fragments = sorted(value for value in facets if value not in official)
    dated_line = [letter for letter in letters if DATE_LINE.search(letter.text[:6000])]
    undated = [letter.id for letter in dated_line if not letter.date]
    by_id = {letter.id: letter for letter in letters}
    spans = [q for q in read_questions(QUESTIONS) if q.answerable and q.doc_id in by_id and q.answer_span]
    lost = [q.question for q in spans if normalise(q.answer_span or "") not in normalise(by_id[str(q.doc_id)].text)]
    return {
        "letters": len(letters),
        "passages": len(passages),
        "non_body_sections": sum(kinds.values()),
        "non_body_section_share": round(sum(kinds.values()) / max(1, len(passages)), 4),
        "non_body_sections_by_kind": dict(kinds.most_common()),
        "passages_with_furniture": sum(1 for passage in passages if furniture_in(passage.text)),
        "furniture_patterns": dict(furniture.most_common()),
        "furniture_examples": furniture_examples,
        "letters_with_sender": len(with_sender),
        "letters_without_register_ministry": len(without_ministry),
        "without_ministry_ids": without_ministry,
        "ministry_facets": len(facets),
        "facet_fragments": fragments,
        "letters_with_date_line": len(dated_line),
        "date_line_but_no_date": undated,
        "answer_spans": len(spans),
        "answer_spans_lost": lost,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--verbose", action="store_true", help="also list the offending passages and letters")
    args = parser.parse_args()
    report = read_letters([args.corpus])
    figures = measure(report.letters)
    if args.json:
        print(json.dumps(figures, ensure_ascii=False, indent=1))
        return 0
    print(f"{figures['letters']} letters, {figures['passages']} passages")
    print(f"sections that are letterhead/addressee/reference/colophon/footnote: {figures['non_body_sections']} "
          f"= {100 * float(figures['non_body_section_share']):.1f} % {figures['non_body_sections_by_kind']}")  # type: ignore[arg-type]
    print(f"passages with page furniture: {figures['passages_with_furniture']} {figures['furniture_patterns']}")
    print(f"letters with a sender (moties aside) without a register ministry: {figures['letters_without_register_ministry']} "
          f"of {figures['letters_with_sender']}")
    print(f"ministry filter: {figures['ministry_facets']} values, fragments: {figures['facet_fragments']}")
    print(f"letters with a date line but no date: {len(figures['date_line_but_no_date'])} "  # type: ignore[arg-type]
          f"of {figures['letters_with_date_line']} with a date line")
    print(f"answer spans no longer in their letter: {len(figures['answer_spans_lost'])} of {figures['answer_spans']}")  # type: ignore[arg-type]
    if args.verbose:
        for key in ("furniture_examples", "without_ministry_ids", "date_line_but_no_date", "answer_spans_lost"):
            print(f"{key}: {json.dumps(figures[key], ensure_ascii=False, indent=1)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Metadata from a letter's own text: its date line, sender heading, signature, motie head and Kamerstuk footer.

What the letter says counts last: a `letters.jsonl` sidecar and the XML's meta tags win (qa/ingest/reading.py).
"""

from __future__ import annotations

import re

from qa.core.display import MONTH_NAMES

OFFICIAL_URL = "https://zoek.officielebekendmakingen.nl/{id}.html"

_MONTH_ABBREVIATIONS = (("jan",), ("feb",), ("mrt",), ("apr",), (), ("jun",), ("jul",), ("aug",), ("sep", "sept"), ("okt",), ("nov",), ("dec",))
MONTHS = {
    name: number
    for number, (full, short) in enumerate(zip(MONTH_NAMES, _MONTH_ABBREVIATIONS, strict=True), start=1)
    for name in (full, *short)
}
# "12 mei 2021"; OCR glues day and month ("19april 1993").
_DATE = re.compile(
    r"(?P<day>\d{1,2})\s*(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\b\.?\s*(?P<year>(?:1[89]|20)\d{2})\b",
    re.IGNORECASE,
)
# The letter's own date line: "Den Haag, 12 mei 2021", "'s-Gravenhage, 3 maart 1986" and its OCR variants
# ("'\ns-Gravenhage", "'s.Gravenhage", "s Gravenhage"); a weekday may stand before the day.
_PLACE_DATE_LINE = re.compile(
    r"(?:Den\s+Haag|s[-.\s]?Gravenhage|Gravenhage)[,.:\s]+(?:[a-z]+dag\s+)?" + _DATE.pattern,
    re.IGNORECASE,
)
# Where there is none: the reference block's "Datum", an answer's "ontvangen", a motie's "Voorgesteld".
_DATE_LINE = re.compile(r"(?:Datum|ontvangen|Voorgesteld)[,:\s]+(?:\S+\s+)?" + _DATE.pattern, re.IGNORECASE)
# "BRIEF VAN DE MINISTER VAN WELZIJN, VOLKSGEZONDHEID\nEN CULTUUR": the heading may go on over capital lines.
_SENDER = re.compile(r"BRIEF\s+VAN\s+DE\s+(?P<who>[A-ZÀ-Ý][A-ZÀ-Ý .,\-–]*(?:\n[A-ZÀ-Ý][A-ZÀ-Ý .,\-–]*(?![a-zà-ÿ]))*)")
_ANSWER_SENDER = re.compile(r"(?:Antwoord|Mededeling)\s+van\s+(?P<who>[^\n(]+\([^)]+\))")
# The signature of a ministry's own PDF, which has no "BRIEF VAN DE ..." heading: "DE MINISTER VAN INFRASTRUCTUUR EN WATERSTAAT,".
_SIGNATURE = re.compile(r"^(?:DE|De)\s+(?P<who>(?:MINISTER|STAATSSECRETARIS|Minister|Staatssecretaris)\s+(?:VAN|VOOR|van|voor)\s+[^\n,]{3,120}),\s*$",
                        re.MULTILINE)
SIGNATURE_TAIL = 4000  # characters at the end of a letter searched for its signature
_MOTION = re.compile(r"MOTIE\s+VAN\s+(?:HET\s+LID|DE\s+LEDEN)\s+(?P<who>[^\n]+)")
_NUMBER = re.compile(r"\bNr\.\s*(?P<number>\d+)\b")
_FOOTER_REF = re.compile(
    r"vergaderjaar\s+\d{4}\s*[-–]\s*\d{4},\s*(?P<dossier>\d{1,3}\s?\d{3}(?:\s?[-–]?\s?[A-Z]{1,4})?)[,\s]+(?:hfdst\.\s*[A-Z]+,\s*)?nr\.\s*(?P<number>\d+)",
    re.IGNORECASE,
)
_AANHANGSEL = re.compile(r"Aanhangsel\s+van\s+de\s+Handelingen", re.IGNORECASE)


def parse_dutch_date(text: str) -> str | None:
    match = _DATE.search(text)
    if not match:
        return None
    month = MONTHS[match["month"].lower()]
    day = int(match["day"])
    if not 1 <= day <= 31:
        return None
    return f"{match['year']}-{month:02d}-{day:02d}"


def _title_case_office(who: str) -> str:
    """'MINISTER VAN BUITENLANDSE ZAKEN' -> 'Minister van Buitenlandse Zaken'."""
    small = {"van", "voor", "en", "de", "het", "der"}
    words = " ".join(who.replace("-\n", "").split()).lower().split(" ")
    return " ".join(word if word in small and index else word.capitalize() for index, word in enumerate(words))


def metadata_from_text(text: str) -> dict[str, str | None]:
    """Best-effort metadata from the printed letter head and footers."""
    head = text[:4000]
    found: dict[str, str | None] = {}
    date_line = _PLACE_DATE_LINE.search(head) or _DATE_LINE.search(head)
    found["date"] = parse_dutch_date(date_line.group(0)) if date_line else None
    if sender := _SENDER.search(head):
        who = re.sub(r"\s+[A-ZÀ-Ý]$", "", sender["who"].strip(" .,-–\n"))  # "ZAKEN Aan de ..." leaves a stray "A"
        found["sender"] = _title_case_office(who.replace(".", ","))
        found["type"] = "brief_regering"
    elif answer := _ANSWER_SENDER.search(head):
        found["sender"] = " ".join(answer["who"].split())
        found["type"] = "mededeling_kamervragen" if answer.group(0).startswith("Mededeling") else "antwoord_kamervragen"
    elif motion := _MOTION.search(head):
        found["sender"] = _title_case_office(motion["who"])
        found["type"] = "motie"
    elif _AANHANGSEL.search(head):
        found["type"] = "antwoord_kamervragen"
    elif signature := _SIGNATURE.search(text[-SIGNATURE_TAIL:]):
        found["sender"] = _title_case_office(signature["who"])
        found["type"] = "brief_regering"
    if footer := _FOOTER_REF.search(text):
        found["dossier"] = re.sub(r"\s+", "", footer["dossier"]).replace("–", "-")
        found["number"] = footer["number"]
    elif number := _NUMBER.search(head):
        found["number"] = number["number"]
    return found


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "letter"


def official_url(letter_id: str) -> str | None:
    if re.match(r"^(?:kst|ah-tk|ah|blg|h-tk)-", letter_id):
        return OFFICIAL_URL.format(id=letter_id)
    return None


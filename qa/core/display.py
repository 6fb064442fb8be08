"""How the shells show things to people: document types and dates in Dutch, and which links may leave the site.

The pages, the API's `*_label` fields and the CLI all say a type and a date this way (input rules: qa/core/limits.py).
"""

from __future__ import annotations

import re
from datetime import date

# How the pages name a type (filters, source cards, letters): a motie says who speaks, so an MP's
# "verzoekt de regering ..." is not read as a government position (issue 14).
TYPE_LABELS: dict[str, str] = {
    "brief_regering": "Brief van de regering",
    "antwoord_kamervragen": "Antwoord op Kamervragen",
    "mededeling_kamervragen": "Mededeling over Kamervragen",
    "motie": "Motie van Kamerleden",
}

MONTH_NAMES = ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober", "november", "december")


def type_label(value: str | None) -> str:
    return TYPE_LABELS.get(value or "", value or "onbekend")


def dutch_date(iso: str | None) -> str:
    """'2021-05-12' -> '12 mei 2021'; anything else as it is."""
    try:
        day = date.fromisoformat(iso or "")
    except ValueError:
        return iso or "datum onbekend"
    return f"{day.day} {MONTH_NAMES[day.month - 1]} {day.year}"


def web_url(url: str | None) -> str | None:
    """Only web links leave the site: a letter's url field never becomes a javascript: link."""
    return url if url and url.lower().startswith(("https://", "http://")) else None


# C0 and C1 controls except tab and newline, DEL, and the bidi overrides: what letters, feedback (and the
# servers they come from) must not send to a terminal (ESC ] 0 title, ESC [ 2J clear, OSC 52 clipboard).
TERMINAL_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def json_line(value: object) -> str:
    """One JSON line that is also safe on a terminal, and lossless: json.dumps escapes C0 controls itself, the rest
    of TERMINAL_CONTROL (DEL, C1, bidi overrides) become \\uXXXX escapes here (they can only stand inside strings)."""
    import json

    return TERMINAL_CONTROL.sub(lambda match: f"\\u{ord(match.group()):04x}", json.dumps(value, ensure_ascii=False))


def terminal_safe(text: str, replacement: str = "?") -> str:
    """Text from a letter, a file name, a server or a user, fit for a terminal: control characters become "?"
    (or `replacement`). The CLI prints through it, the feedback CSV removes them with it."""
    return TERMINAL_CONTROL.sub(replacement, text)

"""The third hostile round (issue 29): the web layer against hostile text, hostile sites and a forged Host.

On the fast tier (the deterministic embedder): the feedback CSV export, the Atom feed of a saved question,
cross-site requests, and the Host header. The feedback buttons' icons are checked here for the characters
they use and in Chromium (tests/test_browser_chat.py) for how they render."""

from __future__ import annotations

import csv
import io
import re

import pytest

from qa import feedback

# --- the CSV export of feedback ------------------------------------------------------------------------

# (what someone typed, how the cell must read in the export)
HOSTILE_CELLS = {
    "formula": ("=1+1", "'=1+1"),
    "plus": ("+31 6 1234", "'+31 6 1234"),
    "minus": ("-2+3", "'-2+3"),
    "at": ("@SUM(A1)", "'@SUM(A1)"),
    "tab first": ("\t=1+1", "'\t=1+1"),
    "CR first": ("\r=1+1", "'=1+1"),  # the CR goes (a control), the formula is still caught
    "blank, then a formula": ("  =HYPERLINK(\"http://evil\")", "'  =HYPERLINK(\"http://evil\")"),
    "ESC, then a formula": ("\x1b=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
    "window title (OSC 0)": ("\x1b]0;pwned\x07goed antwoord", "]0;pwnedgoed antwoord"),
    "clear screen": ("\x1b[2J\x1b[Hgoed", "[2J[Hgoed"),
    "clipboard write (OSC 52)": ("\x1b]52;c;ZXZpbA==\x07ok", "]52;c;ZXZpbA==ok"),
    "C1 CSI": ("\x9b31mrood", "31mrood"),
    "NUL and DEL": ("a\x00b\x7fc", "abc"),
    "bidi override": ("\u202egnitset\u202c", "gnitset"),
    "plain Dutch, lines kept": ("Klopt niet:\nde datum is 11 september.", "Klopt niet:\nde datum is 11 september."),
}
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize(("typed", "exported"), list(HOSTILE_CELLS.values()), ids=list(HOSTILE_CELLS))
def test_the_csv_export_runs_no_formula_and_sends_no_escape_sequence(typed: str, exported: str) -> None:
    """As stored (a row may be edited by hand): in the comment, the question and the answer alike."""
    item = feedback.Feedback("down", typed, typed, typed, citations=(feedback.Cited(1, "kst-1", "kst-1#1", "q"),), created_at="2024-01-01")
    buffer = io.StringIO()
    feedback.write_csv([item], buffer)
    text = buffer.getvalue()
    assert not _UNSAFE.search(text.replace("\r\n", "\n")), repr(text)
    header, row = list(csv.reader(io.StringIO(text)))
    cells = dict(zip(header, row, strict=True))
    assert cells["comment"] == cells["question"] == cells["answer"] == exported, cells

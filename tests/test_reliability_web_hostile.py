"""The third hostile round (issue 29): the web layer against hostile text, hostile sites and a forged Host.

On the fast tier (the deterministic embedder): the feedback CSV export, the Atom feed of a saved question,
cross-site requests, and the Host header. The feedback buttons' icons are checked here for the characters
they use and in Chromium (tests/test_browser_chat.py) for how they render."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest
from conftest import copy_index
from litestar.testing import TestClient

from qa import feedback, watches
from qa import index as index_store
from qa.engine import Engine
from qa.filters import Filters
from qa.server.app import create_app
from qa.server.settings import Settings

KEY = "hostile-admin-key"
HOST = "kamerbrieven.example.nl"  # the server's own name, as configured


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, fast_index_dir: Path) -> Path:
    return copy_index(fast_index_dir, tmp_path_factory.mktemp("web-hostile") / "index")


@pytest.fixture(scope="module")
def client(index_dir: Path, fast_engine: Engine) -> Iterator[TestClient]:
    engine = Engine(index_store.load(index_dir), fast_engine.embedder, fast_engine.policy)
    settings = Settings(index_dir=index_dir, build_sample=False, admin_key=KEY)
    with TestClient(create_app(settings, engine=engine), base_url=f"http://{HOST}") as test_client:
        yield test_client

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


# --- the Atom feed of a saved question ------------------------------------------------------------------

ATOM = "{http://www.w3.org/2005/Atom}"
# Characters XML 1.0 does not allow at all (not even as &#…;), and text that only escaping keeps apart from markup.
NOT_XML = "".join(map(chr, [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])) + "\ud800\udfff\ufffe\uffff"
MARKUP = "]]> <![CDATA[ x ]]> </title><entry> & &amp; <script>"


def hostile_watch(text: str) -> tuple[watches.Watch, list[watches.WatchHit]]:
    watch = watches.Watch(7, "tok_" + "A" * 20, f"Wat {text} kost het?", 0.6, Filters(), "2024-01-01T00:00:00+00:00", None, 0)
    hit = watches.WatchHit(1, 7, f"kst-{text}", f"kst-{text}#1", f"Titel {text}", "2024-01-02", f"https://example.org/{text}",
                           f"Antwoord {text}", f"Citaat {text}", 0, 5, 0.9, "2024-01-03T00:00:00+00:00", None)
    return watch, [hit]


@pytest.mark.parametrize("text", [NOT_XML, MARKUP, NOT_XML + MARKUP, "\x1b[2J\x7f\x85\u2028"], ids=["not XML", "markup", "both", "escapes"])
def test_the_atom_feed_stays_well_formed_xml_whatever_the_titles_and_questions_hold(text: str) -> None:
    """The question, a letter's title, id, url, answer: any of them may hold what XML 1.0 cannot carry."""
    watch, hits = hostile_watch(text)
    body = watches.atom_feed(watch, hits, "http://127.0.0.1:8000", lambda hit: f"/letters/{hit.letter_id}")
    root = ElementTree.fromstring(body)  # ParseError before: "not well-formed (invalid token)"
    title = root.findtext(f"{ATOM}title") or ""
    assert title.startswith("Kamerbrieven QA: Wat ") and title.endswith(" kost het?")
    if text == MARKUP:
        assert title == f"Kamerbrieven QA: Wat {MARKUP} kost het?"  # markup is text, whole
    [entry] = root.findall(f"{ATOM}entry")
    assert (entry.findtext(f"{ATOM}title") or "").startswith("Titel ")
    assert not re.search(f"[{NOT_XML[:-4]}]", body.decode("utf-8")), "no character XML forbids, in text or attributes"


def test_a_saved_question_with_control_characters_still_has_a_feed_that_parses(client: TestClient) -> None:
    """Over the API: the question is stored as sent (JSON may carry \\u0000 and \\u001b), the feed drops what XML cannot hold."""
    made = client.post("/api/watches", json={"question": "Wat kost\x00 de \x1b[31mdrone\x0b <&]]>?"})
    assert made.status_code == 201, made.text
    feed = client.get(made.json()["feed_url"])
    assert feed.status_code == 200
    assert ElementTree.fromstring(feed.content).findtext(f"{ATOM}title") == "Kamerbrieven QA: Wat kost de [31mdrone <&]]>?"

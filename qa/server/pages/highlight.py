"""Text marked for reading: the query's words in a search excerpt, the cited passage and its quote in a letter."""

from __future__ import annotations

from dataclasses import dataclass, field

from qa.index.lexical import term_spans
from qa.ingest.chunking import Passage
from qa.ingest.cleaning import footnotes
from qa.ingest.letter import Letter


@dataclass
class Segment:
    text: str
    level: int  # 0 plain, 1 in the cited passage, 2 in the quoted span
    ids: list[str] = field(default_factory=list)  # anchors that start here
    page: int | None = None  # a page of the printed letter starts here
    link: str | None = None  # a footnote marker ("¹") links to its note


@dataclass
class Paragraph:
    segments: list[Segment]
    heading: bool  # a section heading of the letter ("Veiligheidssituatie")
    note: bool = False  # a footnote, under the letter; its marker links back to where it is cited


def letter_paragraphs(
    letter: Letter, passage: Passage | None, span: tuple[int, int] | None, headings: frozenset[str] = frozenset()
) -> list[Paragraph]:
    """The letter text as paragraphs of segments, marked where the passage and the quote lie."""
    text = letter.text
    p_start, p_end = (passage.start, passage.end) if passage else (-1, -1)
    q_start, q_end = span or (-1, -1)
    page_at = {start: number for number, start in enumerate(letter.page_starts, start=1) if number > 1}
    notes = footnotes(text)
    note_at = {note.start: f"noot-{note.number}" for note in notes}  # the note paragraph's anchor
    marker_at = {marker: (marker + len(str(note.number)), f"#noot-{note.number}") for note in notes for marker in note.markers}
    # The body's first marker of each note is its anchor ("verwijzing-N"), and the note's own number links back to it.
    cited_at = {note.markers[0]: f"verwijzing-{note.number}" for note in notes if note.markers}
    marker_at |= {note.start: (note.start + len(str(note.number)), f"#verwijzing-{note.number}") for note in notes if note.markers}
    note_spans = [(note.start, note.end) for note in notes]
    cuts = {p_start, p_end, q_start, q_end, *page_at, *note_at, *marker_at, *(end for end, _ in marker_at.values())}
    paragraphs: list[Paragraph] = []
    seen: set[str] = set()
    position = 0
    for block in text.split("\n\n"):
        start, end = position, position + len(block)
        position = end + 2
        bounds = sorted({start, end, *(cut for cut in cuts if start < cut < end)})
        segments = []
        for a, b in zip(bounds, bounds[1:], strict=False):
            level = 2 if q_start <= a and b <= q_end else 1 if p_start <= a and b <= p_end else 0
            ids = []
            for anchor, wanted in (("passage", level >= 1), ("quote", level == 2)):
                if wanted and anchor not in seen:
                    seen.add(anchor)
                    ids.append(anchor)
            if a in note_at:
                ids.append(note_at[a])
            if a in cited_at:
                ids.append(cited_at[a])
            link = marker_at[a][1] if a in marker_at and marker_at[a][0] == b else None
            segments.append(Segment(text[a:b], level, ids, page_at.get(a), link))
        if segments and any(segment.text.strip() for segment in segments):
            is_note = any(note_start <= start < note_end for note_start, note_end in note_spans)
            paragraphs.append(Paragraph(segments, block.strip() in headings, is_note))
    return paragraphs


EXCERPT_CHARS = 420  # about four lines of the results column; a passage is ~930 characters
EXCERPT_LEAD = 120  # characters shown before the first marked word


def excerpt(text: str, query: str) -> list[tuple[str, bool]]:
    """A window of `text` around the first word of `query` (or its start), cut at spaces, the query's words marked."""
    text = " ".join(text.split())
    spans = term_spans(text, query)
    start = 0
    if len(text) > EXCERPT_CHARS:
        start = max(0, min(spans[0][0] - EXCERPT_LEAD, len(text) - EXCERPT_CHARS)) if spans else 0
        if start:
            start = text.find(" ", start) + 1 or start
    end = min(len(text), start + EXCERPT_CHARS)
    if end < len(text):
        end = text.rfind(" ", start, end) if text.rfind(" ", start, end) > start else end
    pieces: list[tuple[str, bool]] = [("…", False)] if start else []
    position = start
    for a, b in spans:
        if a < start or b > end:
            continue
        pieces += [(text[position:a], False), (text[a:b], True)]
        position = b
    pieces.append((text[position:end], False))
    if end < len(text):
        pieces.append(("…", False))
    return [piece for piece in pieces if piece[0]]

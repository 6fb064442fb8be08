"""Cut a letter into passages along its structure, with character offsets into its text.

A passage is a contiguous span of the cleaned letter text, so the letter page can highlight it
exactly. Section headings ("Veiligheidssituatie", "Vraag 3") start a new passage and travel with
it; long sections are cut at sentence boundaries with one sentence of overlap.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from qa.ingest.cleaning import CleanText, footnotes
from qa.ingest.letter import Letter
from qa.ingest.pages import NOTE_MARKERS

# The version of how letters are read and cut (qa/ingest/: pages.py, cleaning.py, reading.py and this module): an index of another
# version is refused (qa/index/local/), `qa update` rebuilds it. 2: issue 15 (PDF text-layer repair, footnotes linked and
# out of passages, sections of the body only, a motie quoted by its clauses, a long letter head its own passage);
# 3: a stored web page's notes heading ("X Noot") dropped.
CHUNKER_VERSION = 3
TARGET_CHARS = 900
MAX_CHARS = 1400
MIN_CHARS = 200  # smaller blocks (letter heads, signatures) join their neighbour

_ABBREVIATIONS = {
    "jl", "nr", "nrs", "o.a", "bijv", "m.b.t", "d.d", "t.a.v", "mr", "dr", "ir", "drs", "prof", "art",
    "blz", "e.d", "i.v.m", "c.s", "a.s", "incl", "resp", "ca", "etc", "z.g", "m.i.v", "i.p.v", "o.b.v",
    "vgl", "zgn", "min", "mln", "mld", "mrd", "dhr", "mevr", "pag", "p", "e.a", "t.o.v", "n.a.v", "m.n",
    "ing", "bv", "st", "jr", "wo", "vs", "m", "lid", "hfdst", "sub", "par",
}
# Linear time: a match may only start where a run of punctuation starts (the lookbehinds) and never
# gives back what it took (possessive quantifiers), so "." * 1,000,000 costs one pass, not n² (issue 12).
# Only the whole run can ever end a sentence, so this finds exactly what the backtracking form did.
_SENTENCE_END = re.compile(
    r"(?<![.?!;])[.?!;]++[\"'”’»)⁰¹²³⁴⁵⁶⁷⁸⁹]*+(?=\s++[\"'“‘«(]?[A-ZÀ-Ý0-9•\-–])"
    r"|(?<![?!])[?!]++(?=\s)"
)
_CLOSERS = "\"'”’»)⁰¹²³⁴⁵⁶⁷⁸⁹"  # a footnote marker ("Schiphol.⁴") closes its sentence
_HEADING_WORDS = re.compile(r"^(?:Vraag|Antwoord|Vragen)\s+\d+[a-z]?$|^(?:\d+(?:\.\d+)*\.?\s+)?[A-ZÀ-Ý][^.;:!?]{1,90}$")
_NOT_A_HEADING = re.compile(r"\b(?:1[89]|20)\d{2}\b|^(?:Aan|Den Haag|Datum|Nr\.|Vergaderjaar|Kamerstuk)\b", re.IGNORECASE)
_ANSWER_HEADING = re.compile(r"^Antwoord\s+\d+[a-z]?$", re.IGNORECASE)

# Paragraphs that are not the letter's body: its head, the addressee, the ministry's reference block and
# sidebar, the printer's colophon and footnotes. None of them is a section heading (issue 15: 37 % of the
# passages had "Tweede Kamer der Staten-Generaal", "Voorgesteld" or "Kenmerk" as their section).
_BLOCK_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("letterhead", re.compile(
        r"^(?:(?:Tweede\s+)?Kamer\s+der\s+Stat|Eerste\s+Kamer\s+der|Vergaderjaar|Zitting\s+\d{4}|Kamerstuk(?:ken)?\b"
        r"|Aanhangsel\s+van\s+de\s+Handelingen|Vragen\s+gesteld\s+door|Voorgesteld\b|Nr\.?\s*\d*$|I?Nr\.\s*\d+|Hoofdstuk\s+[IVXL]+[A-Z]?\b|Ter\s+griffie|De\s+vroegere\s+stukken"
        r"|\d{1,3}(?:\s?[\dO]{3})+\b|MOTIE\s+VAN|BRIEF\s+VAN|De\s+Kamer,$|gehoord\s+de\s+beraadslaging)", re.IGNORECASE)),
    ("addressee", re.compile(
        r"^(?:Aan\s+de\s+Voorzitter|De\s+voorzitter\s+van\s+de\s+Tweede\s+Kamer|der\s+Staten-Generaal|P\s?ostbus\b|\d{4}\s?[A-Z]{2}\b"
        r"|>?\s*Retouradres|Geachte\s+voorzitter)", re.IGNORECASE)),
    ("reference", re.compile(
        r"^(?:Kenmerk|Ons\s+kenmerk|Uw\s+(?:brief|kenmerk)|Datum|Betreft|Onderwerp:|Bijlage\(n\)|Bijlagen?\s*$|Contactpersoon|Onze\s+referentie"
        r"|Ministerie\s+van\b|Inf\s?rastructuur\s+en\s*$|Waterstaat\s*$|Rijnstraat|[A-Z][a-z]+straat\s+\d+|[TF]\s+0\s?7|www\.)", re.IGNORECASE)),
    ("colophon", re.compile(r"^(?:ISSN|Sdu\b|Tweede\s+Kamer,\s+(?:vergaderjaar|zitting)|kst-|ah-tk-|Naar\s+boven|P\s?agina\s+\d)", re.IGNORECASE)),
    ("footnote", re.compile(
        r"^(?:\d{1,2}|[¹²³⁴⁵⁶⁷⁸⁹⁰]+)\s+(?!\d)(?!(?:Vraag|Antwoord|januari|februari|maart|april|mei|juni|juli|augustus|september"
        r"|oktober|november|december)\b)\S")),
)
# The paragraph after which the body begins: the date line, the salutation, a motie's "De Kamer,", the
# first question of an Aanhangsel.
_BODY_OPENS_AFTER = re.compile(
    r"^(?:[’'`‘]?\s*s[-.\s]?Gravenhage|Den\s+Haag)[,\s]+\d|^Geachte\s|^De\s+Kamer,$|^gehoord\s+de\s+beraadslaging,?$"
    r"|^Aan\s+de\s+Voorzitter\s+van\s+de\s+Tweede", re.IGNORECASE)
_LONE_NUMBER = re.compile(r"^\d{1,2}$")  # a footnote's number on its own line (pdftotext); its text follows
HEAD_BLOCK = 200  # characters: a longer paragraph after an opening is body text, so the head has ended
_BODY_OPENS_AT = re.compile(r"^Vraag\s+1\b|^Vragen\s+van\s+het\s+lid", re.IGNORECASE)
HEAD_PARAGRAPHS = 30  # a letter head is shorter; beyond it no opening is looked for


@dataclass(frozen=True)
class Passage:
    id: str
    letter_id: str
    start: int
    end: int
    section: str | None
    page: int
    text: str

    def index_text(self, title: str | None) -> str:
        """What we embed and tokenise: the passage with its letter title and section for context."""
        context = [part for part in (title, self.section) if part and part not in self.text[: len(part) + 5]]
        return "\n".join([*context, self.text])

    def sentences(self) -> list[tuple[int, int]]:
        """Sentence spans (offsets in the letter): what an answer can quote. A motie is quoted from a clause of
        its dictum ("constaterende dat ...;", "overwegende dat ...;") on to its request ("verzoekt de regering ...,
        en gaat over tot de orde van de dag."): in document order, and carrying what the motie asks."""
        return [(start + self.start, end + self.start) for start, end, _, _ in _sentences(self.text)]

    def sentence_cores(self) -> list[tuple[int, int]]:
        """What each sentence's meaning is read from (offsets in the letter), one per `sentences()`: the sentence
        itself, or the clause a motie's quote starts with (the whole rest of the dictum diluted its meaning)."""
        return [(start + self.start, end + self.start) for _, _, start, end in _sentences(self.text)]


_MOTION_OPENING = re.compile(r"^De\s+Kamer,$")
_MOTION_CLAUSE = re.compile(
    r"^(?:gehoord|constaterende|overwegende|van\s+mening|is\s+van\s+mening|verzoekt|spreekt\s+uit|roept|draagt|besluit|stelt\s+vast"
    r"|wijst|vraagt|dringt|en\s+gaat\s+over)\b", re.IGNORECASE)
_MOTION_CLOSING = re.compile(r"gaat\s+over\s+tot\s+de\s+orde\s+van\s+de\s+dag\b\.?", re.IGNORECASE)


MAX_DICTUM_PARAGRAPHS = 40  # a motie's dictum is shorter; a text layer may break a clause into several lines


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentence spans of cleaned text (offsets in it): what an answer can quote (see `_sentences`)."""
    return [(start, end) for start, end, _, _ in _sentences(text)]


def _sentences(text: str) -> list[tuple[int, int, int, int]]:
    """Each sentence of cleaned text as (start, end, core start, core end): the sentences of each paragraph, whose
    core is themselves, and a motie's dictum (from "De Kamer," or its first clause to "... gaat over tot de orde van
    de dag.") clause by clause, each clause quoted on to the end of the dictum with the clause as its core.

    A clause is what one clause word opens (constaterende, overwegende, verzoekt, ...), with the lines a text
    layer broke it into and the closing "en gaat over tot de orde van de dag." of the request; a list item of
    "overwegende dat:" is a clause of its own. The whole dictum as one sentence (issue 15's first take) diluted its
    in-context cosine over every consideration: on eval/questions.jsonl it answered off-topic questions with a
    dictum that holds all their words somewhere and lost a follow-up whose answer is one consideration; a clause
    alone lost the request the question asked about."""
    spans: list[tuple[int, int, int, int]] = []
    blocks = list(paragraphs(text))
    index = 0
    while index < len(blocks):
        start, end = blocks[index]
        paragraph = text[start:end]
        if _MOTION_OPENING.match(paragraph) or _MOTION_CLAUSE.match(paragraph):
            closing = next((later for later in range(index, min(len(blocks), index + MAX_DICTUM_PARAGRAPHS))
                            if _MOTION_CLOSING.search(text, blocks[later][0], blocks[later][1])), None)
            if closing is not None:
                close_start, close_end = blocks[closing]
                found = _MOTION_CLOSING.search(text, close_start, close_end)
                assert found is not None
                clauses = _dictum_clauses(text, blocks[index : closing + 1], found.end())
                dictum_end = clauses[-1][1] if clauses else found.end()
                for clause_start, clause_end in clauses:
                    carries = _is_clause(text[clause_start:clause_end])  # not "De Kamer," nor "gehoord de beraadslaging,"
                    spans.append((clause_start, dictum_end if carries else clause_end, clause_start, clause_end))
                spans.extend((a, b, a, b) for a, b in split_sentences(text[found.end() : close_end], found.end()))  # "... van de dag. Ergin"
                index = closing + 1
                continue
        spans.extend((a, b, a, b) for a, b in split_sentences(paragraph, start))
        index += 1
    return spans


def _is_clause(clause: str) -> bool:
    """A consideration or request of a dictum (or an item of its list), not its opening words."""
    return len(clause.split()) >= 4 and not _MOTION_OPENING.match(clause) and not re.match(r"^gehoord\b", clause, re.IGNORECASE)


_CLAUSE_DONE = re.compile(r"[;:,]$")  # a clause (or list item) ends its paragraph with one of these
_BULLET_ONLY = re.compile(r"^[•\-–·]$")
_MOTION_CONTINUES = re.compile(r"^en\s+gaat\s+over\b", re.IGNORECASE)  # closes the request, on its own line


def _dictum_clauses(text: str, blocks: list[tuple[int, int]], stop: int) -> list[tuple[int, int]]:
    """The clauses of a dictum whose paragraphs are `blocks`, the last one ending at `stop` (after "orde van de dag.")."""
    clauses: list[list[int]] = []
    for start, end in blocks:
        end = min(end, stop)
        paragraph = text[start:end]
        previous = text[clauses[-1][0] : clauses[-1][1]].rstrip(" •\n") if clauses else ""
        opens = (_MOTION_OPENING.match(paragraph) or _MOTION_CLAUSE.match(paragraph)) and not _MOTION_CONTINUES.match(paragraph)
        if clauses and not opens and (not _CLAUSE_DONE.search(previous) or _BULLET_ONLY.match(previous.strip())
                                      or _MOTION_CONTINUES.match(paragraph)):
            clauses[-1][1] = end  # a broken line, the text after a bullet, "en gaat over tot de orde van de dag."
        else:
            clauses.append([start, end])
    out = []
    for start, end in clauses:
        while end > start and (text[end - 1].isspace() or text[end - 1] in "•·"):
            end -= 1  # "... gemotiveerd is; •": the next item's bullet
        while start < end and (text[start].isspace() or text[start] in "•·"):
            start += 1
        if _has_text(text, start, end):
            out.append((start, end))
    return out


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Sentence spans (absolute offsets) of a paragraph; Dutch abbreviations do not end one."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if match.group(0).startswith("."):
            word = _word_before_dots(text, start, end)
            if word is not None and (word.lower().rstrip(".") in _ABBREVIATIONS or _INITIALS.fullmatch(word)):
                continue
        if _has_text(text, start, end):
            spans.append(_trim(text, start, end, offset))
        start = end
    if _has_text(text, start, len(text)):
        spans.append(_trim(text, start, len(text), offset))
    return spans


_INITIALS = re.compile(r"[a-z]|[A-Z][a-z]?(?:\.[A-Z][a-z]?)*")


def _word_before_dots(text: str, start: int, end: int) -> str | None:
    r"""The word that the dots ending `text[start:end]` follow ("bijv" of "bijv.”"), or None.

    What `re.search(r"([\w.]+)[.]+[closers]*$", text[start:end])[1]` gives, found by walking back
    from the end: no slice of the (possibly long) segment, no regex retried at every position."""
    stop = end
    while stop > start and text[stop - 1] in _CLOSERS:
        stop -= 1
    if stop == start or text[stop - 1] != ".":
        return None
    first = stop
    while first > start and (text[first - 1] == "." or text[first - 1].isalnum() or text[first - 1] == "_"):
        first -= 1
    return text[first : stop - 1] if stop - first >= 2 else None


def _has_text(text: str, start: int, end: int) -> bool:
    return any(not text[i].isspace() for i in range(start, end))


_BEFORE_A_MARKER = ".?!;:)\"'”’»"


def _trim(text: str, start: int, end: int, offset: int) -> tuple[int, int]:
    """Without surrounding white space, and without the footnote marker after its closing punctuation
    ("Schiphol.⁴", "(KOZP)?¹"): the marker links to a note, it is no part of what the sentence says, and a
    quote ending in it no longer read as a question or as a finished sentence."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    marker = end
    while marker > start and text[marker - 1] in NOTE_MARKERS:
        marker -= 1
    if marker < end and marker > start and text[marker - 1] in _BEFORE_A_MARKER:
        end = marker
    return start + offset, end + offset


def paragraphs(text: str) -> Iterator[tuple[int, int]]:
    """Spans of the blank-line separated paragraphs of cleaned text."""
    for match in re.finditer(r"[^\n]+(?:\n(?!\n)[^\n]+)*", text):
        yield match.start(), match.end()


def block_kind(paragraph: str) -> str | None:
    """'letterhead', 'addressee', 'reference', 'colophon' or 'footnote' for a paragraph that is no part of
    the letter's body; None for body text."""
    for kind, pattern in _BLOCK_KINDS:
        if pattern.match(paragraph):
            return kind
    return None


def body_start(text: str) -> int:
    """Offset where the letter's body begins: after its head (letterhead, addressee, date line, salutation);
    0 when no head is recognised."""
    body = 0
    for number, (start, end) in enumerate(paragraphs(text)):
        if number >= HEAD_PARAGRAPHS or (body and end - start > HEAD_BLOCK):
            break
        paragraph = text[start:end]
        if _BODY_OPENS_AT.match(paragraph):
            return start
        if _BODY_OPENS_AFTER.match(paragraph):
            body = end  # the head may go on: "Aan de Voorzitter", then the date line, then "Geachte voorzitter,"
    return body


def is_heading(paragraph: str) -> bool:
    words = paragraph.split()
    return (
        block_kind(paragraph) is None
        and len(paragraph) <= 90
        and 1 <= len(words) <= 12
        and bool(_HEADING_WORDS.match(paragraph))
        and "," not in paragraph
        and not _NOT_A_HEADING.search(paragraph)
        and not paragraph.isupper()  # "BRIEF VAN DE MINISTER ..." is the letter head, not a section
    )


def chunk_letter(letter: Letter) -> list[Passage]:
    """Structure-aware passages of one letter."""
    text = letter.text
    clean = CleanText(text, letter.page_starts)
    # Sentences and headings, each marked with its section, whether it opens a paragraph, whether it opens a
    # section (or the body) and whether it is a heading.
    pieces: list[tuple[int, int, str | None, bool, bool, bool]] = []
    section: str | None = None
    sections_from = body_start(text) if letter.type != "motie" else len(text)  # a motie has no sections
    # The body opens a passage when the letter head (letterhead, addressee, date line) and the first paragraph do
    # not fit in one: a head that rode along pushed that paragraph's second half into the next passage (an OCR
    # letter's answer fell from rank 1 to 6 on eval/questions.jsonl). When they fit, or the head is short
    # (< MIN_CHARS), they stay together: a passage of the head alone holds no answer and was found by the
    # letter's title (three such passages pushed answers out of the top 5).
    body_opened = sections_from in (0, len(text))
    after_note_number = False
    # Footnotes are no passage: they close the letter (qa/ingest/cleaning.py) and the letter page shows them under it,
    # linked to their markers. As passages they were found by their link texts ("NOS.nl, «... Bunq ...»") and
    # took the place of the answer (a notes-only passage ranked 2nd for a question on that letter).
    notes_from = notes_start(text)
    sentences = iter(sentence_spans(text))
    sentence = next(sentences, None)
    for start, end in paragraphs(text):
        if start >= notes_from:
            break
        paragraph = text[start:end]
        is_note_text, after_note_number = after_note_number, bool(_LONE_NUMBER.match(paragraph))
        heading = start >= sections_from and not is_note_text and is_heading(paragraph)
        first = True
        while sentence is not None and sentence[0] < end:  # the paragraph's sentences (a dictum spans paragraphs)
            if sentence[0] >= start and not heading:
                opens_body = not body_opened and sentence[0] >= sections_from
                body_opened = body_opened or opens_body
                if opens_body:
                    head = sentence[0] - (pieces[0][0] if pieces else sentence[0])
                    opens_body = head >= MIN_CHARS and end - (pieces[0][0] if pieces else start) > MAX_CHARS
                pieces.append((sentence[0], sentence[1], section, first, opens_body, False))
                first = False
            sentence = next(sentences, None)
        if heading:
            body_opened = True
            opens_section = not _ANSWER_HEADING.match(paragraph)  # "Antwoord 3" stays with "Vraag 3"
            if opens_section:
                section = paragraph
            pieces.append((start, end, section, True, opens_section, True))

    # A motie's head (its title) and its dictum make one passage when they fit: a head alone would be found
    # by the title's words and hold no answer (on eval/questions.jsonl it took rank 1 from the dictum).
    target = MAX_CHARS if letter.type == "motie" else TARGET_CHARS
    blocks: list[tuple[int, int, str | None]] = []
    block: list[tuple[int, int]] = []
    block_section: str | None = None
    previous_was_heading = False
    for start, end, piece_section, opens_paragraph, opens_section, is_heading_piece in pieces:
        size = end - block[0][0] if block else 0
        too_big = size > MAX_CHARS or (opens_paragraph and size > target)
        if block and ((opens_section and not previous_was_heading and size >= MIN_CHARS) or too_big):
            blocks.append((block[0][0], block[-1][1], block_section))
            last = block[-1]
            # Mid-paragraph cuts repeat the last sentence so no statement loses its context.
            block = [last] if too_big and not opens_paragraph and last[1] - last[0] < 400 else []
        if not block or opens_section:
            block_section = piece_section
        block.append((start, end))
        previous_was_heading = opens_section and is_heading_piece
    if block:
        if blocks and block[-1][1] - block[0][0] < MIN_CHARS:
            start, _, section = blocks.pop()
            block = [(start, start)] + block
            block_section = section
        blocks.append((block[0][0], block[-1][1], block_section))

    blocks = [(start, _past_markers(text, end), section) for start, end, section in blocks]
    return [
        Passage(
            id=f"{letter.id}#{number}",
            letter_id=letter.id,
            start=start,
            end=end,
            section=section,
            page=clean.page_at(start),
            text=text[start:end],
        )
        for number, (start, end, section) in enumerate(blocks, start=1)
    ]


def notes_start(text: str) -> int:
    """Where the footnotes that close a cleaned letter begin (its length when it has none): the cleaning moves
    every note of a text layer there, so what follows is notes (and a marker whose note the layout lost)."""
    return min((note.start for note in footnotes(text)), default=len(text))


def _past_markers(text: str, end: int) -> int:
    """A passage ends after the footnote marker its last sentence leaves out ("Schiphol.⁴"): all of the letter's
    body lies in some passage, and the letter page marks the marker with its sentence."""
    while end < len(text) and text[end] in NOTE_MARKERS:
        end += 1
    return end

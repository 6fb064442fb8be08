"""Turn raw letter text (PDF text layers, OCR, web pages) into clean paragraphs.

Letters arrive with page footers, words hyphenated across line breaks and paragraphs broken
into printed lines. Retrieval and the letter page need running text, so we drop the page
furniture, rejoin words and lines, and remember where each page starts so a passage can still
say on which page it stands. Nothing but page furniture is dropped.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from qa.ingest.pages import BLOCK_START, NOTE_MARKERS, ends_sentence, repair_text_layer, split_pages, strip_page_furniture

MAX_HYPHENATED_WORD = 100  # longer "words" are not Dutch; no vocabulary look-up (keeps cleaning linear)



@dataclass(frozen=True)
class CleanText:
    """Cleaned letter text and the character offset at which each page starts (page 1 at 0)."""

    text: str
    page_starts: tuple[int, ...] = (0,)

    def page_at(self, offset: int) -> int:
        """1-based page number of a character offset."""
        page = 1
        for number, start in enumerate(self.page_starts, start=1):
            if start <= offset:
                page = number
        return page


def _typical_width(lines: list[str]) -> int:
    lengths = sorted(len(line.strip()) for line in lines if len(line.strip()) > 20)
    if not lengths:
        return 80
    return lengths[int(len(lengths) * 0.8)] if len(lengths) > 4 else lengths[-1]


def _is_soft_break(previous: str, following: str, width: int) -> bool:
    """Whether the printed line break between two lines falls inside a paragraph."""
    if previous.endswith("-") and len(previous) > 1 and previous[-2].isalpha():
        return True
    if BLOCK_START.match(following) or len(previous) < 0.7 * width:
        return False
    # A numbered heading ("1. Registratiekosten ...") followed by a sentence.
    return not (BLOCK_START.match(previous) and not ends_sentence(previous) and following[0].isupper())


def _keeps_hyphen(head_tail: str, following: str, vocabulary: Counter[str]) -> bool:
    """Whether "NAVO-" + "missie" stays "NAVO-missie"; "aanwe-" + "zigheid" becomes one word.

    `head_tail` is the end of the paragraph before the hyphen (at least MAX_HYPHENATED_WORD + 1
    characters of it, when there are that many)."""
    first_word = re.match(r"\w*", following).group(0)  # type: ignore[union-attr]
    last_word = _trailing_word(head_tail)
    if not first_word or not first_word[0].islower() or last_word.isupper() or last_word[-1:].isdigit():
        return True
    if len(last_word) > MAX_HYPHENATED_WORD:
        return False
    return vocabulary[f"{last_word}-{first_word}".lower()] > vocabulary[(last_word + first_word).lower()]


_WORD_START = re.compile(r"\w*")


def _trailing_word(text: str) -> str:
    """`re.search(r"\\w*$", text)[0]`, matched on the reversed text instead of retried at every position."""
    return _WORD_START.match(text[::-1]).group(0)[::-1]  # type: ignore[union-attr]


class _Paragraph:
    """A paragraph being built from printed lines: adding a line costs the line, not the paragraph
    (`current = f"{current} {line}"` copied the whole paragraph per line: quadratic)."""

    WINDOW = 256  # the end of the paragraph kept as one string, for `tail`

    def __init__(self, text: str = "") -> None:
        self.parts = [text] if text else []
        self.length = len(text)
        self.end = text[-self.WINDOW :]

    def __bool__(self) -> bool:
        return self.length > 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)
        self.end = (self.end + text[-self.WINDOW :])[-self.WINDOW :]

    def tail(self, size: int) -> str:
        """The last `size` characters (all of them when shorter); `size` < WINDOW - 1, as a drop
        always follows an add."""
        return self.end[-size:]

    def drop_last(self) -> None:
        self.parts[-1] = self.parts[-1][:-1]
        self.length -= 1
        self.end = self.end[:-1]
        if not self.parts[-1]:
            self.parts.pop()

    def text(self) -> str:
        return "".join(self.parts)


@dataclass(frozen=True)
class Footnote:
    """A footnote of the cleaned text and the markers that point to it (offsets into the text)."""

    number: int
    start: int  # the note paragraph, marker included ("¹ Zie ook ...")
    end: int
    markers: tuple[int, ...]  # where its superscript marker stands in the body ("grondstoffen¹")


_NOTE_PARAGRAPH = re.compile(r"(?:^|(?<=\n\n))([⁰¹²³⁴⁵⁶⁷⁸⁹]+) [^\n]+")
_MARKER = re.compile(r"(?<=\S)[⁰¹²³⁴⁵⁶⁷⁸⁹]+")
_FROM_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")


def footnotes(text: str) -> list[Footnote]:
    """The footnotes of cleaned text, each linked to its markers: what the letter page and the API show."""
    markers: dict[int, list[int]] = {}
    for match in _MARKER.finditer(text):
        markers.setdefault(int(match.group(0).translate(_FROM_SUPERSCRIPT)), []).append(match.start())
    notes = []
    for match in _NOTE_PARAGRAPH.finditer(text):
        number = int(match.group(1).translate(_FROM_SUPERSCRIPT))
        notes.append(Footnote(number, match.start(), match.end(), tuple(markers.get(number, ()))))
    return notes


def without_note_markers(text: str) -> str:
    """The text with its footnote markers (superscript digits) taken out: what a word index should see."""
    return text.translate({ord(char): None for char in NOTE_MARKERS})


def clean(raw: str) -> CleanText:
    """Clean a letter's raw text into paragraphs separated by blank lines."""
    pages = repair_text_layer(split_pages(raw))
    vocabulary = Counter(word.lower() for word in re.findall(r"\w+(?:-\w+)*", raw))
    width = _typical_width([line for page in pages for line in page])

    paragraphs: list[str] = []
    page_marks: list[tuple[int, int, int]] = [(0, 0, 1)]  # (paragraph index, offset in it, page)
    current = _Paragraph()
    previous_line = ""
    for page_number, page_lines in enumerate(pages, start=1):
        lines = strip_page_furniture(page_lines)
        first_line_of_page = page_number > 1
        for line in lines:
            stripped = " ".join(line.split())
            if not stripped:
                if current:
                    paragraphs.append(current.text())
                    current = _Paragraph()
                continue
            if first_line_of_page:
                first_line_of_page = False
                # A sentence running on from the previous page continues its paragraph.
                if not current and paragraphs and not ends_sentence(paragraphs[-1]) and stripped[0].islower():
                    current = _Paragraph(paragraphs.pop())
                page_marks.append((len(paragraphs), current.length + 1 if current else 0, page_number))
            if not current:
                current = _Paragraph(stripped)
            elif _is_soft_break(previous_line, stripped, width):
                end = current.tail(MAX_HYPHENATED_WORD + 2)
                if end.endswith("-") and end[-2:-1].isalpha():
                    if not _keeps_hyphen(end[:-1], stripped, vocabulary):
                        current.drop_last()
                    current.add(stripped)
                else:
                    current.add(" ")
                    current.add(stripped)
            else:
                paragraphs.append(current.text())
                current = _Paragraph(stripped)
            previous_line = stripped
    if current:
        paragraphs.append(current.text())

    paragraph_offsets = [0]
    for paragraph in paragraphs:
        paragraph_offsets.append(paragraph_offsets[-1] + len(paragraph) + 2)
    text = "\n\n".join(paragraphs)
    page_starts = [0] * max(page for _, _, page in page_marks)
    for index, offset_in, page in page_marks:
        page_starts[page - 1] = min(paragraph_offsets[index] + offset_in, len(text))
    for page in range(1, len(page_starts)):  # pages with no text start where the next text is
        page_starts[page] = max(page_starts[page], page_starts[page - 1])
    return CleanText(text, tuple(page_starts))

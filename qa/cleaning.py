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

PAGE_BREAK = "\f"

# Lines that are page furniture of Kamerstukken and Aanhangsel Handelingen.
_FOOTER_LINE = re.compile(
    r"""^(?:
        (?:kst|ah-tk|ah|blg|stb|stcrt)-[\w.-]+                     # file id printed on each page
      | .{0,20}ISSN\s*0921\s*-?\s*\d{4}.*                          # ISSN line (also OCR'd Sdu colophon)
      | (?:[’'`]s[-\s]?Gravenhage\s+\d{4}\s*)?
        Tweede\s+Kamer,\s+vergaderjaar\s+\d{4}\s*[-–]\s*\d{4}\s*,.{0,60}   # running footer
      | [’'`]s[-\s]?Gravenhage\s+\d{4}                             # printer's place and year
      | P\s?agina\s+\d+\s+van\s+\d+                                # "Pagina 2 van 7"
      | Naar\s+boven                                               # web page "back to top"
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_LONE_NUMBER = re.compile(r"^\d{1,3}$")
_RUNNING_FOOTER = re.compile(r"Tweede\s++Kamer,\s++vergaderjaar", re.IGNORECASE)
_PAGE_NUMBER_AT_END = re.compile(r"\s(\d{1,3})\s*$")

# A line that starts a new block even inside wrapped text.
_BLOCK_START = re.compile(
    r"^(?:Vraag|Antwoord|Vragen|Toelichting|Bijlage)\s+\d+[a-z]?\b"
    r"|^(?:\d{1,2}[.)]|[a-z][.)]|[•▪●◦\-–\uf0b7])\s+"
    r"|^(?:verzoekt|constaterende|overwegende|gehoord|spreekt uit|roept)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.:;?!)»”\"']\s*(?:\d{1,2})?$")
MAX_HYPHENATED_WORD = 100  # longer "words" are not Dutch; no vocabulary look-up (keeps cleaning linear)


def _ends_sentence(line: str) -> bool:
    """`_SENTENCE_END` at the end of a whitespace-normalised line; a match is at most 4 characters
    long there, so only the tail is searched (a search of the whole line per page was quadratic)."""
    return bool(_SENTENCE_END.search(line[-8:]))


def _ends_page(line: str) -> bool:
    """"Tweede Kamer, vergaderjaar …  7": a running footer that ends with its page number.

    The same test as `Tweede\\s+Kamer,\\s+vergaderjaar.*?\\s(\\d{1,3})\\s*$` in linear time: the lazy
    form retried the rest of the line from every "Tweede Kamer" in it (issue 12)."""
    head = _RUNNING_FOOTER.search(line)
    return bool(head and _PAGE_NUMBER_AT_END.search(line, head.end()))


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


def strip_page_furniture(lines: list[str]) -> list[str]:
    """The lines without running footers and the page numbers printed under them."""
    kept: list[str] = []
    previous_was_footer = False
    for line in lines:
        stripped = line.strip()
        if _FOOTER_LINE.match(stripped):
            previous_was_footer = True
            continue
        if previous_was_footer and _LONE_NUMBER.match(stripped):
            continue  # the page number printed under a footer
        previous_was_footer = False
        kept.append(line)
    return kept


def _split_pages(raw: str) -> list[list[str]]:
    """Pages by form feed (pdftotext) or, failing that, by printed footers."""
    raw = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\u00ad", "")
    pages: list[list[str]] = []
    by_footer = PAGE_BREAK not in raw  # a PDF's pages are its form feeds; pypdf may put the footer at a page's top
    for form_feed_page in raw.split(PAGE_BREAK):
        current: list[str] = []
        for line in form_feed_page.split("\n"):
            current.append(line)
            if by_footer and _ends_page(line.strip()) and _FOOTER_LINE.match(line.strip()):
                pages.append(current)
                current = []
        pages.append(current)
    while len(pages) > 1 and not any(line.strip() for line in pages[-1]):
        pages.pop()
    return pages


def _typical_width(lines: list[str]) -> int:
    lengths = sorted(len(line.strip()) for line in lines if len(line.strip()) > 20)
    if not lengths:
        return 80
    return lengths[int(len(lengths) * 0.8)] if len(lengths) > 4 else lengths[-1]


def _is_soft_break(previous: str, following: str, width: int) -> bool:
    """Whether the printed line break between two lines falls inside a paragraph."""
    if previous.endswith("-") and len(previous) > 1 and previous[-2].isalpha():
        return True
    if _BLOCK_START.match(following) or len(previous) < 0.7 * width:
        return False
    # A numbered heading ("1. Registratiekosten ...") followed by a sentence.
    return not (_BLOCK_START.match(previous) and not _ends_sentence(previous) and following[0].isupper())


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


def clean(raw: str) -> CleanText:
    """Clean a letter's raw text into paragraphs separated by blank lines."""
    pages = _split_pages(raw)
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
                if not current and paragraphs and not _ends_sentence(paragraphs[-1]) and stripped[0].islower():
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

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
      | .{0,20}ISSN\s*0921\s*[-–•.]?\s*\d{4}.*                     # ISSN line (also OCR'd Sdu colophon)
      | >?\s*Retouradres\b.*                                        # the return address over a ministry's window envelope
      | (?:[’'`]s[-\s]?Gravenhage\s+\d{4}\s*)?
        Tweede\s+Kamer,\s+vergaderjaar\s+\d{4}\s*[-–]\s*\d{4}\s*,.{0,60}   # running footer
      | [’'`]s[-\s]?Gravenhage\s+\d{4}                             # printer's place and year
      | P\s?agina\s+\d+\s+van\s+\d+                                # "Pagina 2 van 7"
      | Naar\s+boven                                               # web page "back to top"
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_LONE_NUMBER = re.compile(r"^\d{1,3}$")
_PAGE_OF = re.compile(r"^P\s?agina\s+\d+\s+van\s+\d+$", re.IGNORECASE)  # ends a page of a ministry PDF without form feeds
_RUNNING_FOOTER = re.compile(r"Tweede\s++Kamer,\s++vergaderjaar", re.IGNORECASE)
_PAGE_NUMBER_AT_END = re.compile(r"\s(\d{1,3})\s*$")

# A line that starts a new block even inside wrapped text.
_BLOCK_START = re.compile(
    r"^(?:Vraag|Antwoord|Vragen|Toelichting|Bijlage)\s+\d+[a-z]?\b"
    r"|^(?:\d{1,2}[.)]|[a-z][.)]|[•▪●◦\-–\uf0b7]|[⁰¹²³⁴⁵⁶⁷⁸⁹]+)\s+"
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
        previous_was_footer = previous_was_footer and not stripped  # a blank line may stand between them
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
            if by_footer and (_PAGE_OF.match(line.strip()) or _ends_page(line.strip()) and _FOOTER_LINE.match(line.strip())):
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


# --- PDF text-layer repair ---------------------------------------------------------------------

PRIVATE_USE = re.compile("[\ue000-\uf8ff]")  # Symbol-font bullets (U+F0B7 ...) of Word-exported PDFs
BULLET = "•"
SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
NOTE_MARKERS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
# A line on at least this many pages (and half of them) is furniture: the sidebars of the two ministry PDFs stand
# on all 7 pages; two footnotes on two pages of an answer to Kamervragen may share a line ("Rijksoverheid.nl").
FURNITURE_PAGES = 3
MAX_FURNITURE_LINE = 40  # characters: a sidebar or header line of a ministry PDF is shorter ("I E NW/BSK-2023/297705")
# Lines of a ministry PDF's sidebar address block: they stand beside the repeated "Ministerie van ..." lines.
_SIDEBAR_LINE = re.compile(
    r"^(?:Ministerie\s+van|Inf\s?rastructuur\s+en|Waterstaat|[A-Z][a-z]+straat\s+\d+|[\d ]{4,7}[A-Z]\s?[A-Z]\s+D\s?en\s+Haag"
    r"|P\s?ostbus\s+[\d ]+|[TF]\s+[\d ]+-[\d ]+|Kenmerk|Bijlage\(n\)|\d{1,2}|www\.\S+|(?:[A-Z]\s?){2,}[A-Z]*/[A-Z]+-\d{4}/\d+)$")
# Words of the genre that a letter-spaced text layer splits and that a short letter may not spell out intact.
_GENRE_WORDS = frozenset({
    "en", "de", "het", "een", "als", "we", "wij", "van", "in", "is", "op", "te", "dat", "die", "voor", "met", "aan", "om",
    "er", "ze", "zijn", "niet", "ook", "bij", "door", "naar", "den", "haag", "kamerstuk", "kamerstukken", "kamerstuknummer", "pagina",
    "postbus", "kenmerk", "ministerie", "infrastructuur", "waterstaat", "toezegging", "besluit", "jaarverslag",
    "hoofdstuk", "memorie", "toelichting", "nederlandse", "arbeidsinspectie", "rapportage", "cijfers", "feiten",
})
_LETTERS = re.compile(r"[^\W\d_]+")


_NOTE_START = re.compile(r"^(\d{1,2})\s+(?=[^\W\d_]|[(“\"'])")
_UNNUMBERED_NOTE = re.compile(r"\bTer\s+inzage\s+gelegd\b")  # capital T: the note, not "... ter inzage gelegd" in a sentence  # the OCR of Staten-Generaal Digitaal lost its "1"


def _note_numbers(pages: list[list[str]]) -> set[int]:
    """Numbers of the footnotes printed at the feet of the pages ("1 Zie ook ...", or a lone "1" over its text)
    whose marker stands glued to a word in the text ("Schiphol.4", "grondstoffen1.")."""
    candidates: set[int] = set()
    text = "\n".join(line for lines in pages for line in lines)
    for lines in pages:
        stripped = [line.strip() for line in lines]
        for index, line in enumerate(stripped):
            if match := _NOTE_START.match(line):
                candidates.add(int(match[1]))
            elif _UNNUMBERED_NOTE.search(line):
                candidates.add(1)
            elif _LONE_NUMBER.match(line) and int(line) < 100:
                following = next((item for item in stripped[index + 1 : index + 3] if item), "")
                before = next((item for item in reversed(stripped[max(0, index - 2) : index]) if item), "")
                if following and not following[0].isdigit() and not _FOOTER_LINE.match(following):
                    candidates.add(int(line))
                elif before and not _FOOTER_LINE.match(before) and not _ends_page(before):  # a note whose text the layout lost
                    candidates.add(int(line))
    glued = {int(match.group(0)) for match in _GLUED_MARKER.finditer(text)}
    numbers = candidates & glued
    if len(numbers) >= 2:  # notes are numbered 1, 2, 3 ...: one whose number the layout lost is still a note
        numbers |= set(range(1, max(numbers) + 1))
    return numbers


# A marker glued to a word: after its punctuation ("Schiphol.4", "onvoldoende»»?1", "ADR.2"), after the word
# ("grondstoffen1.") or after a quoted title ("«Leren van twee vuurwerkrampen»3").
_GLUED_MARKER = re.compile(
    r"(?<=[a-zà-ÿA-Z)»”’][.,;:?!)])(\d{1,2})(?=\s|$)|(?<=[a-zà-ÿ]{3})(\d{1,2})(?=[.,;:]?(?:\s|$))"
    r"|(?<=[a-zà-ÿ][»”’])(\d{1,2})(?=[.,;:]?(?:\s|$))")


def _detach_markers(line: str, notes: set[int]) -> str:
    """"Schiphol.4 In" -> "Schiphol.⁴ In" when the letter has a footnote 4: the marker no longer reads as a number."""
    if not notes:
        return line

    def superscript(match: re.Match[str]) -> str:
        number = match.group(0)
        return number.translate(SUPERSCRIPT) if int(number) in notes else number

    return _GLUED_MARKER.sub(superscript, line)


_MONTH_AFTER_NUMBER = re.compile(
    r"^\d{1,2}\s+(?:januari|februari|maart|april|mei|juni|juli|augustus|september|oktober|november|december)\b", re.IGNORECASE)


class _NoteNumbering:
    """Footnote lines in reading order. A line is a note only when its number follows the previous note's
    ("1 december 2023 ..." wrapped from a sentence after notes 1 and 2 stays text) and its marker stands in the text."""

    def __init__(self, notes: set[int]) -> None:
        self.notes = notes
        self.next = 1

    def line(self, line: str) -> str:
        """The line, with "1 Zie ..." as "¹ Zie ..." when it is the next note (a lone "1" as a lone "¹")."""
        stripped = line.strip()
        match = re.match(r"^(\d{1,2})(?:\s+(?=[^\W\d_]|[(“\"'])|$)", stripped)
        if match and int(match[1]) in self.notes and int(match[1]) >= self.next and not _MONTH_AFTER_NUMBER.match(stripped):
            self.next = int(match[1]) + 1
            return match[1].translate(SUPERSCRIPT) + stripped[len(match[1]):]
        if self.next == 1 and 1 in self.notes and (unnumbered := _UNNUMBERED_NOTE.search(stripped)):
            self.next = 2
            before = stripped[: unnumbered.start()].rstrip(" '")
            return (before + "\n" if before else "") + "¹ " + stripped[unnumbered.start():]
        return line


def _rejoin_spaced(line: str, vocabulary: Counter[str], fragments: frozenset[str]) -> str:
    """Rejoin words a text layer split ("Kamers tuk", "P agina", "veiligheidsregio e n de", "I E NW/BSK").

    Two tokens join only when the joined word occurs in the letter (or is a common word of the genre) and one
    of the pieces is a fragment (`_spacing_statistics`): "de A snelweg" stays, "A rbeidsinspectie" joins."""
    tokens = line.split(" ")
    if len(tokens) < 2:
        return line
    out: list[str] = [tokens[0]]
    for token in tokens[1:]:
        previous = out[-1]
        head, tail = _LETTERS.findall(previous), _LETTERS.findall(token)
        if previous and token and head and tail and previous[-1].isalpha() and token[0].isalpha():
            left, right = head[-1].lower(), tail[0].lower()
            joined = left + right
            curated = len(joined) >= 6 and joined in _GENRE_WORDS  # "Kamers tukken": both pieces look like words
            if curated or ((left in fragments or right in fragments) and _is_word(joined, vocabulary)):
                out[-1] = previous + token
                continue
        out.append(token)
    return _SPACED_CAPITALS.sub(lambda match: match.group(0).replace(" ", ""), " ".join(out))


_SPACED_CAPITALS = re.compile(r"\b(?:[A-Z] ){1,4}[A-Z]{1,4}(?=/)")  # "I E NW/BSK-2023/297705", a ministry's kenmerk
_ONE_LETTER_WORDS = frozenset({"u", "s", "a", "à", "é", "n"})  # "u", "'s", "a.s.", "n.v.t."-like pieces stay


def _is_word(word: str, vocabulary: Counter[str]) -> bool:
    return vocabulary[word] > 0 or word in _GENRE_WORDS


def _spacing_statistics(pages: list[list[str]]) -> tuple[Counter[str], frozenset[str]]:
    """How often each word occurs in the letter, and which words are fragments of a split word: a single
    letter that is no word, or a piece whose every occurrence joins a neighbour into a word ("tuk" of
    "Kamers tuk" and "hoofds tuk")."""
    vocabulary: Counter[str] = Counter()
    lines_words = [[word.lower() for word in _LETTERS.findall(line)] for lines in pages for line in lines]
    for words in lines_words:
        vocabulary.update(words)
    joinable: Counter[str] = Counter()
    for words in lines_words:
        for left, right in zip(words, words[1:], strict=False):
            if _is_word(left + right, vocabulary):
                joinable[left] += 1
                joinable[right] += 1
    fragments = {word for word, count in joinable.items()
                 if len(word) <= MAX_FRAGMENT and count >= vocabulary[word] and not _is_common(word)}
    fragments |= {word for word in vocabulary if len(word) == 1 and word not in _ONE_LETTER_WORDS}
    return vocabulary, frozenset(fragments)


def _is_common(word: str) -> bool:
    """Words that are words on their own even when every occurrence could join ("en", "de", "van")."""
    return (word in _GENRE_WORDS or word in _SHORT_WORDS) and len(word) > 1


# A piece of a split word is at most this long ("tuk" of "Kamers tuk", "Inf" of "Inf rastructuur"): longer pieces
# are words that OCR glue makes look joinable ("Binnenlandse Zaken" beside "BinnenlandseZaken").
MAX_FRAGMENT = 3
_SHORT_WORDS = frozenset({
    "dat", "die", "dit", "wat", "wie", "hoe", "zo", "al", "nog", "wel", "tot", "dan", "nu", "ja", "nee", "hun", "zij",
    "ons", "uw", "mij", "ik", "je", "hij", "kan", "zal", "mag", "wil", "per", "uit", "of", "na", "ten", "ter", "des",
    "wet", "jaar", "dag", "nr", "jl", "eu", "vs", "mr", "dr", "ir",
})


def _repeated_furniture(pages: list[list[str]]) -> set[str]:
    """Short lines that stand on two or more pages: headers and sidebars ("Ministerie van", "Kenmerk",
    "I E NW/BSK-2023/33017"). Numbers, list items and headings of questions are not furniture."""
    if len(pages) < FURNITURE_PAGES:
        return set()
    seen: Counter[str] = Counter()
    for lines in pages:
        seen.update({" ".join(line.split()) for line in lines})
    return {
        line for line, count in seen.items()
        if count >= max(FURNITURE_PAGES, len(pages) // 2) and 0 < len(line) <= MAX_FURNITURE_LINE and not line.isdigit() and not _BLOCK_START.match(line)
        and not _ends_sentence(line)
    }


def repair_text_layer(pages: list[list[str]]) -> list[list[str]]:
    """The pages of a PDF text layer without its repeated furniture and sidebar blocks, with split words rejoined,
    footnote markers detached and private-use bullets as list items. Only lines change; the letter's words stay."""
    pages = [strip_page_furniture(lines) for lines in pages]  # footers and their page numbers are no notes
    furniture = _repeated_furniture(pages)
    notes = _note_numbers(pages)
    vocabulary, fragments = _spacing_statistics(pages)
    repaired: list[list[str]] = []
    collected: list[str] = []  # the footnotes, in page order
    numbering = _NoteNumbering(notes)
    for lines in pages:
        kept: list[str] = []
        in_sidebar = False
        pending_marker = ""
        heads = _series_numbers(lines)
        for number, line in enumerate(lines):
            if number in heads:  # the "2" over "Aanhangsel van de Handelingen" is no footnote 2
                kept.append(line)
                continue
            stripped = " ".join(line.split())
            if _NOTES_POPUP.match(stripped):
                continue
            if stripped in furniture:
                in_sidebar = True
                continue
            if in_sidebar and _SIDEBAR_LINE.match(stripped):
                continue
            in_sidebar = False
            if PRIVATE_USE.search(line):
                line = PRIVATE_USE.sub(BULLET, line.strip(), count=1) if PRIVATE_USE.match(line.strip()) else line
                line = PRIVATE_USE.sub("", line)
            line = _rejoin_spaced(line, vocabulary, fragments) if " " in line else line
            for part in numbering.line(_detach_markers(line, notes)).split("\n"):  # a note OCR'd onto a signature line gets its own
                if pending_marker and part.strip():
                    part, pending_marker = f"{pending_marker} {part.strip()}", ""
                elif part.strip() and part.strip(NOTE_MARKERS) == "":  # a lone "¹": the note's text is on the next line
                    pending_marker = part.strip()
                    continue
                kept.append(part)
        if pending_marker:
            kept.append(pending_marker)
        repaired.append(_lift_notes(kept, collected))
    if collected and repaired:  # the footnotes close the letter, as in the XML: no note interrupts a sentence across pages
        repaired[-1].extend(["", *collected])
    return repaired


# The heading of the notes on a stored officielebekendmakingen web page: its close button ("X") and "Noot".
_NOTES_POPUP = re.compile(r"^X\s+Noot(?:en)?$")
# What follows the series number ("2") of a Tweede Kamer document head: the head goes on, no footnote starts.
_HEAD_AFTER_NUMBER = re.compile(
    r"^(?:Aanhangsel\s+van\s+de\s+Handelingen|Vergaderjaar|Zitting\s+\d|Kamerstuk(?:ken)?$|Tweede\s+Kamer\s+der|Vragen\s+gesteld)",
    re.IGNORECASE)


def _series_numbers(lines: list[str]) -> set[int]:
    """Indexes of lone numbers that belong to the document head ("Vergaderjaar 2023–2024 / 2 / Aanhangsel van de
    Handelingen"): read as footnote 2, the head line moved to the letter's end and the real note 2 lost its marker."""
    heads = set()
    for index, line in enumerate(lines):
        if _LONE_NUMBER.match(line.strip()):
            following = next((item.strip() for item in lines[index + 1 : index + 3] if item.strip()), "")
            if _HEAD_AFTER_NUMBER.match(following):
                heads.add(index)
    return heads


def _lift_notes(lines: list[str], collected: list[str]) -> list[str]:
    """The page without its footnotes ("¹ text" and the lines that continue it), which go into `collected`."""
    kept: list[str] = []
    in_note = False
    for line in lines:
        stripped = line.strip()
        if stripped[:1] in NOTE_MARKERS and stripped[:1]:
            collected.extend(["", stripped])
            in_note = not _ends_sentence(stripped)  # a note that ends its sentence has no second line
        elif in_note and stripped and not _LONE_NUMBER.match(stripped) and not _FOOTER_LINE.match(stripped):
            collected[-1] = f"{collected[-1]} {stripped}"
            in_note = not _ends_sentence(stripped)
        else:
            in_note = False
            kept.append(line)
    return kept


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
    pages = repair_text_layer(_split_pages(raw))
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

"""The printed pages of a letter: the raw text split into pages, their furniture, and the repair of a PDF text layer.

Letters arrive with running footers, page numbers, sidebars and headers repeated on every page (PDF text
layers), letter-spaced words and footnote markers glued to words. This module works line by line, page by
page: it drops what is furniture, rejoins split words and moves the footnotes to the end of the letter.
Joining the lines into paragraphs is qa/ingest/cleaning.py's.
"""

from __future__ import annotations

import re
from collections import Counter

PAGE_BREAK = "\f"

# Lines that are page furniture of Kamerstukken and Aanhangsel Handelingen.
FOOTER_LINE = re.compile(
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
BLOCK_START = re.compile(
    r"^(?:Vraag|Antwoord|Vragen|Toelichting|Bijlage)\s+\d+[a-z]?\b"
    r"|^(?:\d{1,2}[.)]|[a-z][.)]|[•▪●◦\-–\uf0b7]|[⁰¹²³⁴⁵⁶⁷⁸⁹]+)\s+"
    r"|^(?:verzoekt|constaterende|overwegende|gehoord|spreekt uit|roept)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.:;?!)»”\"']\s*(?:\d{1,2})?$")
MAX_HYPHENATED_WORD = 100  # longer "words" are not Dutch; no vocabulary look-up (keeps cleaning linear)


def ends_sentence(line: str) -> bool:
    """`_SENTENCE_END` at the end of a whitespace-normalised line; a match is at most 4 characters
    long there, so only the tail is searched (a search of the whole line per page was quadratic)."""
    return bool(_SENTENCE_END.search(line[-8:]))


def _ends_page(line: str) -> bool:
    """"Tweede Kamer, vergaderjaar …  7": a running footer that ends with its page number.

    The same test as `Tweede\\s+Kamer,\\s+vergaderjaar.*?\\s(\\d{1,3})\\s*$` in linear time: the lazy
    form retried the rest of the line from every "Tweede Kamer" in it (issue 12)."""
    head = _RUNNING_FOOTER.search(line)
    return bool(head and _PAGE_NUMBER_AT_END.search(line, head.end()))


def strip_page_furniture(lines: list[str]) -> list[str]:
    """The lines without running footers and the page numbers printed under them."""
    kept: list[str] = []
    previous_was_footer = False
    for line in lines:
        stripped = line.strip()
        if FOOTER_LINE.match(stripped):
            previous_was_footer = True
            continue
        if previous_was_footer and _LONE_NUMBER.match(stripped):
            continue  # the page number printed under a footer
        previous_was_footer = previous_was_footer and not stripped  # a blank line may stand between them
        kept.append(line)
    return kept


def split_pages(raw: str) -> list[list[str]]:
    """Pages by form feed (pdftotext) or, failing that, by printed footers."""
    raw = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\u00ad", "")
    pages: list[list[str]] = []
    by_footer = PAGE_BREAK not in raw  # a PDF's pages are its form feeds; pypdf may put the footer at a page's top
    for form_feed_page in raw.split(PAGE_BREAK):
        current: list[str] = []
        for line in form_feed_page.split("\n"):
            current.append(line)
            if by_footer and (_PAGE_OF.match(line.strip()) or _ends_page(line.strip()) and FOOTER_LINE.match(line.strip())):
                pages.append(current)
                current = []
        pages.append(current)
    while len(pages) > 1 and not any(line.strip() for line in pages[-1]):
        pages.pop()
    return pages


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
                if following and not following[0].isdigit() and not FOOTER_LINE.match(following):
                    candidates.add(int(line))
                elif before and not FOOTER_LINE.match(before) and not _ends_page(before):  # a note whose text the layout lost
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
        if count >= max(FURNITURE_PAGES, len(pages) // 2) and 0 < len(line) <= MAX_FURNITURE_LINE and not line.isdigit() and not BLOCK_START.match(line)
        and not ends_sentence(line)
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
            in_note = not ends_sentence(stripped)  # a note that ends its sentence has no second line
        elif in_note and stripped and not _LONE_NUMBER.match(stripped) and not FOOTER_LINE.match(stripped):
            collected[-1] = f"{collected[-1]} {stripped}"
            in_note = not ends_sentence(stripped)
        else:
            in_note = False
            kept.append(line)
    return kept


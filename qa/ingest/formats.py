"""The file formats a letter comes in: plain text (UTF-8 or Windows-1252), PDF text layers, officielebekendmakingen XML/HTML.

Each reader returns raw text (pages separated by form feeds) and what metadata the file carries; cleaning and
metadata from the text follow in qa/ingest/reading.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from qa.core.errors import LetterError
from qa.ingest.pages import PAGE_BREAK

if TYPE_CHECKING:
    from lxml import etree  # imported where XML is read: most letters are text


def decode_text(data: bytes) -> str:
    """UTF-8 if it is, else Windows-1252 (what older Dutch government text files use)."""
    if b"\x00" in data[:4096]:
        raise LetterError("binary data, not text")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


# A PDF's text can be far larger than its file: every page may draw the same form XObject of text any number
# of times (tests/hostile.py `amplified_pdf`: 1.6 MB of PDF, 10,000 pages, 9.3 MB of text; with 20 draws a page,
# 190 MB and minutes of pypdf, then hours of embedding). The real letters have 1-7 pages and at most 20,000
# characters (../shared/corpus); a Kamerstuk with its bijlagen runs to a few hundred pages. Beyond these a PDF
# is skipped with one message, not read in part: half a document would answer as if it were whole.
MAX_PDF_PAGES = 2_000
MAX_PDF_CHARS = 10_000_000  # twice the largest real letter (~5 MB of text, ~8 min to embed on 2 cores)


class _TooMuchText(Exception):
    """Raised from pypdf's text visitor the moment a PDF's text passes MAX_PDF_CHARS (also inside one page)."""


def read_pdf(path: Path) -> str:
    """The text layer of a PDF; an encrypted one is read when it opens without a password.

    pypdf parses hostile input with its own limits (inflated streams over 75 MB, page trees over
    100 deep, 32-bit ToUnicode ranges, ...) and raises its LimitReachedError, or anything from a
    KeyError to a RecursionError on a corrupt file. Whatever it raises, it is this file's problem
    and not the build's: one message, and the build goes on (issue 12). A PDF over MAX_PDF_PAGES
    pages or MAX_PDF_CHARS characters of text is refused the same way (issue 29)."""
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # font and encoding complaints are not the user's business

    extracted = 0

    def count(text: str, *_: object) -> None:
        nonlocal extracted
        extracted += len(text)
        if extracted > MAX_PDF_CHARS:
            raise _TooMuchText

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise LetterError(f"{path}: encrypted PDF")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise LetterError(f"{path}: a PDF of {len(reader.pages):,} pages, more than {MAX_PDF_PAGES:,}; not read")
        texts: list[str] = []
        for number, page in enumerate(reader.pages, start=1):
            try:
                texts.append(page.extract_text(visitor_text=count) or "")
            except _TooMuchText:
                raise LetterError(f"{path}: the PDF's text runs past {MAX_PDF_CHARS:,} characters (on page {number:,}); not read") from None
        return PAGE_BREAK.join(texts)
    except LetterError:
        raise
    except Exception as error:  # noqa: BLE001 - see the docstring
        raise LetterError(f"{path}: not a readable PDF ({type(error).__name__}: {one_line(error)})") from error


def one_line(error: BaseException, limit: int = 200) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Elements of the officielebekendmakingen XML that hold a block of text.
_XML_BLOCKS = {"al", "titel", "tussenkop", "kop", "li", "tekstregel", "stuknr", "datumtekst",
               "ondertekening", "functie", "naam", "noot", "onderwerp", "slotformulering", "aanhef",
               "p", "h1", "h2", "h3", "h4", "td", "dd", "dt"}
_XML_SKIP = {"metadata", "head", "script", "style", "nav", "footer", "meta"}
_XML_NOTES = {"noot", "noot.ref"}
_LIST_MARK = re.compile(r"[•·▪–—*-]|\(?(?:\d{1,2}|[a-z]|[ivx]{1,4})[.)°]?")


def _xml_blocks(element: etree._Element) -> list[str]:
    """Text of the body, one block per paragraph-like element."""
    blocks: list[str] = []
    current: list[str] = []
    notes: list[str] = []

    def walk(root: etree._Element) -> None:
        # An explicit stack, not recursion: XML nested 2,000 deep is valid and must not raise
        # RecursionError (issue 12). (node, leaving, is_block): a node is entered, its children
        # walked, then it is left.
        stack: list[tuple[etree._Element, bool, bool]] = [(root, False, False)]
        while stack:
            node, leaving, is_block = stack.pop()
            if leaving:
                if is_block:
                    flush()
                if node.tail:
                    current.append(node.tail)
                continue
            tag = getattr(node, "tag", None)
            if not isinstance(tag, str):
                continue
            local = tag.rsplit("}", 1)[-1].lower()
            if local in _XML_NOTES:  # a footnote sits inside its sentence; move it to the end
                if local == "noot" and (note := " ".join(" ".join(map(str, node.itertext())).split())):
                    notes.append(note)
                if node.tail:
                    current.append(node.tail)
                continue
            if local in _XML_SKIP:
                if node.tail:
                    current.append(node.tail)
                continue
            is_block = local in _XML_BLOCKS
            if is_block:
                flush()
            if node.text:
                current.append(node.text)
            stack.append((node, True, is_block))
            stack.extend((child, False, False) for child in reversed(list(node)))

    def flush() -> None:
        text = " ".join("".join(current).split())
        current.clear()
        if _LIST_MARK.fullmatch(text):  # "•" or "1." of a list item starts its paragraph
            current.append(text + " ")
        elif text:
            blocks.append(text)

    walk(element)
    flush()
    return blocks + notes


def _xml_metadata(root: etree._Element) -> dict[str, object]:
    """Metadata of an officielebekendmakingen document or of its metadata.xml record.

    Documents carry either inline `<meta>` tags or only an `OVERHEIDop.externMetadataRecord`
    pointer; for the latter the Kamerstuk head (dossiernr, ondernummer, datum) fills in."""
    meta: dict[str, list[str]] = {}
    for node in root.iter("meta", "metadata"):
        name, content = node.get("name"), node.get("content")
        if name and content and content.strip():
            meta.setdefault(name, []).append(content.strip())

    def first(*names: str) -> str | None:
        for name in names:
            if meta.get(name):
                return meta[name][0]
        return None

    kind = (first("OVERHEIDop.KamerstukTypen") or "")
    types = meta.get("DC.type", [])
    doc_type = None
    if any(t.lower() == "motie" for t in types) or kind.lower() == "motie":
        doc_type = "motie"
    elif any("brief" in t.lower() for t in types):
        doc_type = "brief_regering"
    senders = meta.get("OVERHEIDop.indiener") or meta.get("DC.creator") or []
    found: dict[str, object] = {
        "id": first("DC.identifier", "dcterms:identifier"),
        "dossier": first("OVERHEIDop.dossiernummer"),
        "number": first("OVERHEIDop.ondernummer"),
        "date": first("OVERHEIDop.datumIndiening", "DCTERMS.issued", "DCTERMS.available", "OVERHEIDop.datumOndertekening"),
        "title": first("OVERHEIDop.documenttitel", "DC.title"),
        "sender": ", ".join(senders) if senders else None,
        "type": doc_type,
    }
    if not found["id"] and (pointer := re.search(r"/([a-z]+(?:-[\w]+)+)/metadata\.xml$", first("OVERHEIDop.externMetadataRecord") or "")):
        found["id"] = pointer[1]
    head = {"dossier": root.findtext(".//dossiernr"), "number": root.findtext(".//ondernummer")}
    dates = cast(list[Any], root.xpath(".//stuk//datum/@isodatum | .//datumtekst/datum/@isodatum")) if hasattr(root, "xpath") else []
    head["date"] = str(dates[0]) if dates else None
    for key, value in head.items():
        if not found[key] and value and value.strip():
            found[key] = "".join(value.split()) if key != "date" else value
    return found


def xml_metadata(data: bytes) -> dict[str, object]:
    """Metadata from officielebekendmakingen XML bytes (a document or a metadata.xml record)."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        return _xml_metadata(etree.fromstring(data, parser=parser))
    except (etree.XMLSyntaxError, ValueError) as error:
        raise LetterError(f"malformed XML ({error})") from error


def read_markup(path: Path, data: bytes) -> tuple[str, dict[str, object]]:
    from lxml import etree, html

    try:
        if path.suffix.lower() == ".xml":
            root = etree.fromstring(data, parser=etree.XMLParser(recover=False, resolve_entities=False, no_network=True, huge_tree=True))
        else:
            root = html.document_fromstring(data)
    except (etree.XMLSyntaxError, etree.ParserError, ValueError) as error:
        raise LetterError(f"{path}: malformed {path.suffix.lstrip('.').upper()} ({error})") from error
    meta = _xml_metadata(root)
    body = root
    for candidate in (".//kamerstuk", ".//*[@id='broodtekst']", ".//body"):
        found = root.find(candidate) if not candidate.startswith(".//*[") else next(iter(cast(list[Any], root.xpath(candidate))), None)
        if found is not None:
            body = found
            break
    return "\n\n".join(_xml_blocks(body)), meta


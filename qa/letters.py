"""Letters and their readers: plain text, officielebekendmakingen XML/HTML, PDF, JSONL(.gz).

Every reader returns a `Letter` with cleaned text and whatever metadata it can find. Metadata
comes first from a `letters.jsonl` sidecar (the layout of the shared corpus and of `qa fetch`),
then from the document itself (XML meta tags), then from patterns in the text.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from qa import ministries
from qa.cleaning import PAGE_BREAK, clean
from qa.core.display import MONTH_NAMES
from qa.core.errors import LetterError
from qa.ministries import Ministry, Signer

if TYPE_CHECKING:
    from lxml import etree  # imported where XML is read: most letters are text

SIDECAR_NAME = "letters.jsonl"
LETTER_SUFFIXES = (".txt", ".xml", ".html", ".htm", ".pdf")
BULK_SUFFIXES = (".jsonl", ".jsonl.gz")
OFFICIAL_URL = "https://zoek.officielebekendmakingen.nl/{id}.html"
MAX_LETTER_BYTES = 50_000_000  # a file, a bulk record's line or a letter's text; the largest real letter is ~5 MB
BULK_READ = 1 << 20  # how much of an over-long bulk line is read at a time while it is skipped


@dataclass(frozen=True)
class Letter:
    id: str
    text: str
    title: str | None = None
    date: str | None = None  # ISO YYYY-MM-DD
    dossier: str | None = None
    number: str | None = None
    sender: str | None = None
    type: str | None = None
    url: str | None = None
    page_starts: tuple[int, ...] = (0,)
    source: str | None = None  # the file it was read from

    @cached_property
    def signers(self) -> tuple[Signer, ...]:
        """Who signed, from the ministry register: the sender first, then co-senders ("mede namens")."""
        year = int(self.date[:4]) if self.date and self.date[:4].isdigit() else None
        return ministries.signers(self.sender, self.type, self.title, year)

    @property
    def signer(self) -> Signer | None:
        return self.signers[0] if self.signers else None

    @property
    def ministry(self) -> Ministry | None:
        """The sender's ministry (the first signer's): what the ministry filter and facets use."""
        return self.signer.ministry if self.signer else None

    def content_hash(self) -> str:
        """Changes whenever anything we index about the letter changes."""
        payload = json.dumps(asdict(replace(self, source=None)), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class ReadReport:
    letters: list[Letter] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# --- metadata from text -------------------------------------------------------------------

_MONTH_ABBREVIATIONS = (("jan",), ("feb",), ("mrt",), ("apr",), (), ("jun",), ("jul",), ("aug",), ("sep", "sept"), ("okt",), ("nov",), ("dec",))
MONTHS = {
    name: number
    for number, (full, short) in enumerate(zip(MONTH_NAMES, _MONTH_ABBREVIATIONS, strict=True), start=1)
    for name in (full, *short)
}
# "12 mei 2021"; OCR glues day and month ("19april 1993").
_DATE = re.compile(
    r"(?P<day>\d{1,2})\s*(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\b\.?\s*(?P<year>(?:1[89]|20)\d{2})\b",
    re.IGNORECASE,
)
# The letter's own date line: "Den Haag, 12 mei 2021", "'s-Gravenhage, 3 maart 1986" and its OCR variants
# ("'\ns-Gravenhage", "'s.Gravenhage", "s Gravenhage"); a weekday may stand before the day.
_PLACE_DATE_LINE = re.compile(
    r"(?:Den\s+Haag|s[-.\s]?Gravenhage|Gravenhage)[,.:\s]+(?:[a-z]+dag\s+)?" + _DATE.pattern,
    re.IGNORECASE,
)
# Where there is none: the reference block's "Datum", an answer's "ontvangen", a motie's "Voorgesteld".
_DATE_LINE = re.compile(r"(?:Datum|ontvangen|Voorgesteld)[,:\s]+(?:\S+\s+)?" + _DATE.pattern, re.IGNORECASE)
# "BRIEF VAN DE MINISTER VAN WELZIJN, VOLKSGEZONDHEID\nEN CULTUUR": the heading may go on over capital lines.
_SENDER = re.compile(r"BRIEF\s+VAN\s+DE\s+(?P<who>[A-ZÀ-Ý][A-ZÀ-Ý .,\-–]*(?:\n[A-ZÀ-Ý][A-ZÀ-Ý .,\-–]*(?![a-zà-ÿ]))*)")
_ANSWER_SENDER = re.compile(r"(?:Antwoord|Mededeling)\s+van\s+(?P<who>[^\n(]+\([^)]+\))")
# The signature of a ministry's own PDF, which has no "BRIEF VAN DE ..." heading: "DE MINISTER VAN INFRASTRUCTUUR EN WATERSTAAT,".
_SIGNATURE = re.compile(r"^(?:DE|De)\s+(?P<who>(?:MINISTER|STAATSSECRETARIS|Minister|Staatssecretaris)\s+(?:VAN|VOOR|van|voor)\s+[^\n,]{3,120}),\s*$",
                        re.MULTILINE)
SIGNATURE_TAIL = 4000  # characters at the end of a letter searched for its signature
_MOTION = re.compile(r"MOTIE\s+VAN\s+(?:HET\s+LID|DE\s+LEDEN)\s+(?P<who>[^\n]+)")
_NUMBER = re.compile(r"\bNr\.\s*(?P<number>\d+)\b")
_FOOTER_REF = re.compile(
    r"vergaderjaar\s+\d{4}\s*[-–]\s*\d{4},\s*(?P<dossier>\d{1,3}\s?\d{3}(?:\s?[-–]?\s?[A-Z]{1,4})?)[,\s]+(?:hfdst\.\s*[A-Z]+,\s*)?nr\.\s*(?P<number>\d+)",
    re.IGNORECASE,
)
_AANHANGSEL = re.compile(r"Aanhangsel\s+van\s+de\s+Handelingen", re.IGNORECASE)


def parse_dutch_date(text: str) -> str | None:
    match = _DATE.search(text)
    if not match:
        return None
    month = MONTHS[match["month"].lower()]
    day = int(match["day"])
    if not 1 <= day <= 31:
        return None
    return f"{match['year']}-{month:02d}-{day:02d}"


def _title_case_office(who: str) -> str:
    """'MINISTER VAN BUITENLANDSE ZAKEN' -> 'Minister van Buitenlandse Zaken'."""
    small = {"van", "voor", "en", "de", "het", "der"}
    words = " ".join(who.replace("-\n", "").split()).lower().split(" ")
    return " ".join(word if word in small and index else word.capitalize() for index, word in enumerate(words))


def metadata_from_text(text: str) -> dict[str, str | None]:
    """Best-effort metadata from the printed letter head and footers."""
    head = text[:4000]
    found: dict[str, str | None] = {}
    date_line = _PLACE_DATE_LINE.search(head) or _DATE_LINE.search(head)
    found["date"] = parse_dutch_date(date_line.group(0)) if date_line else None
    if sender := _SENDER.search(head):
        who = re.sub(r"\s+[A-ZÀ-Ý]$", "", sender["who"].strip(" .,-–\n"))  # "ZAKEN Aan de ..." leaves a stray "A"
        found["sender"] = _title_case_office(who.replace(".", ","))
        found["type"] = "brief_regering"
    elif answer := _ANSWER_SENDER.search(head):
        found["sender"] = " ".join(answer["who"].split())
        found["type"] = "mededeling_kamervragen" if answer.group(0).startswith("Mededeling") else "antwoord_kamervragen"
    elif motion := _MOTION.search(head):
        found["sender"] = _title_case_office(motion["who"])
        found["type"] = "motie"
    elif _AANHANGSEL.search(head):
        found["type"] = "antwoord_kamervragen"
    elif signature := _SIGNATURE.search(text[-SIGNATURE_TAIL:]):
        found["sender"] = _title_case_office(signature["who"])
        found["type"] = "brief_regering"
    if footer := _FOOTER_REF.search(text):
        found["dossier"] = re.sub(r"\s+", "", footer["dossier"]).replace("–", "-")
        found["number"] = footer["number"]
    elif number := _NUMBER.search(head):
        found["number"] = number["number"]
    return found


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "letter"


def official_url(letter_id: str) -> str | None:
    if re.match(r"^(?:kst|ah-tk|ah|blg|h-tk)-", letter_id):
        return OFFICIAL_URL.format(id=letter_id)
    return None


def make_letter(raw_text: str, path: Path | None, known: dict[str, object] | None = None) -> Letter:
    """Clean the text and merge metadata: known (sidecar/XML) wins over what the text says."""
    cleaned = clean(raw_text)
    if not cleaned.text.strip():
        raise LetterError(f"{path}: no text found")
    parsed = metadata_from_text(raw_text)
    known = {key: value for key, value in (known or {}).items() if value not in (None, "")}
    merged = {**parsed, **known}
    letter_id = str(merged.get("id") or "")
    if not letter_id:
        stem = path.name.split(".")[0] if path else ""
        if re.match(r"^(kst|ah-tk|sgd|blg)-", stem):
            letter_id = stem
        elif merged.get("dossier") and merged.get("number"):
            letter_id = f"kst-{merged['dossier']}-{merged['number']}"
        else:
            letter_id = slugify(stem or hashlib.sha256(raw_text.encode()).hexdigest()[:12])
    return Letter(
        id=letter_id,
        text=cleaned.text,
        page_starts=cleaned.page_starts,
        title=_str(merged.get("title")),
        date=_str(merged.get("date")),
        dossier=_str(merged.get("dossier")),
        number=_str(merged.get("number")),
        sender=_str(merged.get("sender")),
        type=_str(merged.get("type")),
        url=_str(merged.get("url") or merged.get("source_url")) or official_url(letter_id),
        source=str(path) if path else None,
    )


def _str(value: object) -> str | None:
    return None if value is None else str(value).strip() or None


# --- file formats ---------------------------------------------------------------------------


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


def read_pdf(path: Path) -> str:
    """The text layer of a PDF; an encrypted one is read when it opens without a password.

    pypdf parses hostile input with its own limits (inflated streams over 75 MB, page trees over
    100 deep, 32-bit ToUnicode ranges, ...) and raises its LimitReachedError, or anything from a
    KeyError to a RecursionError on a corrupt file. Whatever it raises, it is this file's problem
    and not the build's: one message, and the build goes on (issue 12)."""
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # font and encoding complaints are not the user's business

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise LetterError(f"{path}: encrypted PDF")
        return PAGE_BREAK.join(page.extract_text() or "" for page in reader.pages)
    except LetterError:
        raise
    except Exception as error:  # noqa: BLE001 - see the docstring
        raise LetterError(f"{path}: not a readable PDF ({type(error).__name__}: {_short(error)})") from error


def _short(error: BaseException, limit: int = 200) -> str:
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


def read_file(path: Path, known: dict[str, object] | None = None) -> Letter:
    """Read one letter file; `known` is its sidecar record, if any.

    Only regular files are opened (a FIFO would block the build forever), and whatever a reader
    raises on a hostile file becomes this file's message, never the end of the build."""
    try:
        return _read_file(path, known)
    except LetterError:
        raise
    except Exception as error:  # noqa: BLE001 - a parser bug on one file must not stop the build
        raise LetterError(f"{path}: unreadable ({type(error).__name__}: {_short(error)})") from error


def _read_file(path: Path, known: dict[str, object] | None) -> Letter:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise LetterError(f"{path}: not a regular file")
        if info.st_size > MAX_LETTER_BYTES:
            raise LetterError(f"{path}: too large ({info.st_size:,} bytes)")
        if path.suffix.lower() == ".pdf":
            return make_letter(read_pdf(path), path, known)
        with open(path, "rb", opener=_nonblocking) as handle:  # a FIFO swapped in after the check does not block
            data = handle.read(MAX_LETTER_BYTES + 1)
    except OSError as error:
        raise LetterError(f"{path}: cannot read ({error.strerror or error})") from error
    if len(data) > MAX_LETTER_BYTES:
        raise LetterError(f"{path}: too large (over {MAX_LETTER_BYTES:,} bytes)")
    suffix = path.suffix.lower()
    if suffix in (".xml", ".html", ".htm"):
        text, meta = read_markup(path, data)
        return make_letter(text, path, {**meta, **(known or {})})
    try:
        return make_letter(decode_text(data), path, known)
    except LetterError as error:
        if str(error).startswith(str(path)):
            raise
        raise LetterError(f"{path}: {error}") from error


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def read_bulk(path: Path) -> Iterator[Letter | LetterError]:
    """Records of `{"url", "text"}` (or Content/content) per line, gzipped or not.

    Streamed: a line (and a letter's text) over MAX_LETTER_BYTES is reported and skipped
    without holding it in memory, so a 1 MB gzip of one 1 GiB line costs no more than any
    letter (issue 12)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        if not path.is_file():
            raise LetterError(f"{path}: not a regular file")
        with opener(path, "rb") as lines:
            for line_number, line in enumerate(_bounded_lines(lines), start=1):
                if line is None:
                    yield LetterError(f"{path}:{line_number}: record longer than {MAX_LETTER_BYTES:,} bytes")
                    continue
                if not line.strip():
                    continue
                try:
                    yield _bulk_letter(path, line_number, json.loads(line))
                except (ValueError, AttributeError, TypeError, RecursionError, LetterError) as error:
                    yield LetterError(f"{path}:{line_number}: {_short(error)}")
    except LetterError as error:
        yield error
    except (OSError, EOFError, ValueError, zlib_error()) as error:
        yield LetterError(f"{path}: cannot read ({_short(error)})")


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


class _Lines(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


def _bounded_lines(stream: _Lines) -> Iterator[bytes | None]:
    """The lines of a binary stream; None for a line over MAX_LETTER_BYTES, which is read past, not kept."""
    while True:
        line = stream.readline(MAX_LETTER_BYTES + 1)
        if not line:
            return
        if len(line) <= MAX_LETTER_BYTES or line.endswith(b"\n"):
            yield line
            continue
        while (rest := stream.readline(BULK_READ)) and not rest.endswith(b"\n"):
            pass
        yield None


def _bulk_letter(path: Path, line_number: int, record: object) -> Letter:
    if not isinstance(record, dict):
        raise LetterError("not a JSON object")
    text = record.get("text") or record.get("Content") or record.get("content") or ""
    if not isinstance(text, str):
        raise LetterError("text is not a string")
    if len(text) > MAX_LETTER_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_LETTER_BYTES:
        raise LetterError(f"letter text longer than {MAX_LETTER_BYTES:,} bytes")
    url = record.get("url") or record.get("URL") or ""
    url = url if isinstance(url, str) else ""
    letter_id = record.get("id") or _id_from_url(url) or f"{slugify(path.name.split('.')[0])}-{line_number}"
    return make_letter(text, path, {**_metadata_fields(record), "id": letter_id, "url": url})


def _id_from_url(url: str) -> str | None:
    match = re.search(r"officielebekendmakingen\.nl/([\w.-]+?)(?:/ocr|\.html|\.xml|\.pdf)?/?$", url)
    if not match:
        return None
    return f"sgd-{match[1]}" if match[1].isdigit() else match[1]


def _metadata_fields(record: dict[str, object]) -> dict[str, object]:
    """The metadata of a sidecar or bulk record; `url` and `source_url` both name the official page."""
    fields = ("title", "date", "dossier", "number", "sender", "type", "url", "source_url")
    return {key: record.get(key) for key in fields if record.get(key) is not None}


def read_sidecar(path: Path) -> Iterator[Letter | LetterError]:
    base = path.parent
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        yield LetterError(f"{path}: cannot read ({error})")
        return
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            record["file"]
        except (ValueError, KeyError, TypeError, RecursionError) as error:
            yield LetterError(f"{path}:{line_number}: not a letter record ({_short(error)})")
            continue
        try:
            yield read_record(base, record, where=f"{path}:{line_number}")
        except LetterError as error:
            yield error


def record_path(base: Path, record: dict[str, object], where: str = "") -> Path:
    """The file a sidecar record names, refused unless it is a plain relative name inside `base`.

    The one home of that rule: `qa index build`, `qa update` and `qa fetch` (which deletes an
    old version's file) all go through it (issue 12: numbers, lists, NUL bytes, `../` and
    absolute paths, the sidecar itself)."""
    where = where or str(base / SIDECAR_NAME)
    name = record.get("file")
    if not isinstance(name, str) or not name.strip():
        raise LetterError(f"{where}: file must be a file name, not {name!r}")
    if "\x00" in name:
        raise LetterError(f"{where}: file {name!r} contains a NUL byte")
    folder = base.resolve()
    target = (base / name).resolve()
    if folder not in target.parents:
        raise LetterError(f"{where}: file {name!r} lies outside {base}")
    if target.name == SIDECAR_NAME and target.parent == folder:
        raise LetterError(f"{where}: file {name!r} is the sidecar itself")
    return base / name


def read_record(base: Path, record: dict[str, object], where: str = "") -> Letter:
    """One sidecar record's letter (its `file` relative to `base`); what `qa update` uses to index only new letters."""
    return read_file(record_path(base, record, where), {**_metadata_fields(record), "id": record.get("id")})


def iter_letters(paths: Iterable[Path]) -> Iterator[Letter | LetterError]:
    """Letters from files and folders; a folder's sidecar decides which of its files count."""
    for path in paths:
        if path.is_dir():
            sidecar = path / SIDECAR_NAME
            if sidecar.is_file():
                yield from read_sidecar(sidecar)
                continue
            yield from _read_folder(path)
        elif path.name == SIDECAR_NAME:
            yield from read_sidecar(path)
        elif path.name.endswith(BULK_SUFFIXES):
            yield from read_bulk(path)
        elif path.is_file():
            if path.suffix.lower() not in LETTER_SUFFIXES:  # a .csv or .docx named on the command line is no letter
                yield LetterError(f"{path}: not a letter file ({path.suffix or 'no extension'}); letters are "
                                  f"{', '.join(LETTER_SUFFIXES)} or {' / '.join(BULK_SUFFIXES)} records")
                continue
            try:
                yield read_file(path)
            except LetterError as error:
                yield error
        else:
            yield LetterError(f"{path}: no such file or folder")


_PREFERENCE = {".xml": 0, ".html": 1, ".htm": 1, ".pdf": 2, ".txt": 3}


def _read_folder(folder: Path) -> Iterator[Letter | LetterError]:
    """Every letter below a folder; of `x.xml` and `x.txt` the richer one is read, the other when it fails.

    A symlink that leads out of the folder is refused, as in sidecar mode."""
    twins: dict[Path, list[Path]] = {}
    inside = folder.resolve()
    for path in sorted(folder.rglob("*")):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.is_symlink() and inside not in path.resolve().parents:
            yield LetterError(f"{path}: a link to {path.resolve()}, outside {folder}")
            continue
        if path.name.endswith(BULK_SUFFIXES):
            yield from read_bulk(path)
            continue
        suffix = path.suffix.lower()
        if suffix in _PREFERENCE:
            twins.setdefault(path.with_suffix(""), []).append(path)
    for paths in twins.values():
        paths.sort(key=lambda candidate: _PREFERENCE[candidate.suffix.lower()])
        problems: list[str] = []
        for path in paths:
            try:
                letter = read_file(path)
            except LetterError as error:
                problems.append(str(error))
                continue
            yield from (LetterError(f"{problem}; read {path.name} instead") for problem in problems)
            yield letter
            break
        else:
            yield from (LetterError(problem) for problem in problems)


def read_letters(paths: Iterable[Path]) -> ReadReport:
    """All letters under `paths`, with a message per unreadable file; the last of a duplicate id wins."""
    report = ReadReport()
    by_id: dict[str, Letter] = {}
    for item in iter_letters(paths):
        if isinstance(item, LetterError):
            report.errors.append(str(item))
        else:
            if item.id in by_id:
                report.errors.append(f"{item.source}: duplicate id {item.id} (also in {by_id[item.id].source}); keeping this one")
            by_id[item.id] = item
    report.letters = list(by_id.values())
    return report

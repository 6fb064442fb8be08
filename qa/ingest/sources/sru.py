"""The KOOP SRU 2.0 search of officiële publicaties (repository.overheid.nl/sru): record → letter.

Records are read by local element names, so the live response (with sru:, gzd:, dcterms:, ...
prefixes) and prefix-less copies parse alike. Each record names its manifestations
(`itemUrl manifestation="xml|pdf|html"`); we download the XML, else the PDF.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lxml import etree

from qa.ingest.metadata import official_url
from qa.ingest.sources.http import FetchError, PoliteClient
from qa.ingest.sources.query import Candidate, Query

PAGE = 100
MAX_PAGES = 10_000  # a million records: more than a query of ours can match; a server that never stops paging is cut off
PUBLICATIONS = {"brief_regering": "Kamerstuk", "motie": "Kamerstuk", "antwoord_kamervragen": "Aanhangsel van de Handelingen"}
_SENDER = re.compile(r"(?:Brief|Antwoord) van de (?P<who>(?:minister|staatssecretaris|minister-president)[^;]*)", re.I)


def cql(query: Query) -> str:
    names = sorted({PUBLICATIONS[kind] for kind in query.types})
    parts = ["c.product-area==officielepublicaties", "(" + " OR ".join(f'w.publicatienaam=="{name}"' for name in names) + ")"]
    if query.dossier:
        parts.append(f'w.dossiernummer=="{query.dossier}"')
    if query.since:
        parts.append(f"dt.date>={query.since}")
    if query.until:
        parts.append(f"dt.date<={query.until}")
    if query.modified_since:
        parts.append(f"dt.modified>={query.modified_since[:10]}")
    return " AND ".join(parts)


def _local(node: etree._Element) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _texts(record: etree._Element) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for node in record.iter():
        name = _local(node)
        if not name:
            continue
        if name == "itemUrl" and (manifestation := node.get("manifestation")):
            name = f"itemUrl.{manifestation}"
        text = (node.text or "").strip()
        if text:
            found.setdefault(name, []).append(text)
    return found


def _kind(publication: str, types: list[str], title: str) -> str:
    if publication == "Aanhangsel van de Handelingen":
        return "antwoord_kamervragen"
    lowered = [t.lower() for t in types] + [part.strip().lower() for part in title.split(";")]
    if any(t == "motie" or t.startswith("motie van") for t in lowered):
        return "motie"
    if any(t == "brief" or t.startswith("brief van de minister") or t.startswith("brief van de staatssecretaris") for t in lowered):
        return "brief_regering"
    return "other"


def record_fields(record: etree._Element) -> tuple[dict[str, Any], dict[str, str]]:
    """Sidecar fields and manifestation URLs of one SRU record (gzd: originalData + enrichedData)."""
    texts = _texts(record)

    def first(*names: str) -> str | None:
        return next((texts[name][0] for name in names if texts.get(name)), None)

    letter_id = first("identifier")
    if not letter_id:
        raise FetchError("an SRU record without an identifier")
    title = first("title") or ""
    sender = first("indiener")
    if not sender and (match := _SENDER.search(title)):
        sender = match["who"][:1].upper() + match["who"][1:]
    publication = first("publicatienaam") or ""
    urls = {name.split(".", 1)[1]: values[0] for name, values in texts.items() if name.startswith("itemUrl.")}
    if "xml" not in urls and (url := first("url")) and url.endswith(".xml") and "/metadata" not in url:
        urls["xml"] = url
    fields = {
        "id": letter_id,
        "dossier": first("dossiernummer"),
        "number": first("ondernummer"),
        "date": (first("date", "available", "issued", "modified") or "")[:10] or None,
        "sender": sender or first("creator"),
        "title": title or None,
        "type": _kind(publication, texts.get("type", []), title),
        "source_url": first("preferredUrl") or official_url(letter_id),
        "source": "sru",
        "source_id": letter_id,
        "publication": publication or None,
        "version": first("datumTijdstipWijzigingExpression", "timestamp", "modified"),
    }
    return fields, urls


def parse_page(data: bytes) -> tuple[int | None, int | None, list[etree._Element]]:
    """numberOfRecords, nextRecordPosition and the records of a searchRetrieveResponse."""
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    except etree.XMLSyntaxError as error:
        raise FetchError(f"not XML ({error})") from error
    if _local(root) != "searchRetrieveResponse":
        raise FetchError(f"not an SRU searchRetrieveResponse (root <{_local(root)}>)")
    children = {_local(child): child for child in root}
    if "diagnostics" in children:
        message = " ".join(" ".join(map(str, children["diagnostics"].itertext())).split())
        raise FetchError(f"the SRU service says: {message}")

    def number(name: str) -> int | None:
        text = (children[name].text or "").strip() if name in children else ""
        return int(text) if text.isascii() and text.isdigit() else None  # "²".isdigit() is True, int("²") fails

    records = [child for child in children["records"] if _local(child) == "record"] if "records" in children else []
    return number("numberOfRecords"), number("nextRecordPosition"), records


class Sru:
    def __init__(self, client: PoliteClient, base: str) -> None:
        self.client = client
        self.base = base
        self.total: int | None = None

    def candidates(self, query: Query) -> Iterator[Candidate | FetchError]:
        """Every matching record, page by page along nextRecordPosition."""
        position: int | None = 1
        pages = 0
        while position:
            asked = position
            pages += 1
            if pages > MAX_PAGES:
                yield FetchError(f"listing stopped at record {position}: more than {MAX_PAGES:,} pages")
                return
            params = {"operation": "searchRetrieve", "version": "2.0", "query": cql(query),
                      "startRecord": position, "maximumRecords": PAGE}
            try:
                response = self.client.get(self.base, params, accept="application/xml")
                self.total, position, records = parse_page(response.content)
            except FetchError as error:
                yield FetchError(f"listing stopped at record {position}: {error}")
                return
            if position is not None and position <= asked:
                yield FetchError(f"listing stopped at record {asked}: the next record position {position} does not move on")
                position = None
            for record in records:
                try:
                    fields, urls = record_fields(record)
                    if "xml" in urls:
                        yield Candidate(fields, urls["xml"], ".xml")
                    elif "pdf" in urls:
                        yield Candidate(fields, urls["pdf"], ".pdf")
                    else:
                        yield FetchError(f"{fields['id']}: the record names no XML or PDF")
                except FetchError as error:
                    yield error

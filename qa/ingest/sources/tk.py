"""The Tweede Kamer open-data API (OData v4, gegevensmagazijn.tweedekamer.nl): Document → letter.

A Document lists its dossiers (Kamerstukdossier), signatories (DocumentActor) and current version
with its KOOP publications (HuidigeDocumentVersie/DocumentPublicatie). We take the publication's
officielebekendmakingen XML when there is one (text with structure, the kst-/ah- id), else the
document's own file (`Document(id)/resource`, a PDF).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

from qa.core.errors import InvalidQuery
from qa.ingest.metadata import official_url
from qa.ingest.sources.http import FetchError, PoliteClient
from qa.ingest.sources.query import Candidate, Query

SOORT = {  # TK "Soort" -> our type
    "Brief regering": "brief_regering",
    "Antwoord schriftelijke vragen": "antwoord_kamervragen",
    "Antwoord schriftelijke vragen (nader)": "antwoord_kamervragen",
    "Motie": "motie",
    "Motie (gewijzigd/nader)": "motie",
}
EXPAND = "Kamerstukdossier,DocumentActor,HuidigeDocumentVersie($expand=DocumentPublicatie)"
PAGE = 250  # the API's maximum page size
MAX_PAGES = 10_000  # 2.5 million documents: more than the API holds; a server that never stops paging is cut off


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def document_filter(query: Query) -> str:
    """The OData $filter for a query; the client-side `Query.wants` checks the result again."""
    soorten = [soort for soort, kind in SOORT.items() if kind in query.types]
    parts = ["Verwijderd eq false", "(" + " or ".join(f"Soort eq {_quote(s)}" for s in soorten) + ")"]
    if query.since:
        parts.append(f"Datum ge {query.since}T00:00:00Z")
    if query.until:
        parts.append(f"Datum le {query.until}T23:59:59Z")
    if query.modified_since:
        parts.append(f"GewijzigdOp ge {query.modified_since.replace('+00:00', 'Z')}")
    if query.dossier:
        number, _, addition = query.dossier.partition("-")
        if not number.isdigit():
            raise InvalidQuery("unknown_value", f"dossier {query.dossier!r} is not a number like 27925 or 36200-X", "dossier", query.dossier)
        condition = f"d/Nummer eq {int(number)}" + (f" and d/Toevoeging eq {_quote(addition)}" if addition else "")
        parts.append(f"Kamerstukdossier/any(d: {condition})")
    if query.ministry:
        parts.append(f"DocumentActor/any(a: contains(a/Functie, {_quote(query.ministry)}))")
    return " and ".join(parts)


def _day(value: object) -> str | None:
    return str(value)[:10] if value else None


def document_record(document: dict[str, Any], base: str = "") -> dict[str, Any]:
    """Sidecar fields from an OData Document (with the expansions of EXPAND when present)."""
    version = document.get("HuidigeDocumentVersie") or {}
    publications = [p for p in version.get("DocumentPublicatie") or [] if not p.get("Verwijderd")]
    identifier = version.get("ExterneIdentifier") or next((p.get("Identifier") for p in publications if p.get("Identifier")), None)
    letter_id = str(identifier or f"tk-{document.get('DocumentNummer') or document['Id']}")
    dossiers = [d for d in document.get("Kamerstukdossier") or [] if d.get("Nummer") is not None]
    dossier = None
    if dossiers:
        dossier = str(dossiers[0]["Nummer"]) + (f"-{dossiers[0]['Toevoeging']}" if dossiers[0].get("Toevoeging") else "")
    actors = [a for a in document.get("DocumentActor") or [] if not a.get("Verwijderd")]
    actors.sort(key=lambda a: "ondertekenaar" not in str(a.get("Relatie") or "").lower())
    sender = None
    if actors:
        function, name = actors[0].get("Functie"), actors[0].get("ActorNaam")
        sender = function[:1].upper() + function[1:] if function and SOORT.get(document.get("Soort") or "") != "motie" else name or function
    titles = [document.get("Titel"), document.get("Onderwerp")]
    return {
        "id": letter_id,
        "dossier": dossier,
        "number": str(document["Volgnummer"]) if dossier and document.get("Volgnummer") is not None else None,
        "date": _day(document.get("Datum")),
        "sender": sender,
        "title": "; ".join(str(t).strip() for t in titles if t) or None,
        "type": SOORT.get(document.get("Soort") or "", "other"),
        "source_url": official_url(letter_id) or urljoin(base, f"Document({document['Id']})/resource"),
        "source": "tk",
        "source_id": document["Id"],
        "document_number": document.get("DocumentNummer"),
        "version": document.get("GewijzigdOp"),
    }


def zaak_records(zaak: dict[str, Any], base: str = "") -> list[dict[str, Any]]:
    """Records of the documents of a Zaak fetched with $expand=Document(...), each knowing its Zaak."""
    return [
        {**document_record(document, base), "zaak": zaak.get("Nummer"), "zaak_soort": zaak.get("Soort")}
        for document in zaak.get("Document") or []
        if not document.get("Verwijderd")
    ]


def candidate(document: dict[str, Any], base: str) -> Candidate:
    record = document_record(document, base)
    publications = (document.get("HuidigeDocumentVersie") or {}).get("DocumentPublicatie") or []
    xml = next((p for p in publications if str(p.get("DocumentType")).lower() == "xml" and not p.get("Verwijderd")), None)
    if xml is not None:
        return Candidate(record, urljoin(base, f"DocumentPublicatie({xml['Id']})/Resource"), ".xml")
    if "pdf" not in str(document.get("ContentType") or "pdf").lower():
        raise FetchError(f"{record['id']}: file type {document.get('ContentType')} is not supported (only XML and PDF)")
    return Candidate(record, urljoin(base, f"Document({document['Id']})/resource"), ".pdf")


class TweedeKamer:
    def __init__(self, client: PoliteClient, base: str) -> None:
        self.client = client
        self.base = base.rstrip("/") + "/"
        self.total: int | None = None

    def candidates(self, query: Query) -> Iterator[Candidate | FetchError]:
        """Every matching Document, page by page along @odata.nextLink."""
        url: str | None = urljoin(self.base, "Document")
        params: dict[str, Any] | None = {
            "$filter": document_filter(query), "$expand": EXPAND, "$orderby": "Datum,Id", "$top": PAGE, "$count": "true",
        }
        seen: set[str] = set()
        while url:
            if url in seen or len(seen) >= MAX_PAGES:
                yield FetchError(f"listing stopped: {url}: " + ("the server sent this page before" if url in seen else f"more than {MAX_PAGES:,} pages"))
                return
            seen.add(url)
            try:
                page = self.client.get_json(url, params)
                if not isinstance(page, dict) or not isinstance(page.get("value"), list):
                    raise FetchError(f"{url}: not an OData page (no 'value' list)")
            except FetchError as error:
                yield FetchError(f"listing stopped: {error}")
                return
            if isinstance(page.get("@odata.count"), int):
                self.total = page["@odata.count"]
            for document in page["value"]:
                try:
                    if document.get("Verwijderd"):
                        continue
                    yield candidate(document, self.base)
                except FetchError as error:
                    yield error
                except (KeyError, TypeError, AttributeError) as error:
                    yield FetchError(f"a Document on {url} is malformed ({type(error).__name__}: {error})")
            next_link = page.get("@odata.nextLink")
            if next_link is not None and not isinstance(next_link, str):
                yield FetchError(f"listing stopped: {url}: @odata.nextLink is not a URL")
                return
            url, params = (urljoin(self.base, next_link) if next_link else None), None

"""`qa fetch` / `qa update` against a real HTTP server on loopback that plays recorded responses.

The OData entities, XML and PDF files are real (../shared/corpus/fixtures and letters). What no
fixture shows is built from the documented formats and said so where it happens: OData pages
with `@odata.nextLink` pointing at the local server (the recorded Document page lost its envelope),
and SRU searchRetrieveResponse pages (none was recorded). The fake server does not evaluate
$filter or CQL; the tests check that the right filter was sent.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURE_LETTERS, RECORDED
from fetch_server import FakeServer, Reply

from qa.answer.engine import Engine
from qa.cli import main
from qa.index import local as index_store
from qa.ingest.formats import xml_metadata
from qa.ingest.reading import read_file, read_letters
from qa.ingest.sources import fetch, make_source
from qa.ingest.sources.http import FetchError, PoliteClient
from qa.ingest.sources.query import Query
from qa.ingest.sources.sru import cql, parse_page, record_fields
from qa.ingest.sources.tk import document_filter, document_record, zaak_records

FIXTURES = RECORDED


def fixture_json(name: str):
    return json.loads((FIXTURES / "tk_odata" / name).read_text(encoding="utf-8"))


def tk_document(doc_id: str, identifier: str | None, soort: str, datum: str, dossier: int | None, volgnummer: int,
                changed: str = "2025-06-01T10:00:00+02:00", functie: str = "minister van Defensie") -> dict:
    """The real Brief regering entity of the Zaak fixture (with its expansions), its ids, dates and
    dossier set to match the real file we serve; Kamerstukdossier and DocumentActor follow $metadata."""
    zaak = fixture_json("zaak_expand_document_with_brief_regering.json")
    document = copy.deepcopy(next(d for d in zaak["Document"] if d["Soort"] == "Brief regering"))
    document.update(Id=doc_id, DocumentNummer=f"2025D{doc_id[:5]}", Soort=soort, Datum=f"{datum}T00:00:00+02:00",
                    Volgnummer=volgnummer, GewijzigdOp=changed)
    version = document["HuidigeDocumentVersie"]
    version["ExterneIdentifier"] = identifier
    xml = next(p for p in version["DocumentPublicatie"] if p["DocumentType"] == "Xml")
    version["DocumentPublicatie"] = [{**xml, "Id": f"pub-{doc_id}", "Identifier": identifier}] if identifier and identifier.startswith("kst") else []
    document["Kamerstukdossier"] = [{"Id": f"dos-{dossier}", "Nummer": dossier, "Toevoeging": None, "Verwijderd": False}] if dossier else []
    document["DocumentActor"] = [{"ActorNaam": "R.P. Brekelmans", "Functie": functie, "Relatie": "Eerste ondertekenaar", "Verwijderd": False}]
    return document


def tk_page(server: FakeServer, documents: list[dict], next_token: str | None = None) -> bytes:
    page: dict = {"@odata.context": f"{server.url}/tk/$metadata#Document", "value": documents}
    if next_token:
        page["@odata.nextLink"] = f"{server.url}/tk/Document?$skiptoken={next_token}"
    return json.dumps(page).encode()


MOTIE = ("d1aaaaaa-0000-0000-0000-000000000001", "kst-27925-998")
ANSWER = ("d2bbbbbb-0000-0000-0000-000000000002", "ah-tk-20232024-1076")
BROKEN = ("d3cccccc-0000-0000-0000-000000000003", "kst-27925-999")
GRASLAND = ("d4dddddd-0000-0000-0000-000000000004", "kst-36749-6")


def serve_tk(server: FakeServer, with_grasland: bool = False, motie_changed: str = "2025-06-01T10:00:00+02:00") -> None:
    """Page 1: a motie (XML), an answer whose PDF is cut off once, a malformed XML; page 2 (after a 429):
    the new motie on grasland when `with_grasland`."""
    first = [tk_document(MOTIE[0], MOTIE[1], "Motie", "2025-05-15", 27925, 998, motie_changed, functie="Lid Tweede Kamer"),
             tk_document(ANSWER[0], ANSWER[1], "Antwoord schriftelijke vragen", "2024-02-20", None, 0, functie="minister van Volksgezondheid, Welzijn en Sport"),
             tk_document(BROKEN[0], BROKEN[1], "Brief regering", "2025-05-20", 27925, 999)]
    second = [tk_document(GRASLAND[0], GRASLAND[1], "Motie", "2025-09-10", 36749, 6, functie="Lid Tweede Kamer")] if with_grasland else []
    server.route("/tk/Document", Reply(b"busy", 503, {"Retry-After": "0"}), Reply(tk_page(server, first, "page2")))
    server.route("/tk/Document?$skiptoken=page2", Reply(b"slow down", 429, {"Retry-After": "0"}), Reply(tk_page(server, second)))
    letters = FIXTURE_LETTERS
    server.route(f"/tk/DocumentPublicatie(pub-{MOTIE[0]})/Resource", Reply((letters / "kst-27925-998.xml").read_bytes()))
    pdf = (letters / "ah-tk-20232024-1076.pdf").read_bytes()
    server.route(f"/tk/Document({ANSWER[0]})/resource", Reply(pdf, drop=True), Reply(pdf))
    server.route(f"/tk/DocumentPublicatie(pub-{BROKEN[0]})/Resource", Reply(b"<officiele-publicatie><kamerstuk><al>afgebroken"))
    server.route(f"/tk/DocumentPublicatie(pub-{GRASLAND[0]})/Resource", Reply((letters / "kst-36749-6.xml").read_bytes()))


def quick_client(waits: list[float] | None = None) -> PoliteClient:
    return PoliteClient(rate=0, retries=2, sleep=(waits.append if waits is not None else lambda seconds: None))


# --- parsing the recorded formats ---------------------------------------------------------


def test_odata_document_and_zaak_metadata_become_letter_records() -> None:
    records = zaak_records(fixture_json("zaak_expand_document_with_brief_regering.json"), "https://tk/")
    brief = next(r for r in records if r["type"] == "brief_regering")
    assert (brief["id"], brief["date"], brief["zaak"], brief["document_number"]) == ("kst-33576-442", "2025-03-31", "2025Z05588", "2025D13955")
    assert brief["source_url"] == "https://zoek.officielebekendmakingen.nl/kst-33576-442.html"
    assert "Appreciatie van de motie" in brief["title"] and brief["version"].startswith("2025-04-07")
    page = fixture_json("document_page_value_array.json")
    kinds = {document_record(d)["type"] for d in page if d["Soort"] in ("Brief regering", "Motie", "Antwoord schriftelijke vragen")}
    assert kinds == {"brief_regering", "motie", "antwoord_kamervragen"}
    assert document_record(next(d for d in page if d["Soort"] == "Brief regering"))["id"].startswith("tk-2025D")
    query = Query(dossier="36200-X", since="2021-01-01", types=("brief_regering",), ministry="Defensie")
    assert document_filter(query) == (
        "Verwijderd eq false and (Soort eq 'Brief regering') and Datum ge 2021-01-01T00:00:00Z and "
        "Kamerstukdossier/any(d: d/Nummer eq 36200 and d/Toevoeging eq 'X') and "
        "DocumentActor/any(a: contains(a/Functie, 'Defensie'))"
    )


def test_sru_records_of_both_recorded_styles_parse() -> None:
    from lxml import etree

    plain = etree.fromstring((FIXTURES / "sru" / "wetsuite_searchrec_gmb-2023-174296.xml").read_bytes())
    fields, urls = record_fields(plain)
    assert (fields["id"], fields["date"], fields["publication"]) == ("gmb-2023-174296", "2023-04-20", "Gemeenteblad")
    assert urls["xml"].endswith("/1/xml/gmb-2023-174296.xml") and urls["pdf"].endswith(".pdf")
    assert fields["type"] == "other"  # not a Kamerstuk: `Query.wants` drops it
    namespaced = etree.fromstring((FIXTURES / "sru" / "halflink_samenwerkendecatalogi" / "record_01.xml").read_bytes())
    fields, urls = record_fields(namespaced)
    assert fields["id"] == "c8d12e2253f6987a8098b73d326f3989" and fields["sender"].startswith("Ministerie van Onderwijs")
    assert "xml" not in urls  # only a metadata manifestation: no letter file to fetch
    assert cql(Query(dossier="27925", since="2021-01-01", types=("brief_regering",))) == (
        'c.product-area==officielepublicaties AND (w.publicatienaam=="Kamerstuk") AND w.dossiernummer=="27925" AND dt.date>=2021-01-01'
    )
    with pytest.raises(FetchError, match="not XML"):
        parse_page(b"<searchRetrieveResponse><records>")


def test_officielebekendmakingen_xml_both_metadata_styles_and_structure(tmp_path: Path) -> None:
    extern = read_file(FIXTURES / "officielebekendmakingen" / "kst-24515-782_externMetadataRecord_style.xml")
    assert (extern.id, extern.dossier, extern.number, extern.date, extern.type) == ("kst-24515-782", "24515", "782", "2025-02-06", "motie")
    inline = read_file(FIXTURES / "officielebekendmakingen" / "kst-34104-439_motie_full_metadata.xml")
    assert (inline.id, inline.dossier, inline.number, inline.sender) == ("kst-34104-439", "34104", "439", "M.G.F. Rikkers-Oosterkamp")
    record = xml_metadata((FIXTURES / "officielebekendmakingen" / "wetsuite_opmeta1.xml").read_bytes())  # a metadata.xml record
    assert (record["id"], record["date"]) == ("gmb-2024-216934", "2024-05-17")
    # A letter body in the documented Kamerstuk structure (no real brief XML was recorded):
    letter = tmp_path / "kst-27925-900.xml"
    letter.write_text(
        '<officiele-publicatie><kamerstuk><dossier><dossiernummer><dossiernr>27 925</dossiernr></dossiernummer></dossier>'
        '<stuk><stuknr>Nr. <ondernummer>900</ondernummer></stuknr><titel>BRIEF VAN DE MINISTER VAN DEFENSIE</titel>'
        '<algemeen><kop><titel>Inzet</titel></kop><al>De missie eindigt in september.<noot id="n1" type="voet"><noot.nr>1</noot.nr>'
        '<noot.al>Kamerstuk 27 925, nr. 780</noot.al></noot> Daarna volgt een evaluatie.</al>'
        '<lijst><li><li.nr>1.</li.nr><al>de terugtrekking;</al></li><li><li.nr>2.</li.nr><al>de evaluatie.</al></li></lijst>'
        '</algemeen></stuk></kamerstuk></officiele-publicatie>', encoding="utf-8")
    parsed = read_file(letter)
    assert (parsed.dossier, parsed.number, parsed.type) == ("27925", "900", "brief_regering")
    assert "De missie eindigt in september. Daarna volgt een evaluatie." in parsed.text  # footnote not inside the sentence
    assert "1. de terugtrekking;" in parsed.text and parsed.text.rstrip().endswith("1 Kamerstuk 27 925, nr. 780")


# --- the client against a real server -----------------------------------------------------


def test_tk_fetch_pages_retries_partial_bodies_and_reports_bad_items(tmp_path: Path) -> None:
    waits: list[float] = []
    with FakeServer() as server, quick_client(waits) as client:
        serve_tk(server)
        source = make_source("tk", client, f"{server.url}/tk/")
        summary = fetch(tmp_path, source, client, Query(dossier="27925", since="2021-01-01"))
        user_agents = {headers.get("User-Agent", "") for _, headers in server.log}
        listing = server.requests_to("/tk/Document?")
    assert sorted(summary.added) == [ANSWER[1], MOTIE[1]]
    assert len(summary.failed) == 1 and BROKEN[1] in summary.failed[0] and "malformed XML" in summary.failed[0]
    assert waits == [0.0, 1.0, 0.0]  # Retry-After: 0 on 503 and 429; backoff after the cut-off PDF
    assert "Kamerstukdossier/any(d: d/Nummer eq 27925)" in listing[0] and "$skiptoken=page2" in listing[-1]
    assert all(agent.startswith("kamerbrieven-qa/") for agent in user_agents)
    report = read_letters([tmp_path])
    assert not report.errors and {letter.id for letter in report.letters} == {MOTIE[1], ANSWER[1]}
    motie = next(letter for letter in report.letters if letter.id == MOTIE[1])
    assert (motie.dossier, motie.number, motie.date, motie.type) == ("27925", "998", "2025-05-15", "motie")
    assert (tmp_path / "letters" / "kst-27925-998.xml").is_file() and (tmp_path / "letters" / "ah-tk-20232024-1076.pdf").is_file()


def test_malformed_listing_and_dead_downloads_fail_clearly(tmp_path: Path) -> None:
    with FakeServer() as server, quick_client() as client:
        server.route("/tk/Document", Reply(b'{"value": [ oops'))
        summary = fetch(tmp_path, make_source("tk", client, f"{server.url}/tk/"), client, Query())
        assert summary.failed == [f"listing stopped: {server.url}/tk/Document?" + summary.failed[0].split("?", 1)[1]]
        assert "not JSON" in summary.failed[0]
        serve_tk(server)
        server.route(f"/tk/Document({ANSWER[0]})/resource", Reply(b"%PDF-1.4 cut", drop=True))
        summary = fetch(tmp_path, make_source("tk", client, f"{server.url}/tk/"), client, Query())
    assert summary.added == [MOTIE[1]]
    assert any(ANSWER[1] in message and "gave up after 3 attempts" in message for message in summary.failed)


def test_interrupted_fetch_resumes_and_changed_letters_are_replaced(tmp_path: Path) -> None:
    with FakeServer() as server, quick_client() as client:
        serve_tk(server)
        real_get = client.get

        def killed_after_first_file(url: str, *args, **kwargs):
            if "resource" in url.lower() and any(p.is_file() for p in (tmp_path / "letters").glob("*")):
                raise KeyboardInterrupt
            return real_get(url, *args, **kwargs)

        client.get = killed_after_first_file  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            fetch(tmp_path, make_source("tk", client, f"{server.url}/tk/"), client, Query())
        assert [json.loads(line)["id"] for line in (tmp_path / "letters.jsonl").read_text().splitlines()] == [MOTIE[1]]
        assert not list(tmp_path.rglob("*.part"))
        client.get = real_get  # type: ignore[method-assign]
        summary = fetch(tmp_path, make_source("tk", client, f"{server.url}/tk/"), client, Query())
        assert (summary.added, summary.skipped) == ([ANSWER[1]], 1)
        serve_tk(server, motie_changed="2025-07-01T09:00:00+02:00")  # a new version of the motie
        summary = fetch(tmp_path, make_source("tk", client, f"{server.url}/tk/"), client, Query())
        assert (summary.added, summary.replaced, summary.skipped) == ([], [MOTIE[1]], 1)
    lines = (tmp_path / "letters.jsonl").read_text().splitlines()
    assert len(lines) == 2 and not read_letters([tmp_path]).errors


def sru_record(identifier: str, title: str, day: str, dossier: str, number: str, xml_url: str) -> str:
    """A namespaced record in the shape of record_01.xml, with the tpmeta/enrichedData fields of the
    wetsuite officielepublicaties record (Kamerstuk values in place of the Gemeenteblad ones)."""
    return (
        '<sru:record><sru:recordSchema>http://standaarden.overheid.nl/sru/</sru:recordSchema><sru:recordPacking>xml</sru:recordPacking>'
        '<sru:recordData><gzd:gzd><gzd:originalData><overheidwetgeving:meta><overheidwetgeving:owmskern>'
        f'<dcterms:identifier>{identifier}</dcterms:identifier><dcterms:title>{title}</dcterms:title>'
        '<dcterms:type scheme="OVERHEIDop.Parlementair">Kamerstuk</dcterms:type><dcterms:creator>Tweede Kamer der Staten-Generaal</dcterms:creator>'
        f'<dcterms:modified>{day}</dcterms:modified></overheidwetgeving:owmskern><overheidwetgeving:owmsmantel><dcterms:date>{day}</dcterms:date>'
        '</overheidwetgeving:owmsmantel><overheidwetgeving:tpmeta><c:product-area>officielepublicaties</c:product-area>'
        f'<overheidwetgeving:dossiernummer>{dossier}</overheidwetgeving:dossiernummer><overheidwetgeving:ondernummer>{number}</overheidwetgeving:ondernummer>'
        '<overheidwetgeving:publicatienaam>Kamerstuk</overheidwetgeving:publicatienaam></overheidwetgeving:tpmeta></overheidwetgeving:meta></gzd:originalData>'
        f'<gzd:enrichedData><gzd:itemUrl manifestation="xml">{xml_url}</gzd:itemUrl><gzd:timestamp>{day}T10:00:00+02:00</gzd:timestamp></gzd:enrichedData>'
        '</gzd:gzd></sru:recordData></sru:record>'
    )


def sru_page(records: list[str], total: int, next_position: int | None) -> bytes:
    """A searchRetrieveResponse per the SRU 2.0 schema (numberOfRecords, records, nextRecordPosition)."""
    namespaces = ('xmlns:sru="http://docs.oasis-open.org/ns/search-ws/sruResponse" xmlns:gzd="http://standaarden.overheid.nl/sru" '
                  'xmlns:dcterms="http://purl.org/dc/terms/" xmlns:overheidwetgeving="http://standaarden.overheid.nl/wetgeving/" '
                  'xmlns:c="http://standaarden.overheid.nl/collectie/"')
    following = f"<sru:nextRecordPosition>{next_position}</sru:nextRecordPosition>" if next_position else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><sru:searchRetrieveResponse {namespaces}><sru:version>2.0</sru:version>'
            f"<sru:numberOfRecords>{total}</sru:numberOfRecords><sru:records>{''.join(records)}</sru:records>{following}"
            "</sru:searchRetrieveResponse>").encode()


def test_sru_fetch_pages_and_types(tmp_path: Path) -> None:
    with FakeServer() as server, quick_client() as client:
        motie = sru_record("kst-27925-998", "Bestrijding internationaal terrorisme; Motie; Motie van het lid Van Baarle", "2025-05-15", "27925", "998", f"{server.url}/files/kst-27925-998.xml")
        other = sru_record("kst-27925-997", "Bestrijding internationaal terrorisme; Verslag van een commissiedebat", "2025-05-14", "27925", "997", f"{server.url}/files/kst-27925-997.xml")
        server.route("/sru?operation=searchRetrieve&version=2.0&query=" + cql(Query(dossier="27925")) + "&startRecord=1&maximumRecords=100",
                     Reply(b"", 503), Reply(sru_page([other], 2, 2)))
        server.route("/sru", Reply(sru_page([motie], 2, None)))
        server.route("/files/kst-27925-998.xml", Reply((FIXTURE_LETTERS / "kst-27925-998.xml").read_bytes()))
        summary = fetch(tmp_path, make_source("sru", client, f"{server.url}/sru"), client, Query(dossier="27925"))
        assert "startRecord=2" in server.requests_to("/sru")[-1]
    assert (summary.listed, summary.added, summary.skipped, summary.failed) == (2, ["kst-27925-998"], 1, [])
    letter = read_letters([tmp_path]).letters[0]
    assert (letter.id, letter.type, letter.dossier, letter.sender) == ("kst-27925-998", "motie", "27925", "Tweede Kamer der Staten-Generaal")


# --- the commands, end to end -------------------------------------------------------------


def test_fetch_then_update_adds_new_letters_to_the_index_and_answers(tmp_path: Path, embedder, monkeypatch) -> None:
    """`qa fetch` → `qa index build` → a new letter appears → `qa update` embeds only that one."""
    import qa.embed.embedding

    monkeypatch.setattr(qa.embed.embedding, "Embedder", lambda name=None, device=None, backend=None: embedder)  # the session's model, loaded once
    letters, index_dir = tmp_path / "letters", tmp_path / "index"
    runner = CliRunner()
    with FakeServer() as server:
        serve_tk(server)
        common = ["--out", str(letters), "--tk-url", f"{server.url}/tk/", "--rate", "100", "--no-progress"]
        result = runner.invoke(main, ["fetch", "--dossier", "27925", "--since", "2021-01-01", *common])
        assert result.exit_code == 3, result.output  # EXIT_PARTIAL: the malformed XML
        assert "added 2" in result.output and "failed 1" in result.output and "kst-27925-999" in result.output
        result = runner.invoke(main, ["index", "build", str(letters), "--index", str(index_dir), "--model", embedder.name, "--no-progress"])
        assert result.exit_code == 0, result.output
        state = json.loads((letters / ".fetch-state.json").read_text())
        assert state["query"]["dossier"] == "27925" and state["source"] == "tk"

        serve_tk(server, with_grasland=True)
        server.route(f"/tk/DocumentPublicatie(pub-{BROKEN[0]})/Resource", Reply((FIXTURE_LETTERS / "kst-27925-998.xml").read_bytes()))
        server.log.clear()
        result = runner.invoke(main, ["update", *common, "--index", str(index_dir)])
        assert result.exit_code == 0, result.output
        # the first fetch failed on one letter, so the watermark did not move: everything is asked again
        assert "GewijzigdOp" not in server.requests_to("/tk/Document?")[0]
        assert "added 2" in result.output and "skipped 2" in result.output
        server.log.clear()
        again = runner.invoke(main, ["update", *common, "--index", str(index_dir)])
        listing = server.requests_to("/tk/Document?")[0]
    assert again.exit_code == 0 and "up to date" in again.output, again.output  # the cron run of the next day
    assert "GewijzigdOp ge " in listing and "Kamerstukdossier/any(d: d/Nummer eq 27925)" in listing
    index = index_store.load(index_dir)
    assert {GRASLAND[1], BROKEN[1], MOTIE[1], ANSWER[1]} <= set(index.letters)
    old_passages = len(index.letter_passages[MOTIE[1]]) + len(index.letter_passages[ANSWER[1]])
    assert f"embedded {len(index.passages) - old_passages} passages" in result.output  # old letters not embedded again
    answer = Engine(index, embedder).ask("Wat vraagt de Kamer over de afname van grasland?")
    assert not answer.abstained and answer.citations[0].letter_id == GRASLAND[1]


def _parsed_by_an_older_qa(index_dir: Path, extra_letter: str | None = None) -> str:
    """Make the live generation look built by the previous chunker (what an index from before an upgrade is);
    returns CURRENT, which a refusal must leave as it was."""
    from qa.ingest.chunking import CHUNKER_VERSION

    generation = index_store.live_generation(index_dir)
    assert generation is not None
    path = generation / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["chunker_version"] = CHUNKER_VERSION - 1
    manifest["letters"].pop("kst-1-1", None)
    if extra_letter:
        manifest["letters"][extra_letter] = "0" * 16
    path.chmod(0o644)
    path.write_text(json.dumps(manifest))
    return (index_dir / "CURRENT").read_text()


def test_an_index_of_an_older_chunker_is_refused_and_update_rebuilds_it(tmp_path: Path, fake_embedder, monkeypatch) -> None:
    """After an upgrade that parses letters differently (CHUNKER_VERSION), an old index is never read as if current:
    every command says what to run (exit 2, the index untouched), and `qa update` rebuilds it from its letters folder
    when that folder holds all its letters, before fetching anything otherwise."""
    import qa.embed.embedding
    from qa.ingest.chunking import CHUNKER_VERSION

    backends: list[str | None] = []
    monkeypatch.setattr(qa.embed.embedding, "Embedder", lambda name=None, device=None, backend=None: backends.append(backend) or fake_embedder)
    letters, index_dir = tmp_path / "letters", tmp_path / "index"
    runner = CliRunner()
    with FakeServer() as server:
        serve_tk(server)
        server.route(f"/tk/DocumentPublicatie(pub-{BROKEN[0]})/Resource", Reply((FIXTURE_LETTERS / "kst-27925-998.xml").read_bytes()))
        common = ["--out", str(letters), "--tk-url", f"{server.url}/tk/", "--rate", "100", "--no-progress"]
        assert runner.invoke(main, ["fetch", "--dossier", "27925", "--since", "2021-01-01", *common]).exit_code == 0
        built = runner.invoke(main, ["index", "build", str(letters), "--index", str(index_dir), "--model", fake_embedder.name, "--no-progress"])
        assert built.exit_code == 0, built.output
        held = set(index_store.load(index_dir).letters)

        live = _parsed_by_an_older_qa(index_dir, extra_letter="kst-1-1")
        for command in (["index", "info"], ["index", "add", str(letters)], ["search", "grasland"]):
            refused = runner.invoke(main, [*command, "--index", str(index_dir)])
            assert refused.exit_code == 2, (command, refused.output)
            assert f"chunker {CHUNKER_VERSION - 1}; this qa writes format" in refused.output and "qa index build" in refused.output
            assert "Traceback" not in refused.output and (index_dir / "CURRENT").read_text() == live
        server.log.clear()
        refused = runner.invoke(main, ["update", *common, "--index", str(index_dir)])
        assert refused.exit_code == 2 and "1 letters that are not in" in refused.output and "kst-1-1" in refused.output, refused.output
        assert not server.log and (index_dir / "CURRENT").read_text() == live  # nothing fetched, nothing written

        _parsed_by_an_older_qa(index_dir)  # now the folder holds every letter of the index
        rebuilt = runner.invoke(main, ["update", *common, "--index", str(index_dir)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "built by an older version of qa: rebuilding it from all letters" in rebuilt.output
    index = index_store.load(index_dir)
    assert index.manifest["chunker_version"] == CHUNKER_VERSION and set(index.letters) == held
    assert f"embedded {len(index.passages)} passages" in rebuilt.output  # every letter cut again, none reused
    assert backends[-1] == fake_embedder.backend == index.backend  # rebuilt on the backend it had, not the default

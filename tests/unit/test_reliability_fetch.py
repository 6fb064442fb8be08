"""`qa fetch` against hostile servers (issue 12): bodies and gzip bombs are bounded while they stream,
a dripping server meets a deadline, pagination that goes round in circles stops, redirects and links
to other hosts are not followed, ids cannot collide or overflow a file name, a sidecar cannot make a
fetch delete files outside its folder, and two fetches into one folder cannot lose records."""

from __future__ import annotations

import json
import threading
import tracemalloc
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from fetch_server import FakeServer, Reply
from hostile import deep_xml

from qa.cli import EXIT_ERROR, main
from qa.ingest.sources import fetch, make_source
from qa.ingest.sources.http import FetchError, PoliteClient
from qa.ingest.sources.query import Query
from qa.ingest.sources.sru import parse_page
from qa.ingest.sources.store import LetterStore, folder_lock, safe_name

LETTER_XML = (b"<officiele-publicatie><kamerstuk><al>De minister van Defensie meldt dat de proef met drones in maart "
              b"2025 begon en in juni wordt afgerond.</al></kamerstuk></officiele-publicatie>")


def document(number: int, identifier: str) -> dict:
    """A Brief regering as the OData API lists it (the fields `document_record` reads; see $metadata)."""
    return {
        "Id": f"doc-{number}", "Soort": "Brief regering", "Datum": "2025-05-01T00:00:00+02:00", "Volgnummer": number,
        "GewijzigdOp": "2025-06-01T10:00:00+02:00", "DocumentNummer": f"2025D{number:05d}", "Titel": f"Brief {number}",
        "Verwijderd": False, "Kamerstukdossier": [{"Nummer": 27925, "Toevoeging": None}],
        "DocumentActor": [{"ActorNaam": "R.P. Brekelmans", "Functie": "minister van Defensie", "Relatie": "Eerste ondertekenaar"}],
        "HuidigeDocumentVersie": {"ExterneIdentifier": identifier,
                                  "DocumentPublicatie": [{"Id": f"pub-{number}", "DocumentType": "Xml", "Identifier": identifier}]},
    }


def page(documents: list[dict], next_link: str | None = None) -> bytes:
    body: dict = {"value": documents}
    if next_link:
        body["@odata.nextLink"] = next_link
    return json.dumps(body).encode()


def client(**options) -> PoliteClient:
    return PoliteClient(rate=0, retries=1, sleep=lambda seconds: None, **options)


def in_thread(function, seconds: float = 30.0):
    """Run `function` with a time limit: before the fixes several of these never returned."""
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(function()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert result, f"still running after {seconds} s"
    return result[0]


# --- item 13: bounded bodies and a deadline --------------------------------------------------------


def test_a_huge_body_is_refused_while_it_streams_not_after(tmp_path: Path) -> None:
    """50 MB without Content-Length, limit 2 MB: refused after ~2 MB read (it held all of it first: 300 MB → 694 MB RSS)."""
    megabyte = b"\0" * (1 << 20)
    with FakeServer() as server, client(max_bytes=2_000_000) as polite:
        server.route("/huge", Reply(stream=lambda: (megabyte for _ in range(50))))
        tracemalloc.start()
        with pytest.raises(FetchError, match="larger than 2,000,000 bytes"):
            polite.get(f"{server.url}/huge")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 12_000_000, peak
    assert server.sent < 30 * (1 << 20)  # the client hung up; the server did not send all 50 MB


def test_a_gzip_bomb_is_counted_after_decoding(tmp_path: Path) -> None:
    """~200 KB of gzip that inflates to 200 MB (it took 2.19 GB): refused once 5 MB are decoded."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(packer.compress(b"\0" * (1 << 20)) for _ in range(200)) + packer.flush()
    assert len(bomb) < 1_000_000
    with FakeServer() as server, client(max_bytes=5_000_000) as polite:
        server.route("/bomb.xml", Reply(bomb, headers={"Content-Encoding": "gzip"}))
        tracemalloc.start()
        with pytest.raises(FetchError, match="larger than 5,000,000 bytes"):
            polite.get(f"{server.url}/bomb.xml")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 30_000_000, peak


def test_a_server_that_drips_one_byte_at_a_time_meets_the_deadline() -> None:
    """A byte every 50 ms never trips the read timeout; the deadline for the whole download does (it ran 202 s)."""
    with FakeServer() as server, client(deadline=1.0) as polite:
        server.route("/slow.xml", Reply(LETTER_XML, drip=0.05))
        error = in_thread(lambda: pytest.raises(FetchError, polite.get, f"{server.url}/slow.xml"), 20)
    assert "not downloaded within 1 s" in str(error.value)  # type: ignore[attr-defined]


# --- item 14: pagination that never ends ----------------------------------------------------------


def test_an_odata_next_link_to_the_same_page_stops_the_listing(tmp_path: Path) -> None:
    with FakeServer() as server, client() as polite:
        looping = page([document(1, "kst-27925-1")], f"{server.url}/tk/Document?$skiptoken=same")
        server.route("/tk/Document", Reply(looping))
        server.route("/tk/Document?$skiptoken=same", Reply(looping))
        server.route("/tk/DocumentPublicatie(pub-1)/Resource", Reply(LETTER_XML))
        summary = in_thread(lambda: fetch(tmp_path, make_source("tk", polite, f"{server.url}/tk/"), polite, Query()))
        listing = server.requests_to("/tk/Document")
    assert summary.added == ["kst-27925-1"]  # type: ignore[attr-defined]
    assert any("the server sent this page before" in message for message in summary.failed)  # type: ignore[attr-defined]
    assert len(listing) == 3  # the first page, its next page, and that next page once more: then it stops (was 484 in 25 s)


def test_an_sru_next_record_position_that_does_not_move_on_stops_the_listing(tmp_path: Path) -> None:
    response = (b"<searchRetrieveResponse><numberOfRecords>5</numberOfRecords><records/>"
                b"<nextRecordPosition>1</nextRecordPosition></searchRetrieveResponse>")
    with FakeServer() as server, client() as polite:
        server.route("/sru", Reply(response))
        summary = in_thread(lambda: fetch(tmp_path, make_source("sru", polite, f"{server.url}/sru"), polite, Query()))
        requests = len(server.requests_to("/sru"))
    assert requests == 1
    assert summary.failed == ["listing stopped at record 1: the next record position 1 does not move on"]  # type: ignore[attr-defined]


def test_an_sru_count_of_superscript_two_is_no_number() -> None:
    """"²".isdigit() is True and int("²") raises: the listing died with a ValueError."""
    total, position, records = parse_page("<searchRetrieveResponse><numberOfRecords>²</numberOfRecords></searchRetrieveResponse>".encode())
    assert (total, position, records) == (None, None, [])


# --- item 18: other hosts ----------------------------------------------------------------------------


def test_redirects_and_next_links_to_another_host_are_not_followed(tmp_path: Path) -> None:
    with FakeServer() as server, FakeServer() as elsewhere, client() as polite:
        server.route("/tk/Document", Reply(page([document(1, "kst-27925-1"), document(2, "kst-27925-2")],
                                                f"{elsewhere.url}/tk/Document?$skiptoken=2")))
        server.route("/tk/DocumentPublicatie(pub-1)/Resource", Reply(LETTER_XML))
        server.route("/tk/DocumentPublicatie(pub-3)/Resource", Reply(LETTER_XML))  # listed on the other host's page
        server.route("/tk/DocumentPublicatie(pub-2)/Resource", Reply(b"", 302, {"Location": f"{elsewhere.url}/evil.xml"}))
        elsewhere.route("/evil.xml", Reply(LETTER_XML.replace(b"drones", b"iets anders")))
        elsewhere.route("/tk/Document", Reply(page([document(3, "kst-27925-3")])))
        summary = fetch(tmp_path, make_source("tk", polite, f"{server.url}/tk/"), polite, Query())
        assert elsewhere.log == []
        assert summary.added == ["kst-27925-1"]
        assert any("kst-27925-2" in message and "another host" in message for message in summary.failed), summary.failed
        assert any(message.startswith("listing stopped") and "another host" in message for message in summary.failed), summary.failed

        polite.allow(elsewhere.url)  # --allow-host
        summary = fetch(tmp_path, make_source("tk", polite, f"{server.url}/tk/"), polite, Query())
        assert sorted(summary.added) == ["kst-27925-2", "kst-27925-3"], summary.failed
    # A redirect on the same host is still followed.
    with FakeServer() as server, client() as polite:
        server.route("/tk/Document", Reply(page([document(4, "kst-27925-4")])))
        server.route("/tk/DocumentPublicatie(pub-4)/Resource", Reply(b"", 301, {"Location": "/files/4.xml"}))
        server.route("/files/4.xml", Reply(LETTER_XML))
        assert fetch(tmp_path, make_source("tk", polite, f"{server.url}/tk/"), polite, Query()).added == ["kst-27925-4"]


# --- item 17: ids and file names ---------------------------------------------------------------------


def test_ids_that_map_to_one_file_name_and_overlong_ids_get_their_own_files(tmp_path: Path) -> None:
    store = LetterStore(tmp_path)
    long_id = "kst-" + "9" * 300
    for letter_id in ("kst-9/9", "kst-9_9", long_id):
        store.put({"id": letter_id, "version": "1"}, LETTER_XML + letter_id.encode()[:20], ".xml")
    files = {letter_id: store.records[letter_id]["file"] for letter_id in ("kst-9/9", "kst-9_9", long_id)}
    assert len(set(files.values())) == 3, files
    assert files["kst-9_9"] == "letters/kst-9_9.xml"  # ids that are already safe keep their plain names
    assert all(len(Path(name).name) < 200 for name in files.values())
    assert (tmp_path / files["kst-9/9"]).read_bytes().endswith(b"kst-9/9")
    assert safe_name("kst-27925-781") == "kst-27925-781"


# --- item 7: a sidecar cannot make a fetch delete files elsewhere ------------------------------------


def test_replacing_a_letter_never_deletes_a_file_outside_the_folder(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("do not delete")
    folder = tmp_path / "letters"
    folder.mkdir()
    (folder / "letters.jsonl").write_text(json.dumps({"id": "kst-1-1", "file": "../victim.txt", "version": "1"}) + "\n"
                                          + json.dumps({"id": "kst-1-2", "file": str(victim), "version": "1"}) + "\n")
    store = LetterStore(folder)
    assert not store.has("kst-1-1", "1")  # a record whose file lies outside is not "present"
    store.put({"id": "kst-1-1", "version": "2"}, LETTER_XML, ".xml")
    store.put({"id": "kst-1-2", "version": "2"}, LETTER_XML, ".xml")
    assert victim.read_text() == "do not delete"
    assert (folder / "letters" / "kst-1-1.xml").is_file()


# --- item 16: two fetches into one folder ------------------------------------------------------------


def test_a_second_fetch_into_the_same_folder_is_turned_away(tmp_path: Path) -> None:
    """Both exited 0 and a record was lost from letters.jsonl; now the second gets exit 2 and a clear line."""
    folder = tmp_path / "letters"
    runner = CliRunner()
    with FakeServer() as server:
        server.route("/tk/Document", Reply(page([document(1, "kst-27925-1"), document(2, "kst-27925-2")])))
        server.route("/tk/DocumentPublicatie(pub-1)/Resource", Reply(LETTER_XML))
        server.route("/tk/DocumentPublicatie(pub-2)/Resource", Reply(LETTER_XML))
        arguments = ["fetch", "--out", str(folder), "--tk-url", f"{server.url}/tk/", "--rate", "100", "--no-progress"]
        with folder_lock(folder):
            busy = runner.invoke(main, arguments)
        assert busy.exit_code == EXIT_ERROR, busy.output
        assert "is being fetched into by another process" in busy.output
        assert not (folder / "letters.jsonl").exists()
        done = runner.invoke(main, arguments)
    assert done.exit_code == 0, done.output
    ids = [json.loads(line)["id"] for line in (folder / "letters.jsonl").read_text().splitlines()]
    assert ids == ["kst-27925-1", "kst-27925-2"]


# --- item 4: a deep XML does not end the fetch --------------------------------------------------------


def test_a_deeply_nested_xml_does_not_end_the_fetch_and_the_state_is_written(tmp_path: Path) -> None:
    folder = tmp_path / "letters"
    with FakeServer() as server:
        server.route("/tk/Document", Reply(page([document(1, "kst-27925-1"), document(2, "kst-27925-2"), document(3, "kst-27925-3")])))
        server.route("/tk/DocumentPublicatie(pub-1)/Resource", Reply(deep_xml(2_000)))
        server.route("/tk/DocumentPublicatie(pub-2)/Resource", Reply(b"<a>" * 20_000 + b"te diep" + b"</a>" * 20_000))
        server.route("/tk/DocumentPublicatie(pub-3)/Resource", Reply(LETTER_XML))
        result = CliRunner().invoke(main, ["fetch", "--out", str(folder), "--tk-url", f"{server.url}/tk/", "--rate", "100", "--no-progress"])
    assert "Traceback" not in result.output
    assert (folder / ".fetch-state.json").is_file()
    ids = [json.loads(line)["id"] for line in (folder / "letters.jsonl").read_text().splitlines()]
    assert "kst-27925-1" in ids and "kst-27925-3" in ids, result.output
    assert result.exit_code in (0, 3), result.output

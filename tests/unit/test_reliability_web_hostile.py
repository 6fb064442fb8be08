"""The third hostile round (issue 29): the web layer against hostile text, hostile sites and a forged Host.

On the fast tier (the deterministic embedder): the feedback CSV export, the Atom feed of a saved question,
cross-site requests, and the Host header. The feedback buttons' icons are checked here for the characters
they use and in Chromium (tests/browser/test_browser_chat.py) for how they render."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest
from conftest import copy_index
from litestar.testing import TestClient

from qa.answer.engine import Engine
from qa.core.errors import SettingsError
from qa.index import local as index_store
from qa.index.filters import Filters
from qa.server.app import create_app
from qa.server.settings import Settings
from qa.users import feedback, watches

KEY = "hostile-admin-key"
HOST = "kamerbrieven.example.nl"  # the server's own name, as configured


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, fast_index_dir: Path) -> Path:
    return copy_index(fast_index_dir, tmp_path_factory.mktemp("web-hostile") / "index")


@pytest.fixture(scope="module")
def client(index_dir: Path, fast_engine: Engine) -> Iterator[TestClient]:
    engine = Engine(index_store.load(index_dir), fast_engine.embedder, fast_engine.policy)
    settings = Settings(index_dir=index_dir, build_sample=False, admin_key=KEY, allowed_hosts=(HOST,))
    with TestClient(create_app(settings, engine=engine), base_url=f"http://{HOST}") as test_client:
        yield test_client

# --- icons ------------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def _emoji(char: str) -> bool:
    """Pictographs, dingbats and symbols that only an emoji font draws (DejaVu, Debian's default, has none of them)."""
    code = ord(char)
    return code >= 0x1F000 or 0x2600 <= code <= 0x27BF or 0x2B00 <= code <= 0x2BFF or code == 0xFE0F


def test_no_page_script_or_server_message_draws_with_an_emoji() -> None:
    """👍/👎 on the feedback buttons were empty boxes in headless Chromium on Debian: the icons are SVG now
    (and tests/browser/test_browser_chat.py measures them)."""
    files = [*(ROOT / "web").rglob("*.html"), *(ROOT / "web" / "static").glob("*.js"), *(ROOT / "web" / "static").glob("*.css"),
             *(ROOT / "qa" / "server").glob("*.py")]
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}" for path in files
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if any(map(_emoji, line))]
    assert len(files) > 15 and not found, "\n".join(found)


# --- the CSV export of feedback ------------------------------------------------------------------------

# (what someone typed, how the cell must read in the export)
HOSTILE_CELLS = {
    "formula": ("=1+1", "'=1+1"),
    "plus": ("+31 6 1234", "'+31 6 1234"),
    "minus": ("-2+3", "'-2+3"),
    "at": ("@SUM(A1)", "'@SUM(A1)"),
    "tab first": ("\t=1+1", "'\t=1+1"),
    "CR first": ("\r=1+1", "'=1+1"),  # the CR goes (a control), the formula is still caught
    "blank, then a formula": ("  =HYPERLINK(\"http://evil\")", "'  =HYPERLINK(\"http://evil\")"),
    "ESC, then a formula": ("\x1b=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
    "window title (OSC 0)": ("\x1b]0;pwned\x07goed antwoord", "]0;pwnedgoed antwoord"),
    "clear screen": ("\x1b[2J\x1b[Hgoed", "[2J[Hgoed"),
    "clipboard write (OSC 52)": ("\x1b]52;c;ZXZpbA==\x07ok", "]52;c;ZXZpbA==ok"),
    "C1 CSI": ("\x9b31mrood", "31mrood"),
    "NUL and DEL": ("a\x00b\x7fc", "abc"),
    "bidi override": ("\u202egnitset\u202c", "gnitset"),
    "plain Dutch, lines kept": ("Klopt niet:\nde datum is 11 september.", "Klopt niet:\nde datum is 11 september."),
}
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize(("typed", "exported"), list(HOSTILE_CELLS.values()), ids=list(HOSTILE_CELLS))
def test_the_csv_export_runs_no_formula_and_sends_no_escape_sequence(typed: str, exported: str) -> None:
    """As stored (a row may be edited by hand): in the comment, the question and the answer alike."""
    item = feedback.Feedback("down", typed, typed, typed, citations=(feedback.Cited(1, "kst-1", "kst-1#1", "q"),), created_at="2024-01-01")
    buffer = io.StringIO()
    feedback.write_csv([item], buffer)
    text = buffer.getvalue()
    assert not _UNSAFE.search(text.replace("\r\n", "\n")), repr(text)
    header, row = list(csv.reader(io.StringIO(text)))
    cells = dict(zip(header, row, strict=True))
    assert cells["comment"] == cells["question"] == cells["answer"] == exported, cells


# --- the Atom feed of a saved question ------------------------------------------------------------------

ATOM = "{http://www.w3.org/2005/Atom}"
# Characters XML 1.0 does not allow at all (not even as &#…;), and text that only escaping keeps apart from markup.
NOT_XML = "".join(map(chr, [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])) + "\ud800\udfff\ufffe\uffff"
MARKUP = "]]> <![CDATA[ x ]]> </title><entry> & &amp; <script>"


def hostile_watch(text: str) -> tuple[watches.Watch, list[watches.WatchHit]]:
    watch = watches.Watch(7, "tok_" + "A" * 20, f"Wat {text} kost het?", 0.6, Filters(), "2024-01-01T00:00:00+00:00", None, 0)
    hit = watches.WatchHit(1, 7, f"kst-{text}", f"kst-{text}#1", f"Titel {text}", "2024-01-02", f"https://example.org/{text}",
                           f"Antwoord {text}", f"Citaat {text}", 0, 5, 0.9, "2024-01-03T00:00:00+00:00", None)
    return watch, [hit]


@pytest.mark.parametrize("text", [NOT_XML, MARKUP, NOT_XML + MARKUP, "\x1b[2J\x7f\x85\u2028"], ids=["not XML", "markup", "both", "escapes"])
def test_the_atom_feed_stays_well_formed_xml_whatever_the_titles_and_questions_hold(text: str) -> None:
    """The question, a letter's title, id, url, answer: any of them may hold what XML 1.0 cannot carry."""
    watch, hits = hostile_watch(text)
    body = watches.atom_feed(watch, hits, "http://127.0.0.1:8000", lambda hit: f"/letters/{hit.letter_id}")
    root = ElementTree.fromstring(body)  # ParseError before: "not well-formed (invalid token)"
    title = root.findtext(f"{ATOM}title") or ""
    assert title.startswith("Kamerbrieven QA: Wat ") and title.endswith(" kost het?")
    if text == MARKUP:
        assert title == f"Kamerbrieven QA: Wat {MARKUP} kost het?"  # markup is text, whole
    [entry] = root.findall(f"{ATOM}entry")
    assert (entry.findtext(f"{ATOM}title") or "").startswith("Titel ")
    assert not re.search(f"[{NOT_XML[:-4]}]", body.decode("utf-8")), "no character XML forbids, in text or attributes"


def test_a_saved_question_with_control_characters_still_has_a_feed_that_parses(client: TestClient) -> None:
    """Over the API: the question is stored as sent (JSON may carry \\u0000 and \\u001b), the feed drops what XML cannot hold."""
    made = client.post("/api/watches", json={"question": "Wat kost\x00 de \x1b[31mdrone\x0b <&]]>?"})
    assert made.status_code == 201, made.text
    feed = client.get(made.json()["feed_url"])
    assert feed.status_code == 200
    assert ElementTree.fromstring(feed.content).findtext(f"{ATOM}title") == "Kamerbrieven QA: Wat kost de [31mdrone <&]]>?"


# --- a forged Host header -------------------------------------------------------------------------------

EVIL = "evil.example"
FORGED_HOSTS = [EVIL, f"{EVIL}:8000", f"{HOST}.{EVIL}", f"{HOST}@{EVIL}", f"{EVIL}/{HOST}", f"{HOST} {EVIL}", f"{HOST}:1:2", "", "[::ffff]"]


def _links(feed: bytes) -> list[str]:
    return [link.get("href", "") for link in ElementTree.fromstring(feed).iter(f"{ATOM}link")]


@pytest.fixture(scope="module")
def feed_url(client: TestClient) -> str:
    made = client.post("/api/watches", json={"question": "Hoeveel kost de registratie van een drone?"})
    assert made.status_code == 201, made.text
    return str(made.json()["feed_url"])


def test_the_feed_links_to_the_servers_own_host_never_a_forged_one(client: TestClient, feed_url: str) -> None:
    own = client.get(feed_url)
    assert own.status_code == 200 and all(link.startswith(f"http://{HOST}/watches/") for link in _links(own.content)), own.text
    for host in FORGED_HOSTS:
        forged = client.get(feed_url, headers={"host": host})
        assert forged.status_code == 400 and EVIL not in forged.text, (host, forged.status_code, forged.text[:300])  # was 200, links to evil.example
    assert "QA_BASE_URL" in client.get(feed_url, headers={"host": EVIL, "accept": "application/json"}).json()["detail"]
    assert client.get(feed_url, headers={"host": "127.0.0.1:8000"}).status_code == 200  # loopback is always this server


def test_with_a_base_url_every_absolute_link_uses_it_whatever_the_host(index_dir: Path, fast_engine: Engine, feed_url: str) -> None:
    settings = Settings(index_dir=index_dir, build_sample=False, base_url="https://qa.example.nl/")
    with TestClient(create_app(settings, engine=fast_engine)) as other:
        for host in (EVIL, "127.0.0.1:8000", "qa.example.nl"):
            feed = other.get(feed_url, headers={"host": host})
            assert feed.status_code == 200 and all(link.startswith("https://qa.example.nl/watches/") for link in _links(feed.content)), host


def test_the_admin_api_refuses_a_forged_host_even_with_the_key(client: TestClient) -> None:
    """Before: a page under the attacker's name, rebound to this server's address, reached it as if it were this site."""
    admin = {"authorization": f"Bearer {KEY}"}
    for host in FORGED_HOSTS:
        for method, path in (("POST", "/api/admin/reload"), ("GET", "/api/watches")):
            response = client.request(method, path, headers={**admin, "host": host})
            assert response.status_code == 400 and "host" in response.json()["detail"].lower(), (host, path, response.status_code)
    assert client.post("/api/admin/reload", headers=admin).status_code == 200
    assert client.get("/api/watches", headers=admin).status_code == 200


@pytest.mark.parametrize("host", FORGED_HOSTS)
def test_a_malformed_or_foreign_host_is_never_a_5xx(client: TestClient, feed_url: str, host: str) -> None:
    """Before: "a:1:2" passed Litestar's host check, then `request.url` raised ValueError in the feed and in the
    error handlers themselves (a 404 became a 500)."""
    for method, path in (("GET", "/"), ("GET", "/api/health"), ("GET", "/api/letters/nope"), ("GET", "/letters/nope"), ("GET", feed_url),
                         ("POST", "/api/ask")):
        response = client.request(method, path, headers={"host": host, "accept": "application/json"})
        assert response.status_code < 500, (method, path, response.status_code, response.text[:200])


def test_redirects_stay_relative_so_a_forged_host_never_reaches_a_location(client: TestClient) -> None:
    response = client.get("/letters?page=9999", headers={"host": EVIL}, follow_redirects=False)
    assert response.status_code in (301, 302, 303, 307, 308) and response.headers["location"].startswith("/letters"), response.headers


def test_the_host_settings_are_checked_at_start_up(tmp_path: Path) -> None:
    for bad in ({"base_url": "kamerbrieven.example.nl"}, {"base_url": "ftp://x.example"}, {"base_url": "https://x.example/?a=1"},
                {"allowed_hosts": ("https://x.example",)}, {"allowed_hosts": ("x.example:8000",)}, {"allowed_hosts": ("a/b",)}):
        with pytest.raises(SettingsError):
            Settings(index_dir=tmp_path, web_dir=tmp_path, **bad)  # type: ignore[arg-type]
    settings = Settings(index_dir=tmp_path, web_dir=tmp_path, base_url="https://Qa.example.nl/", allowed_hosts=("A.example", "[::2]"))
    assert settings.base_url == "https://Qa.example.nl" and settings.host_names() >= {"qa.example.nl", "a.example", "::2", "localhost"}
    assert Settings.from_dict(settings.to_dict()) == settings  # what a worker process gets


# --- cross-site requests (CSRF) ---------------------------------------------------------------------------

FEEDBACK = b'{"rating": "down", "question": "Wat kost een drone?", "answer": "Niets.", "comment": "via een andere site"}'
WATCH = b'{"question": "Wat kost een drone?"}'
ASK = b'{"question": "Wat kost een drone?"}'
# What a page on another site can send without a CORS preflight: a form (urlencoded, multipart, text/plain),
# or fetch(..., {mode: "no-cors", body: new Blob([json])}), which sends no Content-Type at all.
SIMPLE_TYPES = ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
CROSS_SITE = [{"origin": "https://evil.example"}, {"origin": "null"}, {"origin": f"http://{HOST}.evil.example"},
              {"origin": f"http://{HOST}:8443"}, {"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"},
              {"origin": f"http://{HOST}", "sec-fetch-site": "cross-site"}]


def _stored(client: TestClient) -> tuple[int, int]:
    """Feedback rows and saved questions, to see that a refused request changed nothing."""
    listed = client.get("/api/watches", headers={"authorization": f"Bearer {KEY}"}).json()["watches"]
    return int(client.get("/api/health").json()["feedback"]), len(listed)


@pytest.mark.parametrize("content_type", SIMPLE_TYPES, ids=lambda value: str(value))
@pytest.mark.parametrize(("path", "body"), [("/api/feedback", FEEDBACK), ("/api/watches", WATCH), ("/api/ask", ASK), ("/api/ask/stream", ASK),
                                            ("/api/admin/reload", b"{}")], ids=["feedback", "watches", "ask", "stream", "reload"])
def test_a_json_endpoint_refuses_a_body_a_form_could_send(client: TestClient, path: str, body: bytes, content_type: str | None) -> None:
    """Before: Litestar read any body as JSON, so a form on another site with enctype=text/plain stored feedback (201)."""
    before = _stored(client)
    headers = {"authorization": f"Bearer {KEY}", **({"content-type": content_type} if content_type else {})}
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == 415, (response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("application/json") and "application/json" in response.json()["detail"]
    assert _stored(client) == before


@pytest.mark.parametrize("headers", CROSS_SITE, ids=lambda value: ",".join(f"{k}={v}" for k, v in value.items()))
def test_a_request_from_another_site_changes_nothing(client: TestClient, headers: dict[str, str]) -> None:
    """JSON and all: Origin and Sec-Fetch-Site say where a browser's request comes from."""
    token = client.post("/api/watches", content=WATCH, headers={"content-type": "application/json"}).json()["token"]
    before = _stored(client)
    for method, path, body in (("POST", "/api/feedback", FEEDBACK), ("POST", "/api/watches", WATCH), ("DELETE", f"/api/watches/{token}", b""),
                               ("POST", "/api/ask", ASK), ("POST", "/api/admin/reload", b"")):
        response = client.request(method, path, content=body, headers={**headers, "content-type": "application/json",
                                                                        "authorization": f"Bearer {KEY}"})
        assert response.status_code == 403 and "another site" in response.json()["detail"], (method, path, response.status_code)
    assert _stored(client) == before
    page = client.post("/", data={"question": "Wat kost een drone?"}, headers={**headers, "accept": "text/html"})
    assert page.status_code == 403 and "andere website" in page.text  # the chat form too, in Dutch


def test_the_pages_own_requests_and_other_clients_keep_working(client: TestClient) -> None:
    """The chat form posts urlencoded from this origin; chat.js posts JSON; curl and `qa --url` send no Origin."""
    same = {"origin": f"http://{HOST}", "sec-fetch-site": "same-origin"}
    page = client.post("/", data={"question": "Wat kost een drone?"}, headers={**same, "accept": "text/html"})
    assert page.status_code == 200 and 'class="turn' in page.text
    for headers in (same, {"origin": "http://127.0.0.1:8000", "host": "127.0.0.1:8000"}, {"sec-fetch-site": "none"}, {}):
        stored = client.post("/api/feedback", content=FEEDBACK, headers={**headers, "content-type": "application/json; charset=utf-8"})
        assert stored.status_code == 201, (headers, stored.text)
    made = client.post("/api/watches", content=WATCH, headers={**same, "content-type": "application/json"}).json()
    assert client.delete(f"/api/watches/{made['token']}", headers=same).status_code == 204
    assert client.post("/api/admin/reload", headers={**same, "authorization": f"Bearer {KEY}"}).status_code == 200  # no body, no type


@pytest.mark.parametrize(("typed", "exported"), list(HOSTILE_CELLS.values()), ids=list(HOSTILE_CELLS))
def test_the_jsonl_export_is_lossless_and_sends_no_escape_sequence(typed: str, exported: str) -> None:
    """`qa feedback export --jsonl` wrote C1 controls, DEL and bidi overrides raw (json.dumps escapes only C0)."""
    item = feedback.Feedback("down", typed, typed, typed, citations=(feedback.Cited(1, "kst-1", "kst-1#1", "q"),), created_at="2024-01-01")
    buffer = io.StringIO()
    assert feedback.write_jsonl([item], buffer) == 1
    assert not _UNSAFE.search(buffer.getvalue()), repr(buffer.getvalue())
    record = json.loads(buffer.getvalue())
    assert record["comment"] == record["question"] == record["answer"] == typed  # nothing lost: JSON is data, not a sheet

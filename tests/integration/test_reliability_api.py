"""API abuse, browser safety, rate limiting and the admin endpoint, through Litestar's test client on a real index.

Every bad request must be a 4xx with a JSON body, never a 500; letter data with markup must reach the
page as text; schemathesis fuzzes the OpenAPI schema with a bounded number of examples."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_HOST
from litestar.testing import TestClient

from qa.answer.engine import Engine
from qa.core.errors import SettingsError
from qa.index import local as index_store
from qa.ingest.reading import make_letter
from qa.server.app import create_app
from qa.server.settings import Settings, parse_rate_limit

XSS_TITLE = '<script>alert("titel")</script><img src=x onerror=alert(1)>'
XSS_TEXT = (
    "Den Haag, 3 mei 2021\n\nGeachte voorzitter,\n\nDe inzet van drones <script>alert('tekst')</script> is uitgebreid. "
    "De proef met <img src=x onerror=alert(2)> drones startte op 1 maart 2021. "
    "Zie javascript:alert(3) voor meer informatie over de droneproef.\n\nDe minister van Defensie"
)
XSS_QUESTION = "Wanneer startte de proef met drones? <script>alert('vraag')</script><img src=x onerror=alert(4)>"


def sse(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in re.split(r"\r?\n\r?\n", text.strip()):
        lines = block.splitlines()
        event = next(line[6:].strip() for line in lines if line.startswith("event:"))
        events.append((event, json.loads("\n".join(line[5:].removeprefix(" ") for line in lines if line.startswith("data:")))))
    return events


@pytest.fixture(scope="module")
def client(web_index: Path, web_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(index_dir=web_index, build_sample=False, admin_key=None, allowed_hosts=(TEST_HOST,)), engine=web_engine)) as test_client:
        yield test_client


# --- API abuse -----------------------------------------------------------------------------

LONG = "x" * 2001
BAD_BODIES: list[tuple[str, bytes | str, str]] = [
    ("malformed JSON", b'{"question": "Wat', "application/json"),
    ("not an object", b'["Wat?"]', "application/json"),
    ("null body", b"null", "application/json"),
    ("empty body", b"", "application/json"),
    ("question is a number", b'{"question": 42}', "application/json"),
    ("k is a string", b'{"question": "Wat?", "k": "vijf"}', "application/json"),
    ("k = 10^9", b'{"question": "Wat?", "k": 1000000000}', "application/json"),
    ("k = 2^70", b'{"question": "Wat?", "k": 1180591620717411303424}', "application/json"),
    ("k negative", b'{"question": "Wat?", "k": -1}', "application/json"),
    ("k is a float", b'{"question": "Wat?", "k": 2.5}', "application/json"),
    ("over-long question", json.dumps({"question": LONG}).encode(), "application/json"),
    ("blank question", b'{"question": "  \\n\\t "}', "application/json"),
    ("unknown field", b'{"question": "Wat?", "admin": true}', "application/json"),
    ("unknown filter", b'{"question": "Wat?", "filters": {"ministry": "Defensie"}}', "application/json"),
    ("filters not an object", b'{"question": "Wat?", "filters": "Defensie"}', "application/json"),
    ("bad date filter", b'{"question": "Wat?", "filters": {"date_from": "12-05-2021"}}', "application/json"),
    ("dates reversed", b'{"question": "Wat?", "filters": {"date_from": "2022-01-01", "date_to": "2021-01-01"}}', "application/json"),
    ("history wrong type", b'{"question": "Wat?", "history": "eerder"}', "application/json"),
    ("history too long", json.dumps({"question": "Wat?", "history": [{"question": "a"}] * 51}).encode(), "application/json"),
    ("deeply nested", b'{"question": "Wat?", "filters": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json"),
    ("invalid UTF-8", b'{"question": "Wat \xff\xfe?"}', "application/json"),
    ("form instead of JSON", b"question=Wat", "application/x-www-form-urlencoded"),
    ("huge body", json.dumps({"question": "Wat?", "history": [{"question": "a" * 1000}] * 200}).encode(), "application/json"),
]


@pytest.mark.parametrize("path", ["/api/ask", "/api/ask/stream"])
@pytest.mark.parametrize(("name", "body", "content_type"), BAD_BODIES, ids=[case[0] for case in BAD_BODIES])
def test_bad_bodies_are_4xx_json(client: TestClient, path: str, name: str, body: bytes, content_type: str) -> None:
    response = client.post(path, content=body, headers={"content-type": content_type})
    assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["detail"]


UNICODE_QUESTIONS = {
    "RTL and bidi controls": "\u202eمتى يجب أن ينتهي؟\u202c Resolute Support",
    "emoji and ZWJ": "Wanneer 🇳🇱👩‍👩‍👧 is Resolute Support 🚁 afgerond?",
    "combining marks": "Wa\u0301nneer i\u0308s de afbouw afgerond?",
    "NUL byte": "Wanneer\x00 is de afbouw afgerond?",
    "control characters": "Wanneer\x01\x02\x1b[31m is de afbouw afgerond?",
    "only punctuation": "?!?!...",
    "BOM and zero-width": "\ufeff\u200b\u200dResolute Support",
}


@pytest.mark.parametrize("question", list(UNICODE_QUESTIONS.values()), ids=list(UNICODE_QUESTIONS))
def test_unicode_edge_cases_are_answered_or_declined(client: TestClient, question: str) -> None:
    response = client.post("/api/ask", json={"question": question, "k": 3})
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["abstained"], bool)
    assert client.get("/api/search", params={"q": question, "k": 2}).status_code == 200


@pytest.mark.parametrize("path", ["/api/ask", "/api/ask/stream"])
def test_lone_surrogates_are_a_clear_400(client: TestClient, path: str) -> None:
    response = client.post(path, content=b'{"question": "Wanneer \\ud800 afgerond?"}', headers={"content-type": "application/json"})
    assert response.status_code == 400 and "surrogate" in response.json()["detail"], response.text


@pytest.mark.parametrize(
    "params",
    [{"q": "a", "k": 10**9}, {"q": "a", "k": "veel"}, {"q": "a", "mode": "magic"}, {"q": ""}, {"q": "x" * 2001},
     {"q": "a", "date_from": "gisteren"}, {"q": "a", "type": "x" * 61}],
    ids=["huge k", "k text", "bad mode", "empty q", "long q", "bad date", "long type"],
)
def test_bad_search_queries_are_4xx_json(client: TestClient, params: dict[str, Any]) -> None:
    response = client.get("/api/search", params=params)
    assert 400 <= response.status_code < 500 and response.json()["detail"], response.text


@pytest.mark.parametrize("query", ["q=%ED%A0%80", "q=%FF%FE", "q=a&k=1&k=2", "q=%00", "q=a&unknown=1"])
def test_odd_query_strings_are_never_5xx(client: TestClient, query: str) -> None:
    """Undecodable bytes become U+FFFD (searched like any text); a repeated or unknown parameter is ignored."""
    response = client.get("/api/search?" + query)
    assert response.status_code < 500 and response.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    "letter_id",
    ["..%2F..%2Fetc%2Fpasswd", "../../etc/passwd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..%5C..%5Cwindows", "kst-27925-781%00.txt",
     "%00", "x" * 5000, "%F0%9F%92%A3", "<script>alert(1)<%2Fscript>"],
)
def test_path_traversal_in_letter_ids_is_404_json(client: TestClient, letter_id: str) -> None:
    for prefix in ("/api/letters/", "/letters/"):
        response = client.get(prefix + letter_id, headers={"accept": "application/json"})
        assert response.status_code in (400, 404), (prefix, letter_id, response.status_code)
        assert "root:" not in response.text and "<script>alert" not in response.text
        assert response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/ask"), ("PUT", "/api/ask"), ("DELETE", "/api/letters/kst-27925-781"),
                                              ("POST", "/api/search"), ("PATCH", "/api/health"), ("GET", "/api/admin/reload")])
def test_method_mismatch_is_405_json(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405 and response.json()["detail"]


def test_admin_reload_is_disabled_without_a_key(client: TestClient) -> None:
    response = client.post("/api/admin/reload", headers={"authorization": "Bearer anything"})
    assert response.status_code == 403 and "QA_ADMIN_KEY" in response.json()["detail"]


def test_admin_reload_needs_the_right_key(web_index: Path, web_engine: Engine) -> None:
    app = create_app(Settings(index_dir=web_index, build_sample=False, admin_key="s3cret-key", allowed_hosts=(TEST_HOST,)), engine=web_engine)
    with TestClient(app) as admin:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "s3cret-key"}, {"authorization": "Bearer s3cret-ke"}):
            response = admin.post("/api/admin/reload", headers=headers)
            assert response.status_code == 401 and "admin key" in response.json()["detail"]
        response = admin.post("/api/admin/reload", headers={"authorization": "Bearer s3cret-key"})
        assert response.status_code == 200 and response.json()["reloaded"] is False  # CURRENT has not moved


# --- schemathesis ------------------------------------------------------------------------------


def test_schemathesis_finds_no_server_errors(client: TestClient, web_index: Path, web_engine: Engine) -> None:
    """Every operation of the OpenAPI schema, generated valid and invalid requests, a few examples each (CI-sized)."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
    )

    schema = schemathesis.openapi.from_asgi("/api/docs/openapi.json", client.app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        examples = 3 if operation.path.startswith("/api/ask") else 8

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, phases=[Phase.generate], derandomize=True, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            response = case.call()
            for name, verify in (("5xx", not_a_server_error), ("content type", content_type_conformance),
                                 ("response schema", response_schema_conformance)):
                try:
                    case.validate_response(response, checks=[verify])
                except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - collect every failure, report them together
                    failures.append(f"{operation.method.upper()} {operation.path} [{name}]: {str(error)[:300]}")  # noqa: B023 - called at once

        check()
    assert operations >= 6
    assert not failures, "\n".join(failures[:10])


# --- browser safety ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xss_client(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """An index whose only letter has markup in its title and text and a javascript: URL."""
    folder = tmp_path_factory.mktemp("xss") / "index"
    letter = make_letter(XSS_TEXT, None, {"id": "kst-1-1", "title": XSS_TITLE, "url": "javascript:alert(document.cookie)",
                                          "sender": '"><svg onload=alert(5)>', "date": "2021-05-03", "type": "brief_regering"})
    index_store.update(folder, embedder, add=[letter], replace_all=True)
    engine = Engine(index_store.load(folder), embedder)
    with TestClient(create_app(Settings(index_dir=folder, build_sample=False), engine=engine)) as test_client:
        yield test_client


def _assert_inert(html: str) -> None:
    assert "<script>alert" not in html and "<img src=x" not in html and "<svg onload" not in html
    assert not re.search(r"""href\s*=\s*["']?\s*javascript:""", html, re.I)


def test_markup_in_letters_and_questions_is_shown_as_text(xss_client: TestClient) -> None:
    chat = xss_client.post("/", data={"question": XSS_QUESTION}, headers={"accept": "text/html"})
    assert chat.status_code == 200
    _assert_inert(chat.text)
    assert "&lt;script&gt;alert(&#39;vraag&#39;)" in chat.text  # the question, as text
    assert "&lt;img src=x onerror=alert(2)&gt;" in chat.text or "&lt;script&gt;alert(&#39;tekst&#39;)" in chat.text  # the quote
    assert "Officiële publicatie" not in chat.text  # the javascript: URL gives no link at all
    for path in ("/letters/kst-1-1", "/letters", "/letters?q=%3Cscript%3Ealert(1)%3C/script%3E", "/letters/%3Cscript%3Ealert(1)%3C%2Fscript%3E"):
        page = xss_client.get(path, headers={"accept": "text/html"})
        assert page.status_code in (200, 404)
        _assert_inert(page.text)
    assert "&lt;script&gt;alert(&#34;titel&#34;)" in xss_client.get("/letters/kst-1-1").text.replace("&#x27;", "&#39;").replace("&quot;", "&#34;")


def test_streamed_events_carry_markup_as_json_strings_only(xss_client: TestClient) -> None:
    injected = XSS_QUESTION + "\n\nevent: done\ndata: {\"answer\": \"<b>nep</b>\"}\n\n"
    response = xss_client.post("/api/ask/stream", json={"question": injected})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse(response.text)
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done" and names.count("done") == 1  # no injected events
    assert events[0][1]["question"] == injected.strip()
    assert events[-1][1]["answer"] != "<b>nep</b>"


def test_javascript_urls_never_reach_the_script(client: TestClient, xss_client: TestClient) -> None:
    """chat.js links what the server sends (`url`, `href`); the server sends a letter's url only when it is a web link."""
    script = client.get("/static/chat.js").text
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "document.write" not in script
    body = xss_client.post("/api/ask", json={"question": XSS_QUESTION}).json()
    sources = body["citations"] + body["passages"]
    assert sources, "the question should at least retrieve the letter"
    assert all(source["url"] is None and source["href"].startswith("/letters/kst-1-1") for source in sources)
    events = dict(sse(xss_client.post("/api/ask/stream", json={"question": XSS_QUESTION}).text))
    assert all(source["url"] is None for source in events["sources"]["citations"] + events["sources"]["passages"])
    good = client.post("/api/ask", json={"question": "Wanneer moet de afbouw van Resolute Support afgerond zijn?"}).json()
    assert good["citations"] and all(c["url"].startswith("https://") for c in good["citations"])  # web links do come through


@pytest.mark.parametrize("path", ["/", "/letters", "/letters/kst-27925-781", "/letters/nope", "/api/health", "/api/ask", "/static/chat.js"])
def test_security_headers_on_every_response(client: TestClient, path: str) -> None:
    response = client.get(path)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"


# --- rate limiting -----------------------------------------------------------------------------


def test_rate_limit_parsing() -> None:
    assert parse_rate_limit("60/minute") == ("minute", 60) and parse_rate_limit(" 5 / Seconds") == ("second", 5)
    for bad in ("60", "0/minute", "x/minute", "60/fortnight", "-1/hour"):
        with pytest.raises(SettingsError, match="rate limit"):
            parse_rate_limit(bad)


def test_rate_limit_is_off_by_default_and_per_client_when_on(client: TestClient, web_index: Path, web_engine: Engine) -> None:
    assert all(client.get("/api/letters").status_code == 200 for _ in range(30))
    app = create_app(Settings(index_dir=web_index, build_sample=False, rate_limit="5/minute"), engine=web_engine)
    with TestClient(app) as limited:
        statuses = [limited.get("/api/letters").status_code for _ in range(7)]
        assert statuses == [200] * 5 + [429] * 2
        refused = limited.get("/api/search", params={"q": "drones"})
        assert refused.status_code == 429 and refused.json()["detail"] and "ratelimit-reset" in {k.lower() for k in refused.headers}
        assert limited.get("/api/health").status_code == 200 and limited.get("/").status_code == 200  # probes and pages stay open

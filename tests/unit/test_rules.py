"""One rule, one answer: the same bad input is refused for the same reason by the API, the pages and the CLI."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from qa.answer.engine import Engine
from qa.answer.retrieval import Filters
from qa.cli import main
from qa.core import display, limits
from qa.core.errors import InvalidQuery
from qa.server.app import create_app
from qa.server.pages.rendering import dutch_message
from qa.server.settings import Settings

GOOD = "Wanneer moet de afbouw van Resolute Support afgerond zijn?"

# (question, filters) -> the rule it breaks
CASES: list[tuple[str, dict[str, str], str]] = [
    ("   ", {}, "question_empty"),
    ("x" * (limits.MAX_QUESTION + 1), {}, "question_too_long"),
    (GOOD, {"date_from": "2022-01-01", "date_to": "2021-01-01"}, "dates_reversed"),
    (GOOD, {"date_from": "2021-13-01"}, "not_a_date"),
    (GOOD, {"date_to": "gisteren"}, "not_a_date"),
    (GOOD, {"type": "brief"}, "unknown_type"),
]
CLI_OPTIONS = {"date_from": "--from", "date_to": "--to", "type": "--type"}


def core_error(question: str, filters: dict[str, str]) -> InvalidQuery:
    """What the core rules say about this input."""
    with pytest.raises(InvalidQuery) as caught:
        limits.check_question(question)
        Filters.parse(filters.get("date_from"), filters.get("date_to"), None, None, filters.get("type"))
    return caught.value


@pytest.fixture(scope="module")
def client(fast_index_dir: Path, fast_engine: Engine) -> Iterator[TestClient]:
    """The rules are the same whatever the model: the fast tier's deterministic embedder is enough."""
    with TestClient(create_app(Settings(index_dir=fast_index_dir, build_sample=False), engine=fast_engine)) as test_client:
        yield test_client


@pytest.mark.parametrize(("question", "filters", "code"), CASES, ids=[f"{c}-{i}" for i, (_, _, c) in enumerate(CASES)])
def test_the_same_bad_input_gets_the_same_answer_everywhere(
    client: TestClient, tmp_path: Path, question: str, filters: dict[str, str], code: str
) -> None:
    error = core_error(question, filters)
    assert error.code == code
    message = str(error)

    for path in ("/api/ask", "/api/ask/stream"):
        api = client.post(path, json={"question": question, "filters": filters})
        assert api.status_code == 400 and api.json()["code"] == code, api.text
        assert message in api.json()["detail"]  # "filters." in front of a filter's message

    search = client.get("/api/search", params={"q": question, **filters})
    assert search.status_code == 400 and search.json()["code"] == code, search.text

    page = client.post("/", data={"question": question, **filters}, headers={"accept": "text/html"})
    assert page.status_code == 400 and dutch_message(error) in html.unescape(page.text)

    options = [value for name, value in filters.items() for value in (CLI_OPTIONS[name], value)]
    for command in ("ask", "search"):
        result = CliRunner().invoke(main, [command, question, *options, "--index", str(tmp_path / "none")])
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        expected = message.replace("question", "query") if command == "search" else message
        assert lines == [f"Error: {expected}"]


@pytest.mark.parametrize(("filters", "code"), [(c[1], c[2]) for c in CASES if c[1]])
def test_the_letters_api_and_page_refuse_bad_filters_alike(client: TestClient, filters: dict[str, str], code: str) -> None:
    api = client.get("/api/letters", params=filters)
    assert api.status_code == 400 and api.json()["code"] == code
    page = client.get("/letters", params=filters, headers={"accept": "text/html"})
    assert page.status_code == 400 and dutch_message(core_error(GOOD, filters)) in html.unescape(page.text)


def test_limits_are_the_same_in_every_shell(client: TestClient, tmp_path: Path) -> None:
    assert client.post("/api/ask", json={"question": GOOD, "k": limits.MAX_K + 1}).status_code == 400
    assert client.get("/api/search", params={"q": GOOD, "k": limits.MAX_K + 1}).status_code == 400
    for command in ("ask", "search"):
        result = CliRunner().invoke(main, [command, GOOD, "-k", str(limits.MAX_K + 1), "--index", str(tmp_path)])
        assert result.exit_code == 2 and str(limits.MAX_K) in result.stderr
    turns: list[dict[str, Any]] = [{"question": "Wat?", "answer": ""}] * (limits.MAX_HISTORY_TURNS + 1)
    assert client.post("/api/ask", json={"question": GOOD, "history": turns}).status_code == 400
    schema = client.get("/api/docs/openapi.json").json()["components"]["schemas"]["AskIn"]["properties"]
    assert schema["history"]["maxItems"] == limits.MAX_HISTORY_TURNS and schema["question"]["maxLength"] == limits.MAX_QUESTION
    chat = client.get("/").text
    assert f'maxlength="{limits.MAX_QUESTION}"' in chat and f'data-history-turns="{limits.MAX_HISTORY_TURNS}"' in chat


def test_dutch_dates_use_the_one_list_of_month_names() -> None:
    from qa.ingest.metadata import parse_dutch_date

    for number, name in enumerate(display.MONTH_NAMES, start=1):
        iso = f"2021-{number:02d}-07"
        assert display.dutch_date(iso) == f"7 {name} 2021" and parse_dutch_date(f"Den Haag, 7 {name} 2021") == iso

"""Docs that stay true: the CLI reference is what --help says, and every command, environment
variable and API field is documented (fails when one is added without its line in the docs)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from docs.make_cli_reference import TARGET, commands, reference
from qa.answer.engine import Engine
from qa.cli import main
from qa.server.app import create_app
from qa.server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
API_DOC = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")


def test_the_cli_reference_is_what_help_says() -> None:
    assert TARGET.read_text(encoding="utf-8") == reference(), "docs/cli.md is stale: run python docs/make_cli_reference.py"


def test_every_command_has_its_section() -> None:
    documented = set(re.findall(r"^## `(qa[^`]*)`$", TARGET.read_text(encoding="utf-8"), re.M))
    assert {" ".join(path) for path, _ in commands(main, ["qa"])} == documented
    assert len(documented) >= 15  # qa, index build/add/remove/info, search, ask, eval, serve, model ..., fetch, update


def environment_variables() -> set[str]:
    """Every QA_* name the package reads (string literals, click's envvar= included)."""
    found: set[str] = set()
    for path in (ROOT / "qa").rglob("*.py"):
        found |= set(re.findall(r"[\"'](QA_[A-Z_]+)[\"']", path.read_text(encoding="utf-8")))
    return found


def test_every_environment_variable_is_in_the_readme_table() -> None:
    names = environment_variables()
    assert {"QA_INDEX", "QA_MODEL", "QA_CACHE_DIR", "QA_WEB_DIR", "QA_FETCH_RATE", "QA_ADMIN_KEY"} <= names
    rows = set(re.findall(r"^\| `(QA_[A-Z_]+)` \|", README, re.M))
    assert names <= rows, f"undocumented: {sorted(names - rows)} (README, 'Environment variables')"


@pytest.fixture(scope="module")
def schema(fast_index_dir: Path, fast_engine: Engine) -> Iterator[dict[str, Any]]:
    with TestClient(create_app(Settings(index_dir=fast_index_dir, build_sample=False), engine=fast_engine)) as client:
        yield client.get("/api/docs/openapi.json").json()


def section(name: str) -> str:
    match = re.search(rf"^### {name}\n(.*?)(?=^##)", API_DOC + "\n##", re.M | re.S)
    assert match, f"docs/api.md has no section ### {name}"
    return match.group(1)


def test_every_api_field_is_documented(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    assert {"AskIn", "AskOut", "CitationOut", "PassageOut", "LetterOut", "Health", "ReloadOut"} <= set(components)
    missing = [
        f"{name}.{field}"
        for name, component in components.items()
        for field in component.get("properties", {})
        if f"| `{field}` |" not in section(name)
    ]
    assert not missing, f"fields missing from docs/api.md: {missing}"


def test_every_query_parameter_and_endpoint_is_documented(schema: dict[str, Any]) -> None:
    for path, operations in schema["paths"].items():
        assert f"`{path.replace('{letter_id}', '{id}')}" in README or path in API_DOC or path in README, path
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                assert f"`{parameter['name']}`" in API_DOC, (path, parameter["name"])


def test_the_quick_start_installs_the_pinned_torch_and_says_where_the_cpu_build_is() -> None:
    """The CPU-only line installs the version constraints.txt pins, from PyTorch's CPU index, and what it
    installs (2.13.0+cpu) satisfies the pin, so the project's install keeps it (issue 14, item 15)."""
    from packaging.specifiers import SpecifierSet

    pin = next(line for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines() if line.startswith("torch"))
    version = pin.split("==")[1].strip()
    quick_start = README.split("## Quick start")[1].split("## Using it")[0]
    cpu_line = f"pip install torch=={version} --index-url https://download.pytorch.org/whl/cpu && pip install -c constraints.txt -e . && qa serve"
    assert cpu_line in quick_start, "the CPU-only install line must install the pinned torch"
    assert f"{version}+cpu" in SpecifierSet(f"=={version}")
    assert f"`torch=={version}` resolves to the CUDA build" in quick_start
    assert "pins the CPU build" not in README


def test_the_first_start_counts_the_sample_letters_it_embeds() -> None:
    """The first-start note names the number of bundled letters qa serve embeds (issue 14, item 16)."""
    from qa.core.settings import SAMPLE_CORPUS
    from qa.ingest.reading import read_letters

    quick_start = README.split("## Quick start")[1].split("## Using it")[0]
    assert f"builds the index of the {len(read_letters([SAMPLE_CORPUS]).letters)} sample\nletters" in quick_start
    assert "about a\nminute" not in quick_start and "about 4 minutes altogether" in quick_start


def architecture_modules() -> set[str]:
    """The files docs/architecture.md's layer table names: `qa/...` as written, anything else inside the row's package."""
    named: set[str] = set()
    for row in (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8").splitlines():
        cells = row.split(" | ")
        if not row.startswith("| ") or len(cells) < 3 or not cells[1].startswith("`qa"):
            continue
        package = cells[1].strip("`") if cells[1].count("`") == 2 and cells[1].endswith("/`") else ""
        for name in re.findall(r"`([\w/.]+\.(?:py|json))`", row):
            named.add(name if name.startswith("qa/") else package + name)
    return named


def test_the_architecture_names_every_module_of_the_tree_and_nothing_else() -> None:
    named = architecture_modules()
    tree = {str(path.relative_to(ROOT)) for path in (ROOT / "qa").rglob("*.py")} | {"qa/answer/reader_model.json"}
    assert not named - tree, f"docs/architecture.md names files that do not exist: {sorted(named - tree)}"
    assert not tree - named, f"docs/architecture.md does not name: {sorted(tree - named)}"

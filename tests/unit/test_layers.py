"""Imports go one way: the core never imports the web layer or the CLI, and nothing in qa/ imports in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "qa"
SHELLS = ("qa.server", "qa.cli", "qa.__main__")


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(tree: ast.AST, module: str) -> set[str]:
    """What a module's code names as imported: import statements at any depth (deferred ones inside functions too,
    relative ones resolved), and any string that spells a qa module (`importlib.import_module("qa.index.milvus")`,
    the CLI's `_Deferred("qa.index.local")`): a dynamic import is an import."""
    package = module.split(".")
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + (1 if module in PACKAGES else 0)] + ([base] if base else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("qa."):
            found.add(node.value)
    return found


PACKAGES = {_module(path) for path in PACKAGE.rglob("__init__.py")}


def import_graph() -> dict[str, set[str]]:
    """Every qa module and the qa modules it imports."""
    modules = {_module(path): path for path in PACKAGE.rglob("*.py")}
    return {name: {target for target in imported_names(ast.parse(path.read_text(encoding="utf-8")), name) if target in modules and target != name}
            for name, path in modules.items()}


def test_dynamic_and_deferred_imports_count() -> None:
    source = "import importlib\ndef f():\n    from qa.index import local\n    return importlib.import_module('qa.index.milvus')\n"
    assert {"qa.index.local", "qa.index.milvus"} <= imported_names(ast.parse(source), "qa.index.stores")
    assert "qa.index.milvus" in import_graph()["qa.index.stores"]
    assert "qa.index.local" in import_graph()["qa.cli.common"]  # through _Deferred("qa.index.local")


def test_the_graph_sees_the_packages_modules() -> None:
    graph = import_graph()
    assert {"qa.answer.engine", "qa.server.app", "qa.server.api", "qa.cli"} <= graph.keys()
    assert "qa.server.api" in graph["qa.server.app"] and "qa.answer.engine" in graph["qa.bootstrap"]


def test_the_core_never_imports_the_web_layer_or_the_cli() -> None:
    for module, imports in import_graph().items():
        if not module.startswith(SHELLS):
            assert not {target for target in imports if target.startswith(SHELLS)}, module


def test_the_web_layer_does_not_import_the_cli() -> None:
    for module, imports in import_graph().items():
        if module.startswith("qa.server"):
            assert "qa.cli" not in imports, module


def test_no_import_cycle() -> None:
    graph = import_graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


# The package's order, bottom to top (docs/architecture.md): a module imports from its own layer (without a cycle) and
# the layers below it, never from one above.
LAYERS = [
    ("qa",),  # the version
    ("qa.core",),  # errors, limits, settings, locks, progress, display
    ("qa.ingest",),  # the letter model, metadata, formats, reading, cleaning, chunking, sources
    ("qa.embed",),  # the embedding model and its backends, batches, Ray
    ("qa.index",),  # filters, BM25, FAISS, fusion, generations, the local and Milvus stores
    ("qa.answer",),  # retrieval, the reader, extractive and generated answers, the engine, Kamervragen
    ("qa.users",),  # the user database, feedback, saved questions
    ("qa.schemas", "qa.bootstrap", "qa.services"),  # what both shells share
    ("qa.server",),  # the web shell
    ("qa.cli", "qa.__main__"),  # the terminal shell (`qa serve` starts the web shell)
]


def layer_of(module: str) -> int:
    matches = [depth for depth, prefixes in enumerate(LAYERS) for prefix in prefixes if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} has no layer in LAYERS"
    return max(matches)


def test_every_module_imports_its_own_layer_or_below() -> None:
    wrong = [f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
             for module, imports in import_graph().items() for target in imports if layer_of(target) > layer_of(module)]
    assert not wrong, "\n".join(wrong)


# The web layer's own order, top to bottom: a module imports only from layers below its own.
WEB_LAYERS = [
    {"qa.server.serve"},  # uvicorn, one process or N workers
    {"qa.server.app"},  # the factory
    {"qa.server.api", "qa.server.pages"},  # each shell's list of controllers
    {"qa.server.api.ask", "qa.server.api.letters", "qa.server.api.kamervragen", "qa.server.api.feedback", "qa.server.api.watches",
     "qa.server.api.health", "qa.server.api.admin"},  # the API's controllers, one per resource
    {"qa.server.pages.chat", "qa.server.pages.search", "qa.server.pages.letters", "qa.server.pages.kamervragen",
     "qa.server.pages.watches"},  # the page controllers, one per kind of page
    {"qa.server.pages.history"},  # the no-JS chat's hidden conversation
    {"qa.server.pages.turns"},  # a chat turn's state and view
    {"qa.server.pages.filters"},  # the list pages' filters, chips, facets and orders
    {"qa.server.pages.rendering", "qa.server.pages.highlight"},  # Jinja, messages and links; marked text
    {"qa.server.api.fields", "qa.server.api.userdata"},  # what the API's requests share; the users' database per request
    {"qa.server.reloader", "qa.server.errors", "qa.server.openapi"},
    {"qa.server.service", "qa.server.security"},
    {"qa.server.settings"},
]


def test_the_web_layer_imports_downwards_only() -> None:
    graph = import_graph()
    assert set().union(*WEB_LAYERS) == {module for module in graph if module.startswith("qa.server.")}, "a new module needs its layer"
    for depth, layer in enumerate(WEB_LAYERS):
        not_below = set().union(*WEB_LAYERS[: depth + 1])
        for module in layer:
            wrong = graph[module] & not_below
            assert not wrong, f"{module} imports {wrong}, which is not below it"


MAX_LINES = 400  # a module longer than this mixes concerns (issue 26); the exception says so in its docstring


def test_no_module_is_over_400_lines_unless_its_docstring_says_why() -> None:
    long = [f"{path.relative_to(PACKAGE.parent)}: {lines} lines" for path in PACKAGE.rglob("*.py")
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
            and "over 400 lines" not in (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "")]
    assert not long, long

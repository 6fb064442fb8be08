"""Imports go one way: the core never imports the web layer or the CLI, and nothing in qa/ imports in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "qa"
SHELLS = ("qa.server", "qa.cli", "qa.__main__")


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every qa module and the qa modules it imports (at any depth in the file, deferred imports too)."""
    modules = {_module(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            found |= {target for target in targets if target in modules and target != name}
        graph[name] = found
    return graph


def test_the_graph_sees_the_packages_modules() -> None:
    graph = import_graph()
    assert {"qa.engine", "qa.server.app", "qa.server.api", "qa.cli"} <= graph.keys()
    assert "qa.server.api" in graph["qa.server.app"] and "qa.engine" in graph["qa.bootstrap"]


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


# The web layer's own order, top to bottom: a module imports only from layers below its own.
WEB_LAYERS = [
    {"qa.server.serve"},  # uvicorn, one process or N workers
    {"qa.server.app"},  # the factory
    {"qa.server.api", "qa.server.pages"},  # controllers
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

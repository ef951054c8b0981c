"""The package's modules depend on each other one way only: read from the source, not assumed.

Every ``import`` of a package module counts, at module level or inside a function (a lazy
import is still a dependency); only imports under ``if TYPE_CHECKING:`` are left out, since
they never run. The layers, from the bottom:
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "openapi_client"

LAYERS: list[tuple[str, ...]] = [
    ("exceptions", "_version", "_fork"),
    ("_redaction",),
    ("validation", "retries", "_logs", "_html"),
    ("_connections",),
    ("transport",),
    ("rest",),
    ("_settings", "configuration"),
    ("models",),
    ("endpoint", "api_response"),
    ("_requests", "_responses", "_state", "_generated"),
    ("api_client",),
    ("api",),
    ("recorder",),
    ("testing", "cli", "__main__", "__init__"),
]
"""A module may import from its own layer (no cycle allowed there either) and the layers below."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts)


def layer_of(module: str) -> int:
    head = module.split(".")[0]
    for index, names in enumerate(LAYERS):
        if head in names or module in names:
            return index
    raise AssertionError(f"openapi_client.{module} is in no layer: add it to LAYERS")


def _imports(tree: ast.AST, module: str) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("openapi_client"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = ["openapi_client", *module.split(".")[: -node.level]]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("openapi_client"):
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def dependency_graph() -> dict[str, set[str]]:
    """``module -> package modules it imports`` (names without the ``openapi_client.`` prefix)."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = {name.removesuffix(".__init__") or "__init__" for name in paths}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        own = name.removesuffix(".__init__") or "__init__"
        targets = set()
        for imported in _imports(ast.parse(path.read_text()), own):
            candidate = imported.removeprefix("openapi_client").lstrip(".")
            while candidate and candidate not in modules:  # `from pkg import name`: the module
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != own:
                targets.add(candidate)
        graph[own] = targets
    return graph


def test_every_module_has_a_layer() -> None:
    """A new module must be placed in a layer (this test then checks its imports)."""
    for module in dependency_graph():
        layer_of(module)


def test_no_module_imports_from_a_layer_above() -> None:
    """Dependencies point down: exceptions at the bottom, the API classes and tools on top."""
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in dependency_graph().items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_there_is_no_import_cycle() -> None:
    """Not even inside a layer, and not through a function-level import."""
    graph = dependency_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[str] = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                walk(target, [*path, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert cycles == []


@pytest.mark.parametrize("module", ["exceptions", "_redaction"])
def test_the_bottom_imports_nothing_of_the_package(module: str) -> None:
    """The exception tree and the redaction rules stand on their own."""
    assert dependency_graph()[module] == set()

"""No import cycle in `canopy/`: the modules form layers a newcomer can read bottom-up.

The test reads the source with `ast` (nothing is imported). Every `import canopy...` and
`from canopy... import ...` counts, inside functions too, except under `if TYPE_CHECKING:`
(annotations only, never executed); an import of a package's name (`from canopy.realtime import
frames`) counts as an import of that module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import canopy

PACKAGE_DIR = Path(canopy.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = ["canopy", *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(tree: ast.AST, modules: set[str]) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in modules:
                    found.add(submodule)
                elif node.module in modules:
                    found.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}
    modules = set(paths)
    return {name: _imported(ast.parse(path.read_text(), str(path)), modules) - {name} for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path (first module repeated at the end), or None."""
    done: set[str] = set()
    stack: list[str] = []
    on_stack: set[str] = set()

    def walk(module: str) -> list[str] | None:
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph.get(module, ())):
            if target in on_stack:
                return [*stack[stack.index(target) :], target]
            if target not in done and (cycle := walk(target)) is not None:
                return cycle
        on_stack.discard(stack.pop())
        done.add(module)
        return None

    for module in sorted(graph):
        if module not in done and (cycle := walk(module)) is not None:
            return cycle
    return None


def test_canopy_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "canopy.realtime.session" in graph and "canopy.realtime.turns" in graph["canopy.realtime.session"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_under_type_checking_do_not_count() -> None:
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from canopy import a\nfrom canopy import b\n"
    assert _imported(ast.parse(source), {"canopy.a", "canopy.b"}) == {"canopy.b"}


def test_turns_do_not_know_the_session() -> None:
    # A turn reaches its session only through the TurnHost protocol.
    assert "canopy.realtime.session" not in import_graph()["canopy.realtime.turns"]

"""The `laws` package's folders are its architecture: each layer imports only layers below it
(units / errors / parallel, then runs, fit, analysis, present, cli), no package imports in a
cycle, and no module grows past the size one reader can hold (docs/laws.md, "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "laws"
LAYERS = ["", "runs", "fit", "analysis", "present", "cli"]  # "": the modules at the top of laws/
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 2 and parts[1] in LAYERS else 0


def laws_imports(path: Path) -> set[str]:
    """The laws modules a file imports at run time (TYPE_CHECKING blocks included: a type
    from above is still a dependency on it)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("laws"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # `from laws.x import y`
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("laws"))
    return found


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}
ENTRY = {"laws", "laws.__main__"}  # the package's face: may import from every layer


@pytest.mark.parametrize("module", sorted(set(MODULES) - ENTRY))
def test_imports_go_only_downward(module: str) -> None:
    upward = [
        target
        for target in laws_imports(MODULES[module])
        if target in MODULES and layer(target) > layer(module)
    ]
    assert not upward, f"{module} (layer {LAYERS[layer(module)]!r}) imports from above: {upward}"


def test_no_import_cycles() -> None:
    graph = {m: {t for t in laws_imports(p) if t in MODULES and t != m} for m, p in MODULES.items()}
    graph = {m: targets - {"laws"} for m, targets in graph.items()}  # the package face re-exports
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                raise AssertionError(" -> ".join([*path, node, target]))
            if target not in state:
                visit(target, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_modules_stay_readable() -> None:
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"

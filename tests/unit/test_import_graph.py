"""The packages' import graph: no cycles, and isobuild's stages only import down the pipeline."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# isobuild's layers, lowest first: a module may import its own layer and any layer below.
# Top-level modules (errors, run, ...) and config/ are the base; commands/ and cli the top.
ISOBUILD_LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"", "config"}),
    frozenset({"iso", "artifacts"}),
    frozenset({"installer", "release"}),
    frozenset({"standin", "boot", "flash"}),
    frozenset({"build"}),
    frozenset({"commands"}),
    frozenset({"cli"}),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, package: str, modules: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every module of ``package`` that ``path`` imports, wherever the import statement is.

    ``from pkg import mod`` imports ``pkg.mod`` when that is one of ``modules``, else
    ``pkg`` itself; a package's ``__init__`` running before its modules is no edge.
    """
    me = module_name(path)
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = me.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            names = [
                f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in modules else stem
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            if name == package or name.startswith(package + "."):
                yield name


def graph(package: str) -> dict[str, set[str]]:
    files = sorted((ROOT / package).rglob("*.py"))
    modules = frozenset(module_name(p) for p in files)
    return {
        module_name(path): {
            name
            for name in imports_of(path, package, modules)
            if name in modules and name != module_name(path)
        }
        for path in files
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def stage_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return ""
    if len(parts) == 2 and parts[1] == "cli":
        return "cli"
    if len(parts) == 2 and not (ROOT / "isobuild" / parts[1]).is_dir():
        return ""
    return parts[1]


def layer(module: str) -> int:
    stage = stage_of(module)
    for rank, stages in enumerate(ISOBUILD_LAYERS):
        if stage in stages:
            return rank
    raise AssertionError(f"{module}: stage {stage!r} is in no layer of ISOBUILD_LAYERS")


@pytest.mark.parametrize("package", ["isobuild", "host_service"])
def test_no_import_cycles(package: str) -> None:
    assert cycles(graph(package)) == []


def test_isobuild_imports_point_down_the_stages() -> None:
    upward = [
        f"{src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})"
        for src, targets in graph("isobuild").items()
        for dst in targets
        if layer(dst) > layer(src)
    ]
    assert upward == []


def test_host_service_never_imports_the_builder() -> None:
    # The service ships alone onto the appliance: isobuild is not there.
    for path in sorted((ROOT / "host_service").rglob("*.py")):
        assert list(imports_of(path, "isobuild")) == [], path


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_graph_resolves_relative_and_from_imports(tmp_path: Path) -> None:
    # The resolver on this repository: build.steps imports the payload planner by name.
    assert "isobuild.installer.payload" in graph("isobuild")["isobuild.build.steps"]
    assert "isobuild.build.pipeline" in graph("isobuild")["isobuild.build"]

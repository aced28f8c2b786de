"""The package's imports point down only, and nothing imports in a cycle.

Layers, lowest first (a module may import its own layer or any below it):

0. leaves: ``_validation``, ``_typing``, ``_progress``, ``_colors``, ``_plot``, ``_sample``,
   ``_optional``, ``_lazy``, ``_version``
1. ``kernels`` (summarise one batch) and ``io`` (files)
2. ``engine`` (one algorithm over summaries)
3. ``drivers`` (arrays, streaming, dask) and ``regions``
4. the public API's modules: ``filter``, ``rank``, ``summary``, ``evaluate``
5. ``report``, ``export`` and ``integrations``
6. ``cli``, ``__main__``, ``_audit`` (the public ``LabelAudit`` writes the scan's
   outputs) and the facade ``segaudit`` itself, which names every public object

Every import counts, including those inside functions.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = {
    "segaudit._validation": 0,
    "segaudit._typing": 0,
    "segaudit._progress": 0,
    "segaudit._colors": 0,
    "segaudit._plot": 0,
    "segaudit._sample": 0,
    "segaudit._optional": 0,
    "segaudit._lazy": 0,
    "segaudit._version": 0,
    "segaudit.kernels": 1,
    "segaudit.io": 1,
    "segaudit.engine": 2,
    "segaudit.drivers": 3,
    "segaudit.regions": 3,
    "segaudit": 6,
    "segaudit.filter": 4,
    "segaudit.rank": 4,
    "segaudit.summary": 4,
    "segaudit.evaluate": 4,
    "segaudit.report": 5,
    "segaudit.export": 5,
    "segaudit.integrations": 5,
    "segaudit.cli": 6,
    "segaudit._audit": 6,
    "segaudit.__main__": 6,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "segaudit").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _unit(module: str) -> str:
    """The layer unit a module belongs to: its sub-package, or itself at the top."""
    parts = module.split(".")
    if len(parts) >= 2 and f"segaudit.{parts[1]}" in LAYERS:
        return f"segaudit.{parts[1]}"
    return module


def _imports(module: str) -> set[str]:
    """segaudit modules that `module` imports (``from pkg import sub`` resolves to the sub)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "segaudit"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "segaudit":
                continue
            subs = {f"{node.module}.{a.name}" for a in node.names}
            found |= (subs & MODULES.keys()) or {node.module}
    found.discard(module)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def test_every_module_has_a_layer() -> None:
    missing = sorted(m for m in MODULES if _unit(m) not in LAYERS)
    assert not missing, f"add these modules to LAYERS: {missing}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    mine = LAYERS[_unit(module)]
    up = sorted(d for d in GRAPH[module] if LAYERS[_unit(d)] > mine)
    assert not up, f"{module} (layer {mine}) imports upwards: {up}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_cycles() -> None:
    assert _cycles(GRAPH) == []


def test_no_package_cycles() -> None:
    units: dict[str, set[str]] = defaultdict(set)
    for module, deps in GRAPH.items():
        units[_unit(module)] |= {_unit(d) for d in deps} - {_unit(module)}
    units.pop("segaudit", None)  # the public namespace re-exports; it is imported by nothing below
    assert _cycles(dict(units)) == []


def test_the_checker_sees_an_upward_import() -> None:
    """The rule can fail: a kernel importing a driver would be caught."""
    assert LAYERS[_unit("segaudit.kernels._numba")] < LAYERS[_unit("segaudit.drivers._stream")]
    assert _cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]

"""One-way layers (issue 16): the import graph of attacks/, bench/ and models_zoo/ has no cycle, and no module
imports a module of a higher layer, including imports inside functions and relative imports.

The order, lowest first (docs/architecture.md explains each layer):

    infra < snn < attacks < models_zoo < engine < report < apps

A module may import any module of its own layer or a lower one. The report layer also never imports the
engine, the attacks or the SNN layer: rendering is a pure function of stored results and model cards and
never runs a model. Imports under ``if TYPE_CHECKING:`` are left out: they never execute (annotations only).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("attacks", "bench", "models_zoo")
ORDER = ("infra", "snn", "attacks", "models_zoo", "engine", "report", "apps")

LAYERS: dict[str, tuple[str, ...]] = {
    "infra": (
        "bench.errors", "bench.io", "bench.limits", "bench.config_schema", "bench.config", "bench.device",
        "bench.data", "bench.version", "bench.provenance", "bench.store", "bench.registry", "bench.stats",
    ),
    "snn": (
        "attacks.surrogates", "attacks.temporal_rules", "attacks.backward_rules", "bench.neurons", "bench.fused_neuron",
        "bench.adapter", "bench.phase_encoder", "bench.spike_domain", "models_zoo.neurons_dlif",
    ),
    "attacks": (
        "attacks", "attacks.base", "attacks.algorithms", "attacks.gauntlet_attacks", "attacks.paper_attacks",
        "attacks.transfer", "attacks.bpda", "attacks.tuning",
    ),
    "models_zoo": (
        "models_zoo", "models_zoo.cards", "models_zoo.checkpoints", "models_zoo.arch_base", "models_zoo.architectures",
        "models_zoo.sew", "models_zoo.zoo", "models_zoo.lookup", "bench.custom_arch", "models_zoo.defenses",
        "models_zoo.training", "models_zoo.recipe_base", "models_zoo.recipes", "models_zoo.recipes_matched",
        "models_zoo.paper_presets",
    ),
    "engine": (
        "bench.scoring", "bench.engine", "bench.stochastic", "bench.masking", "bench.probe", "bench.flags", "bench.evaluate",
        "bench.analysis", "models_zoo.measure_defenses",
    ),
    "report": (
        "bench.leaderboard", "bench.leaderboard_table", "bench.report_tables", "bench.plot_style", "bench.html", "bench.plots", "bench.eps_plots",
        "bench.gauntlet_table", "bench.claims", "bench.eps_sections", "bench.matched", "bench.retired", "models_zoo.paper_table",
    ),
    "apps": (
        "bench", "bench.__main__", "bench.cli", "bench.api", "bench.submit", "bench.compare", "bench.perf",
        "bench.shard", "bench.run_zoo", "models_zoo.sweep", "models_zoo.claim_sweep", "models_zoo.validate",
    ),
}
# What the report layer may import from below it: results, configuration and model cards, never a model run.
REPORT_MAY_IMPORT = {"infra", "attacks.surrogates", "models_zoo.cards", "models_zoo.zoo", "models_zoo.lookup", "models_zoo.recipes"}


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            parts = f.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            mods[name] = f
    return mods


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Every project module that ``name`` imports, anywhere in its body (top level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    raw: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    type_only = {id(n) for block in ast.walk(tree) if _is_type_checking_block(block) for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in type_only:  # `if TYPE_CHECKING:` imports never run: annotations only
            continue
        if isinstance(node, ast.Import):
            raw.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against the importing package
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                raw.add(sub if sub in mods else base)
    found = set()
    for m in raw:
        while m and m not in mods:
            m = m.rpartition(".")[0]
        if m and m != name:
            found.add(m)
    return found


def _layer_of() -> dict[str, int]:
    return {m: ORDER.index(layer) for layer, ms in LAYERS.items() for m in ms}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {n: _imports(n, f, mods) for n, f in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

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
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    layer = _layer_of()
    missing = sorted(set(_modules()) - set(layer))
    assert not missing, f"modules without a layer in tests/test_layers.py LAYERS: {missing}"
    stale = sorted(set(layer) - set(_modules()))
    assert not stale, f"LAYERS names modules that do not exist: {stale}"


def test_import_graph_has_no_cycle():
    assert _cycles(_graph()) == []


def test_no_module_imports_a_higher_layer():
    layer = _layer_of()
    upward = sorted(
        f"{a} ({ORDER[layer[a]]}) imports {b} ({ORDER[layer[b]]})"
        for a, bs in _graph().items() for b in bs if layer[b] > layer[a]
    )
    assert upward == []


def test_report_layer_never_imports_what_runs_a_model():
    layer = _layer_of()
    report = ORDER.index("report")
    allowed_layers = {ORDER.index(x) for x in REPORT_MAY_IMPORT if x in ORDER}
    bad = sorted(
        f"{a} imports {b} ({ORDER[layer[b]]})"
        for a, bs in _graph().items() if layer[a] == report
        for b in bs if layer[b] < report and layer[b] not in allowed_layers and b not in REPORT_MAY_IMPORT
    )
    assert bad == []


def test_the_checker_sees_in_function_relative_and_cyclic_imports(tmp_path):
    """The analysis itself can fail: a cycle through an in-function relative import is found."""
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from . import b\n    return b\n")
    (pkg / "b.py").write_text("from p.a import f\n")
    mods = {"p": pkg / "__init__.py", "p.a": pkg / "a.py", "p.b": pkg / "b.py"}
    graph = {n: _imports(n, f, mods) for n, f in mods.items()}
    assert graph["p.a"] == {"p.b"} and graph["p.b"] == {"p.a"}
    assert _cycles(graph) == [["p.a", "p.b"]]
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p.a import f\n")
    graph = {n: _imports(n, f, mods) for n, f in mods.items()}
    assert graph["p.b"] == set() and _cycles(graph) == []


@pytest.mark.parametrize("layer", ORDER)
def test_layers_are_listed_once(layer):
    others = [m for other, ms in LAYERS.items() if other != layer for m in ms]
    assert not set(LAYERS[layer]) & set(others)

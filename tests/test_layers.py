"""The package's layers, read from the source: every import points down (or stays in its layer), and
no two modules import each other, directly or through others (docs/architecture.md)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

from .conftest import ROOT

# Lowest first. A module may import from its own layer and the layers before it.
LAYERS: dict[str, tuple[str, ...]] = {
    "base": ("diagnostics", "limits", "fileio", "version", "vocabulary", "formatting"),
    "front end": ("syntax", "lark_boundary", "parser", "loader", "lexer"),
    "core": ("ops", "ir", "values", "functions", "evaluate", "binding", "weight_init", "init_match", "templates",
             "elaborate", "namecheck", "network"),
    "compiler": ("compiler",),
    "api": ("api", "report", "report_models", "verify", "sizes"),
    "cli": ("cli", "cli_common", "cli_compile", "cli_diagram", "cli_verify", "cli_import", "__main__"),
    "package": ("",),  # archdsl/__init__.py: lazy re-exports of the API
}


def _modules() -> dict[str, Path]:
    """Every module of the installed package, by dotted name, from the repository's layout."""
    out: dict[str, Path] = {}
    for base, package in ((ROOT / "archdsl", "archdsl"), (ROOT / "compiler", "archdsl.compiler")):
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("")
            if base.name == "archdsl" and rel.parts[0] in ("compiler", "specs"):
                continue  # links to the top-level folders, walked under their own names
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join((package, *parts))] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The package modules `name` imports anywhere (function bodies and TYPE_CHECKING blocks too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{node.module}" if node.module else anchor
            else:
                base = node.module or ""
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import archdsl.api as api`, attribute imports
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def layer_of(module: str) -> int:
    rel = module.removeprefix("archdsl").removeprefix(".")
    head = rel.split(".")[0]
    for rank, (_, members) in enumerate(LAYERS.items()):
        if head in members:
            return rank
    raise AssertionError(f"{module} belongs to no layer; add it to LAYERS (and docs/architecture.md)")


def test_the_walk_sees_the_whole_package() -> None:
    assert {"archdsl.api", "archdsl.compiler.passes.counts", "archdsl.ops.conv", "archdsl.parser"} <= set(MODULES)
    assert "archdsl.compiler.passes.registry" in GRAPH["archdsl.compiler.passes.counts"]
    assert "archdsl.compiler.passes" in GRAPH["archdsl.api"]
    assert "archdsl.lark_boundary" in GRAPH["archdsl.parser"]  # a lazy import inside a function


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    names = list(LAYERS)
    upward = [f"{target} ({names[layer_of(target)]})" for target in sorted(GRAPH[module])
              if layer_of(target) > layer_of(module)]
    assert not upward, f"{module} ({names[layer_of(module)]}) imports a higher layer: {', '.join(upward)}"


def test_the_compiler_imports_neither_the_api_nor_the_cli() -> None:
    for module, targets in GRAPH.items():
        if module.startswith("archdsl.compiler"):
            bad = {t for t in targets if layer_of(t) >= layer_of("archdsl.api")}
            assert not bad, f"{module} imports {sorted(bad)}"


def test_no_import_cycles() -> None:
    try:
        tuple(graphlib.TopologicalSorter(GRAPH).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' → '.join(exc.args[1])}")


def test_the_cycle_check_can_fail() -> None:
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter({**GRAPH, "archdsl.syntax": {"archdsl.parser"}}).static_order())

"""The package's layering (pyproject's ``[tool.importlinter]``) and no import cycle in the app.

Layers are read from pyproject.toml, the one place they are written: the same contract
``lint-imports`` checks. Imports under ``if TYPE_CHECKING:`` are left out (they never run).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "microadjust_cms"


def contract() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return layers


def grimp_layers() -> list[grimp.Layer]:
    layers = []
    for raw in contract()["layers"]:
        independent = ":" not in raw
        tails = [t.strip() for t in raw.replace(":", "|").split("|")]
        layers.append(grimp.Layer(*tails, independent=independent))
    return layers


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, exclude_type_checking_imports=True)


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def illegal(graph: grimp.ImportGraph) -> set:
    return graph.find_illegal_dependencies_for_layers(layers=grimp_layers(), containers={PACKAGE})


def describe(dependencies: set) -> str:
    return "\n".join(f"{d.importer} imports {d.imported}: "
                     + "; ".join(" -> ".join(route.heads | route.tails) if not route.middle else
                                 f"{sorted(route.heads)} -> {list(route.middle)} -> {sorted(route.tails)}"
                                 for route in d.routes)
                     for d in sorted(dependencies, key=lambda d: (d.importer, d.imported)))


def test_every_top_level_module_or_package_has_a_layer_or_is_a_shim(graph):
    """A new module must be given its place: an unlisted one escapes the contract."""
    listed = {t.strip() for raw in contract()["layers"] for t in raw.replace(":", "|").split("|")}
    children = {m.split(".")[1] for m in graph.modules if m.count(".") >= 1}
    shims = {path.stem for path in (ROOT / PACKAGE).glob("*.py")
             if "from microadjust_cms._moved import moved" in path.read_text()}
    unplaced = children - listed - shims - {"_moved", "build_tracker", "migrations", "stores"}
    assert not unplaced, f"give these a layer in pyproject.toml's [tool.importlinter]: {sorted(unplaced)}"


def test_no_layer_imports_a_layer_above_it(graph):
    assert not illegal(graph), describe(illegal(graph))


def test_no_import_cycle_in_the_app(graph):
    found = cycles(graph)
    print(f"\nimport cycles in {PACKAGE}: {len(found)} ({len(graph.modules)} modules)")
    assert found == []


def test_the_checks_catch_an_upward_import_and_a_cycle(graph):
    """The two checks above can fail: the request path importing the admin is caught as a
    layer violation, and an import back down-to-up as a cycle."""
    broken = grimp.build_graph(PACKAGE, exclude_type_checking_imports=True)
    broken.add_import(importer=f"{PACKAGE}.visitor.context", imported=f"{PACKAGE}.admin.hooks")
    assert any(d.importer == f"{PACKAGE}.visitor" and d.imported == f"{PACKAGE}.admin"
               for d in illegal(broken))
    broken.add_import(importer=f"{PACKAGE}.signals.registry", imported=f"{PACKAGE}.signals.builtin")
    assert [f"{PACKAGE}.signals.builtin", f"{PACKAGE}.signals.registry"] in cycles(broken)
    # Siblings marked independent ("experiments | segments") may not import each other either.
    broken.add_import(importer=f"{PACKAGE}.segments.membership", imported=f"{PACKAGE}.experiments.runtime")
    assert any(d.importer == f"{PACKAGE}.segments" and d.imported == f"{PACKAGE}.experiments"
               for d in illegal(broken))


def test_lint_imports_reports_the_contract_kept():
    """What a developer runs by hand (`lint-imports`) agrees with the test."""
    command = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(command), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout

"""The import graph of ``repcurate`` has no cycle between modules (lazy imports and type-checking imports count:
a cycle hidden in a function body is still a cycle), and every package sits under an import-linter contract."""
from __future__ import annotations

import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("repcurate", cache_dir=None)


def module_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm, iterative), each sorted."""
    edges = {module: sorted(graph.find_modules_directly_imported_by(module)) for module in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = edges.get(node, [])
            if i < len(targets):
                work.append((node, i + 1))
                target = targets[i]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(groups)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(module)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.z")
    graph.add_import(importer="a.z", imported="a.x")
    assert module_cycles(graph) == [["a.x", "a.y", "a.z"]]
    graph.remove_import(importer="a.z", imported="a.x")
    assert module_cycles(graph) == []


def test_no_import_cycle_between_repcurate_modules() -> None:
    cycles = module_cycles(_graph())
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(group) for group in cycles)


def test_every_package_is_under_a_layers_contract() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layered: set[str] = set()
    for contract in config:
        if contract["type"] == "layers" and contract.get("containers") == ["repcurate"]:
            for layer in contract["layers"]:
                layered.update(name.strip() for name in layer.replace("|", ":").split(":"))
    top = {module.split(".")[1] for module in _graph().modules if module.count(".") >= 1}
    top -= {"__main__"}
    assert sorted(top - layered) == []


def test_no_import_cycle_between_repcurate_packages() -> None:
    """Squashed to ``repcurate.<package>``, the graph is still acyclic: no package imports one that imports it
    back (an upward arrow), e.g. checks -> report while report -> checks."""
    graph = _graph()
    packages = grimp.ImportGraph()
    top = {module: ".".join(module.split(".")[:2]) for module in graph.modules}
    for name in set(top.values()):
        packages.add_module(name)
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if top[module] != top[imported] and top[module] != "repcurate" and top[imported] != "repcurate":
                packages.add_import(importer=top[module], imported=top[imported])
    cycles = module_cycles(packages)
    assert cycles == [], "package cycles: " + "; ".join(" <-> ".join(group) for group in cycles)

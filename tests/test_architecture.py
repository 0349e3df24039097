"""The tree is the architecture: imports only run downwards, and nothing imports in a circle.

From the top: the composition roots (`server/app.py`, `server/cli.py`), then `web/` (every route),
then `training/` (torch, its own process), `learning/`, `play/`, `validation/`, `serving/`,
`realtime/`, `storage/`, the foundation modules (`config`, `atomic`, `logs`, `prometheus`,
`mnist`, `pseudonyms`) and, beneath everything, `game_rules` (pure: imports nothing of the server).
A module may import its own package and anything below it, never above.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

LAYERS = [  # lowest first
    "game_rules",
    "server.config server.atomic server.logs server.prometheus server.mnist server.pseudonyms",
    "server.storage",
    "server.realtime",
    "server.serving",
    "server.validation",
    "server.play",
    "server.learning",
    "server.training",
    "server.web",
    "server.app server.cli",
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names.split()}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def owner(module: str) -> str:
    """The layer entry a module belongs to: its package, or itself for a foundation module."""
    for size in (2, 1):
        prefix = ".".join(module.split(".")[:size])
        if prefix in RANK:
            return prefix
    raise AssertionError(f"{module} belongs to no layer: add its package to LAYERS")


def project_modules() -> dict[str, Path]:
    files = [*REPO.glob("server/**/*.py"), *REPO.glob("game_rules/**/*.py")]
    return {module_name(p): p for p in files}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every project module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found.update(name for name in names if name in known)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(path, known) - {name} for name, path in modules.items()}


def test_every_import_runs_downwards():
    upward = [
        f"{importer} ({owner(importer)}) imports {imported} ({owner(imported)})"
        for importer, imported_set in import_graph().items()
        for imported in imported_set
        if owner(imported) != owner(importer) and RANK[owner(imported)] > RANK[owner(importer)]
    ]
    assert upward == []


def test_game_rules_imports_nothing_of_the_server():
    graph = import_graph()
    leaks = {m: sorted(i for i in graph[m] if i.startswith("server")) for m in graph}
    assert {m: i for m, i in leaks.items() if m.startswith("game_rules") and i} == {}


def test_no_module_imports_itself_in_a_circle():
    graph = import_graph()
    # Packages import their own submodules for re-export; a package ↔ submodule pair is no cycle.
    graph = {m: {i for i in deps if not i.startswith(m + ".")} for m, deps in graph.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []

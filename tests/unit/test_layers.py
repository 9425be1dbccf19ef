"""Imports go downward only: every hotmesh module imports only lower floors, and no
cycle, neither between parts nor between the modules of one part.

The floors are ``FLOORS`` below (docs/explanation/architecture.md draws the
same ones, checked below). Imports are read from the source with ``ast``, wherever they sit:
at module level, inside a function, or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import hotmesh

ROOT = Path(hotmesh.__file__).parent

FLOORS: list[set[str]] = [
    {"_record"},
    {"_errors", "_paths", "_files", "_tick", "_gil", "_lazy", "_hashes"},
    {"_runtime"},
    {"_wire"},
    {"_mesh"},
    {"_membership"},
    {"_rpc"},
    {"code"},
    {"service"},
    {"settings"},
    {"deploy"},
    {"_console"},
    {"_node"},
    {""},  # hotmesh/__init__.py: the public API
    {"testing"},
    {"demo"},
    {"cli"},
    {"__main__"},
]
"""Bottom to top. A part is a top-level module or package of hotmesh ("" is the package itself)."""

ONLY_IMPORTER = {"msgpack": "_wire", "zmq": "_mesh", "ptpython": "_console", "jedi": "_console"}
"""Third-party libraries each kept behind one part."""

Edge = tuple[str, str, str]
"""(importing part, imported part, file:line)."""


def floor_of(part: str) -> int:
    for floor, parts in enumerate(FLOORS):
        if part in parts:
            return floor
    raise AssertionError(f"hotmesh.{part} is on no floor: add it to FLOORS")


def source_files(root: Path) -> list[Path]:
    """Every module of the package at ``root`` but the demo's release copies."""
    return [p for p in sorted(root.rglob("*.py")) if "releases" not in p.relative_to(root).parts]


def module_name(root: Path, path: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """``hotmesh._mesh.client`` -> ``_mesh``; ``hotmesh`` -> ``""``."""
    names = module.split(".")
    return names[1] if len(names) > 1 else ""


def is_module(root: Path, module: str) -> bool:
    relative = Path(*module.split(".")[1:])
    return (root / relative).with_suffix(".py").is_file() or (root / relative).is_dir()


def imported_modules(root: Path, path: Path) -> list[tuple[str, int]]:
    """Every module ``path`` imports (absolute names), with the line of the import.

    ``from pkg import name`` counts as importing ``pkg.name`` when that is a
    module of ours, else as importing ``pkg``.
    """
    module = module_name(root, path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                mine = target.split(".")[0] == root.name and is_module(root, sub)
                found.append((sub if mine else target, node.lineno))
    return found


def edges(root: Path) -> list[Edge]:
    """Every import from one part of the package at ``root`` into another."""
    found = []
    for path in source_files(root):
        importer = part_of(module_name(root, path))
        for target, line in imported_modules(root, path):
            if target.split(".")[0] == root.name and part_of(target) != importer:
                found.append((importer, part_of(target), f"{path.relative_to(root)}:{line}"))
    return found


def module_edges(root: Path) -> list[Edge]:
    """Every import between two modules of one part (a package's own ``__init__`` aside:
    its modules may use what it re-exports)."""
    found = []
    for path in source_files(root):
        importer = module_name(root, path)
        for target, line in imported_modules(root, path):
            same_part = target.split(".")[0] == root.name and part_of(target) == part_of(importer)
            if same_part and target != importer and not importer.startswith(target + "."):
                found.append((importer, target, f"{path.relative_to(root)}:{line}"))
    return found


def upward(found: list[Edge]) -> list[str]:
    return [
        f"{where}: hotmesh.{importer or '__init__'} imports hotmesh.{target or '__init__'}"
        for importer, target, where in found
        if floor_of(target) >= floor_of(importer)
    ]


def in_cycles(found: list[Edge]) -> list[str]:
    graph: dict[str, set[str]] = {}
    for importer, target, _ in found:
        graph.setdefault(importer, set()).add(target)

    def reaches(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    return sorted(part for part in graph if part in reaches(part))


def test_every_part_is_on_exactly_one_floor() -> None:
    for path in source_files(ROOT):
        floor_of(part_of(module_name(ROOT, path)))
    every = [part for parts in FLOORS for part in parts]
    assert len(every) == len(set(every))


def test_imports_go_downward_only() -> None:
    assert upward(edges(ROOT)) == []


def test_no_import_cycle_between_parts() -> None:
    assert in_cycles(edges(ROOT)) == []


def test_no_import_cycle_between_modules_of_a_part() -> None:
    assert in_cycles(module_edges(ROOT)) == []


@pytest.mark.parametrize("library", sorted(ONLY_IMPORTER))
def test_third_party_library_stays_behind_its_part(library: str) -> None:
    importers = {
        part_of(module_name(ROOT, path))
        for path in source_files(ROOT)
        for target, _ in imported_modules(ROOT, path)
        if target.split(".")[0] == library
    }
    assert importers <= {ONLY_IMPORTER[library]}


def test_an_upward_import_inside_a_function_and_a_cycle_are_caught(tmp_path: Path) -> None:
    root = tmp_path / "hotmesh"
    (root / "deploy").mkdir(parents=True)
    (root / "_node").mkdir()
    (root / "__init__.py").write_text("")
    (root / "_node" / "__init__.py").write_text("from hotmesh.deploy import run\n")
    (root / "deploy" / "__init__.py").write_text("def run():\n    from hotmesh import _node\n")
    found = edges(root)
    assert upward(found) == ["deploy/__init__.py:2: hotmesh.deploy imports hotmesh._node"]
    assert in_cycles(found) == ["_node", "deploy"]


def test_a_cycle_inside_a_part_through_a_function_is_caught(tmp_path: Path) -> None:
    root = tmp_path / "hotmesh"
    (root / "deploy").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "deploy" / "__init__.py").write_text("from hotmesh.deploy.upgrade import run\n")
    (root / "deploy" / "upgrade.py").write_text(
        "from hotmesh.deploy import dryrun\ndef run():\n    pass\n"
    )
    (root / "deploy" / "dryrun.py").write_text(
        "def plan():\n    from hotmesh.deploy import upgrade\n"
    )
    assert in_cycles(module_edges(root)) == ["hotmesh.deploy.dryrun", "hotmesh.deploy.upgrade"]


def test_the_architecture_page_draws_these_floors() -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "explanation" / "architecture.md"
    drawing = page.read_text(encoding="utf-8").split("The floors, top to bottom")[1]
    drawing = drawing.split("```")[1]
    # An entry starts one space in; its description's next lines start further in.
    entries = [line.split("  ")[0] for line in drawing.splitlines() if re.match(r" [_a-z]", line)]
    drawn = [
        {name.removesuffix("/").removesuffix(".py") for name in entry.split()} for entry in entries
    ]
    drawn = [{"" if name == "__init__" else name for name in floor} for floor in drawn]
    assert drawn[::-1] == FLOORS

"""hotmesh.code loads what only loads, purges, scans and checks use on first use."""

from __future__ import annotations

import subprocess
import sys

LAZY = [
    "hotmesh.code.batch",
    "hotmesh.code.build",
    "hotmesh.code.finder",
    "hotmesh.code.imports",
    "hotmesh.code.purging",
    "hotmesh.code.scan",
    "hotmesh.code.stale",
    "hotmesh.code.suspend",
    "hotmesh.code.xref_index",
    "hotmesh.code.xref_source",
]


def _run(script: str) -> str:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_the_code_server_loads_none_of_them() -> None:
    script = (
        "import sys, hotmesh.code as code\n"
        "code.available_modules()\n"
        f"print(sorted(set({LAZY!r}) & set(sys.modules)))\n"
    )
    assert _run(script) == "[]"


def test_each_public_name_still_resolves_and_the_package_functions_stay_functions() -> None:
    script = (
        "import types, hotmesh.code as code\n"
        "from hotmesh.code import keep, PurgeReport, Offender, StaleReference, Problem\n"
        "from hotmesh.code.stale import find_stale\n"
        "from hotmesh.code.xref_source import Problem as P\n"
        "import hotmesh.code.purging, hotmesh.code.scan, hotmesh.code.dependent_modules\n"
        "assert P is Problem and code.scan.Offender is Offender\n"
        "print(all(isinstance(getattr(code, n), types.FunctionType)\n"
        "          for n in ('dependents', 'roots', 'purge', 'xref', 'stale_references')))\n"
    )
    assert _run(script) == "True"

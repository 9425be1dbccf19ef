"""Moving running services onto the code just loaded (or reverted to), through
``hotmesh.service.migrate``. No I/O of its own."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

MIGRATE_TIMEOUT = 10.0


def migrate(modules: Iterable[str], *, timeout: float = MIGRATE_TIMEOUT) -> list[str]:
    """Make every service running one of ``modules`` do its code change now.

    Returns one line per service whose migration failed (empty when all went
    well, or when this installation has no service layer).
    """
    modules = list(modules)
    if not modules:
        return []
    try:
        service = importlib.import_module("hotmesh.service")
        run = service.migrate
    except (ImportError, AttributeError):
        return []
    problems = []
    for migration in run(modules, timeout=timeout):
        if not migration.ok:
            problems.append(f"service {migration.service} ({migration.module}): {migration.error}")
    return problems

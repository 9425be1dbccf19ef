"""Moving running services onto the code just loaded (or reverted to), through
``hotmesh.service.migrate``. No I/O of its own."""

from __future__ import annotations

from collections.abc import Iterable

MIGRATE_TIMEOUT = 10.0


def migrate(modules: Iterable[str], *, timeout: float = MIGRATE_TIMEOUT) -> list[str]:
    """Make every service running one of ``modules`` do its code change now.

    Returns one line per service whose migration failed (empty when all went
    well).
    """
    modules = list(modules)
    if not modules:
        return []
    # Imported here: a node loads the service machinery when it first starts a
    # service or an upgrade migrates, not at every start.
    from hotmesh import service

    problems = []
    for migration in service.migrate(modules, timeout=timeout):
        if not migration.ok:
            problems.append(f"service {migration.service} ({migration.module}): {migration.error}")
    return problems

"""The snippet template: pasting it defines the four functions and does nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hotmesh import settings

TEMPLATE = Path(__file__).resolve().parents[3] / "snippets" / "template.py"


def test_pasting_the_template_only_defines_things() -> None:
    namespace: dict[str, Any] = {"__name__": "__console__"}
    exec(compile(TEMPLATE.read_text(), str(TEMPLATE), "exec"), namespace)
    defined = {k for k in namespace if not k.startswith("__")}
    assert {"upgrade_node", "node_versions", "nodes_at", "rolling_upgrade", "RELEASE"} <= defined
    assert all(callable(namespace[f]) for f in ("upgrade_node", "node_versions", "nodes_at"))
    # Nothing ran: the example action (a setting) was not applied.
    assert settings.get("cart.max_items") is None


def test_template_header_asks_for_ticket_what_and_how_it_was_tried() -> None:
    head = TEMPLATE.read_text().split("\n\n")[0]
    for field in ("Ticket:", "What:", "Tried:"):
        assert field in head

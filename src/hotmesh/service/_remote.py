"""What a peer's ``service_call(..., node=...)`` runs on this node (through ``Node.call``).

Each function handles the message locally, on the node it runs on; no I/O of its own.
"""

from __future__ import annotations

from typing import Any

from hotmesh import service


def call(name: str, msg: Any, timeout: float) -> Any:
    """``service_call`` on this node."""
    return service.service_call(name, msg, timeout=timeout)


def cast(name: str, msg: Any, timeout: float) -> None:
    """``service_cast`` on this node (``timeout`` is unused: casts do not wait)."""
    service.service_cast(name, msg)


def info(name: str, msg: Any, timeout: float) -> None:
    """``service_info`` on this node (``timeout`` is unused)."""
    service.service_info(name, msg)


def status(name: str, msg: Any, timeout: float) -> dict[str, Any]:
    """``service_status`` on this node, as a dict (dataclasses do not travel)."""
    return service.service_status(name).as_dict()


def services(name: str, msg: Any, timeout: float) -> list[str]:
    """``services()`` on this node."""
    return service.services()

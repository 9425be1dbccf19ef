"""The result of one node's upgrade, as a plain dict that travels between nodes
with attribute access and a console-friendly repr (no I/O)."""

from __future__ import annotations

from typing import Any

_FIELDS = (
    "node",
    "ok",
    "old_version",
    "new_version",
    "loaded",
    "added",
    "removed",
    "stale",
    "actions",
    "lingering",
    "provisional",
    "seconds",
)


class UpgradeReport(dict[str, Any]):
    """What ``upgrade_node`` did on one node.

    A dict (so it travels back from a remote ``upgrade_node`` unchanged) with
    attributes: ``node``, ``ok``, ``old_version``, ``new_version``, ``loaded``
    (modules switched to new code), ``added`` (those of ``loaded`` that did
    not change but ran again because they bound objects of changed ones:
    module -> why), ``removed`` (modules gone from disk), ``stale`` (what
    still held objects of the replaced versions, found before the purge),
    ``actions`` (upgrade action ids run now), ``lingering`` (modules whose old
    code is still running, so not purged), ``provisional`` (the airbag window
    in seconds, or None) and ``seconds`` (how long it took).
    """

    def __getattr__(self, name: str) -> Any:
        if name in _FIELDS:
            return self.get(name)
        raise AttributeError(name)

    @property
    def changed(self) -> bool:
        """True when the upgrade switched code or ran actions."""
        return bool(self.get("loaded") or self.get("removed") or self.get("actions"))

    def summary(self) -> str:
        """One line: result, versions and what changed."""
        parts = [
            "ok" if self.get("ok") else "FAILED",
            f"{self.get('old_version')} -> {self.get('new_version')}",
        ]
        loaded = self.get("loaded") or []
        parts.append(f"{len(loaded)} module{'s' if len(loaded) != 1 else ''} loaded")
        if self.get("added"):
            parts.append(f"{len(self['added'])} of them re-run as dependents")
        if self.get("removed"):
            parts.append(f"{len(self['removed'])} removed")
        actions = self.get("actions") or []
        if actions:
            parts.append(f"{len(actions)} action{'s' if len(actions) != 1 else ''} run")
        if self.get("lingering"):
            parts.append("old code still running in " + ", ".join(self["lingering"]))
        if self.get("stale"):
            parts.append(f"{len(self['stale'])} stale references")
        if self.get("provisional"):
            window = f"{self['provisional']:g} s"
            parts.append(f"provisional for {window}: confirm([{self.get('node')!r}]) to keep")
        return ", ".join(parts)

    def __repr__(self) -> str:
        text = f"<upgrade of {self.get('node')}: {self.summary()}"
        loaded = self.get("loaded") or []
        if loaded:
            shown = ", ".join(loaded[:6]) + (", …" if len(loaded) > 6 else "")
            text += f" [{shown}]"
        return text + ">"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

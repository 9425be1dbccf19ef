"""The fleet's versions as one result: each node's own status plus what only a
comparison of the nodes shows (actions other nodes of its release ran, a node
behind the fleet's release), and the table it prints as. Pure: no I/O."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from hotmesh.deploy.release import fleet_release, matches, release_of


class NodeVersion(str):
    """One node's version (the string, e.g. ``"v2+3fa9c1d2"``) with what it means.

    A ``str``, so it compares and prints as the version; its attributes say
    whether the node is really there:

    - ``release``: the release part;
    - ``pending``: upgrade actions of its release not done on this node (its
      manifest's, and those other nodes of the release ran); empty when none;
    - ``provisional``: seconds left in an unconfirmed airbag window, or None
      (confirmed: a permanent upgrade);
    - ``drift``: managed modules modified on disk but not loaded;
    - ``behind``: the fleet's release when this node runs another one, else None.
    """

    release: str
    pending: tuple[str, ...]
    provisional: float | None
    drift: tuple[str, ...]
    behind: str | None
    status: dict[str, Any]

    def __new__(
        cls, status: Mapping[str, Any], *, fleet_pending: Iterable[str] = ()
    ) -> NodeVersion:
        self = super().__new__(cls, str(status.get("version", "")))
        self.release = release_of(self)
        own = [str(a) for a in status.get("pending") or ()]
        # An own entry may say why after the id ("id (failed at start: ...)").
        ids = {a.split(" ", 1)[0] for a in own}
        self.pending = tuple(own + [a for a in fleet_pending if a not in ids])
        left = status.get("provisional_left")
        self.provisional = float(left) if isinstance(left, int | float) else None
        self.drift = tuple(str(m) for m in status.get("drift") or ())
        self.behind = None
        self.status = dict(status)
        return self

    @property
    def is_complete(self) -> bool:
        """True when every known upgrade action of its release is done here."""
        return not self.pending

    def is_at(self, vsn: str) -> bool:
        """True when the node runs ``vsn`` (a release or a full version) with nothing pending."""
        return matches(self, vsn) and self.is_complete

    def airbag(self) -> str:
        """``confirmed`` or ``provisional, N s left``."""
        if self.provisional is None:
            return "confirmed"
        return f"provisional, {self.provisional:.0f} s left"

    def __repr__(self) -> str:
        notes = [] if self.is_complete else [f"pending {', '.join(self.pending)}"]
        if self.provisional is not None:
            notes.append(self.airbag())
        if self.drift:
            notes.append(f"drift {', '.join(self.drift)}")
        if self.behind:
            notes.append(f"behind {self.behind}")
        text = str.__repr__(self)
        return f"{text} ({'; '.join(notes)})" if notes else text

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (for JSON)."""
        return {
            "version": str(self),
            "release": self.release,
            "pending": list(self.pending),
            "provisional_left": self.provisional,
            "drift": list(self.drift),
            "behind": self.behind,
        }


def versions_from(raw: Mapping[str, Mapping[str, Any]]) -> Versions:
    """The ``Versions`` of ``node_statuses()`` (a status, or ``{"unreachable": why}``)."""
    # The calls' layer, which a node that only judges newcomers never loads.
    from hotmesh._rpc.fanout import Unreachable

    statuses = {
        name: Unreachable(str(value["unreachable"])) if "unreachable" in value else value
        for name, value in raw.items()
    }
    return Versions(fleet_view(statuses))


def fleet_view(statuses: Mapping[str, Mapping[str, Any] | Any]) -> dict[str, NodeVersion | Any]:
    """``{node: NodeVersion}`` from each node's own status; other values pass through.

    A node is given, as pending too, every action another node of the same
    release has done and it has not. The fleet's release is the one the
    latest upgrade anywhere went to (or, with no upgrade seen, the release
    most nodes run); a node on another release is ``behind`` it.
    """
    reachable = {n: s for n, s in statuses.items() if isinstance(s, Mapping)}
    done_by_release: dict[str, list[str]] = {}
    for status in reachable.values():
        release = release_of(str(status.get("version", "")))
        known = done_by_release.setdefault(release, [])
        known += [a for a in status.get("done") or () if a not in known]
    fleet = fleet_release(reachable.values())
    view: dict[str, NodeVersion | Any] = {}
    for name, status in statuses.items():
        if not isinstance(status, Mapping):
            view[name] = status
            continue
        release = release_of(str(status.get("version", "")))
        done = set(status.get("done") or ())
        missing = [a for a in done_by_release.get(release, []) if a not in done]
        row = NodeVersion(status, fleet_pending=missing)
        row.behind = fleet if fleet is not None and release != fleet else None
        view[name] = row
    return view


class Versions(dict[str, Any]):
    """``node_versions()``: ``{node: NodeVersion | Unreachable}`` printed as a table.

    One line per node: version, airbag (confirmed, or provisional with the
    time left), pending actions, drift (modules modified on disk but not
    loaded) and notes (behind the fleet's release, unreachable and why).
    """

    def table(self) -> str:
        """The table, one node per line."""
        rows = [("node", "version", "airbag", "pending actions", "drift", "notes")]
        for name, value in self.items():
            if isinstance(value, NodeVersion):
                notes = f"behind: fleet runs {value.behind}" if value.behind else ""
                if value.status.get("ready") is False:
                    notes = "starting: release not read yet"
                rows.append(
                    (
                        name,
                        str(value),
                        value.airbag(),
                        ", ".join(value.pending) or "-",
                        ", ".join(value.drift) or "-",
                        notes,
                    )
                )
            else:
                rows.append((name, "-", "-", "-", "-", str(value)))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows
        )

    def as_json(self) -> str:
        """The same as JSON: ``{node: {...} | {"unreachable": reason}}``."""
        data: dict[str, Any] = {}
        for name, value in self.items():
            if isinstance(value, NodeVersion):
                data[name] = value.as_dict()
            else:
                data[name] = {"unreachable": getattr(value, "reason", str(value))}
        return json.dumps(data, indent=2, sort_keys=True)

    def __repr__(self) -> str:
        return self.table()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.table())

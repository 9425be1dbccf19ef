"""The options a node starts with: ``NodeOptions``, checked before any socket opens (no I/O).

``resolve_app`` turns the ``app`` option (``"pkg.mod:func"`` or a callable)
into the callable ``start()`` runs last.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

from hotmesh._errors import ConfigError
from hotmesh._membership.seeds import Seed, SeedSource
from hotmesh._paths import NODE_NAME_RE, full_node_name
from hotmesh._record import fields, record
from hotmesh._tick import DEFAULT_TICK, Tick
from hotmesh._wire.frames import DEFAULT_MAX_MESSAGE_SIZE

__all__ = ["DEFAULT_TICK", "NodeOptions", "resolve_app"]


@record(frozen=True)
class NodeOptions(Mapping[str, Any]):
    """The arguments of ``hotmesh.start()`` (but the cookie), frozen and checked.

    Also a read-only mapping (``node.options["tick"]``), so the layers the node
    starts read it without knowing this class.

    Raises:
        ConfigError: a bad node name or seed, or a tick, message size or worker
            count that is not positive.
    """

    name: str
    listen: str = "tcp://127.0.0.1:0"
    seeds: tuple[Seed, ...] = ()
    cookie_file: str | os.PathLike[str] | None = None
    tick: float = DEFAULT_TICK
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    state_dir: str | os.PathLike[str] | None = None
    code_roots: tuple[str | os.PathLike[str], ...] = ()
    release: str | os.PathLike[str] | None = None
    app: str | Callable[..., Any] | None = None
    join_timeout: float | None = None
    max_workers: int = 64

    def __post_init__(self) -> None:
        if not NODE_NAME_RE.match(self.full_name):
            raise ConfigError(
                f"bad node name {self.name!r}: use letters, digits, '_', '.', '-' and one '@'"
            )
        for option in ("tick", "max_message_size", "max_workers"):
            value = getattr(self, option)
            if not value > 0:  # NaN too
                raise ConfigError(f"{option} must be positive, not {value!r}")
        for root in self.code_roots:
            _check_code_root(root)
        self.seed_source()  # a bad seed spec fails here, before any socket opens

    def seed_source(self) -> SeedSource:
        """The node's seeds as a ``SeedSource`` (endpoints and providers).

        Raises:
            ConfigError: a seed that is neither an endpoint nor a provider.
        """
        return SeedSource(self.seeds)

    @property
    def timing(self) -> Tick:
        """Every membership timer, derived from ``tick``."""
        return Tick(self.tick)

    @property
    def full_name(self) -> str:
        """``name@host`` (the host defaults to this host's short name)."""
        return full_node_name(self.name)

    @property
    def wait_to_join(self) -> float:
        """Seconds ``start()`` waits for the seeds' welcome (default ``2 * tick``)."""
        return self.join_timeout if self.join_timeout is not None else 2 * self.tick

    def __getitem__(self, key: str) -> Any:
        if key not in _FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_FIELDS)

    def __len__(self) -> int:
        return len(_FIELDS)


_FIELDS = tuple(f.name for f in fields(NodeOptions))


def _check_code_root(root: object) -> None:
    """A code root is what ``hotmesh.code.add_root`` takes: checked by its own
    rule (loaded only for a node given roots, which loads it anyway)."""
    if not isinstance(root, str | os.PathLike):
        raise ConfigError(f"code root must be a directory or a package prefix, not {root!r:.60}")
    from hotmesh.code.managed_roots import make_root

    try:
        make_root(root)
    except ValueError as exc:
        raise ConfigError(f"code {exc}") from None


def resolve_app(app: str | Callable[..., Any]) -> Callable[..., Any]:
    """The callable an ``app`` option names (``"pkg.mod:func"``), or ``app`` itself.

    What the named module raises while it is imported propagates as it is.

    Raises:
        ConfigError: a string without ``:``, a module that does not exist, no
            such attribute, or something that is not callable.
    """
    if callable(app):
        return app
    module_name, sep, attr = app.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"app must look like 'pkg.mod:func', not {app!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing != module_name and not module_name.startswith(missing + "."):
            raise  # the app's module exists, and something it imports does not
        raise ConfigError(f"app {app!r}: no module named {missing!r}") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(f"app {app!r}: {module_name} has no attribute {attr!r}") from None
    if not callable(target):
        raise ConfigError(f"app {app!r} is a {type(target).__name__}, not a function")
    return cast("Callable[..., Any]", target)

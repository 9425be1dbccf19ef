"""``hotmesh demo``: a local cluster of demo nodes under live client traffic.

On a terminal it attaches a console to the first node (the traffic figures in
the console's bottom toolbar); without one (``--no-attach``, CI) it runs the
v2 deploy snippet of ``snippets/examples/`` and prints the traffic before,
during and after the live upgrade. Starts processes; loopback only.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hotmesh

# The example deploy of each release the demo can ship (snippets/examples/).
SNIPPETS = {"v2": "demo_v2_records.py", "v1.1": "demo_v1_1_fix_get.py"}
WARM_UP_REPLIES = 50  # replies seen before the "before" figures are taken


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="start a local demo cluster with live clients and upgrade it live",
        description=(
            "Start N nodes on 127.0.0.1, each serving the demo key-value service (v1) to "
            "client connections kept busy by a traffic generator, and put release v2 on "
            "every node's disk. On a terminal, attach a console to the first node: paste "
            "the deploy snippet it shows and watch the replies switch to v2 without a "
            "dropped connection. Without a terminal (or --no-attach), run that snippet "
            "and print the traffic before, during and after the upgrade. In the console, "
            "Ctrl-C interrupts the running statement only (the nodes run in process "
            "sessions of their own) and Ctrl-D stops everything the demo started; without "
            "it, Ctrl-C does."
        ),
    )
    parser.add_argument("--nodes", type=int, default=3, help="node processes (default 3)")
    parser.add_argument(
        "--connections", type=int, default=2, help="client connections per node (default 2)"
    )
    parser.add_argument(
        "--no-attach", action="store_true", help="run the scripted upgrade instead of a console"
    )
    parser.add_argument(
        "--ship",
        choices=sorted(SNIPPETS),
        default="v2",
        help="release put on every node's disk, and whose example snippet is run (default v2)",
    )
    parser.add_argument(
        "--snippets",
        type=Path,
        default=None,
        help="folder of the example snippets (default: snippets/examples of this checkout)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the demo cluster, attach or run the scripted upgrade, stop everything."""
    from hotmesh.demo.cluster import DemoCluster

    if args.nodes < 1 or args.connections < 1:
        print("hotmesh demo: --nodes and --connections must be at least 1", file=sys.stderr)
        return 2
    snippet = _find_snippet(args.snippets, SNIPPETS[args.ship])
    attach = not args.no_attach and sys.stdin.isatty() and sys.stdout.isatty()
    if snippet is None and not attach:
        print(
            f"hotmesh demo: {SNIPPETS[args.ship]} not found; give --snippets DIR (the "
            "snippets/examples folder of a hotmesh checkout)",
            file=sys.stderr,
        )
        return 2
    print(f"starting {args.nodes} demo nodes, {args.connections} clients each...", flush=True)
    with _sigterm_as_interrupt():
        demo = DemoCluster(args.nodes, connections=args.connections)
        try:
            demo.start()
            demo.ship(args.ship)
            print("\n".join(demo.node_status()))
            print(
                f"release {args.ship} is on every node's disk; nothing is loaded until you upgrade."
            )
            if attach:
                ok = _attached(demo, snippet or Path("snippets/examples") / SNIPPETS[args.ship])
            else:
                assert snippet is not None
                ok = _scripted(demo, snippet)
        except KeyboardInterrupt:
            print("\ninterrupted: stopping the demo", flush=True)
            ok = False
        except (hotmesh.HotmeshError, OSError, RuntimeError, TimeoutError) as exc:
            print(f"hotmesh demo: {exc}", file=sys.stderr)
            ok = False
        finally:
            report = demo.stop()
    print(f"traffic, whole run: {report.summary()}")
    for problem in report.problems[:10]:
        print(f"  {problem}")
    return 0 if ok and report.ok else 1


def _scripted(demo: Any, snippet: Path) -> bool:
    """Run the snippet's rolling_upgrade on the first node; print traffic per phase.

    The figures "after" wait for replies in the shipped release's format, so
    they show the clients being served by the new code.
    """
    from hotmesh._console.client import ConsoleClient

    traffic = demo.traffic
    _wait(lambda: traffic.snapshot().replies >= WARM_UP_REPLIES, "the first replies")
    before = traffic.snapshot()
    print(f"before:  {before.summary()}", flush=True)
    node = demo.cluster.node(0)
    print(f"\nrunning {snippet.name} on {node.name}: rolling_upgrade()", flush=True)
    client = ConsoleClient.connect(node.endpoint, demo.cluster.cookie)
    try:
        client.open(via="run")
        cells = [(snippet.read_text(encoding="utf-8"), snippet.name), ("rolling_upgrade()", "")]
        ok = True
        for code, name in cells:
            outcome = client.execute(
                code, on_result=lambda text: print(text, flush=True), name=name
            )
            if not outcome.ok:
                sys.stderr.write(outcome.traceback or f"{outcome.exc_type}\n")
                ok = False
                break
    finally:
        client.close()
    during = traffic.snapshot()
    print(f"\nduring:  {_window(before, during).summary()}", flush=True)
    _wait(
        lambda: traffic.snapshot().replies >= during.replies + WARM_UP_REPLIES,
        "replies after the upgrade",
    )
    after = traffic.snapshot()
    print(f"after:   {_window(during, after).summary()}")
    print("\n".join(demo.node_status()))
    return ok


def _attached(demo: Any, snippet: Path) -> bool:
    """Attach a console to the first node, the live traffic in its toolbar."""
    from prompt_toolkit.layout import FormattedTextControl, Window

    from hotmesh._console.client import ConsoleClient
    from hotmesh._console.repl import RemoteRepl

    node = demo.cluster.node(0)
    client = ConsoleClient.connect(node.endpoint, demo.cluster.cookie)
    stop = threading.Event()
    try:
        client.open(via="attach", width=shutil.get_terminal_size((80, 24)).columns)
        # The snippet is pasted for the engineer, as the first cell of the session,
        # so its functions can be shipped to the other nodes like any pasted code.
        pasted = client.execute(snippet.read_text(encoding="utf-8"), name=snippet.name)
        if not pasted.ok:
            sys.stderr.write(pasted.traceback or f"{pasted.exc_type}\n")
            return False
        print(
            f"\nattached to {node.name}; {snippet} is pasted in this session. Try:\n"
            "    node_versions()\n"
            "    upgrade_node()      # this node, provisionally: the toolbar counts v2 replies\n"
            "    confirm()           # keep it (unconfirmed, it reverts on its own)\n"
            "    rolling_upgrade()   # the others, one node at a time, each confirmed\n"
            f"Another terminal: HOTMESH_COOKIE_FILE={demo.cookie_file} hotmesh attach demo2\n"
            "Ctrl-D detaches and stops the demo.\n",
            flush=True,
        )
        toolbar = Window(
            FormattedTextControl(lambda: f" clients: {demo.status_line()}"),
            height=1,
            style="class:status-toolbar",
        )
        repl = RemoteRepl(client, _extra_toolbars=[toolbar])
        threading.Thread(target=_refresh, args=(repl, stop), daemon=True).start()
        repl.run()
    finally:
        stop.set()
        client.close()
    print("\n".join(demo.node_status()))
    return repl.lost is None


def _refresh(repl: Any, stop: threading.Event) -> None:
    """Redraw the console once a second so the traffic toolbar stays live."""
    while not stop.wait(1.0):
        app = getattr(repl, "app", None)
        if app is not None and app.is_running:
            app.invalidate()


def _window(start: Any, end: Any) -> Any:
    """The traffic between two snapshots (counts subtracted, latencies sliced)."""
    from hotmesh.demo.traffic import TrafficReport

    return TrafficReport(
        end.connections,
        end.requests - start.requests,
        end.replies - start.replies,
        end.dropped - start.dropped,
        end.errors - start.errors,
        end.formats - start.formats,
        end.problems[len(start.problems) :],
        end.latencies[len(start.latencies) :],
    )


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f}s")
        time.sleep(0.05)


def _find_snippet(folder: Path | None, name: str) -> Path | None:
    """Example snippet ``name``: in ``folder``, else in this checkout's snippets/examples."""
    candidates = [folder / name] if folder is not None else []
    checkout = Path(hotmesh.__file__).resolve().parents[2]
    candidates.append(checkout / "snippets" / "examples" / name)
    return next((path for path in candidates if path.is_file()), None)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the demo as cleanly as Ctrl-C does."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

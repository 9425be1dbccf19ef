"""``hotmesh attach``, ``hotmesh eval`` and ``hotmesh run``: console sessions on a
node from the shell (sockets, terminal, files)."""

from __future__ import annotations

import argparse
import ast
import shutil
import sys
from pathlib import Path
from typing import Any

from hotmesh._errors import CookieError, HotmeshError, SessionClosed

# Exit statuses of eval and run (2 is argparse's usage error, and ours for a
# missing or unsafe cookie).
OK, FAILED, USAGE, UNREACHABLE, ABANDONED = 0, 1, 2, 3, 130


def register(subparsers: Any) -> None:
    """Add the ``attach``, ``eval`` and ``run`` subcommands."""
    attach = subparsers.add_parser(
        "attach",
        help="open a console on a node",
        description=(
            "Open a ptpython console whose statements run inside NODE. Ctrl-C interrupts "
            "the running statement on the node, Ctrl-D or exit() detaches; the node keeps "
            "running. Type help_hotmesh() there for the helpers."
        ),
    )
    _common(attach)
    attach.add_argument("--vi", action="store_true", help="vi key bindings")
    attach.add_argument("--no-history", action="store_true", help="do not read or save history")
    attach.set_defaults(func=run_attach)

    evaluate = subparsers.add_parser(
        "eval",
        help="evaluate Python on a node and print the result",
        description=(
            "Run CODE (an expression or statements) in a fresh session on NODE, print "
            "its output and result. Exit status: 0 ok; the code of sys.exit(N); 1 it "
            "raised or was interrupted (remote traceback on stderr); 3 the node cannot be "
            "reached or stopped answering; 130 you stopped waiting (Ctrl-C three times)."
        ),
    )
    _common(evaluate)
    evaluate.add_argument("code", metavar="CODE", help="Python source, e.g. 'len(nodes())'")
    evaluate.set_defaults(func=run_eval)

    run = subparsers.add_parser(
        "run",
        help="run a snippet file on a node",
        description=(
            "Run FILE in a fresh session on NODE, streaming its output; with --call, then "
            "call FUNC(ARGS...) there (ARGS parsed as Python literals when they parse, "
            "else passed as strings). Functions FILE defines can be shipped to other "
            "nodes with call/multicall. Exit status as for eval."
        ),
    )
    _common(run)
    run.add_argument("file", metavar="FILE", type=Path, help="Python snippet file")
    run.add_argument(
        "--call",
        nargs="+",
        metavar=("FUNC", "ARGS"),
        help="after FILE ran, call its function FUNC with ARGS",
    )
    run.set_defaults(func=run_run)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("node", metavar="NODE", help="name, name@host or tcp://host:port")
    parser.add_argument("--cookie-file", help="cluster cookie file (mode 0600)")
    parser.add_argument(
        "--connect-timeout", type=float, default=5.0, help="seconds to wait for the node"
    )


def _connect(args: argparse.Namespace, via: str) -> Any:
    """Resolve NODE, connect and open a session; returns the ConsoleClient."""
    from hotmesh._console.client import ConsoleClient
    from hotmesh._mesh.cookie import load_cookie
    from hotmesh._rpc.client_calls import resolve

    cookie = load_cookie(cookie_file=args.cookie_file, create=False)
    endpoint = resolve(args.node, cookie=cookie)
    client = ConsoleClient.connect(endpoint, cookie)
    try:
        client.open(via=via, timeout=args.connect_timeout, width=_width())
    except BaseException:
        client.close(timeout=0)
        raise
    return client


def _width() -> int:
    """Columns to lay results out in: the terminal's, else 80 (a pipe, a file)."""
    if sys.stdout is not None and sys.stdout.isatty():
        return shutil.get_terminal_size((80, 24)).columns
    return 80


def _history_file(cookie_file: str | None) -> str:
    """Per-cluster history: one file per cookie fingerprint under the state dir."""
    from hotmesh._mesh.cookie import cookie_fingerprint, load_cookie
    from hotmesh._paths import state_root

    fingerprint = cookie_fingerprint(load_cookie(cookie_file=cookie_file, create=False))
    path = state_root() / "history" / f"console-{fingerprint}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


def run_attach(args: argparse.Namespace) -> int:
    """The interactive console."""
    from hotmesh._console.repl import RemoteRepl

    try:
        client = _connect(args, "attach")
    except CookieError as exc:
        print(f"hotmesh attach: {exc}", file=sys.stderr)
        return USAGE
    except HotmeshError as exc:
        print(f"hotmesh attach: {exc}", file=sys.stderr)
        return UNREACHABLE
    info = client.info
    print(
        f"attached to {info.node} (pid {info.pid}, Python {info.python}). "
        "help_hotmesh() lists the helpers; Ctrl-D detaches.",
        flush=True,
    )
    history = None if args.no_history else _history_file(args.cookie_file)
    repl = RemoteRepl(client, history_filename=history, vi_mode=args.vi)
    try:
        repl.run()
    finally:
        client.close()
    if repl.lost:
        return UNREACHABLE
    print(f"detached from {info.node}; it keeps running.")
    return OK


def run_eval(args: argparse.Namespace) -> int:
    """``hotmesh eval NODE CODE``."""
    return _batch(args, "eval", [(args.code, "")])


def run_run(args: argparse.Namespace) -> int:
    """``hotmesh run NODE FILE [--call FUNC ARGS...]``."""
    try:
        source = args.file.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"hotmesh run: cannot read {args.file}: {exc}", file=sys.stderr)
        return FAILED
    cells = [(source, args.file.name)]
    if args.call:
        func, *texts = args.call
        if not func.isidentifier():
            print(f"hotmesh run: --call needs a function name, not {func!r}", file=sys.stderr)
            return FAILED
        values = tuple(_literal(text) for text in texts)
        cells.append((f"{func}(*{values!r})", ""))
    return _batch(args, "run", cells)


def _literal(text: str) -> Any:
    """A command-line argument as a Python literal when it is one, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _batch(args: argparse.Namespace, via: str, cells: list[tuple[str, str]]) -> int:
    """Run ``cells`` in order in one fresh session; stop at the first that fails."""
    command = f"hotmesh {via}"
    try:
        client = _connect(args, via)
    except CookieError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return USAGE
    except HotmeshError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return UNREACHABLE
    try:
        for index, (code, name) in enumerate(cells):
            outcome = client.execute(
                code,
                on_result=lambda text: print(text, flush=True),
                on_input=_stdin_line,
                name=name,
            )
            sys.stdout.flush()
            if outcome.status == "abandoned":
                print(
                    f"{command}: the statement did not stop; it still runs on {client.node} "
                    f"(thread {outcome.thread})",
                    file=sys.stderr,
                )
                return ABANDONED
            if outcome.status == "exit":
                return _exit_status(command, outcome.exit_code, skipped=cells[index + 1 :])
            if not outcome.ok:
                sys.stderr.write(outcome.traceback or f"{outcome.exc_type}\n")
                sys.stderr.write(f"{command}: failed on {client.node}\n")
                return FAILED
        return OK
    except SessionClosed as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return UNREACHABLE
    except KeyboardInterrupt:
        print(
            f"\n{command}: stopped waiting; the statement still runs on the node", file=sys.stderr
        )
        return ABANDONED
    finally:
        client.close()


def _exit_status(command: str, code: int, skipped: list[tuple[str, str]]) -> int:
    """The statement called ``sys.exit(code)``: exit with ``code``, unless a
    ``--call`` was still to run (then the snippet ended too early: never 0)."""
    if skipped and code == OK:
        print(
            f"{command}: the snippet exited (sys.exit(0)) before {skipped[0][0]} could run",
            file=sys.stderr,
        )
        return FAILED
    return code


def _stdin_line() -> str | None:
    line = sys.stdin.readline() if sys.stdin is not None else ""
    return line or None

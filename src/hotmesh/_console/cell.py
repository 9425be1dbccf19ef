"""Compiling a console cell like the interactive console, and formatting the
tracebacks of session code (no I/O; registers cell sources in linecache)."""

from __future__ import annotations

import ast
import linecache
import os
import pprint
import re
import traceback
import types
from dataclasses import dataclass

from hotmesh._errors import RemoteError

CO_COROUTINE = 0x80
_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
REPR_LIMIT = 256 * 1024
PRETTY_LIMIT = 64 * 1024  # beyond this a value is shown as its plain repr (pprint is slow)
_CONSOLE_DIR = os.path.dirname(__file__)
_HOTMESH_DIR = os.path.dirname(_CONSOLE_DIR) + os.sep
# The demo's application (hotmesh.demo) is the user's code in the demo: shown.
_DEMO_DIR = _HOTMESH_DIR + "demo" + os.sep
# A frame of hotmesh in a traceback from another node, wherever hotmesh is
# installed there: .../hotmesh/<a module or subpackage of this hotmesh>...
_REMOTE_HOTMESH = re.compile(
    r"[/\\]hotmesh[/\\](?:"
    + "|".join(
        re.escape(name.removesuffix(".py"))
        for name in sorted(os.listdir(_HOTMESH_DIR))
        if not name.startswith((".", "__pycache__")) and name != "demo"
    )
    + r")(?:[/\\.]|$)"
)


@dataclass(frozen=True)
class Step:
    """One top-level statement of a cell, compiled.

    ``echo`` is true for an expression statement, whose value the console
    shows (with ``repr``) and binds to ``_``; ``is_coroutine`` when it uses
    top-level ``await`` and so evaluates to a coroutine to run.
    """

    code: types.CodeType
    echo: bool

    @property
    def is_coroutine(self) -> bool:
        return bool(self.code.co_flags & CO_COROUTINE)


def compile_cell(source: str, filename: str) -> list[Step]:
    """Compile every top-level statement of ``source``; nothing runs.

    Like the standard interactive console fed a paste, each top-level
    expression statement is echoed; unlike it, the whole cell is parsed first,
    so blank lines inside a body are fine and a syntax error anywhere means
    nothing runs. ``source`` is registered in linecache under ``filename`` so
    tracebacks and ``inspect.getsource`` see it.

    Raises:
        SyntaxError: the cell does not parse; nothing was run.
    """
    register_source(filename, source)
    module = ast.parse(source, filename, "exec", type_comments=False)
    steps = []
    for node in module.body:
        if isinstance(node, ast.Expr):
            tree: ast.Expression | ast.Module = ast.Expression(node.value)
            code = compile(tree, filename, "eval", flags=_FLAGS, dont_inherit=True)
            steps.append(Step(code, echo=True))
        else:
            tree = ast.Module([node], type_ignores=[])
            code = compile(tree, filename, "exec", flags=_FLAGS, dont_inherit=True)
            steps.append(Step(code, echo=False))
    return steps


def register_source(filename: str, source: str) -> None:
    """Keep ``source`` in linecache under ``filename`` (mtime None: never evicted by checkcache)."""
    lines = source.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    linecache.cache[filename] = (len(source), None, lines, filename)


def forget_sources(prefix: str) -> None:
    """Drop every linecache entry whose filename starts with ``prefix``."""
    for name in [name for name in linecache.cache if name.startswith(prefix)]:
        linecache.cache.pop(name, None)


def pretty(value: object, width: int = 80) -> str:
    """How the console shows a value, as IPython does: ``repr`` when it fits in
    ``width`` columns, else laid out over lines by ``pprint`` (dicts, lists,
    tuples, sets, dataclasses and the collections types; any other object
    keeps its own ``repr``). Dict order is kept. Capped and safe like ``safe_repr``.
    """
    text = safe_repr(value)
    if len(text) <= width or len(text) > PRETTY_LIMIT or "\n" in text:
        return text
    try:
        return pprint.pformat(value, width=width, sort_dicts=False)
    except Exception:
        return text


def safe_repr(value: object) -> str:
    """``repr(value)``, capped in size; a failing ``__repr__`` is described, not raised."""
    try:
        text = repr(value)
    except Exception as exc:
        return f"<repr of {type(value).__name__} failed: {type(exc).__name__}: {exc}>"
    if len(text) > REPR_LIMIT:
        return text[:REPR_LIMIT] + f"... ({len(text) - REPR_LIMIT} characters cut)"
    return text


def is_statement_exit(exc: SystemExit) -> bool:
    """True when the console statement itself asked to exit.

    ``exit()``, ``sys.exit(3)`` or ``raise SystemExit`` in a cell, or in a
    function a cell defined, ends the session. A SystemExit raised deeper (a
    module body run by a load, a library calling ``sys.exit``) is an error
    like any other: it is reported and the session goes on.
    """
    tb = exc.__traceback__
    last = ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith(_CONSOLE_DIR):
            last = filename
        tb = tb.tb_next
    return last.startswith("<console ")


def exit_status(exc: SystemExit) -> tuple[int, str]:
    """The process exit status ``exc`` stands for, as the Python command computes it,
    and the text it prints: None is 0; an int in 0-255 is itself, any other int 1;
    anything else is printed and gives 1."""
    code = exc.code
    if code is None:
        return 0, ""
    if isinstance(code, int) and not isinstance(code, bool):
        return (code, "") if 0 <= code <= 255 else (1, "")
    return 1, str(code)


def format_exception(
    exc: BaseException, skip_files: tuple[str, ...] = (), as_type: type | None = None
) -> str:
    """The traceback text of ``exc`` as a console user needs it: their frames only.

    Frames of hotmesh itself (the session worker, the helpers, the RPC caller,
    the code server) are left out wherever they are, so a one-line problem is
    a short traceback: the cell's frames, the frames of the user's and other
    libraries' modules, with their source lines. A ``RemoteError`` shows the
    remote node's frames after the local ones (``--- on NODE ---``, again
    without hotmesh's frames) and its message once. ``skip_files`` are more
    files to leave out; ``as_type`` replaces the exception's type name (our
    interrupt subclass shows as KeyboardInterrupt).
    """
    skip = (*skip_files, ast.__file__)
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
    for part in _chain(te):
        part.stack = traceback.StackSummary.from_list(
            [f for f in part.stack if f.filename not in skip and not is_hotmesh_file(f.filename)]
        )
        if part.exc_type is not None and part.exc_type.__module__ == "hotmesh._errors":
            # Named as users import it: hotmesh.NodeDown, not hotmesh._errors.NodeDown.
            name = part.exc_type.__qualname__
            part.exc_type = type(name, (Exception,), {"__module__": "hotmesh"})
    if as_type is not None:
        te.exc_type = as_type
    if isinstance(exc, SyntaxError) and not te.stack:
        return "".join(te.format_exception_only())
    if isinstance(exc, RemoteError) and exc.traceback:
        return _format_remote(te, exc)
    return "".join(te.format())


def is_hotmesh_file(filename: str) -> bool:
    """True for a source file of the hotmesh package (this installation's),
    the demo application excepted."""
    return filename.startswith(_HOTMESH_DIR) and not filename.startswith(_DEMO_DIR)


def _chain(te: traceback.TracebackException) -> list[traceback.TracebackException]:
    """``te`` and every exception chained to it (causes and contexts)."""
    seen: list[traceback.TracebackException] = []
    todo = [te]
    while todo:
        part = todo.pop()
        if any(part is other for other in seen):
            continue
        seen.append(part)
        todo += [p for p in (part.__cause__, part.__context__) if p is not None]
    return seen


def _format_remote(te: traceback.TracebackException, exc: RemoteError) -> str:
    """Local frames, then the remote node's (hotmesh's left out), then the message once."""
    local = "".join(te.stack.format())
    frames = remote_frames(exc.traceback)
    text = "Traceback (most recent call last):\n" + local
    if frames:
        text += f"  --- on {exc.node} ---\n" + "".join(frames)
    return text + f"hotmesh.RemoteError: {exc.exc_type}: {exc.message} (on {exc.node})\n"


_FRAME = re.compile(r'^  File "(?P<file>[^"]*)", line \d+')


def remote_frames(text: str) -> list[str]:
    """The frame blocks of a traceback text's last section, without hotmesh's frames.

    A frame block is its ``  File ...`` line and the indented source and
    caret lines under it. hotmesh's frames are recognised by path: a
    ``hotmesh/<one of this package's modules>`` part (the remote node may
    have hotmesh installed elsewhere).
    """
    section = text.rsplit("Traceback (most recent call last):\n", 1)[-1]
    blocks: list[list[str]] = []
    for line in section.splitlines(keepends=True):
        if _FRAME.match(line):
            blocks.append([line])
        elif line.startswith("    ") and blocks:
            blocks[-1].append(line)
        elif not line.startswith("  "):
            break  # the exception lines: the message is shown once, by the caller
    keep = [b for b in blocks if not _REMOTE_HOTMESH.search(_FRAME.match(b[0])["file"])]  # type: ignore[index]
    return [line for block in keep for line in block]

"""Compiling a console cell like the interactive console, and formatting the
tracebacks of session code (no I/O; registers cell sources in linecache)."""

from __future__ import annotations

import ast
import linecache
import os
import traceback
import types
from dataclasses import dataclass

CO_COROUTINE = 0x80
_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
REPR_LIMIT = 256 * 1024
_CONSOLE_DIR = os.path.dirname(__file__)
_INTERNAL_TAIL = (
    "hotmesh/_console/interrupt.py",
    "hotmesh/_console/output.py",
    "hotmesh/_console/session.py",
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
    exc: BaseException, skip_files: tuple[str, ...], as_type: type | None = None
) -> str:
    """The traceback text of ``exc`` without the console's own frames.

    Leading frames from ``skip_files`` (the executor, this module, ast) are
    dropped so the user sees their cell first, as in the standard console.
    ``as_type`` replaces the exception's type name (our interrupt subclass
    shows as KeyboardInterrupt).
    """
    skip = (*skip_files, __file__, ast.__file__)
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in skip:
        tb = tb.tb_next
    te = traceback.TracebackException(type(exc), exc, tb, compact=True)
    # Our interruptible sleep raises from inside: that frame is noise to the user.
    te.stack = traceback.StackSummary.from_list(
        [frame for frame in te.stack if not frame.filename.endswith(_INTERNAL_TAIL)]
    )
    if as_type is not None:
        te.exc_type = as_type
    if isinstance(exc, SyntaxError) and not te.stack:
        return "".join(te.format_exception_only())
    return "".join(te.format())

"""The ``hotmesh attach`` front end: a ptpython REPL whose statements run on a
node through a ConsoleClient (terminal I/O).

ptpython has no executor API (prompt-toolkit/ptpython#539), so this subclasses
``PythonRepl`` and overrides semi-private hooks, pinned to ptpython 3.0.x:
``eval`` (run remotely), ``_handle_exception`` and
``_handle_keyboard_interrupt`` (remote outcomes), ``_add_to_namespace`` /
``_remove_from_namespace`` (nothing local to add) and ``_on_input_timeout``
(it would run local jedi signatures on every pause). The pipe-input tests in
tests/unit/console/test_repl.py cover each of them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.application.current import set_app
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import AnyFormattedText
from ptpython.prompt_style import PromptStyle
from ptpython.repl import PythonRepl, ReplExit

from hotmesh._console import protocol
from hotmesh._console.client import ConsoleClient, as_output
from hotmesh._console.protocol import Message
from hotmesh._errors import SessionClosed

Write = Callable[[str, str], None]
# Typed alone, these detach at once (the node never sees them).
_DETACH = frozenset({"exit()", "quit()", "exit", "quit"})


def _late_outcome(message: Message) -> str:
    """What to show when a statement nobody waits for any more ends."""
    status = message.get("status", "?")
    text = f"\n[a statement left running ended: {status}]\n"
    traceback = message.get("traceback", "")
    if status != "ok" and traceback:
        text += traceback if traceback.endswith("\n") else traceback + "\n"
    return text


class RemoteResult:
    """An expression's value as the node printed it (ptpython shows its repr)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class RemoteException(Exception):
    """A statement failed on the node; carries the remote traceback text."""

    def __init__(self, exc_type: str, traceback: str) -> None:
        super().__init__(exc_type)
        self.exc_type = exc_type
        self.traceback = traceback


class NodePrompt(PromptStyle):
    """``billing@host1 [3]>`` : the node's name and the statement number."""

    def __init__(self, repl: RemoteRepl) -> None:
        self.repl = repl

    def in_prompt(self) -> AnyFormattedText:
        return [
            ("class:in", f"{self.repl.node_name} ["),
            ("class:in.number", f"{self.repl.current_statement_index}"),
            ("class:in", "]> "),
        ]

    def in2_prompt(self, width: int) -> AnyFormattedText:
        return [("class:in", "...: ".rjust(width))]

    def out_prompt(self) -> AnyFormattedText:
        return [
            ("class:out", "Out["),
            ("class:out.number", f"{self.repl.current_statement_index}"),
            ("class:out", "]:"),
            ("", " "),
        ]


class RemoteCompleter(Completer):
    """Completions from the node's live namespace, on Tab only (one round trip each)."""

    def __init__(self, client: ConsoleClient) -> None:
        self._client = client

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        if not complete_event.completion_requested:
            return
        try:
            items = self._client.complete(document.text, document.cursor_position)
        except Exception:
            return
        for name, start, kind in items:
            yield Completion(name, start_position=start, display_meta=kind)


class RemoteRepl(PythonRepl):
    """A ptpython REPL that runs every statement on a node.

    Nothing runs locally: ``exit()``/``quit()`` and Ctrl-D detach (the node
    ends the session), Ctrl-C while a statement runs interrupts it on the
    node (a third Ctrl-C stops waiting for it), and output and ``input()``
    stream through the session.

    Args:
        client: an opened ConsoleClient.
        write: where remote output goes (default: this process's stdout/stderr).
        read_line: answers the remote ``input()`` (default: a line from stdin).
        **kwargs: ptpython's ``PythonInput`` options (``input``, ``output``,
            ``history_filename``, ``vi_mode``...).
    """

    def __init__(
        self,
        client: ConsoleClient,
        *,
        write: Write | None = None,
        read_line: Callable[[], str | None] | None = None,
        **kwargs: Any,
    ) -> None:
        self.client = client
        self.node_name = client.node
        self.lost: str | None = None
        self._stdout: TextIO = sys.stdout
        self._stderr: TextIO = sys.stderr
        self._write = write or self._write_streams
        self._read_line = read_line or self._read_stdin
        self._local: dict[str, Any] = {}
        super().__init__(
            get_globals=lambda: self._local,
            _completer=RemoteCompleter(client),
            **kwargs,
        )
        self.all_prompt_styles["node"] = NodePrompt(self)
        self.prompt_style = "node"
        self.complete_while_typing = False
        self.show_signature = False
        self.show_docstring = False
        self.enable_dictionary_completion = False
        self.enable_system_bindings = False  # Meta-! would run shell commands locally
        self.title = f"hotmesh {self.node_name}"
        client.on_unsolicited = self._late
        client.on_lost = self._lost

    # -- ptpython hooks --------------------------------------------------------

    def run(self) -> None:
        """The REPL loop; Ctrl-C presses between statements are dropped, never raised."""
        with self.client.counting_sigint():
            super().run()

    def eval(self, line: str) -> object:
        """Run ``line`` on the node; return its last expression's value for display."""
        if line.strip() in _DETACH:
            # Detach here, whatever the session is doing: never queued behind
            # a statement, never dependent on the node's answer.
            raise ReplExit
        last: list[str] = []

        def on_result(text: str) -> None:
            # Every echoed value but the last one is printed as it comes, in
            # order with the output; the last one gets ptpython's Out[n].
            if last:
                self._write("stdout", last.pop() + "\n")
            last.append(text)

        try:
            outcome = self.client.execute(
                line, on_output=self._write, on_result=on_result, on_input=self._read_line
            )
        except SessionClosed as exc:
            self.lost = str(exc)
            self._write("stderr", f"\n{exc}\n")
            raise ReplExit from exc
        if outcome.status == "exit":
            raise ReplExit
        if outcome.status == "abandoned":
            self._write(
                "stderr",
                f"[left running on {self.node_name} in thread {outcome.thread}; its output "
                "and outcome will show up here. This session goes on in a fresh thread, "
                "with the same variables]\n",
            )
            return None
        if outcome.status == "interrupted":
            self._write("stderr", outcome.traceback or "KeyboardInterrupt\n")
            return None
        if outcome.status == "error":
            raise RemoteException(outcome.exc_type, outcome.traceback)
        return RemoteResult(last[0]) if last else None

    def _handle_exception(self, e: BaseException) -> None:
        if isinstance(e, RemoteException):
            self._write("stderr", e.traceback if e.traceback.endswith("\n") else e.traceback + "\n")
        else:
            super()._handle_exception(e)

    def _handle_keyboard_interrupt(self, e: KeyboardInterrupt) -> None:
        self._write(
            "stderr",
            "\n[stopped waiting: the node did not answer; the statement may still run "
            "there and its output will show up here]\n",
        )

    def _add_to_namespace(self) -> None:
        pass

    def _remove_from_namespace(self) -> None:
        pass

    def _on_input_timeout(self, buff: Any) -> None:
        pass

    # -- output ----------------------------------------------------------------

    def _write_streams(self, name: str, text: str) -> None:
        stream = self._stderr if name == "stderr" else self._stdout
        stream.write(text)
        stream.flush()

    def _read_stdin(self) -> str | None:
        line = sys.stdin.readline()
        return line if line else None

    def _lost(self, reason: str) -> None:
        self.lost = reason
        self._late(protocol.out(0, "stderr", f"\n[{reason}; Ctrl-D leaves]\n"))

    def _late(self, message: Message) -> None:
        """Output of a statement nobody waits for (a thread it started, or a
        statement we stopped waiting for), and the node's notices: printed above
        the prompt."""
        if message.get("t") == protocol.NOTICE:
            message = as_output(message)
        kind = message.get("t")
        if kind == protocol.DONE:
            name, text = "stderr", _late_outcome(message)
        elif kind == protocol.OUT:
            name, text = message.get("name", "stdout"), message.get("text", "")
        else:
            return
        app = self.app
        loop = getattr(app, "loop", None)
        if not app.is_running or loop is None:
            self._write(name, text)
            return

        def show() -> None:
            with set_app(app):
                run_in_terminal(lambda: self._write(name, text))

        loop.call_soon_threadsafe(show)

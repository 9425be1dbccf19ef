"""The console protocol catalogue: one declaration per kind, used everywhere, documented."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from hotmesh._console import protocol

ROOT = Path(__file__).resolve().parents[3]
CONSOLE_SRC = ROOT / "src" / "hotmesh" / "_console"


def _documented_kinds(page: str) -> set[str]:
    text = (ROOT / "docs" / "reference" / page).read_text(encoding="utf-8")
    return set(re.findall(r"^\| `(console\.[a-z_]+)` \|", text, flags=re.MULTILINE))


def test_catalogue_holds_the_seventeen_kinds_of_protocol_version_1() -> None:
    assert len(protocol.KINDS) >= 17
    assert {protocol.OPEN, protocol.EXEC, protocol.DONE, protocol.WHERE} <= set(protocol.KINDS)
    assert protocol.KINDS[protocol.WHERE].direction == "both"


def test_every_kind_is_in_the_console_protocol_reference_and_the_wire_page() -> None:
    assert _documented_kinds("console-protocol.md") == set(protocol.KINDS)
    assert _documented_kinds("wire-protocol.md") == set(protocol.KINDS)


def test_the_console_protocol_reference_names_every_field_of_each_kind() -> None:
    text = (ROOT / "docs" / "reference" / "console-protocol.md").read_text(encoding="utf-8")
    named: dict[str, set[str]] = {}
    for kind, cell in re.findall(r"^\| `(console\.[a-z_]+)` \| ([^|]*)\|", text, flags=re.M):
        named.setdefault(kind, set()).update(re.findall(r"`([a-z_]+)`", cell))
    for kind, declared in protocol.KINDS.items():
        fields = {field.strip("[]") for field in declared.fields}
        assert fields - named[kind] == set(), kind


def test_no_console_module_spells_a_kind_outside_the_catalogue() -> None:
    for path in CONSOLE_SRC.glob("*.py"):
        if path.name == "protocol.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        literals = [
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith("console.")
        ]
        assert literals == [], f"{path.name} spells {literals}: use hotmesh._console.protocol"


def test_declaring_a_kind_twice_or_outside_the_console_namespace_is_refused() -> None:
    with pytest.raises(ValueError, match="declared already"):
        protocol.declare(protocol.EXEC, "to node", "sid", "elsewhere")
    with pytest.raises(ValueError, match=r"start with 'console\.'"):
        protocol.declare("notice", "to client", "sid", "elsewhere")


@pytest.mark.parametrize(
    "message",
    [
        protocol.open_request(1, user="u", host="h", pid=2, via="eval"),
        protocol.exec_request("s", 1, "1", name="f.py"),
        protocol.interrupt_request("s", 3),
        protocol.input_reply("s", 1, None),
        protocol.complete_request("s", 1, "x.", 2),
        protocol.where_request("s", 1),
        protocol.ping("s"),
        protocol.close_request("s", 1),
        protocol.opened(1, node="n", pid=2, python="3.11"),
        protocol.out(1, "stdout", "hi"),
        protocol.result(1, "42"),
        protocol.input_request(1),
        protocol.done(1, "error", 0.5, "ValueError", "tb"),
        protocol.completions("s", 1, [("a", 0, "function")], "ok"),
        protocol.where_reply(""),
        protocol.pong("s", busy=False),
        protocol.closed(),
        protocol.error("no", gone=True),
    ],
)
def test_builders_only_use_the_declared_fields(message: dict[str, object]) -> None:
    declared = {f.strip("[]") for f in protocol.KINDS[str(message["t"])].fields}
    assert set(message) - {"t"} <= declared

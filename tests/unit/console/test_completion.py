"""Completion: dotted names answered statically (no jedi, no application code
run), everything else by jedi, loaded gently by the first completion that needs it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

from hotmesh._console import completion
from hotmesh._console.static_completion import complete_static


class Trap:
    """Every hook that would run application code counts its calls."""

    calls = 0

    def __init__(self) -> None:
        self.plain = 1

    @property
    def computed(self) -> int:
        Trap.calls += 1
        return 1

    @property
    def __class__(self) -> type:  # type: ignore[override]
        Trap.calls += 1
        return Trap

    def __getattr__(self, name: str) -> int:
        Trap.calls += 1
        return 1

    def __dir__(self) -> list[str]:
        Trap.calls += 1
        return []

    def method(self) -> None:
        return None


def names(items: list[tuple[str, int, str]] | None) -> list[str]:
    assert items is not None
    return [name for name, _, _ in items]


def test_names_in_scope_builtins_and_keywords_with_their_kinds() -> None:
    ns: dict[str, Any] = {"os": os, "order_total": 3}
    items = complete_static(ns, "x = or", 6)
    assert items is not None
    assert ("order_total", -2, "instance") in items
    assert ("ord", -2, "function") in items
    assert ("or", -2, "keyword") in items
    assert ("os", -1, "module") in (complete_static(ns, "o", 1) or [])


def test_attributes_of_modules_classes_and_instances() -> None:
    ns: dict[str, Any] = {"os": os, "Trap": Trap, "t": Trap()}
    assert names(complete_static(ns, "os.path.jo", 10)) == ["join"]
    assert ("join", -2, "function") in (complete_static(ns, "os.path.jo", 10) or [])
    assert names(complete_static(ns, "t.", 2)) == ["calls", "computed", "method", "plain"]
    assert names(complete_static(ns, "Trap.me", 7)) == ["method"]
    assert "__init__" in names(complete_static(ns, "t.__i", 5))  # private once typed


def test_no_application_code_runs_and_a_property_is_left_to_jedi() -> None:
    Trap.calls = 0
    ns: dict[str, Any] = {"t": Trap()}
    complete_static(ns, "t.", 2)
    complete_static(ns, "t.pl", 4)
    assert complete_static(ns, "t.computed.", 11) is None  # only running it would tell
    assert complete_static(ns, "t.missing.", 10) == []
    assert Trap.calls == 0


def test_a_lazy_module_offers_the_names_of_its_all() -> None:
    import hotmesh

    assert "UpgradeError" in names(complete_static({"hotmesh": hotmesh}, "hotmesh.Upg", 11))


@pytest.mark.parametrize(
    "code",
    ["import o", "from os import pa", "f(x).", "d['k'].", "'os.pa", "1.", "[].app"],
)
def test_imports_calls_subscripts_strings_and_literals_go_to_jedi(code: str) -> None:
    assert complete_static({"f": len, "d": {}}, code, len(code)) is None


def test_a_dotted_name_is_completed_without_loading_jedi() -> None:
    script = textwrap.dedent(
        """
        import os, sys
        from hotmesh._console.completion import complete
        items = complete({"os": os}, "os.path.jo", 10)
        assert items == [("join", -2, "function")], items
        assert "jedi" not in sys.modules and "parso" not in sys.modules
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_jedi_loads_gently_on_the_first_completion_that_needs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(completion, "jedi_ready", threading.Event())
    seen: list[tuple[float, bool]] = []
    real = completion._load_jedi

    def watched() -> Any:
        pausing = any(isinstance(f, completion._PauseBeforeImports) for f in sys.meta_path)
        seen.append((sys.getswitchinterval(), pausing))
        return real()

    monkeypatch.setattr(completion, "_load_jedi", watched)
    interval, finders = sys.getswitchinterval(), list(sys.meta_path)

    assert "os" in names(completion.complete({}, "import o", 8))
    assert completion.jedi_ready.is_set()
    assert seen == [(0.0005, True)]
    assert sys.getswitchinterval() == interval and sys.meta_path == finders
    # Once loaded, jedi runs at full speed.
    assert "path" in names(completion.complete({}, "from os import pa", 17))
    assert seen[1] == (interval, False)

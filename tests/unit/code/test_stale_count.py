"""Stale references found by counting references, without the heap search, agree with it."""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest

import hotmesh.code as code
from hotmesh.code import stale

from .conftest import Pkg

OLD = """
import enum
import functools

VERSION = N

def f():
    return VERSION

def wait(started, event):
    started.set()
    event.wait(10)

@functools.lru_cache
def cached():
    return VERSION

def deco(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return fn(*args)
    return wrapper

class Base:
    def method(self):
        return VERSION

class C(Base):
    SLOT = [1, 2]

    def method(self):
        return super().method()

    @staticmethod
    def static():
        return VERSION

    @classmethod
    def klass(cls):
        return cls

    @property
    def prop(self):
        return VERSION

@deco
def wrapped():
    return VERSION

TABLE = {"f": f, "kinds": [C, (Base,)]}
"""

MORE = """
import dataclasses
import typing

class Color(enum.Enum):
    RED = 1

@dataclasses.dataclass
class Point:
    x: int = 0

    def __repr__(self):
        return super().__repr__()

class Pair(typing.NamedTuple):
    a: int
"""

# What a module outside the old version holds: (source, reported by the heap search).
HOLDERS = {
    "nothing": ("", False),
    "binding": ("from PKG.m import f as HOLD\n", True),
    "list": ("from PKG import m\nHOLD = [m.f]\n", True),
    "set": ("from PKG import m\nHOLD = {m.f}\n", True),
    "dict key": ("from PKG import m\nHOLD = {m.f: 1}\n", False),
    "tuple": ("from PKG import m\nHOLD = (m.f,)\n", False),
    "partial": ("import functools\nfrom PKG import m\nHOLD = functools.partial(m.f)\n", True),
    "bound method": ("from PKG import m\nHOLD = m.C().method\n", True),
    "closure": (
        "from PKG import m\ndef make(g=None):\n    g = m.f\n    return lambda: g\nHOLD = make()\n",
        True,
    ),
    "instance": ("from PKG import m\nHOLD = m.C()\n", True),
    "subclass": ("from PKG import m\nclass HOLD(m.C):\n    pass\n", True),
    "iterator": ("import itertools\nfrom PKG import m\nHOLD = itertools.repeat(m.f)\n", False),
    "wrapper": ("from PKG import m\nHOLD = m.wrapped\n", True),
}


def _found(mod: str) -> list[str]:
    return sorted(str(ref) for ref in code.stale_references(mod))


def _upgrade(pkg: Pkg, holder: str, extra: str = "") -> None:
    pkg.write("m", OLD.replace("N", "1") + extra)
    pkg.write("user", "from PKG import m\n" + holder)
    pkg.imp("user")
    pkg.write("m", OLD.replace("N", "2") + extra)
    code.load_file(pkg.mod("m"), force=True)


@pytest.mark.parametrize("kind", list(HOLDERS))
def test_counting_agrees_with_the_heap_search(
    pkg: Pkg, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, reported = HOLDERS[kind]
    _upgrade(pkg, source)
    counted = _found(pkg.mod("m"))
    with monkeypatch.context() as m:
        m.setattr(stale, "_only_held_by", lambda *args: False)
        searched = _found(pkg.mod("m"))
    assert counted == searched
    assert bool(searched) is reported, searched


def test_an_old_version_held_only_by_itself_is_answered_without_the_heap(
    pkg: Pkg, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Classes with super(), static and class methods, properties, a decorator's
    # wrapper, an lru_cache, tables, an enum, a dataclass and a NamedTuple: every
    # reference is the old version's own.
    _upgrade(pkg, "", MORE)
    searches: list[Any] = []
    real = gc.get_referrers

    def counting(*objs: Any) -> list[Any]:
        searches.append(objs)
        return real(*objs)

    monkeypatch.setattr(gc, "get_referrers", counting)
    assert _found(pkg.mod("m")) == []
    assert searches == []


def test_old_code_running_in_a_thread_is_counted_as_the_heap_search_sees_it(
    pkg: Pkg, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The running frame holds the old function: a reference the count cannot
    # place, so the heap is searched (and frames are not reported).
    pkg.write("m", OLD.replace("N", "1"))
    m = pkg.imp("m")
    started, event = threading.Event(), threading.Event()
    thread = threading.Thread(target=m.wait, args=(started, event))
    thread.start()
    try:
        started.wait(10)
        pkg.write("m", OLD.replace("N", "2"))
        code.load_file(pkg.mod("m"), force=True)
        counted = _found(pkg.mod("m"))
        monkeypatch.setattr(stale, "_only_held_by", lambda *args: False)
        assert counted == _found(pkg.mod("m")) == []
    finally:
        event.set()
        thread.join(10)


def test_an_instance_in_the_old_namespace_is_still_searched_for_and_reported(
    pkg: Pkg,
) -> None:
    # The heap search reports it (it is not one of the old version's holders).
    _upgrade(pkg, "", "\nDEFAULT = C()\n")
    assert _found(pkg.mod("m")) == [f"instances: {pkg.mod('m')}.C holds old {pkg.mod('m')}.C (1)"]

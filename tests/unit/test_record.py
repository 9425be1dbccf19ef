"""``record`` behaves as the dataclasses it replaces on a node's start path."""

from __future__ import annotations

from typing import Any

import pytest

from hotmesh._record import FrozenInstanceError, field, fields, record


@record(frozen=True)
class Point:
    x: int
    y: int = 0


@record
class Box:
    label: str
    items: list[int] = field(default_factory=list)
    note: str = field(default="", repr=False)
    cache: dict[str, int] = field(default_factory=dict, init=False, repr=False)


@record(eq=False)
class Handle:
    name: str


@record(frozen=True)
class Checked:
    value: float

    def __post_init__(self) -> None:
        if self.value <= 0:
            raise ValueError("must be positive")


@record(frozen=True)
class Point3(Point):
    z: int = 0


def test_init_defaults_and_factories_like_a_dataclass() -> None:
    assert (Point(1).x, Point(1).y, Point(1, 2).y, Point(y=3, x=4).x) == (1, 0, 2, 4)
    first, second = Box("a"), Box("b")
    first.items.append(1)
    assert second.items == [] and first.cache == {} and first.cache is not second.cache
    assert Box("c", [5], "n").items == [5]
    with pytest.raises(TypeError):
        Box("c", [5], "n", {})  # type: ignore[call-arg]  # init=False
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]


def test_eq_hash_repr_and_match_args() -> None:
    assert Point(1, 2) == Point(1, 2) and Point(1, 2) != Point(2, 1)
    assert Point(1, 2) != Point3(1, 2)  # another class: never equal
    assert hash(Point(1, 2)) == hash(Point(1, 2)) and len({Point(1, 2), Point(1, 2)}) == 1
    box = Box("a")
    assert box == Box("a")
    with pytest.raises(TypeError):
        hash(box)  # eq without frozen: unhashable, as a dataclass
    assert Handle("h") != Handle("h") and len({Handle("h"), Handle("h")}) == 2
    assert repr(Point(1, 2)) == "Point(x=1, y=2)"
    assert repr(Box("a", [1])) == "Box(label='a', items=[1])"
    matched: Any = Point(5, 6)
    match matched:
        case Point(x, y):
            assert (x, y) == (5, 6)
        case _:
            pytest.fail("no match")


def test_frozen_refuses_assignment_and_deletion() -> None:
    point = Point(1, 2)
    with pytest.raises(FrozenInstanceError):
        point.x = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del point.y  # type: ignore[misc]
    assert point == Point(1, 2)


def test_post_init_inheritance_and_fields() -> None:
    with pytest.raises(ValueError, match="positive"):
        Checked(0)
    assert Checked(1.5).value == 1.5
    assert Point3(1, 2, 3) == Point3(1, 2, 3) and Point3(1).z == 0
    assert [f.name for f in fields(Point3)] == ["x", "y", "z"]
    assert [f.name for f in fields(Box("a"))] == ["label", "items", "note", "cache"]
    with pytest.raises(TypeError):
        fields(object())


def test_a_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError, match="follows"):

        @record
        class Bad:
            a: int = 0
            b: int

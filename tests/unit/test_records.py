"""models.records: the value classes that replace dataclasses on the cold-start path behave as they did."""

from __future__ import annotations

import dataclasses

import pytest

from models.records import FrozenRecord, Record
from services.runtime_config import RuntimeConfig
from tests.factories import make_settings
from utils.settings import Settings


class Point(FrozenRecord):
    __slots__ = ("label", "x", "y")
    _uncompared = frozenset({"label"})

    def __init__(self, x: int, y: int, label: str = "") -> None:
        for name, value in (("x", x), ("y", y), ("label", label)):
            object.__setattr__(self, name, value)


class Box(Record):
    __slots__ = ("items",)

    def __init__(self, items: list[int]) -> None:
        self.items = items


def test_equality_and_hash_are_by_value_of_the_compared_fields() -> None:
    assert Point(1, 2) == Point(1, 2, label="other")
    assert hash(Point(1, 2)) == hash(Point(1, 2, label="other"))
    assert Point(1, 2) != Point(2, 1)
    assert Point(1, 2) != (1, 2)
    assert Box([1]) != Point(1, 2)


def test_repr_names_every_field() -> None:
    assert repr(Point(1, 2, "p")) == "Point(label='p', x=1, y=2)"


def test_replace_copies_with_changes_and_refuses_unknown_fields() -> None:
    point = Point(1, 2, "p")
    moved = point.replace(x=5)
    assert (moved.x, moved.y, moved.label) == (5, 2, "p")
    assert (point.x, point.y) == (1, 2)
    with pytest.raises(TypeError, match="no field 'z'"):
        point.replace(z=1)


def test_a_frozen_record_refuses_assignment_and_deletion_as_a_frozen_dataclass_did() -> None:
    point = Point(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del point.y
    assert point.x == 1


def test_a_mutable_record_may_change() -> None:
    box = Box([1])
    box.items = [2]
    assert box == Box([2])


def test_settings_and_runtime_config_keep_their_defaults_and_value_semantics() -> None:
    settings = make_settings()
    assert Settings(**{name: getattr(settings, name) for name in Settings._fields}) == settings
    assert settings._replace(log_level="DEBUG") != settings
    assert settings._replace(log_level="DEBUG")._replace(log_level="INFO") == settings
    config = RuntimeConfig(default_page_size=5)
    assert config == RuntimeConfig()._replace(default_page_size=5)
    assert config.allowed_formats == ("png", "jpg", "pdf")
    assert {config: 1}[RuntimeConfig(default_page_size=5)] == 1

"""Small value classes without ``@dataclass``: its methods are generated as source text and compiled
when the class is built, at every cold start (a 10-field frozen dataclass costs ~0.7 ms, a 28-field one
~1.8 ms; ``bench/cold_start.py``). A small immutable record with defaults is a ``typing.NamedTuple``
(``Settings``, ``RuntimeConfig``: much cheaper to build). A class with behaviour, private fields or
mutable ones is a ``Record`` subclass: it lists its fields in ``__slots__`` and writes its ``__init__`` by
hand (compiled once, into the package's bytecode); this base gives it what the dataclass gave: equality
and hashing by value, a readable ``repr``, ``replace``, and (``FrozenRecord``) no assignment after
``__init__``.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any, ClassVar, Self


class Record:
    __slots__: tuple[str, ...] = ()
    #: Fields left out of equality and hashing (as ``field(compare=False)`` was).
    _uncompared: ClassVar[frozenset[str]] = frozenset()

    def _compared(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__ if name not in self._uncompared)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash(self._compared())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (``dataclasses.replace``)."""
        unknown = set(changes) - set(self.__slots__)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        return type(self)(**{name: getattr(self, name) for name in self.__slots__} | changes)


class FrozenRecord(Record):
    """A ``Record`` whose fields cannot change after ``__init__`` (which sets them with
    ``object.__setattr__``)."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

"""One small generic registry: named factories (attacks, backward rules, architectures, recipes).

A :class:`Registry` is a ``dict`` (``name in R``, ``R[name]``, ``sorted(R)`` keep working) that refuses a
second registration under one name and answers an unknown name with one line that lists the known ones.
Registries are filled by the modules that define the entries; the module that owns a catalogue imports
those modules at its top, so imports point one way (tests/test_layers.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from bench.errors import unknown_name_error

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """Named entries of one kind (the kind names them in error messages, e.g. ``"attack"``)."""

    def __init__(self, kind: str, entries: dict[str, T] | None = None) -> None:
        super().__init__()
        self.kind = kind
        for name, entry in (entries or {}).items():
            self.add(name, entry)

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name``; a second entry under one name is a programming error."""
        if name in self:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@REG.register("pgd")``."""

        def deco(entry: T) -> T:
            return self.add(name, entry)

        return deco

    def lookup(self, name: str, also_known: list[str] | None = None) -> T:
        """The entry named ``name``, or a :class:`BenchError` naming the known ones (did you mean ...?)."""
        if name not in self:
            raise unknown_name_error(self.kind, name, [*self, *(also_known or [])])
        return self[name]

    def names(self) -> list[str]:
        return sorted(self)


__all__ = ["Registry"]

"""Stable type names for the codec: which attrs classes and enums it may build, and how.

One process-wide registry maps names to classes. A class enters it when decorated with
:func:`record`, registered with ``Codec.register`` (or ``Codec(types=...)``), or encoded once;
its name is pinned by ``@record("name.v1")`` or else ``"module:qualname"``. Decoding looks
names up here and nowhere else: it never imports a module named by data.

A name belongs to one class. A new definition of the same class (same module and qualname: a
reloaded module, a class built by a function called again) takes its name over; any other
class claiming a taken name is a ``ValueError``. A class keeps the names it had, so pinning a
name on a class whose data was written under its default name still decodes that data.
"""

from __future__ import annotations

import enum
import operator
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar, overload

import attrs

__all__ = ["BadData", "Known", "REGISTRY", "Shape", "qualname", "record", "shape_of"]

_C = TypeVar("_C", bound=type[Any])


def qualname(cls: type) -> str:
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


class BadData(Exception):
    """Raised while decoding; the codec turns it into a SnapshotDecodeError naming the data."""


@attrs.frozen(eq=False)
class Shape:
    """How the codec reads and rebuilds one attrs class: its init fields, cached per class."""

    cls: type
    names: tuple[str, ...]  # the fields' attribute names: the keys of the encoded map
    values: Callable[[object], tuple[object, ...]]
    init_keys: tuple[tuple[str, str], ...]  # (attribute name, __init__ keyword)
    required: tuple[str, ...]  # fields without a default

    @classmethod
    def of(cls, record_cls: type) -> Shape:
        fields = [f for f in attrs.fields(record_cls) if f.init]
        names = tuple(f.name for f in fields)
        values: Callable[[object], tuple[object, ...]]
        if not names:
            values = _no_values
        elif len(names) == 1:
            values = _single_value(operator.attrgetter(names[0]))
        else:
            values = operator.attrgetter(*names)
        return cls(
            cls=record_cls,
            names=names,
            values=values,
            init_keys=tuple((f.name, f.alias or f.name) for f in fields),
            required=tuple(f.name for f in fields if f.default is attrs.NOTHING),
        )

    def as_map(self, obj: object) -> dict[str, object]:
        return dict(zip(self.names, self.values(obj), strict=True))

    def build(self, name: str, fields: dict[Any, object]) -> object:
        """A new instance from decoded fields: missing ones take their defaults, unknown ones
        are ignored (a newer writer may have added them)."""
        try:
            kwargs = {key: fields[attr] for attr, key in self.init_keys}
        except KeyError:
            for attr in self.required:
                if attr not in fields:
                    raise BadData(
                        f"its record {name!r} ({qualname(self.cls)}) has no value for field "
                        f"{attr!r}, which has no default: give the field a default so that "
                        "data written before it existed decodes"
                    ) from None
            kwargs = {key: fields[attr] for attr, key in self.init_keys if attr in fields}
        try:
            return self.cls(**kwargs)
        except Exception as exc:
            raise BadData(
                f"{qualname(self.cls)} rejected the fields stored for record {name!r} "
                f"({type(exc).__name__}: {exc})"
            ) from exc


def _no_values(obj: object) -> tuple[object, ...]:
    return ()


def _single_value(get: Callable[[object], object]) -> Callable[[object], tuple[object, ...]]:
    return lambda obj: (get(obj),)


_SHAPES: dict[type, Shape | None] = {}


def shape_of(cls: type) -> Shape | None:
    """The shape of an attrs class, or None for any other type (cached either way)."""
    try:
        return _SHAPES[cls]
    except KeyError:
        shape = Shape.of(cls) if attrs.has(cls) else None
        _SHAPES[cls] = shape
        return shape


@attrs.frozen(eq=False)
class Known:
    """A registered class and the name it is encoded under."""

    cls: type
    name: str
    shape: Shape | None  # None for an enum


class _Registry:
    """The process-wide map between stable type names and classes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_name: dict[str, type] = {}
        self.by_class: dict[type, Known] = {}

    def known(self, cls: type) -> Known | None:
        """The registration of ``cls``, registering it under its default name on first use;
        None for a type that is neither an attrs class nor an enum."""
        found = self.by_class.get(cls)
        if found is not None:
            return found
        if not (attrs.has(cls) or issubclass(cls, enum.Enum)):
            return None
        return self.register(cls, None)

    def register(self, cls: type, pinned: str | None) -> Known:
        if not isinstance(cls, type) or not (attrs.has(cls) or issubclass(cls, enum.Enum)):
            raise TypeError(
                f"the durable codec registers attrs classes and enums, not {cls!r}: decorate "
                "the class with @attrs.frozen (below @dur.record, so record() sees an attrs "
                "class)"
            )
        with self._lock:
            current = self.by_class.get(cls)
            if current is not None and (pinned is None or pinned == current.name):
                return current
            name = pinned if pinned is not None else f"{cls.__module__}:{cls.__qualname__}"
            holder = self.by_name.get(name)
            if holder is not None and holder is not cls and not _redefines(cls, holder):
                raise ValueError(
                    f"type name {name!r} already belongs to {qualname(holder)}, so "
                    f"{qualname(cls)} cannot have it: pin a distinct name on one of them with "
                    "@dur.record('some.name.v1')"
                )
            known = Known(cls=cls, name=name, shape=shape_of(cls))
            self.by_name[name] = cls
            self.by_class[cls] = known
            return known


def _redefines(cls: type, holder: type) -> bool:
    return cls.__module__ == holder.__module__ and cls.__qualname__ == holder.__qualname__


REGISTRY: Final = _Registry()


@overload
def record(name: str, /) -> Callable[[_C], _C]: ...
@overload
def record(cls: _C, /) -> _C: ...
@overload
def record() -> Callable[[_C], _C]: ...
def record(name_or_cls: str | type[Any] | None = None, /) -> Any:
    """Register an attrs class (or an enum) with the durable codec, optionally pinning its name.

    ::

        @dur.record("payment.v1")
        @attrs.frozen
        class Payment:
            tx_id: str
            amount: int

    Stored data names the class by this name, so the class may move or be renamed as long as
    the pinned name stays. Bare ``@dur.record`` keeps the default name, ``"module:qualname"``.
    Decorating makes the class known for decoding as soon as its module is imported (an
    undecorated class only once it is encoded or registered). Raises ``TypeError`` for anything
    but an attrs class or an enum (put ``@dur.record`` above ``@attrs.frozen``) and
    ``ValueError`` if another class already has the name.
    """
    if isinstance(name_or_cls, type):
        REGISTRY.register(name_or_cls, None)
        return name_or_cls
    if name_or_cls is not None and (not isinstance(name_or_cls, str) or not name_or_cls):
        raise TypeError(f"record() takes a non-empty type name, got {name_or_cls!r}")
    pinned = name_or_cls

    def decorate(cls: _C) -> _C:
        REGISTRY.register(cls, pinned)
        return cls

    return decorate

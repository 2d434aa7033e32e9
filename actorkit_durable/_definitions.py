"""What a runtime may run and decode: definitions checked before anything opens, and
``dur.App``, which bundles them."""

from __future__ import annotations

import enum
import logging
import sys
from collections.abc import Iterable
from typing import Any

import attrs

from ._codec import Codec
from ._persistent import (
    PersistentActor,
)
from ._process import ProcessDef
from ._signals import SignalDef, signals_of

logger = logging.getLogger("actorkit_durable")


def _register_module_records(definitions: Definitions) -> None:
    """Make the attrs classes and enums defined at the top level of the modules that define
    the processes, actors and signals known to the codec, so that a process's inputs and step
    results decode after a restart without ``@dur.record`` (nothing is imported: the modules
    are loaded already). Classes elsewhere are known once encoded, or with ``@dur.record``."""
    functions: list[object] = [d.fn for d in definitions.processes.values()]
    functions += [d.handle for d in definitions.actors.values()]
    names = {getattr(f, "__module__", None) for f in functions}
    names |= {s.data.__module__ for s in definitions.signals.values() if s.data is not None}
    for name in sorted(n for n in names if isinstance(n, str)):
        module = sys.modules.get(name)
        for value in list(vars(module).values()) if module is not None else ():
            if (
                isinstance(value, type)
                and value.__module__ == name
                and (attrs.has(value) or issubclass(value, enum.Enum))
            ):
                try:
                    Codec.register(value)
                except ValueError:  # its name is taken by another class: it stays unknown
                    logger.warning("the codec cannot register %r: its name is taken", value)


@attrs.frozen
class Definitions:
    """What a runtime may run and decode, checked before anything opens."""

    actors: dict[str, PersistentActor[Any, Any]]
    signals: dict[str, SignalDef[Any]]
    processes: dict[str, ProcessDef[Any]] = attrs.Factory(dict)

    @classmethod
    def of(
        cls, actors: Iterable[object], signals: Iterable[object], processes: Iterable[object] = ()
    ) -> Definitions:
        by_process: dict[str, ProcessDef[Any]] = _by_path(
            processes, ProcessDef, "processes", "durable process",
            "define it with @dur.process(path) on an async def",
        )  # fmt: skip
        by_path: dict[str, PersistentActor[Any, Any]] = _by_path(
            actors, PersistentActor, "actors", "persistent actor",
            "define it with dur.persistent_actor(path, init=..., handle=...)",
        )  # fmt: skip
        for path in by_path.keys() & by_process.keys():
            raise ValueError(
                f"open_runtime(): {path!r} is the path of both a persistent actor and a "
                "process; give each its own"
            )
        by_signal: dict[str, SignalDef[Any]] = {}
        for item in signals:
            for signal in signals_of(item):
                _add_signal(by_signal, signal)
        return cls(by_path, by_signal, by_process)


def _by_path(
    items: Iterable[object], kind: type[Any], argument: str, what: str, fix: str
) -> dict[str, Any]:
    """``items`` (all instances of ``kind``) by path; a TypeError or ValueError naming them."""
    found: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, kind):
            raise TypeError(f"open_runtime({argument}=...): {item!r} is not a {what}; {fix}")
        known = found.get(item.path)
        if known is not None and known is not item:
            raise ValueError(
                f"open_runtime({argument}=...): two of them share the path {item.path!r} "
                f"({known!r} and {item!r}); give each its own"
            )
        found[item.path] = item
    return found


@attrs.frozen(init=False)
class App:
    """Definitions bundled for ``open_runtime(store, app=app)`` and the command line."""

    processes: tuple[ProcessDef[Any], ...]
    signals: tuple[object, ...]
    actors: tuple[PersistentActor[Any, Any], ...]

    def __init__(
        self,
        processes: Iterable[ProcessDef[Any]] = (),
        signals: Iterable[object] = (),
        actors: Iterable[PersistentActor[Any, Any]] = (),
    ) -> None:
        self.__attrs_init__(tuple(processes), tuple(signals), tuple(actors))
        Definitions.of(self.actors, self.signals, self.processes)  # errors now, not at open


def _add_signal(known: dict[str, SignalDef[Any]], signal: SignalDef[Any]) -> None:
    other = known.get(signal.path)
    if other is not None and other is not signal and other.data is not signal.data:
        raise ValueError(
            f"signals {other.name} and {signal.name} share the path {signal.path!r} with "
            "different data classes; give each its own path"
        )
    known.setdefault(signal.path, signal)

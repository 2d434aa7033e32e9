"""``actorkit.testing.run``: a seeded, mock-clocked ``trio.run`` that records events."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import attrs
import trio
import trio.testing

from .._events import Event
from .._system import _Ambient, ambient

T = TypeVar("T")


@attrs.frozen
class RunResult(Generic[T]):
    """What ``run`` returns: the program's result and every event its systems emitted."""

    value: T
    events: tuple[Event, ...]


def trio_scheduler_rng() -> random.Random:
    """The ``random.Random`` trio uses for its scheduling choices.

    trio has no public hook to seed its scheduler; this private attribute is it. The pinned
    trio upper bound and a test keep it honest.
    """
    from trio._core import _run as trio_run_module

    rng = trio_run_module._r
    if not isinstance(rng, random.Random):  # pragma: no cover - guards a trio upgrade
        raise RuntimeError("trio._core._run._r is no longer a random.Random; update actorkit")
    return rng


def run(main: Callable[[], Awaitable[T]], *, seed: int) -> RunResult[T]:
    """Run ``main()`` under ``MockClock(autojump_threshold=0)``, everything seeded by ``seed``.

    Every actor system the program opens without an explicit ``rng`` gets one seeded from
    ``seed``; trio's own scheduler choices are seeded too, and every event is recorded. The
    same program with the same seed therefore produces the same events, every run, and a
    30-second timer takes no wall time. trio's scheduler state is restored afterwards.
    """
    events: list[Event] = []
    scheduler = trio_scheduler_rng()
    saved = scheduler.getstate()
    scheduler.seed(seed)

    async def wrapper() -> T:
        token = ambient.set(_Ambient(seed=seed, on_event=events.append))
        try:
            return await main()
        finally:
            ambient.reset(token)

    try:
        value = trio.run(wrapper, clock=trio.testing.MockClock(autojump_threshold=0))
    finally:
        scheduler.setstate(saved)
    return RunResult(value=value, events=tuple(events))

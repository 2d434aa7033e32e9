"""Small rules every store applies the same way (kept here so the stores cannot drift)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, TypeVar

import trio

from ._protocol import KEEP, Commit, Keep, ProcessRecord, Timer

T = TypeVar("T")


def pick(value: T | Keep, stored: T) -> T:
    """A commit field's new value: ``stored`` when the commit says ``KEEP``."""
    return stored if value is KEEP else value


def due_at(base: float | None, timers: Iterable[Timer], ready_at: float | None) -> float | None:
    """A process's due time after a commit: the earliest of what is given (None: never)."""
    times = [t for t in (base, ready_at, *(timer.fire_at for timer in timers)) if t is not None]
    return min(times, default=None)


def check_commit(process_id: str, journal_length: int, commit: Commit) -> str | None:
    """What is wrong with a commit's journal rows, consumed seqs or timers, or None."""
    for offset, entry in enumerate(commit.journal):
        if entry.seq != journal_length + offset:
            return (
                f"journal rows for {process_id!r} must continue at seq "
                f"{journal_length + offset}, got seq {entry.seq}"
            )
    if len(set(commit.consume)) != len(commit.consume):
        return f"the commit for {process_id!r} consumes a signal twice"
    if commit.timers is not KEEP and len({t.timer_id for t in commit.timers}) != len(commit.timers):
        return f"the commit for {process_id!r} has two timers with one timer_id"
    return None


def sorted_timers(timers: Iterable[Timer]) -> tuple[Timer, ...]:
    """Timers in the order stores return them: by fire time, then id."""
    return tuple(sorted(timers, key=lambda timer: (timer.fire_at, timer.timer_id)))


def lease_lost_message(commit: Commit, found: int | None) -> str:
    if found is None:
        return f"cannot commit for {commit.process_id!r}: no such process"
    return (
        f"cannot commit for {commit.process_id!r} at lease epoch {commit.epoch}: it was "
        f"claimed since (epoch {found}), so another runner owns it; stop running it here"
    )


NO_CHANGE: Final = 0
"""A write that changes nothing a waiter or a runner looks at."""
OBSERVED: Final = 1
"""A write that changes a process's status, due time or lease (``Store.version`` grows)."""
WORK: Final = 2
"""A write that may make a process claimable, or change when one is (``Store.work_version``
grows too)."""


def change_level(before: ProcessRecord | None, after: ProcessRecord) -> int:
    """How much a write that turned ``before`` (None: a new process) into ``after`` changed."""
    claimable = after.due_at is not None and after.lease_owner is None
    if before is None:
        return WORK if claimable else OBSERVED
    if (after.status, after.due_at, after.lease_owner) == (
        before.status,
        before.due_at,
        before.lease_owner,
    ):
        return NO_CHANGE
    if claimable and (after.due_at != before.due_at or before.lease_owner is not None):
        return WORK
    return OBSERVED


class Counter:
    """A counter tasks can wait to see grow (no polling)."""

    __slots__ = ("value", "_grew")

    def __init__(self) -> None:
        self.value = 0
        self._grew = trio.Event()

    def bump(self) -> None:
        self.value += 1
        self._grew.set()
        self._grew = trio.Event()

    async def wait_past(self, seen: int) -> int:
        """Wait until ``value > seen`` and return it; a checkpoint even when it already is."""
        if self.value > seen:
            await trio.lowlevel.checkpoint()
        while self.value <= seen:
            await self._grew.wait()
        return self.value


class ChangeCounters:
    """A store's ``version`` (``changes``) and ``work_version`` (``work``)."""

    __slots__ = ("changes", "work")

    def __init__(self) -> None:
        self.changes = Counter()
        self.work = Counter()

    def bump(self, level: int) -> None:
        if level >= OBSERVED:
            self.changes.bump()
        if level >= WORK:
            self.work.bump()

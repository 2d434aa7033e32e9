"""One timer service per actor system: ask timeouts and ``tools.schedule`` timers.

A binary heap of ``(deadline, seq, entry)`` served by a single task. ``seq`` breaks ties, so
entries with exactly equal deadlines fire in the order they were added, on every run (trio
itself orders equal deadlines by memory address). Cancelled entries are dropped lazily when
they reach the top of the heap, so adding and cancelling cost no scheduler work.
"""

from __future__ import annotations

import heapq
import math
from typing import Protocol

import trio


class TimerEntry(Protocol):
    def _fire(self) -> None: ...

    def _pending(self) -> bool: ...


COMPACT_MIN = 256
"""Heap size below which cancelled entries are never compacted away."""


class TimerService:
    __slots__ = ("_heap", "_seq", "_scope", "_stale", "_running")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerEntry]] = []
        self._seq = 0
        self._scope: trio.CancelScope | None = None
        self._stale = 0
        # Made up front, so ``stop`` before ``run`` has started still ends it at once.
        self._running = trio.CancelScope(shield=True)

    def discard(self) -> None:
        """An entry will never fire (an answered ask): drop such entries once they dominate.

        Without this, every answered ask would hold its entry until its deadline passed.
        """
        self._stale += 1
        heap = self._heap
        if self._stale > COMPACT_MIN and self._stale * 2 > len(heap):
            self._heap[:] = [item for item in heap if item[2]._pending()]
            heapq.heapify(heap)
            self._stale = 0

    def add(self, deadline: float, entry: TimerEntry) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, entry))
        scope = self._scope
        if scope is not None and deadline < scope.deadline:
            scope.deadline = deadline

    def __len__(self) -> int:
        """Entries that may still fire."""
        return len(self._heap) - self._stale

    def stop(self) -> None:
        """End ``run`` (it is shielded: timers serve the system's shutdown until the end)."""
        self._running.cancel()

    async def run(self) -> None:
        with self._running:
            await self._serve()

    async def _serve(self) -> None:
        heap = self._heap
        while True:
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                entry = heapq.heappop(heap)[2]
                if entry._pending():
                    entry._fire()
                elif self._stale:
                    self._stale -= 1  # a discarded entry reached its deadline
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None

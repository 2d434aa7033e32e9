"""W4 spawning and stopping idle actors, and the memory an idle actor holds.

actorkit: ``actors`` sequential ``await system.spawn(IDLE)`` (a trivial sync ``init`` and
handler; ``spawn`` returns once ``init`` has run), then ``await ref.stop()`` for each in
spawn order (each returns once that actor has stopped).

Baseline: what a minimal hand-written actor is: a task reading its own bounded memory channel
(buffer 1024, the actors' ``max_inbox``; a deque grows only with content, so the bound costs
nothing while idle), started with ``nursery.start_soon``. Spawning is timed until every task
is parked in ``receive`` (``trio.testing.wait_all_tasks_blocked``), so the baseline pays for
its tasks' first steps as ``spawn`` pays for ``init``. Stopping closes every send channel,
then waits for the nursery, i.e. for every task to exit.

Rates come from a pass without tracing. Memory comes from a second pass under
``tracemalloc``: traced bytes after spawning all of them minus traced bytes before, each read
after ``gc.collect()``, divided by ``actors``. Both sides keep a list of their handles (refs
or send channels), counted in both.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import time
import tracemalloc
from collections.abc import Iterator

import trio
import trio.testing

import actorkit as ak

from . import MAX_INBOX, OVERFLOW
from ._report import Better, Bound, Metric, Sample, Target, Workload

SPAWN_PER_S = "spawn_per_s"
STOP_PER_S = "stop_per_s"
BYTES_PER_ACTOR = "bytes_per_idle_actor"


def _idle_init(ctx: object) -> int:
    return 0


def _ignore(state: int, msg: object, tools: ak.Tools) -> None:
    return None


IDLE = ak.Behavior(
    name="idle", init=_idle_init, handle=_ignore, max_inbox=MAX_INBOX, overflow=OVERFLOW
)


# -- actorkit ------------------------------------------------------------------------------------


async def lifecycle_actorkit(actors: int) -> Sample:
    spawn_rate, stop_rate = await _rates_actorkit(actors)
    return {
        SPAWN_PER_S: spawn_rate,
        STOP_PER_S: stop_rate,
        BYTES_PER_ACTOR: await _memory_actorkit(actors),
    }


async def _rates_actorkit(actors: int) -> tuple[float, float]:
    async with ak.open_actor_system() as system:
        start = time.perf_counter()
        refs = [await system.spawn(IDLE) for _ in range(actors)]
        spawned = time.perf_counter()
        for ref in refs:
            await ref.stop()
        stopped = time.perf_counter()
    return actors / (spawned - start), actors / (stopped - spawned)


async def _memory_actorkit(actors: int) -> float:
    with _tracing():
        async with ak.open_actor_system() as system:
            before = _traced_bytes()
            refs = [await system.spawn(IDLE) for _ in range(actors)]
            grown = _traced_bytes() - before
            for ref in refs:
                await ref.stop()
    return grown / actors


# -- raw trio ------------------------------------------------------------------------------------


async def lifecycle_baseline(actors: int) -> Sample:
    spawn_rate, stop_rate = await _rates_baseline(actors)
    return {
        SPAWN_PER_S: spawn_rate,
        STOP_PER_S: stop_rate,
        BYTES_PER_ACTOR: await _memory_baseline(actors),
    }


async def _rates_baseline(actors: int) -> tuple[float, float]:
    async with trio.open_nursery() as nursery:
        start = time.perf_counter()
        inboxes = _start_tasks(nursery, actors)
        await trio.testing.wait_all_tasks_blocked()
        spawned = time.perf_counter()
        for send_channel in inboxes:
            send_channel.close()
    stopped = time.perf_counter()
    return actors / (spawned - start), actors / (stopped - spawned)


async def _memory_baseline(actors: int) -> float:
    with _tracing():
        async with trio.open_nursery() as nursery:
            before = _traced_bytes()
            inboxes = _start_tasks(nursery, actors)
            await trio.testing.wait_all_tasks_blocked()
            grown = _traced_bytes() - before
            for send_channel in inboxes:
                send_channel.close()
    return grown / actors


def _start_tasks(nursery: trio.Nursery, count: int) -> list[trio.MemorySendChannel[object]]:
    inboxes = []
    for _ in range(count):
        send_channel, receive_channel = trio.open_memory_channel[object](MAX_INBOX)
        nursery.start_soon(_idle_task, receive_channel)
        inboxes.append(send_channel)
    return inboxes


async def _idle_task(receive_channel: trio.MemoryReceiveChannel[object]) -> None:
    async with receive_channel:
        async for _ in receive_channel:
            pass


# -- shared --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _tracing() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def _traced_bytes() -> int:
    gc.collect()
    current, _peak = tracemalloc.get_traced_memory()
    return current


def spawn_stop(actors: int, warmup: int) -> Workload:
    return Workload(
        key="W4",
        title="spawn then stop idle actors; memory per idle actor",
        sizes={"actors": actors},
        metrics=(
            Metric(SPAWN_PER_S, "spawn", "actors/s", Better.HIGHER),
            Metric(STOP_PER_S, "stop", "actors/s", Better.HIGHER),
            Metric(BYTES_PER_ACTOR, "memory per idle actor", "bytes", Better.LOWER),
        ),
        targets=(
            Target(SPAWN_PER_S, Bound("ratio", ">=", 0.5)),
            Target(BYTES_PER_ACTOR, Bound("ratio", "<=", 2.0), aim=Bound("actorkit", "<", 1024)),
        ),
        actorkit=functools.partial(lifecycle_actorkit, actors),
        baseline=functools.partial(lifecycle_baseline, actors),
        warmup_actorkit=functools.partial(lifecycle_actorkit, warmup),
        warmup_baseline=functools.partial(lifecycle_baseline, warmup),
    )

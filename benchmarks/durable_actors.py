"""PA1-PA3 persistent actors on SQLite, against the raw SQLite commit rate of the same disk.

Every run uses a fresh SQLite file in a scratch directory (``tempfile``, so ``$TMPDIR``
chooses the disk) opened by ``dur.open_runtime("sqlite:///...")`` with the store's defaults:
WAL, ``synchronous=FULL`` (an fsync per transaction), group commit of up to ``max_batch``
queued operations per transaction. The persistent actor is a counter: ``init`` returns 0 and
its handler replies ``state + 1`` to a ``Bump`` ask and returns it as the new state, so every
message changes the state and commits a snapshot before its reply goes out.

Baseline (all three): the raw single-row commit rate of ``sqlite3`` on a fresh file in the
same directory, measured in the same run: WAL, ``synchronous=FULL``, one ``BEGIN IMMEDIATE``,
``INSERT`` of a 16-byte row and ``COMMIT`` per row, ``rows`` rows in a worker thread. Every
rate below is divided by it, so a ratio above 1 means more durable messages per second than
bare one-row transactions.

- PA1: one task makes ``messages`` sequential asks to one resident actor (each one commit).
- PA2: ``actors`` actors (activated before the clock starts), one task per actor making
  ``messages`` sequential asks to its own actor, all tasks concurrently: the store's group
  commit puts concurrent snapshots in one transaction. Also reported: the store's mean batch
  (write operations per transaction during the timed part; 1 for the baseline by definition).
- PA3: activation of passivated actors. ``actors`` identities are created once per benchmark
  run (each got one message, then the runtime closed and passivated them all) and reused by
  every repetition. Timed: ``TASKS`` concurrent tasks send one ask each to all of them through
  ``rt.actor(...)`` (each activation claims the identity's lease, loads its snapshot, starts an
  actor, commits the new snapshot); activations/s is ``actors`` over that time. Memory comes
  from separate passes under ``tracemalloc`` over the first ``sample`` identities, after a
  warm-up of ``TASKS`` other identities done the same way (so one-time costs are not counted):
  bytes per *resident* actor (traced growth with all of them resident) and bytes per
  *passivated* actor (traced growth after all of them were activated and then passivated by
  ``max_resident=0``, the runtime still open: what a runtime keeps per identity it has seen;
  no idle timers, whose cancelled entries actorkit drops lazily, see below). The
  memory baseline is a minimal hand-written trio actor as in W4: an idle task reading its own
  memory channel (buffer ``MAX_INBOX``). The memory passes ask with ``timeout=None``: an
  answered ask with a timeout, like a cancelled timer, leaves a stale entry (holding its
  reply or timer, and through it the actor) in actorkit's timer heap until the heap is
  compacted (beyond 256 stale entries): a bounded cost of recent asks and timers that a
  sample of a few thousand would count, up or down, as a cost per actor. Transient state of
  a few tens of KB (trio's deadline heap, dict growth) still shows at ``--quick`` sizes.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import shutil
import sqlite3
import tempfile
import time
import tracemalloc
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import attrs
import trio
import trio.testing

import actorkit as ak
import actorkit_durable as dur

from . import ASK_TIMEOUT, MAX_INBOX
from ._report import Better, Bound, Metric, Sample, Target, Workload, expect

SYNCHRONOUS = "FULL"
"""``PRAGMA synchronous`` of the baseline; the store's default (``SQLiteStore(synchronous=)``)."""
TASKS = 50
"""Concurrent tasks of PA3's activations (and its warm-up size)."""
RAW_ROW = bytes(16)

MESSAGES_PER_S = "messages_per_s"
MEAN_BATCH = "mean_batch"
ACTIVATIONS_PER_S = "activations_per_s"
BYTES_PER_RESIDENT = "bytes_per_resident_actor"
BYTES_PER_PASSIVATED = "bytes_per_passivated_actor"


@attrs.frozen
class DurableSizes:
    """The PA workloads' sizes (``benchmarks.__main__`` picks the full or quick set)."""

    raw_rows: int
    messages: int
    parallel_actors: int
    parallel_messages: int
    passivated_actors: int
    memory_sample: int


FULL = DurableSizes(
    raw_rows=3_000, messages=2_000, parallel_actors=50, parallel_messages=100,
    passivated_actors=10_000, memory_sample=2_000,
)  # fmt: skip
QUICK = DurableSizes(
    raw_rows=200, messages=100, parallel_actors=50, parallel_messages=4,
    passivated_actors=300, memory_sample=200,
)  # fmt: skip


def settings(chosen: list[Workload]) -> dict[str, object]:
    """The header lines of the PA workloads (none if none of them runs)."""
    if not any(workload.key.startswith("PA") for workload in chosen):
        return {}
    store = dur.SQLiteStore(_scratch_root() / "unused.db")  # its defaults; never opened
    return {
        "PA store": f"SQLiteStore defaults, files in {_scratch_root()}: journal_mode=WAL, "
        f"synchronous={store.synchronous}, group commit of up to {store._max_batch} queued "
        "operations per transaction",
        "PA baseline": f"raw sqlite3 {sqlite3.sqlite_version}: journal_mode=WAL, "
        f"synchronous={SYNCHRONOUS}, BEGIN IMMEDIATE + INSERT of {len(RAW_ROW)} bytes + "
        "COMMIT per row; memory: an idle raw-trio task reading its own channel",
    }


# -- the persistent actor ----------------------------------------------------------------------


@attrs.frozen
class Bump:
    reply: ak.Reply[int]


def _first_state(params: dict[str, str]) -> int:
    return 0


def _bump(state: int, msg: Bump, tools: ak.Tools) -> int:
    msg.reply(state + 1)
    return state + 1


COUNTER = dur.persistent_actor("/bench/:id", init=_first_state, handle=_bump)


# -- scratch files -----------------------------------------------------------------------------


def _scratch_root() -> Path:
    return Path(tempfile.gettempdir())


@contextlib.asynccontextmanager
async def _scratch() -> AsyncIterator[Path]:
    """A fresh directory for one run's files, removed afterwards."""
    directory = Path(await trio.to_thread.run_sync(_make_directory))
    try:
        yield directory
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(functools.partial(shutil.rmtree, directory, True))


def _make_directory() -> str:
    return tempfile.mkdtemp(prefix="actorkit-bench-")


def _url(path: Path) -> str:
    return f"sqlite:///{path}"  # an absolute path gives the four slashes of an absolute URL


# -- the baseline ------------------------------------------------------------------------------


async def raw_commit_rate(rows: int) -> float:
    """Single-row transactions per second of bare sqlite3 on a fresh file (see the docstring)."""
    async with _scratch() as directory:
        return await trio.to_thread.run_sync(_raw_commits, directory / "raw.db", rows)


def _raw_commits(path: Path, rows: int) -> float:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        expect(mode == "wal", f"baseline: journal_mode is {mode}")
        connection.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        connection.execute("CREATE TABLE row (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
        start = time.perf_counter()
        for _ in range(rows):
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO row (payload) VALUES (?)", (RAW_ROW,))
            connection.execute("COMMIT")
        elapsed = time.perf_counter() - start
        (count,) = connection.execute("SELECT count(*) FROM row").fetchone()
        expect(count == rows, f"baseline: {count} rows of {rows}")
    finally:
        connection.close()
    return rows / elapsed


async def _raw_rates(rows: int, *keys: str) -> Sample:
    rate = await raw_commit_rate(rows)
    return dict.fromkeys(keys, rate)


# -- PA1: one actor ----------------------------------------------------------------------------


async def one_actor(messages: int) -> Sample:
    async with (
        _scratch() as directory,
        dur.open_runtime(_url(directory / "pa1.db"), actors=[COUNTER]) as rt,
    ):
        ref = await rt.actor(COUNTER, id="one")
        start = time.perf_counter()
        value = await _ask_times(ref, messages)
        elapsed = time.perf_counter() - start
        expect(value == messages, f"PA1: the counter reached {value}, not {messages}")
    return {MESSAGES_PER_S: messages / elapsed}


async def _ask_times(ref: dur.PersistentRef[Bump], messages: int) -> int:
    value = 0
    for _ in range(messages):
        value = await ref.ask(Bump, timeout=ASK_TIMEOUT)
    return value


# -- PA2: many actors in parallel --------------------------------------------------------------


async def parallel_actors(actors: int, messages: int) -> Sample:
    reached: list[int] = []

    async def drive(ref: dur.PersistentRef[Bump]) -> None:
        reached.append(await _ask_times(ref, messages))

    async with (
        _scratch() as directory,
        dur.open_runtime(_url(directory / "pa2.db"), actors=[COUNTER]) as rt,
    ):
        refs = [await rt.actor(COUNTER, id=f"p{index}") for index in range(actors)]
        before = rt.statistics().store
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for ref in refs:
                nursery.start_soon(drive, ref)
        elapsed = time.perf_counter() - start
        after = rt.statistics().store
    expect(reached == [messages] * actors, f"PA2: counters reached {sorted(set(reached))}")
    transactions = after.transactions - before.transactions
    operations = after.operations - before.operations
    return {
        MESSAGES_PER_S: actors * messages / elapsed,
        MEAN_BATCH: operations / transactions if transactions else 0.0,
    }


async def _raw_parallel(rows: int) -> Sample:
    return {MESSAGES_PER_S: await raw_commit_rate(rows), MEAN_BATCH: 1.0}


# -- PA3: activating passivated actors ---------------------------------------------------------


class Population:
    """``actors`` passivated identities ``0 .. actors-1`` in one file, made on first use and
    reused by every run of the workload (each run leaves them passivated again); the file goes
    when the population is garbage collected or the interpreter exits."""

    def __init__(self, actors: int) -> None:
        self.actors = actors
        self._file: Path | None = None

    async def file(self) -> Path:
        if self._file is None:
            directory = await trio.to_thread.run_sync(_make_directory)
            weakref.finalize(self, shutil.rmtree, directory, True)
            file = Path(directory) / "pa3.db"
            async with dur.open_runtime(
                _url(file), actors=[COUNTER], max_resident=self.actors
            ) as rt:
                await _activate_all(rt, range(self.actors))
            self._file = file
        return self._file


async def _activate_all(rt: dur.Runtime, ids: range, timeout: float | None = ASK_TIMEOUT) -> None:
    """One ask to each identity in ``ids`` (activating it), from ``TASKS`` concurrent tasks."""

    async def share(first: int) -> None:
        for index in ids[first::TASKS]:
            ref = await rt.actor(COUNTER, id=str(index))
            await ref.ask(Bump, timeout=timeout)

    async with trio.open_nursery() as nursery:
        for first in range(min(TASKS, len(ids))):
            nursery.start_soon(share, first)


async def activations(population: Population, actors: int, sample: int) -> Sample:
    expect(actors <= population.actors and TASKS + sample <= population.actors, "PA3 sizes")
    url = _url(await population.file())
    async with dur.open_runtime(url, actors=[COUNTER], max_resident=actors) as rt:
        start = time.perf_counter()
        await _activate_all(rt, range(actors))
        elapsed = time.perf_counter() - start
        counted = rt.statistics().activations
        expect(counted == actors, f"PA3: {counted} activations, not {actors}")
    return {
        ACTIVATIONS_PER_S: actors / elapsed,
        BYTES_PER_RESIDENT: await _resident_bytes(url, sample),
        BYTES_PER_PASSIVATED: await _passivated_bytes(url, sample),
    }


async def _resident_bytes(url: str, sample: int) -> float:
    warmup, measured = range(sample, sample + TASKS), range(sample)
    with _tracing():
        async with dur.open_runtime(url, actors=[COUNTER], max_resident=sample + TASKS) as rt:
            await _activate_all(rt, warmup, None)
            before = _traced_bytes()
            await _activate_all(rt, measured, None)
            grown = _traced_bytes() - before
            resident = rt.statistics().resident
            expect(resident == sample + TASKS, f"PA3: {resident} resident actors")
    return grown / sample


async def _passivated_bytes(url: str, sample: int) -> float:
    warmup, measured = range(sample, sample + TASKS), range(sample)
    passivated = _PassivationCounter()
    with _tracing():
        async with dur.open_runtime(
            url, actors=[COUNTER], max_resident=0, idle_after=math.inf, on_event=passivated
        ) as rt:
            await _activate_all(rt, warmup, None)
            await passivated.wait_for(TASKS)
            before = _traced_bytes()
            await _activate_all(rt, measured, None)
            await passivated.wait_for(TASKS + sample)
            grown = _traced_bytes() - before
            counts = rt.statistics()
            expect(
                counts.resident == 0 and counts.passivations == counts.activations,
                f"PA3: {counts.activations} activations, {counts.passivations} passivations, "
                f"{counts.resident} resident",
            )
    return grown / sample


class _PassivationCounter:
    """An ``on_event`` callback counting passivations (``max_resident=0``: each actor passivates
    right after its message), so the memory pass waits for them without polling."""

    def __init__(self) -> None:
        self.count = 0
        self._target = 0
        self._reached = trio.Event()

    def __call__(self, event: ak.Event) -> None:
        if type(event) is ak.Stopped and event.reason == "passivated":
            self.count += 1
            if self.count >= self._target:
                self._reached.set()

    async def wait_for(self, total: int) -> None:
        self._target = total
        self._reached = trio.Event()
        if self.count < total:
            with trio.fail_after(60):
                await self._reached.wait()


async def _raw_activations(rows: int, sample: int) -> Sample:
    return {
        ACTIVATIONS_PER_S: await raw_commit_rate(rows),
        BYTES_PER_RESIDENT: await _idle_task_bytes(sample),
        BYTES_PER_PASSIVATED: await _idle_task_bytes(sample),
    }


async def _idle_task_bytes(count: int) -> float:
    """Traced bytes per idle raw-trio actor: a task reading its own bounded memory channel."""
    with _tracing():
        async with trio.open_nursery() as nursery:
            before = _traced_bytes()
            inboxes = []
            for _ in range(count):
                send_channel, receive_channel = trio.open_memory_channel[object](MAX_INBOX)
                nursery.start_soon(_idle_task, receive_channel)
                inboxes.append(send_channel)
            await trio.testing.wait_all_tasks_blocked()
            grown = _traced_bytes() - before
            for send_channel in inboxes:
                send_channel.close()
    return grown / count


async def _idle_task(receive_channel: trio.MemoryReceiveChannel[object]) -> None:
    async with receive_channel:
        async for _ in receive_channel:
            pass


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


# -- the workloads -----------------------------------------------------------------------------


def durable_actor_workloads(sizes: DurableSizes, warmup_divisor: int) -> list[Workload]:
    def small(size: int) -> int:
        return max(1, size // warmup_divisor)

    rows = sizes.raw_rows
    messages_per_s = Metric(MESSAGES_PER_S, "messages", "msgs/s", Better.HIGHER)
    population = Population(sizes.passivated_actors)
    return [
        Workload(
            key="PA1",
            title="persistent actor on SQLite: sequential asks to one actor, each one commit "
            "(baseline: raw sqlite3 single-row commits)",
            sizes={"messages": sizes.messages, "raw rows": rows},
            metrics=(messages_per_s,),
            targets=(Target(MESSAGES_PER_S, Bound("ratio", ">=", 0.2)),),
            actorkit=functools.partial(one_actor, sizes.messages),
            baseline=functools.partial(_raw_rates, rows, MESSAGES_PER_S),
            warmup_actorkit=functools.partial(one_actor, small(sizes.messages)),
            warmup_baseline=functools.partial(_raw_rates, small(rows), MESSAGES_PER_S),
        ),
        Workload(
            key="PA2",
            title=f"{sizes.parallel_actors} persistent actors asked in parallel on SQLite, "
            "group commit (baseline: raw sqlite3 single-row commits)",
            sizes={
                "actors": sizes.parallel_actors,
                "messages per actor": sizes.parallel_messages,
                "raw rows": rows,
            },
            metrics=(
                messages_per_s,
                Metric(MEAN_BATCH, "mean store batch", "ops/commit", Better.HIGHER, decimals=1),
            ),
            targets=(Target(MESSAGES_PER_S, Bound("ratio", ">=", 1.0)),),
            actorkit=functools.partial(
                parallel_actors, sizes.parallel_actors, sizes.parallel_messages
            ),
            baseline=functools.partial(_raw_parallel, rows),
            warmup_actorkit=functools.partial(
                parallel_actors, sizes.parallel_actors, small(sizes.parallel_messages)
            ),
            warmup_baseline=functools.partial(_raw_parallel, small(rows)),
        ),
        Workload(
            key="PA3",
            title="activating passivated persistent actors on SQLite, one ask each; memory "
            "per resident and per passivated actor (baselines: raw sqlite3 single-row "
            "commits; an idle raw-trio task)",
            sizes={
                "actors": sizes.passivated_actors,
                "memory sample": sizes.memory_sample,
                "tasks": TASKS,
                "raw rows": rows,
            },
            metrics=(
                Metric(ACTIVATIONS_PER_S, "activations", "actors/s", Better.HIGHER),
                Metric(BYTES_PER_RESIDENT, "memory per resident actor", "bytes", Better.LOWER),
                Metric(BYTES_PER_PASSIVATED, "memory per passivated actor", "bytes", Better.LOWER),
            ),
            targets=(
                Target(ACTIVATIONS_PER_S, Bound("ratio", ">=", 0.2)),
                Target(BYTES_PER_RESIDENT, Bound("ratio", "<=", 2.0)),
                Target(
                    BYTES_PER_PASSIVATED, Bound("ratio", "<=", 0.05), aim=Bound("actorkit", "<", 64)
                ),
            ),
            actorkit=functools.partial(
                activations, population, sizes.passivated_actors, sizes.memory_sample
            ),
            baseline=functools.partial(_raw_activations, rows, sizes.memory_sample),
            warmup_actorkit=functools.partial(
                activations,
                population,
                small(sizes.passivated_actors),
                small(sizes.memory_sample),
            ),
            warmup_baseline=functools.partial(
                _raw_activations, small(rows), small(sizes.memory_sample)
            ),
        ),
    ]

"""D1-D5 durable processes on SQLite, against raw SQLite (and raw trio) in the same run.

Every run uses a fresh SQLite file in a scratch directory (``tempfile``, so ``$TMPDIR``
chooses the disk; the same directory as PA1-PA3) opened by ``dur.open_runtime("sqlite:///...")``
with the store's defaults: WAL, ``synchronous=FULL`` (an fsync per transaction), group commit
of up to ``max_batch`` queued operations per transaction. Times are ``time.perf_counter``.

- D1: ``processes`` processes one after another (``rt.start`` then ``h.wait()``), each a
  handler of three trivial steps (``await ctx.step(_one)``, a sync function returning 1).
  Steps/s is ``3 * processes`` over the wall time. Also: client CPU per process (user + sys
  of ``getrusage(RUSAGE_SELF)``, so the store's writer thread counts too) and the store's
  mean and largest batch (write operations per transaction) over the timed part.
- D2: the same processes, ``in_flight`` tasks each starting and waiting for one process after
  another until ``processes`` in all ran: group commit batches the concurrent journals.
- D3: emit-to-wake latency. ``waiters`` processes loop ``await ctx.signal(poke)`` then
  ``await ctx.step(_woke, key)``; the step (a replay returns its recorded result instead of
  running it) notes ``perf_counter_ns`` in this benchmark process. ``rounds`` times, after a
  random gap (uniform in ``gaps``, seeded), one random waiter is poked: latency is from the
  ``rt.emit()`` call until its step ran (p50 and p99, nearest rank). The gaps expose any
  polling period in the wake path. One measured repetition in the full run (200 rounds of
  ~0.55 s already give the distribution; five would take ten minutes).
- D4: ``processes`` processes each ``await ctx.sleep(seconds)``, all started together (one
  task per process: ``rt.start`` then ``h.wait()``): wall time until all completed.
- D5: recovery after SIGKILL. A child interpreter (this module run with ``-m``) starts
  ``processes`` processes that wait for a signal, prints ``ready`` once the store shows all
  of them waiting, and is killed with SIGKILL (untimed). Timed, in the benchmark process: from
  the ``open_runtime()`` call on the same file until ``rt.query()`` shows all of them waiting
  again and a signal emitted to one of them has woken it (its ``h.wait()`` returned). The
  warm-up runs the same recovery after a clean close instead of a kill (no child).

Baselines: D1 and D2 the raw single-row commit rate of ``sqlite3`` on a fresh file in the same
directory (WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE`` + ``INSERT`` of 16 bytes + ``COMMIT``
per row, in a worker thread) as commits/s, and for D1's CPU the client CPU per raw commit;
D3 the p50/p99 time of one such commit, each after the same seeded gaps as D3's rounds (an
fsync after an idle gap is several times slower than back to back on a virtual disk); D4
``processes`` raw trio tasks in one nursery each ``await trio.sleep(seconds)``; D5 the raw I/O
of a recovery: open a fresh connection to a file holding ``processes`` rows, read them all and
commit one single-row update.
"""

from __future__ import annotations

import contextlib
import functools
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import attrs
import trio

import actorkit_durable as dur

from ._report import Better, Bound, Metric, Sample, Target, Workload, expect, percentile
from .durable_actors import RAW_ROW, SYNCHRONOUS, _scratch, _scratch_root, _url

STEPS = 3
"""Trivial steps per process in D1 and D2."""
SEED = 20_240_601
"""Seed of D3's gaps and choice of waiter."""
WAIT_LIMIT = 60.0
"""Seconds any single wait of a run may take before the run fails."""
REPO = Path(__file__).resolve().parent.parent

STEPS_PER_S = "steps_per_s"
CPU_MS_PER_PROCESS = "cpu_ms_per_process"
MEAN_BATCH = "mean_batch"
LARGEST_BATCH = "largest_batch"
P50_MS = "p50_ms"
P99_MS = "p99_ms"
WALL_S = "wall_s"
RECOVERY_S = "recovery_s"


@attrs.frozen
class ProcessSizes:
    """The D workloads' sizes (``benchmarks.__main__`` picks the full or quick set)."""

    raw_rows: int
    sequential: int
    parallel: int
    in_flight: int
    waiters: int
    rounds: int
    gaps: tuple[float, float]
    wake_repetitions: int | None
    """At most this many measured repetitions of D3 (None: the runner's count)."""
    sleepers: int
    sleep: float
    recovering: int


FULL = ProcessSizes(
    raw_rows=3_000, sequential=500, parallel=1_000, in_flight=50, waiters=10, rounds=200,
    gaps=(0.05, 1.05), wake_repetitions=1, sleepers=200, sleep=1.0, recovering=100,
)  # fmt: skip
QUICK = ProcessSizes(
    raw_rows=200, sequential=20, parallel=40, in_flight=10, waiters=10, rounds=10,
    gaps=(0.005, 0.02), wake_repetitions=None, sleepers=20, sleep=0.1, recovering=10,
)  # fmt: skip
WARMUP_GAPS = (0.005, 0.02)
WARMUP_SLEEP = 0.01


def settings(chosen: list[Workload]) -> dict[str, object]:
    """The header lines of the D workloads (none if none of them runs)."""
    if not any(workload.key.startswith("D") for workload in chosen):
        return {}
    store = dur.SQLiteStore(_scratch_root() / "unused.db")  # its defaults; never opened
    return {
        "D store": f"SQLiteStore defaults, files in {_scratch_root()}: journal_mode=WAL, "
        f"synchronous={store.synchronous}, group commit of up to {store._max_batch} queued "
        "operations per transaction; open_runtime defaults",
        "D baselines": f"raw sqlite3 {sqlite3.sqlite_version} (journal_mode=WAL, "
        f"synchronous={SYNCHRONOUS}, BEGIN IMMEDIATE + INSERT of {len(RAW_ROW)} bytes + "
        "COMMIT per row): commits/s, CPU and latency per commit, a cold open + read + commit; "
        "raw trio tasks sleeping in one nursery",
    }


# -- the processes -----------------------------------------------------------------------------


class Pokes(dur.Signals):
    poke = dur.signal("/poke/:key")


def _one() -> int:
    return 1


@dur.process("/steps/:key")
async def three_steps(ctx: dur.Context, key: str) -> int:
    total = 0
    for _ in range(STEPS):
        total += await ctx.step(_one)
    return total


class _WakeProbe:
    """Where D3's waiters report each wake, read by the run that poked them."""

    def __init__(self) -> None:
        self.key = ""
        self.woken_at = 0
        self.woken = trio.Event()

    def expect(self, key: str) -> trio.Event:
        self.key, self.woken_at, self.woken = key, 0, trio.Event()
        return self.woken

    def wake(self, key: str) -> None:
        if key == self.key and not self.woken.is_set():
            self.woken_at = time.perf_counter_ns()
            self.woken.set()


_PROBE = _WakeProbe()


async def _woke(key: str) -> None:
    _PROBE.wake(key)


@dur.process("/waiter/:key")
async def waiter(ctx: dur.Context, key: str) -> None:
    while True:
        await ctx.signal(Pokes.poke)
        await ctx.step(_woke, key)


@dur.process("/sleeper/:key")
async def sleeper(ctx: dur.Context, key: str) -> str:
    await ctx.sleep(ctx.input)
    return key


@dur.process("/recovering/:key")
async def recovering(ctx: dur.Context, key: str) -> str:
    await ctx.signal(Pokes.poke)
    return key


PROCESSES = [three_steps, waiter, sleeper, recovering]


def _open(path: Path) -> contextlib.AbstractAsyncContextManager[dur.Runtime]:
    return dur.open_runtime(_url(path), processes=PROCESSES, signals=[Pokes])


async def _waiting(rt: dur.Runtime) -> int:
    """Processes the store shows waiting (SUSPENDED on a signal or timer, no error)."""
    count = 0
    async for state in rt.query(status=dur.Status.SUSPENDED):
        if state.waiting_on is not None and state.last_error is None:
            count += 1
    return count


async def _until_waiting(rt: dur.Runtime, count: int, poll: float) -> None:
    """Poll the store (no event says "recorded as waiting" after a restart) until ``count``."""
    with trio.fail_after(WAIT_LIMIT):
        while True:
            waiting = await _waiting(rt)
            if waiting >= count:
                break
            await trio.sleep(poll)
    expect(waiting == count, f"{waiting} processes waiting, not {count}")


# -- D1 and D2: three-step processes -----------------------------------------------------------


async def steps(processes: int, in_flight: int) -> Sample:
    keys = iter(range(processes))
    results: list[int] = []

    async def run_one_after_another(rt: dur.Runtime) -> None:
        for key in keys:  # shared by the tasks: each process runs once
            handle = await rt.start(three_steps, key=str(key))
            results.append(await handle.wait())

    async with _scratch() as directory, _open(directory / "steps.db") as rt:
        before, cpu_before = rt.statistics().store, _cpu_seconds()
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(in_flight):
                nursery.start_soon(run_one_after_another, rt)
        elapsed = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu_before
        after = rt.statistics().store
    expect(results == [STEPS] * processes, f"steps: {len(results)} results {set(results)}")
    transactions = after.transactions - before.transactions
    operations = after.operations - before.operations
    return {
        STEPS_PER_S: STEPS * processes / elapsed,
        CPU_MS_PER_PROCESS: cpu * 1000 / processes,
        MEAN_BATCH: operations / transactions if transactions else 0.0,
        LARGEST_BATCH: after.largest_batch,  # a fresh store per run: its largest is this run's
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _raw_steps(rows: int) -> Sample:
    raw = await _raw_commits(rows)
    return {
        STEPS_PER_S: raw.rate,
        CPU_MS_PER_PROCESS: raw.cpu_ms,
        MEAN_BATCH: 1.0,
        LARGEST_BATCH: 1.0,
    }


# -- D3: emit-to-wake latency ------------------------------------------------------------------


async def wake_latency(waiters: int, rounds: int, gaps: tuple[float, float]) -> Sample:
    rng = random.Random(SEED)
    latencies: list[int] = []
    async with _scratch() as directory, _open(directory / "wake.db") as rt:
        for index in range(waiters):
            await rt.start(waiter, key=str(index))
        await _until_waiting(rt, waiters, poll=0.01)
        for _ in range(rounds):
            await trio.sleep(rng.uniform(*gaps))
            key = str(rng.randrange(waiters))
            woken = _PROBE.expect(key)
            start = time.perf_counter_ns()
            reached = await rt.emit(Pokes.poke, key=key)
            with trio.fail_after(WAIT_LIMIT):
                await woken.wait()
            expect(reached == 1, f"D3: the poke reached {reached} processes, not 1")
            latencies.append(_PROBE.woken_at - start)
    return _latency_sample(latencies)


def _latency_sample(latencies: list[int]) -> Sample:
    latencies.sort()
    return {P50_MS: percentile(latencies, 0.50) / 1e6, P99_MS: percentile(latencies, 0.99) / 1e6}


async def _raw_latency(rounds: int, gaps: tuple[float, float]) -> Sample:
    """One raw commit per round after the same seeded gaps as D3: an fsync after an idle gap
    is several times slower than back to back on a virtual disk, so the gaps are kept."""
    return _latency_sample((await _raw_commits(rounds, gaps)).latencies)


# -- D4: durable sleeps ------------------------------------------------------------------------


async def sleeps(processes: int, seconds: float) -> Sample:
    woke: list[str] = []

    async def sleep_one(rt: dur.Runtime, key: str) -> None:
        handle = await rt.start(sleeper, input=seconds, key=key)
        woke.append(await handle.wait())

    async with _scratch() as directory, _open(directory / "sleep.db") as rt:
        start = time.perf_counter()
        with trio.fail_after(WAIT_LIMIT):
            async with trio.open_nursery() as nursery:
                for index in range(processes):
                    nursery.start_soon(sleep_one, rt, str(index))
        elapsed = time.perf_counter() - start
    expect(len(woke) == processes, f"D4: {len(woke)} of {processes} sleepers completed")
    return {WALL_S: elapsed}


async def _raw_sleeps(tasks: int, seconds: float) -> Sample:
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(trio.sleep, seconds)
    return {WALL_S: time.perf_counter() - start}


# -- D5: recovery after SIGKILL ----------------------------------------------------------------


async def recovery(processes: int, kill: bool) -> Sample:
    async with _scratch() as directory:
        path = directory / "recovery.db"
        if kill:
            await _kill_holder(path, processes)
        else:
            async with _open(path) as rt:
                await _start_waiting(rt, processes)
        start = time.perf_counter()
        async with _open(path) as rt:
            await _until_waiting(rt, processes, poll=0.001)
            reached = await rt.emit(Pokes.poke, key="0")
            with trio.fail_after(WAIT_LIMIT):
                result = await rt.handle("recovering/0").wait()
            elapsed = time.perf_counter() - start
    expect(reached == 1 and result == "0", f"D5: reached {reached}, result {result!r}")
    return {RECOVERY_S: elapsed}


async def _start_waiting(rt: dur.Runtime, processes: int) -> None:
    async with trio.open_nursery() as nursery:
        for index in range(processes):
            nursery.start_soon(functools.partial(rt.start, recovering, key=str(index)))
    await _until_waiting(rt, processes, poll=0.01)


async def _kill_holder(path: Path, processes: int) -> None:
    """Run the child until it says ``ready`` (all waiting), then SIGKILL it."""
    argv = [sys.executable, "-m", __name__, str(path), str(processes)]
    child = await trio.lowlevel.open_process(argv, cwd=REPO, stdout=subprocess.PIPE)
    assert child.stdout is not None
    try:
        with trio.fail_after(WAIT_LIMIT):
            said = b""
            async for chunk in child.stdout:
                said += chunk
                if b"ready\n" in said:
                    break
        expect(b"ready\n" in said, f"D5: the child exited ({child.poll()}) before ready")
    finally:
        child.send_signal(signal.SIGKILL)
        with trio.CancelScope(shield=True):
            await child.wait()
            await child.stdout.aclose()


async def _hold_waiting(path: str, processes: int) -> None:
    """The child of D5: waiting processes on ``path``, then ``ready``, then wait to be killed."""
    async with _open(Path(path)) as rt:
        await _start_waiting(rt, processes)
        print("ready", flush=True)
        await trio.sleep_forever()


async def _raw_recovery(rows: int) -> Sample:
    async with _scratch() as directory:
        path = directory / "raw.db"
        await trio.to_thread.run_sync(_raw_fill, path, rows)
        start = time.perf_counter()
        await trio.to_thread.run_sync(_raw_reopen, path, rows)
        return {RECOVERY_S: time.perf_counter() - start}


def _raw_fill(path: Path, rows: int) -> None:
    connection = _raw_connect(path)
    try:
        connection.execute("CREATE TABLE row (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
        connection.executemany("INSERT INTO row (payload) VALUES (?)", [(RAW_ROW,)] * rows)
    finally:
        connection.close()


def _raw_reopen(path: Path, rows: int) -> None:
    connection = _raw_connect(path)
    try:
        read = connection.execute("SELECT id, payload FROM row").fetchall()
        expect(len(read) == rows, f"raw recovery: {len(read)} rows of {rows}")
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("UPDATE row SET payload = ? WHERE id = ?", (RAW_ROW, read[0][0]))
        connection.execute("COMMIT")
    finally:
        connection.close()


# -- the raw commits ---------------------------------------------------------------------------


@attrs.frozen
class RawCommits:
    rate: float
    """Commits per second."""
    cpu_ms: float
    """Client CPU per commit."""
    latencies: list[int]
    """Nanoseconds of each commit (BEGIN to COMMIT), in order."""


async def _raw_commits(rows: int, gaps: tuple[float, float] | None = None) -> RawCommits:
    async with _scratch() as directory:
        return await trio.to_thread.run_sync(_raw_commit_rows, directory / "raw.db", rows, gaps)


def _raw_connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    expect(mode == "wal", f"baseline: journal_mode is {mode}")
    connection.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
    return connection


def _raw_commit_rows(path: Path, rows: int, gaps: tuple[float, float] | None) -> RawCommits:
    """``rows`` single-row commits, back to back or each after a seeded random gap (then the
    rate and CPU include the gaps; only the latencies are meant to be read)."""
    rng = random.Random(SEED)
    connection = _raw_connect(path)
    latencies = [0] * rows
    try:
        connection.execute("CREATE TABLE row (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
        cpu_before = _cpu_seconds()
        start = time.perf_counter()
        for index in range(rows):
            if gaps is not None:
                time.sleep(rng.uniform(*gaps))
            began = time.perf_counter_ns()
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO row (payload) VALUES (?)", (RAW_ROW,))
            connection.execute("COMMIT")
            latencies[index] = time.perf_counter_ns() - began
        elapsed = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu_before
        (count,) = connection.execute("SELECT count(*) FROM row").fetchone()
        expect(count == rows, f"baseline: {count} rows of {rows}")
    finally:
        connection.close()
    return RawCommits(rows / elapsed, cpu * 1000 / rows, latencies)


# -- the workloads -----------------------------------------------------------------------------


def durable_process_workloads(sizes: ProcessSizes, warmup_divisor: int) -> list[Workload]:
    def small(size: int) -> int:
        return max(1, size // warmup_divisor)

    rows = sizes.raw_rows
    capped = {} if sizes.wake_repetitions is None else {"repetitions": sizes.wake_repetitions}
    steps_per_s = Metric(STEPS_PER_S, "steps", "steps/s", Better.HIGHER)
    batches = (
        Metric(MEAN_BATCH, "mean store batch", "ops/commit", Better.HIGHER, decimals=1),
        Metric(LARGEST_BATCH, "largest store batch", "ops/commit", Better.HIGHER),
    )
    return [
        Workload(
            key="D1",
            title=f"durable processes of {STEPS} trivial steps on SQLite, one after another "
            "(baseline: raw sqlite3 single-row commits)",
            sizes={"processes": sizes.sequential, "raw rows": rows},
            metrics=(
                steps_per_s,
                Metric(CPU_MS_PER_PROCESS, "client CPU per process", "ms", Better.LOWER, 3),
                *batches,
            ),
            targets=(
                Target(STEPS_PER_S, Bound("actorkit", ">=", 2_000)),
                Target(CPU_MS_PER_PROCESS, Bound("actorkit", "<=", 1.0)),
            ),
            actorkit=functools.partial(steps, sizes.sequential, 1),
            baseline=functools.partial(_raw_steps, rows),
            warmup_actorkit=functools.partial(steps, small(sizes.sequential), 1),
            warmup_baseline=functools.partial(_raw_steps, small(rows)),
        ),
        Workload(
            key="D2",
            title=f"durable processes of {STEPS} trivial steps on SQLite, {sizes.in_flight} "
            "in flight, group commit (baseline: raw sqlite3 single-row commits)",
            sizes={"processes": sizes.parallel, "in flight": sizes.in_flight, "raw rows": rows},
            metrics=(steps_per_s, *batches),
            targets=(Target(STEPS_PER_S, Bound("actorkit", ">=", 8_000)),),
            actorkit=functools.partial(steps, sizes.parallel, sizes.in_flight),
            baseline=functools.partial(_raw_steps, rows),
            warmup_actorkit=functools.partial(steps, small(sizes.parallel), sizes.in_flight),
            warmup_baseline=functools.partial(_raw_steps, small(rows)),
        ),
        Workload(
            key="D3",
            title=f"emit-to-wake latency of waiting processes on SQLite, gaps of "
            f"{sizes.gaps[0]:g}-{sizes.gaps[1]:g} s (baseline: one raw sqlite3 commit after "
            "the same gaps)",
            sizes={"waiters": sizes.waiters, "rounds": sizes.rounds, **capped},
            metrics=(
                Metric(P50_MS, "emit-to-wake p50", "ms", Better.LOWER, decimals=2),
                Metric(P99_MS, "emit-to-wake p99", "ms", Better.LOWER, decimals=2),
            ),
            targets=(Target(P99_MS, Bound("actorkit", "<=", 5.0)),),
            actorkit=functools.partial(wake_latency, sizes.waiters, sizes.rounds, sizes.gaps),
            baseline=functools.partial(_raw_latency, sizes.rounds, sizes.gaps),
            warmup_actorkit=functools.partial(
                wake_latency, sizes.waiters, small(sizes.rounds), WARMUP_GAPS
            ),
            warmup_baseline=functools.partial(_raw_latency, small(sizes.rounds), WARMUP_GAPS),
            max_repetitions=sizes.wake_repetitions,
        ),
        Workload(
            key="D4",
            title=f"durable processes each sleeping {sizes.sleep:g} s on SQLite, started "
            f"together: wall time (baseline: raw trio tasks in trio.sleep({sizes.sleep:g}))",
            sizes={"processes": sizes.sleepers},
            metrics=(Metric(WALL_S, "until all completed", "s", Better.LOWER, decimals=3),),
            targets=(Target(WALL_S, Bound("actorkit", "<=", sizes.sleep + 0.1)),),
            actorkit=functools.partial(sleeps, sizes.sleepers, sizes.sleep),
            baseline=functools.partial(_raw_sleeps, sizes.sleepers, sizes.sleep),
            warmup_actorkit=functools.partial(sleeps, small(sizes.sleepers), WARMUP_SLEEP),
            warmup_baseline=functools.partial(_raw_sleeps, small(sizes.sleepers), WARMUP_SLEEP),
        ),
        Workload(
            key="D5",
            title="recovery after SIGKILL on SQLite: open_runtime() until all waiting again "
            "and one signal woke one (baseline: raw sqlite3 cold open + read + one commit)",
            sizes={"processes": sizes.recovering},
            metrics=(Metric(RECOVERY_S, "recovery", "s", Better.LOWER, decimals=3),),
            targets=(Target(RECOVERY_S, Bound("actorkit", "<=", 0.3)),),
            actorkit=functools.partial(recovery, sizes.recovering, True),
            baseline=functools.partial(_raw_recovery, sizes.recovering),
            warmup_actorkit=functools.partial(recovery, sizes.recovering, False),
            warmup_baseline=functools.partial(_raw_recovery, sizes.recovering),
        ),
    ]


def _child(argv: Sequence[str]) -> None:
    """``python -m benchmarks.durable_processes DB_PATH PROCESSES``: D5's child."""
    path, processes = argv
    trio.run(_hold_waiting, path, int(processes))


if __name__ == "__main__":
    _child(sys.argv[1:])

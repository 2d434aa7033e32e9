"""Durable processes on SQLite survive SIGKILL: each completes once, no signal is lost, and no
step runs again once its result is recorded.

A worker (``_process_worker.py``) runs ``PROCESSES`` processes concurrently (so the store's
group commit batches their writes). Each runs three steps, exchanges a signal (from the worker
with an idempotency key, or from a sibling process with ``ctx.emit``), races a second one
against a durable delay, maybe sleeps, and runs a last step. Every step appends
``step ROUND JOB SEQ`` to an fsynced side-effect log and returns ``ROUND``, the worker run it
ran in, so the process's result says which run's execution of each step was recorded.

The worker is SIGKILLed at random moments for ``KILL_ROUNDS`` rounds on one file: a random
time after it was spawned (start-up, recovery, the first claims) or after its runtime opened,
or after a random number of step side effects and completions (scaled to the work left, so
kills land in every phase), plus a random few milliseconds; then a last worker runs until every
process is finished. The rounds come from one seeded ``random.Random`` (the seed is in every
failure message; ``ACTORKIT_PROCESS_SIGKILL_SEED`` replays it, though where a kill lands still
depends on timing). After every round this process reads each process's journal from the
store, so it knows the first round after which each step was recorded. The checks:

- every process is COMPLETED with the expected result, the same in every report of it, and a
  fresh runtime on the file agrees (``h.state()``, ``h.wait()``, ``rt.query``) without running
  anything; its journal holds each step once, in order; no process was ever FAILED;
- no signal is lost or duplicated: every process got its own token (a lost one would leave it
  waiting forever: the last worker reports it as unfinished), no second signal reached the
  race, and every ``rt.emit`` (repeats after a kill included) reached exactly one process;
- steps run at least once and never again once recorded: for every step, the round its result
  names is exactly the first round after which the journal held the step, the log has a line
  of that round, no line of a later round, and at most one line per round (a run that was
  killed before its result was recorded may repeat it in a later round, nothing else may);
- a step runs only once the previous step's result is durable: after each round, at most one
  step per process ran in that round without being recorded;
- the handler's code after its last step ran at most once per round and never after the round
  recorded as its end, and "completed" was reported at most once per process.

Variants: the default resident cap (a waiting process stays in memory), and ``max_resident=0``
(every wait drops the coroutine and every wake replays the journal, so kills land in replays).
"""

from __future__ import annotations

import collections
import importlib.util
import itertools
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

import actorkit_durable as dur

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_process_worker.py"
PROCESSES = 40
KILL_ROUNDS = 8
STEPS = 4
"""Steps per process: s0, s1, s2 before the signal, s3 after it."""
CHECK_ROUND = 1_000
"""The round number a checker runtime in this process would log under (it must run nothing)."""
SEED_VARIABLE = "ACTORKIT_PROCESS_SIGKILL_SEED"
"""Set it to replay a seed (the kill moments still depend on timing)."""


def worker_module() -> Any:
    """The worker's definitions, imported once into this process (for the checker runtime)."""
    name = "_actorkit_test_process_worker"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, WORKER)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@attrs.define
class Round:
    """What one worker run printed."""

    index: int
    progress: int = 0
    """Step side effects and completions seen (``P`` and ``C`` lines)."""
    opened: bool = False
    all_done: bool = False
    largest_batch: int = 0
    """The most operations one store transaction of the worker held (when it finished)."""
    emits: list[tuple[str, int]] = attrs.Factory(list)
    completed: list[str] = attrs.Factory(list)
    results: dict[str, Any] = attrs.Factory(dict)
    problems: list[str] = attrs.Factory(list)
    """``X`` (wait raised) and ``U`` (unfinished at the deadline) lines, and surprises."""

    def read(self, line: str) -> None:
        kind, _, rest = line.partition(" ")
        round_text, _, rest = rest.partition(" ")
        if not round_text.isdigit() or int(round_text) != self.index:
            self.problems.append(f"unexpected line: {line!r}")
            return
        if kind == "P":
            self.progress += 1
        elif kind == "O":
            self.opened = True
        elif kind == "ALL":
            self.all_done = True
            self.largest_batch = int(rest.split()[-1])
        elif kind == "E":
            process, reached = rest.split()
            self.emits.append((process, int(reached)))
        elif kind == "C":
            self.progress += 1
            self.completed.append(rest)
        elif kind == "D":
            process, _, result = rest.partition(" ")
            self.results[process] = json.loads(result)
        else:
            self.problems.append(line)


@attrs.frozen
class Kill:
    """When to SIGKILL a worker: ``then`` seconds after it was spawned (``after="spawn"``:
    during start-up, recovery and the first claims), after its runtime opened (``"open"``), or
    after ``progress`` step side effects and completions (``"progress"``: steps and group
    commits in flight)."""

    after: str
    then: float
    progress: int = 0

    @classmethod
    def draw(cls, rng: random.Random, remaining: int) -> Kill:
        """A kill that lands mid-work, given how many step results and completions are not
        recorded yet (at most ``PROCESSES * (STEPS + 1)``)."""
        mode = rng.random()
        if remaining >= 80 and mode < 0.15:
            return cls("spawn", rng.uniform(0.15, 0.4))
        if remaining >= 80 and mode < 0.4:
            return cls("open", rng.uniform(0.0, 0.08))
        then = rng.choice([0.0, rng.uniform(0.0, 0.01)])
        if remaining >= 120 and rng.random() < 0.3:
            then = rng.uniform(0.01, 0.05)  # more commits land, the kill finds later phases
        return cls("progress", then, rng.randint(1, remaining // 4 + 1))


async def run_round(
    db: Path, log: Path, index: int, max_resident: int, kill: Kill | None, seed: int
) -> Round:
    """Run one worker; SIGKILL it as ``kill`` says, or (None) let it finish."""
    seen = Round(index)
    errors = bytearray()
    enough = trio.Event()
    argv = [sys.executable, str(WORKER), str(db), str(log), str(index)]
    argv += [str(PROCESSES), str(max_resident), "10"]
    process = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        with trio.fail_after(25):
            async with trio.open_nursery() as nursery:

                async def read() -> None:
                    assert process.stdout is not None
                    pending = b""
                    async for chunk in process.stdout:
                        pending += chunk
                        *complete, pending = pending.split(b"\n")
                        for line in complete:
                            seen.read(line.decode())
                        if kill is not None and (
                            (kill.after == "open" and seen.opened)
                            or (kill.after == "progress" and seen.progress >= kill.progress)
                        ):
                            enough.set()
                    enough.set()  # EOF: the worker is done (or died on its own: see below)

                async def keep_errors() -> None:
                    assert process.stderr is not None
                    async for chunk in process.stderr:
                        errors.extend(chunk)

                nursery.start_soon(read)
                nursery.start_soon(keep_errors)
                if kill is None:
                    await process.wait()
                else:
                    # A worker that stops making progress (a lost wake-up, say) is killed
                    # anyway: the last round reports what is stuck.
                    with trio.move_on_after(3.0):
                        if kill.after != "spawn":
                            await enough.wait()
                        await trio.sleep(kill.then)
                    process.kill()
                    await process.wait()
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.stdout.aclose()
            await process.stderr.aclose()
    tail = errors[-4000:].decode(errors="replace")
    where = f"seed {seed}, round {index}"
    if kill is None or process.returncode == 0:
        assert process.returncode == 0, (
            f"{where}: the worker exited with {process.returncode}; {seen.problems[:10]}\n{tail}"
        )
        assert seen.all_done, f"{where}: the worker exited without finishing\n{tail}"
    else:
        assert process.returncode == -signal.SIGKILL, (
            f"{where}: the worker exited with {process.returncode} before it was killed:\n{tail}"
        )
    assert not seen.problems, f"{where}: {seen.problems[:10]}\n{tail}"
    return seen


@attrs.frozen
class Snapshot:
    """What the store holds after a round: each process's recorded steps, the completed ones."""

    steps: dict[str, list[str]]
    """Process id -> the names of its journal's step entries, in journal order."""
    completed: frozenset[str]

    @property
    def remaining(self) -> int:
        recorded = sum(map(len, self.steps.values()))
        return PROCESSES * (STEPS + 1) - recorded - len(self.completed)


async def read_store(db: Path) -> Snapshot:
    """The store's view, read without a runtime (so nothing runs); no process is FAILED."""
    steps: dict[str, list[str]] = {}
    completed: set[str] = set()
    async with dur.open_store(f"sqlite:///{db}") as store:
        for index in range(PROCESSES):
            loaded = await store.load(f"job/j{index}")
            if loaded is None:
                continue
            record = loaded.process
            assert record.status != dur.Status.FAILED, f"{record.id} failed: {record.error}"
            steps[record.id] = [e.name for e in loaded.journal if e.kind == "step"]
            if record.status == dur.Status.COMPLETED:
                completed.add(record.id)
    return Snapshot(steps, frozenset(completed))


def read_log(log: Path) -> tuple[dict[tuple[str, int], list[int]], dict[str, list[int]]]:
    """The side-effect log: rounds of each (process id, step seq), rounds of each ``end``."""
    steps: dict[tuple[str, int], list[int]] = collections.defaultdict(list)
    ends: dict[str, list[int]] = collections.defaultdict(list)
    for line in log.read_text().splitlines():
        match line.split():
            case ["step", round_text, job, seq]:
                steps[f"job/{job}", int(seq)].append(int(round_text))
            case ["end", round_text, job]:
                ends[f"job/{job}"].append(int(round_text))
            case _:
                raise AssertionError(f"a malformed side-effect log line: {line!r}")
    return steps, ends


async def check_with_a_fresh_runtime(
    db: Path, log: Path, results: dict[str, Any], where: str
) -> None:
    """A runtime opened on the finished file sees every process COMPLETED with its result, and
    runs nothing (its steps would log under ``CHECK_ROUND``)."""
    worker = worker_module()
    worker.ROUND = CHECK_ROUND
    worker.LOG_FD = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        async with dur.open_runtime(
            f"sqlite:///{db}", processes=[worker.job], signals=[worker.Go]
        ) as rt:
            for process, result in sorted(results.items()):
                handle = rt.handle(process)
                state = await handle.state()
                assert state.status == dur.Status.COMPLETED, f"{where}, {process}: {state}"
                assert json.loads(json.dumps(state.result)) == result, f"{where}, {process}"
                assert json.loads(json.dumps(await handle.wait())) == result, where
            completed = [s.id async for s in rt.query(status=dur.Status.COMPLETED)]
            assert sorted(completed) == sorted(results), where
            await trio.sleep(0.2)  # time to (wrongly) run something, if it would
    finally:
        os.close(worker.LOG_FD)


def check(
    rounds: list[Round],
    snapshots: list[Snapshot],
    log: Path,
    seed: int,
) -> dict[str, Any]:
    """Everything but the fresh runtime's view; returns each process's result."""
    worker = worker_module()
    where = f"seed {seed}"
    final = rounds[-1]
    ids = [f"job/j{index}" for index in range(PROCESSES)]
    # Every process completed, with one result however often it was reported.
    results: dict[str, Any] = {}
    for seen in rounds:
        for process, result in seen.results.items():
            first = results.setdefault(process, result)
            assert result == first, f"{where}: {process} reported {first}, then {result}"
    assert sorted(final.results) == sorted(ids), f"{where}: the last worker did not see all"
    # Its journal holds each step once, in order; every round's journal extended the last one.
    names = [f"s{seq}" for seq in range(STEPS)]
    for process in ids:
        history = [snapshot.steps.get(process, []) for snapshot in snapshots]
        assert history[-1] == names, f"{where}, {process}: {history[-1]}"
        for before, after in itertools.pairwise(history):
            assert after[: len(before)] == before, f"{where}, {process}: {history}"
    for earlier, later in itertools.pairwise(snapshots):
        assert earlier.completed <= later.completed, where
    assert snapshots[-1].completed == set(ids), where
    # Signals: each got its own token, no duplicate reached the race, each emit reached one.
    for index, process in enumerate(ids):
        result = results[process]
        assert result["token"] == worker.expected_token(index, PROCESSES), f"{where}: {result}"
        assert result["extra"] is None, f"{where}, {process}: a second signal: {result}"
    emits = [(seen.index, process, n) for seen in rounds for process, n in seen.emits]
    assert all(n == 1 for _, _, n in emits), f"{where}: {[e for e in emits if e[2] != 1]}"
    emitted = {process for process, _ in final.emits}
    assert emitted == {
        process for index, process in enumerate(ids) if worker.emitted_by_worker(index, PROCESSES)
    }, where
    # Steps: the round whose run was recorded is the first snapshot holding the step; the log
    # has that run, nothing later, and at most one run per round.
    first_recorded: dict[tuple[str, str], int] = {}
    for round_index, snapshot in enumerate(snapshots):
        for process, recorded in snapshot.steps.items():
            for name in recorded:
                first_recorded.setdefault((process, name), round_index)
    step_log, end_log = read_log(log)
    for process in ids:
        result = results[process]
        assert len(result["steps"]) == STEPS, f"{where}: {result}"
        for seq, recorded_in in enumerate(result["steps"]):
            runs = step_log[process, seq]
            what = f"{where}, {process} step s{seq} (recorded in round {recorded_in}, ran {runs})"
            assert first_recorded[process, f"s{seq}"] == recorded_in, what
            assert recorded_in in runs, f"{what}: the recorded run is not in the log"
            assert max(runs) == recorded_in, f"{what}: it ran again after it was recorded"
            assert len(runs) == len(set(runs)), f"{what}: it ran twice in one round"
        ends = end_log[process]
        what = f"{where}, {process} (ended in round {result['ended']}, ends logged {ends})"
        assert result["ended"] in ends, what
        assert max(ends) == result["ended"], f"{what}: the handler ran on after completing"
        assert len(ends) == len(set(ends)), f"{what}: it ended twice in one round"
        completions = [seen.index for seen in rounds if process in seen.completed]
        assert len(completions) <= 1, f"{where}, {process}: completed in rounds {completions}"
        assert completions in ([], [result["ended"]]), f"{where}, {process}: {completions}"
        # A step runs only once the previous one's result is durable: a kill leaves at most
        # one step per process that ran in that round and is not recorded.
        for round_index, snapshot in enumerate(snapshots):
            recorded = snapshot.steps.get(process, [])
            lost = [
                seq
                for seq in range(STEPS)
                if round_index in step_log[process, seq] and f"s{seq}" not in recorded
            ]
            assert len(lost) <= 1, (
                f"{where}, {process}: steps {lost} ran in round {round_index} and were not "
                f"recorded: a step ran before the previous step's result was durable"
            )
    return results


@pytest.mark.parametrize("max_resident", [10_000, 0], ids=["resident", "max-resident-0"])
async def test_processes_complete_once_without_rerunning_recorded_steps_under_sigkill(
    tmp_path: Path, max_resident: int
) -> None:
    seed = int(os.environ.get(SEED_VARIABLE) or int.from_bytes(os.urandom(4), "big"))
    rng = random.Random(seed)
    db = tmp_path / "processes.db"
    log = tmp_path / "side-effects.log"
    rounds: list[Round] = []
    snapshots: list[Snapshot] = []
    for index in range(KILL_ROUNDS + 1):
        remaining = snapshots[-1].remaining if snapshots else PROCESSES * (STEPS + 1)
        kill = Kill.draw(rng, remaining) if index < KILL_ROUNDS else None
        rounds.append(await run_round(db, log, index, max_resident, kill, seed))
        snapshots.append(await read_store(db))
    # The kills landed mid-work (else the test checked little).
    killed = sum(1 for seen in rounds[:-1] if not seen.all_done)
    assert killed >= KILL_ROUNDS // 2, f"seed {seed}: only {killed} rounds were killed"
    results = check(rounds, snapshots, log, seed)
    await check_with_a_fresh_runtime(db, log, results, f"seed {seed}")
    step_log, end_log = read_log(log)
    late = [k for k, runs in step_log.items() if CHECK_ROUND in runs]
    assert not late, f"seed {seed}: the checker's runtime ran steps {late}"
    assert not [k for k, ends in end_log.items() if CHECK_ROUND in ends], f"seed {seed}"

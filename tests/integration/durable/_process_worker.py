"""Subprocess for test_process_sigkill.py: runs durable processes on SQLite until done or killed.

Usage: ``python _process_worker.py DB_PATH LOG_PATH ROUND PROCESSES MAX_RESIDENT DEADLINE``.

It opens a durable runtime on the SQLite file and starts the processes ``job/j0`` ..
``job/j{PROCESSES-1}``, pairs concurrently, ``j{2k}`` before ``j{2k+1}`` (starts are
idempotent, so a worker started again after a SIGKILL re-starts the same ids harmlessly).
Each process (``job`` below):

1. runs the steps ``s0``, ``s1``, ``s2``, each of which takes a few random milliseconds (a
   remote call, so steps overlap), appends ``step ROUND JOB SEQ`` to the side-effect log
   (``O_APPEND``, fsynced) and returns ``ROUND``, the worker run it ran in;
2. an odd ``j{2k+1}`` then emits ``Go.go`` to its sibling ``j{2k}`` with ``ctx.emit``
   (recorded with the journal: once);
3. waits for its own ``Go.go``: even ones get it from their sibling, odd ones (and an unpaired
   last one) from the worker, which emits it right after the start with an idempotency key, so
   a worker run again re-emits it without delivering it twice;
4. races a second ``Go.go`` against a short durable delay (none may come: it must time out);
   every third process also sleeps a little (a durable timer);
5. runs the step ``s3``, appends ``end ROUND JOB`` to the log (handler code, not a step) and
   returns ``{"steps": [round of s0..s3], "token": ..., "extra": None, "ended": ROUND}``.

Since a step returns the round it ran in, a process's result tells which worker run's execution
of each step was recorded (a replay returns the recorded value).

Lines it prints (flushed at once, so the parent sees everything printed before a kill):

- ``O ROUND`` once the runtime is open;
- ``P ROUND JOB SEQ`` after a step's side effect is in the log (the parent's kill counter);
- ``E ROUND PROCESS_ID REACHED`` after each ``rt.emit`` by the worker (1 expected, repeats too);
- ``C ROUND PROCESS_ID`` for each "completed" process event;
- ``D ROUND PROCESS_ID JSON`` when ``h.wait()`` returned the result;
- ``X ROUND PROCESS_ID ERROR`` when ``h.wait()`` raised;
- ``U ROUND PROCESS_ID STATUS WAITING_ON LAST_ERROR`` for each process not finished after
  ``DEADLINE`` seconds (then it exits with status 3);
- ``ALL ROUND TRANSACTIONS OPERATIONS LARGEST_BATCH`` when every process is finished (then
  it exits with status 0), with the store's group-commit statistics of this run.
"""

from __future__ import annotations

import json
import os
import random
import sys

import attrs
import trio

import actorkit_durable as dur

FIRST_STEPS = 3
"""Steps before the signal wait; one more (``s{FIRST_STEPS}``) runs after it."""
WORKER_TOKEN = 1_000_000
SIBLING_TOKEN = 2_000_000
EXTRA_DELAY = 0.05
"""How long a process waits for a second ``Go.go`` (durable seconds)."""
SLEEP = 0.02
STEP_LATENCY = 0.02
"""A step takes up to this long (real seconds) before its side effect, like a remote call."""
LATENCY = random.Random(0)

ROUND = -1
"""The worker run this program is (set by ``main``, or by a checker that imports this)."""
LOG_FD = -1
"""The side-effect log, opened with ``O_APPEND`` (set by ``main`` or the checker)."""


@dur.record("test.process_sigkill.token.v1")
@attrs.frozen
class Token:
    value: int


class Go(dur.Signals):
    go = dur.signal("/job/:job/go", data=Token)


def job_name(index: int) -> str:
    return f"j{index}"


def process_id(index: int) -> str:
    return f"job/{job_name(index)}"


def emitted_by_worker(index: int, processes: int) -> bool:
    """Odd processes, and an unpaired last one, get their ``Go.go`` from the worker."""
    return index % 2 == 1 or index == processes - 1


def expected_token(index: int, processes: int) -> int:
    if emitted_by_worker(index, processes):
        return WORKER_TOKEN + index
    return SIBLING_TOKEN + index


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def log(line: str) -> None:
    """Append one line to the side-effect log in one ``write`` (atomic under ``O_APPEND``)."""
    os.write(LOG_FD, (line + "\n").encode())


async def effect(job: str, seq: int) -> int:
    """The side effect of step ``s{seq}``: a log line, fsynced; returns the round it ran in."""
    # an external call (steps overlap), slower than the stage window: each step's result is
    # then durable before the next step runs, which the test checks
    await trio.sleep(LATENCY.uniform(0.002, STEP_LATENCY))
    log(f"step {ROUND} {job} {seq}")
    await trio.to_thread.run_sync(os.fsync, LOG_FD)
    say(f"P {ROUND} {job} {seq}")
    return ROUND


@dur.process("/job/:job")
async def job(ctx: dur.Context, job: str) -> dict[str, object]:
    index = int(job.removeprefix("j"))
    rounds: list[int] = []
    for seq in range(FIRST_STEPS):
        rounds.append(await ctx.step(effect, job, seq, name=f"s{seq}"))
    if index % 2 == 1:
        await ctx.emit(Go.go, job=job_name(index - 1), data=Token(SIBLING_TOKEN + index - 1))
    received = await ctx.signal(Go.go)
    extra = await ctx.race(Go.go, dur.delay.seconds(EXTRA_DELAY))
    if index % 3 == 0:
        await ctx.sleep(SLEEP)
    rounds.append(await ctx.step(effect, job, FIRST_STEPS, name=f"s{FIRST_STEPS}"))
    log(f"end {ROUND} {job}")
    token: Token = received.data
    return {
        "steps": rounds,
        "token": token.value,
        "extra": None if extra.timed_out else repr(extra.data),
        "ended": ROUND,
    }


async def main(
    path: str, log_path: str, round_: int, processes: int, max_resident: int, deadline: float
) -> bool:
    global ROUND, LOG_FD
    ROUND = round_
    LATENCY.seed(round_)
    LOG_FD = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def on_event(event: object) -> None:
        if isinstance(event, dur.ProcessEvent) and event.status == dur.Status.COMPLETED:
            say(f"C {ROUND} {event.process_id}")

    async with dur.open_runtime(
        f"sqlite:///{path}",
        processes=[job],
        signals=[Go],
        max_resident=max_resident,
        on_event=on_event,
    ) as rt:
        say(f"O {ROUND}")
        handles: dict[int, dur.ProcessHandle[dict[str, object]]] = {}

        async def start_pair(first: int) -> None:
            # A sibling ``j{2k}`` is created before ``j{2k+1}``, which emits to it.
            for index in range(first, min(first + 2, processes)):
                handle = handles[index] = await rt.start(job, job=job_name(index))
                if emitted_by_worker(index, processes):
                    reached = await rt.emit(
                        Go.go,
                        job=job_name(index),
                        data=Token(WORKER_TOKEN + index),
                        idempotency_key=f"go-{job_name(index)}",
                    )
                    say(f"E {ROUND} {handle.id} {reached}")

        async with trio.open_nursery() as nursery:
            for first in range(0, processes, 2):
                nursery.start_soon(start_pair, first)
        finished: set[str] = set()

        async def wait(handle: dur.ProcessHandle[dict[str, object]]) -> None:
            try:
                result = await handle.wait()
            except dur.DurableError as error:
                say(f"X {ROUND} {handle.id} {type(error).__name__}: {error}".replace("\n", " "))
            else:
                say(f"D {ROUND} {handle.id} {json.dumps(result, sort_keys=True)}")
            finished.add(handle.id)

        with trio.move_on_after(deadline):
            async with trio.open_nursery() as nursery:
                for handle in handles.values():
                    nursery.start_soon(wait, handle)
        for handle in handles.values():
            if handle.id not in finished:
                state = await handle.state()
                say(
                    f"U {ROUND} {handle.id} {state.status} {state.waiting_on!r} "
                    f"{state.last_error!r}"
                )
        if len(finished) < len(handles):
            return False
        store = rt.statistics().store
        say(f"ALL {ROUND} {store.transactions} {store.operations} {store.largest_batch}")
    return True


if __name__ == "__main__":
    db, log_file, round_text, processes, max_resident, deadline = sys.argv[1:]
    ok = trio.run(
        main, db, log_file, int(round_text), int(processes), int(max_resident), float(deadline)
    )
    sys.exit(0 if ok else 3)

"""Replay under Hypothesis: random process programs see the same outcomes however they run.

A *program* is a random list of durable operations (steps, waits for signals, sleeps, races
of a signal against a delay, emits to the process itself) run by one handler, which records
what each operation returned and when (``ctx.now()``, ``ctx.random()``). A *schedule* emits
signals to the processes at random virtual times. The same program and schedule run three
ways on a MemoryStore under MockClock, one external event per instant (the order of two
events at one instant is trio's scheduling, which differs between the ways):

- resident: waiting processes stay in memory and are woken there;
- ``max_resident=0``: every wake rebuilds the process by replaying its journal;
- resident, with the runtime closed and a new one opened on the store at a random instant of
  the schedule (no virtual time passes in between, so no timer is late).

Every way must give each process the same observations and the same journal, and run each
step exactly once (the steps are instant; a closing runtime writes what it has staged).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import actorkit_durable as dur

START = datetime(2026, 1, 1, tzinfo=UTC)
PROCESSES = ("p0", "p1", "p2")


class Sig(dur.Signals):
    a = dur.signal("/prog/:p/a", data=int)
    b = dur.signal("/prog/:p/b", data=int)


SIGNALS = {"a": Sig.a, "b": Sig.b}

Op = tuple[Any, ...]

ops = st.one_of(
    st.tuples(st.just("step"), st.integers(0, 9)),
    st.tuples(st.just("signal"), st.sampled_from(["a", "b"])),
    st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.5, 1.0, 2.5])),
    st.tuples(st.just("race"), st.sampled_from(["a", "b"]), st.sampled_from([0.5, 1.0, 3.0])),
    st.tuples(st.just("emit"), st.sampled_from(["a", "b"]), st.integers(0, 99)),
)
programs = st.lists(ops, min_size=1, max_size=8)
schedules = st.lists(
    st.tuples(
        st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.0, 3.0]),  # gap before the emit
        st.sampled_from(PROCESSES),
        st.sampled_from(["a", "b"]),
        st.integers(0, 99),
    ),
    max_size=12,
)


def make_process(program: list[Op], runs: dict[str, list[str]]) -> dur.ProcessDef[list[Any]]:
    def compute(process: str, seq: int, value: int) -> int:
        runs.setdefault(process, []).append(f"{seq}:{value}")
        return value * 7 + seq

    @dur.process("/prog/:p")
    async def proc(ctx: dur.Context, p: str) -> list[Any]:
        seen: list[Any] = [("start", ctx.now().isoformat(), ctx.random())]
        for index, op in enumerate(program):
            match op:
                case ("step", value):
                    seen.append(("step", await ctx.step(compute, p, index, value, name="c")))
                case ("signal", name):
                    received = await ctx.signal(SIGNALS[name])
                    seen.append(("signal", name, received.data))
                case ("sleep", seconds):
                    await ctx.sleep(seconds)
                    seen.append(("slept",))
                case ("race", name, seconds):
                    won = await ctx.race(SIGNALS[name], dur.delay.seconds(seconds))
                    seen.append(("race", won.index, won.timed_out, won.data))
                case ("emit", name, value):
                    await ctx.emit(SIGNALS[name], data=value, p=p)
                    seen.append(("emitted",))
            seen.append(("at", ctx.now().isoformat(), ctx.random()))
        return seen

    return proc


async def run_program(
    program: list[Op], schedule: list[tuple[float, str, str, int]], cap: int, reopen_at: int | None
) -> tuple[dict[str, Any], dict[str, list[tuple[str, str]]], dict[str, list[str]]]:
    runs: dict[str, list[str]] = {}
    proc = make_process(program, runs)
    store = dur.MemoryStore()

    def runtime() -> Any:
        return dur.open_runtime(
            store, processes=[proc], signals=[Sig], max_resident=cap,
            start_time=START + timedelta(seconds=trio.current_time()),
        )  # fmt: skip

    results: dict[str, Any] = {}
    journals: dict[str, list[tuple[str, str]]] = {}
    with trio.fail_after(10_000):
        rt_cm = runtime()
        rt = await rt_cm.__aenter__()
        try:
            for process in PROCESSES:
                await rt.start(proc, p=process)
            for index, (gap, process, name, value) in enumerate(schedule):
                await trio.sleep(gap)
                if index == reopen_at:  # a new runtime takes over at this instant
                    await rt_cm.__aexit__(None, None, None)
                    rt_cm = runtime()
                    rt = await rt_cm.__aenter__()
                await rt.emit(SIGNALS[name], data=value, p=process)
            # what still waits for a signal gets one of each, then every timer may run out;
            # one event per instant, so that each run settles before the next one (what two
            # events at the same instant do depends on which task trio runs first)
            for _ in range(len(program)):
                for process in PROCESSES:
                    for name in ("a", "b"):
                        await trio.sleep(0.125)
                        await rt.emit(SIGNALS[name], data=-1, p=process)
                await trio.sleep(5.0)
            for process in PROCESSES:
                results[process] = await rt.handle(f"prog/{process}").wait()
        finally:
            await rt_cm.__aexit__(None, None, None)
        async with store:
            for process in PROCESSES:
                loaded = await store.load(f"prog/{process}")
                assert loaded is not None
                journals[process] = [(e.kind, e.name) for e in loaded.journal]
    return results, journals, runs


@given(programs, schedules, st.integers(0, 12))
def test_a_program_sees_the_same_outcomes_resident_replayed_and_reopened(
    program: list[Op], schedule: list[tuple[float, str, str, int]], reopen: int
) -> None:
    def run(cap: int, reopen_at: int | None) -> Any:
        return trio.run(
            run_program, program, schedule, cap, reopen_at,
            clock=trio.testing.MockClock(autojump_threshold=0),
        )  # fmt: skip

    resident = run(10_000, None)
    replayed = run(0, None)
    reopened = run(10_000, reopen if reopen < len(schedule) else None)
    for other in (replayed, reopened):
        assert other[0] == resident[0]  # observations, times and random numbers
        assert other[1] == resident[1]  # journals
        assert other[2] == resident[2]  # each step ran once, in order
    steps = sum(op[0] == "step" for op in program)
    assert all(len(resident[2].get(p, [])) == steps for p in PROCESSES)
    assert not math.isnan(sum(x[2] for x in resident[0]["p0"] if x[0] == "start"))

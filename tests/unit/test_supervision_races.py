"""Supervision decisions that race: failures at the same instant, stops and take-downs that
arrive while a restart is backing off, subtrees that are down while their children act.

Each runs under ``actorkit.testing.run`` (MockClock, seeded scheduler), so the interleaving is
fixed; several seeds are tried where the outcome must not depend on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import pytest
import trio
import trio.testing

import actorkit as ak
from actorkit.testing import run

E = TypeVar("E", bound=ak.Event)

FIXED_1S = ak.Backoff(initial=1.0, max=1.0, factor=1.0)


class Log:
    """What the workers saw, stamped with trio time."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.refuse: dict[str, int] = {}

    def add(self, text: str) -> None:
        self.lines.append(f"{trio.current_time():g} {text}")

    def worker(self) -> ak.Behavior[str, str]:
        def init(name: str) -> str:
            if self.refuse.get(name):
                self.refuse[name] -= 1
                self.add(f"init {name} raises")
                raise RuntimeError(f"{name} refuses to start")
            self.add(f"init {name}")
            return name

        def handle(name: str, msg: str, tools: ak.Tools) -> None:
            self.add(f"{name} handles {msg}")
            if msg == "poison":
                self.refuse[name] = 1
            if msg in ("crash", "poison"):
                raise RuntimeError(f"{name}: {msg}")

        def on_stop(name: str, reason: object) -> None:
            self.add(f"on_stop {name}")

        return ak.Behavior(name="w", init=init, handle=handle, on_stop=on_stop)


def outcome(main: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[str]]:
    """Run ``main`` and describe how ``open_actor_system`` ended."""

    async def wrapped() -> str:
        try:
            await main()
        except BaseExceptionGroup as group:
            gave_up, _ = group.split(ak.SupervisorGaveUp)
            if gave_up is None:
                raise
            return f"gave up: {gave_up.exceptions[0]}"
        return "exited normally"

    return wrapped


def of(events: Sequence[ak.Event], kind: type[E], prefix: str = "") -> list[E]:
    return [e for e in events if isinstance(e, kind) and e.actor_id.startswith(prefix)]


@pytest.mark.parametrize(
    ("root_strategy", "sub_strategy"),
    [
        (ak.Strategy.ONE_FOR_ONE, ak.Strategy.ONE_FOR_ONE),
        (ak.Strategy.ONE_FOR_ALL, ak.Strategy.ONE_FOR_ALL),
    ],
)
def test_one_burst_of_failures_gives_up_once(
    root_strategy: ak.Strategy, sub_strategy: ak.Strategy
) -> None:
    log = Log()

    async def main() -> None:
        async with ak.open_actor_system() as system:
            root = await system.supervisor(
                "root", strategy=root_strategy, budget=ak.RestartBudget(1, 10)
            )
            sub = await root.supervisor(
                "sub", strategy=sub_strategy, budget=ak.RestartBudget(0, 10)
            )
            a = await sub.spawn(log.worker(), "a")
            b = await sub.spawn(log.worker(), "b")
            a.send_nowait("crash")  # the same instant
            b.send_nowait("crash")
            await trio.sleep(1)

    result = run(outcome(main), seed=1)
    assert result.value == "exited normally"  # the root restarted sub once: within its budget
    assert len(of(result.events, ak.GaveUp, "sub")) == 1
    assert len(of(result.events, ak.Restarted, "sub")) == 1


def test_failures_are_stamped_when_seen_even_during_a_group_backoff() -> None:
    log = Log()

    async def main() -> None:
        async with ak.open_actor_system() as system:
            sup = await system.supervisor(
                "s", strategy=ak.Strategy.REST_FOR_ONE, budget=ak.RestartBudget(1, 0.5),
                backoff=FIXED_1S,
            )  # fmt: skip
            a = await sup.spawn(log.worker(), "a")
            b = await sup.spawn(log.worker(), "b")
            b.send_nowait("crash")  # t=0: the group [b] backs off until t=1
            await trio.sleep(0.2)
            a.send_nowait("crash")  # t=0.2: a second failure within 0.5 s
            await trio.sleep(5)

    result = run(outcome(main), seed=1)
    assert result.value.startswith("gave up: supervisor /s gave up")
    assert [e.at for e in of(result.events, ak.GaveUp)] == [pytest.approx(0.2)]
    assert [line for line in log.lines if "init" in line] == ["0 init a", "0 init b"]


def test_a_give_up_does_not_wait_for_a_subtree_backing_off() -> None:
    log = Log()

    async def main() -> None:
        async with ak.open_actor_system() as system:
            root = await system.supervisor("root", budget=ak.RestartBudget(1, 10), backoff=FIXED_1S)
            sub = await root.supervisor("sub", budget=ak.RestartBudget(0, 10))
            a = await sub.spawn(log.worker(), "a")
            b = await root.spawn(log.worker(), "b")
            a.send_nowait("crash")  # sub gives up; root restarts it after 1 s, in sub's task
            await trio.testing.wait_all_tasks_blocked()
            b.send_nowait("crash")  # root exceeds its budget while sub backs off
            await trio.sleep(5)

    result = run(outcome(main), seed=1)
    assert result.value.startswith("gave up: supervisor /root gave up")
    assert [e.at for e in of(result.events, ak.GaveUp, "root")] == [0]
    assert [line for line in log.lines if "init" in line] == ["0 init a", "0 init b"]


@pytest.mark.parametrize("seed", range(8))
def test_a_stop_with_a_restart_queued_stops_in_reverse_start_order(seed: int) -> None:
    log = Log()

    async def main() -> None:
        async with ak.open_actor_system() as system:
            sup = await system.supervisor(
                "s", strategy=ak.Strategy.ONE_FOR_ALL, budget=ak.RestartBudget(5, 10),
                backoff=FIXED_1S,
            )  # fmt: skip
            a = await sup.spawn(log.worker(), "a", name="a")
            b = await sup.spawn(log.worker(), "b", name="b")
            a.send_nowait("crash")
            b.send_nowait("crash")
            await trio.sleep(0.5)  # leave during the group's backoff, one more job queued

    events = run(main, seed=seed).events
    stops = [
        (e.actor_id, type(e).__name__)
        for e in events
        if isinstance(e, ak.Stopping | ak.Stopped | ak.RestartDeclined)
    ]
    assert stops[0] == ("s-1", "Stopping")
    assert [actor for actor, kind in stops if kind == "Stopped"] == ["w-3", "w-2", "s-1"]
    assert not of(events, ak.RestartDeclined)


@pytest.mark.parametrize("poison", [False, True])
def test_stop_during_a_group_backoff_is_immediate_and_runs_no_init(poison: bool) -> None:
    log = Log()

    async def main() -> tuple[float, float]:
        async with ak.open_actor_system() as system:
            sup = await system.supervisor(
                "s", strategy=ak.Strategy.ONE_FOR_ALL, budget=ak.RestartBudget(5, 10),
                backoff=ak.Backoff(initial=1.0, max=2.0, factor=2.0),
            )  # fmt: skip
            ref = await sup.spawn(log.worker(), "a")
            ref.send_nowait("poison" if poison else "crash")
            await trio.sleep(0.5)  # the group restart backs off until t=1
            called = trio.current_time()
            await sup.stop()
            return called, trio.current_time()

    called, returned = run(main, seed=1).value
    assert called == returned == 0.5
    assert [line for line in log.lines if "init" in line] == ["0 init a"]


@pytest.mark.parametrize("poison", [False, True])
def test_stopping_a_subtree_while_its_parent_restarts_it(poison: bool) -> None:
    log = Log()

    async def main() -> tuple[float, float]:
        async with ak.open_actor_system() as system:
            root = await system.supervisor(
                "root", budget=ak.RestartBudget(5, 10),
                backoff=ak.Backoff(initial=0.5, max=0.5, factor=1.0),
            )  # fmt: skip
            sub = await root.supervisor("sub", budget=ak.RestartBudget(0, 1))
            ref = await sub.spawn(log.worker(), "a")
            ref.send_nowait("poison" if poison else "crash")  # sub gives up; root backs off
            await trio.testing.wait_all_tasks_blocked()
            called = trio.current_time()
            await sub.stop()
            assert sub.status is ak.Status.STOPPED
            assert root.children() == []
            return called, trio.current_time()

    called, returned = run(main, seed=1).value
    assert called == returned == 0
    assert [line for line in log.lines if "init" in line] == ["0 init a"]


def test_a_subtree_restart_that_fails_half_way_holds_the_children_it_started() -> None:
    log = Log()
    seen: dict[str, Any] = {}

    async def main() -> None:
        async with ak.open_actor_system() as system:
            root = await system.supervisor("root", backoff=FIXED_1S)
            sub = await root.supervisor("sub", budget=ak.RestartBudget(0, 1))
            a = await sub.spawn(log.worker(), "a")
            b = await sub.spawn(log.worker(), "b")
            b.send_nowait("poison")  # sub gives up; at t=1 a starts, b's init raises
            await trio.sleep(1.5)
            seen["a"], seen["sub"] = a.status, sub.status
            a.send_nowait("hello")  # held until the retry at t=2 succeeds
            await trio.sleep(2)

    run(main, seed=1)
    assert seen == {"a": ak.Status.RESTARTING, "sub": ak.Status.RESTARTING}
    assert log.lines == [
        "0 init a",
        "0 init b",
        "0 b handles poison",
        "0 on_stop b",
        "0 on_stop a",  # the give-up holds a
        "1 init a",
        "1 init b raises",
        "1 on_stop a",  # the failed restart holds a again
        "2 init a",
        "2 init b",
        "2 a handles hello",
        "3.5 on_stop b",
        "3.5 on_stop a",
    ]


@pytest.mark.parametrize("crash_late", [False, True])
def test_a_child_spawned_into_a_subtree_that_is_down(crash_late: bool) -> None:
    log = Log()

    async def main() -> None:
        async with ak.open_actor_system() as system:
            root = await system.supervisor(
                "root",
                strategy=ak.Strategy.ONE_FOR_ALL if crash_late else ak.Strategy.ONE_FOR_ONE,
                budget=ak.RestartBudget(5, 10),
                backoff=FIXED_1S,
            )
            sub = await root.supervisor("sub", budget=ak.RestartBudget(0, 10))
            first = await sub.spawn(log.worker(), "first")
            first.send_nowait("crash")  # sub gives up at once; root restarts it after 1 s
            await trio.testing.wait_all_tasks_blocked()
            assert sub.status is ak.Status.RESTARTING
            late = await sub.spawn(log.worker(), "late")  # runs at once
            if crash_late:
                late.send_nowait("crash")  # no decision of the held subtree: its restart
            await trio.sleep(2)

    events = run(main, seed=1).events
    assert len(of(events, ak.GaveUp, "sub")) == 1
    assert not [e for e in of(events, ak.Restarting, "w") if e.at < 1]
    inits = [line for line in log.lines if "init late" in line]
    # kept by the subtree's restart when it stayed up; re-created by it when it crashed
    assert inits == (["0 init late", "1 init late"] if crash_late else ["0 init late"])


def test_a_timer_of_the_previous_incarnation_is_a_dead_letter() -> None:
    handled: list[tuple[int, str, int]] = []
    generation = [0]

    def init(ctx: object) -> int:
        generation[0] += 1
        return generation[0]

    def handle(incarnation: int, msg: tuple[str, int], tools: ak.Tools) -> None:
        kind, origin = msg
        handled.append((incarnation, kind, origin))
        if kind == "start":  # two timers for the same instant: both fire into the mailbox
            tools.schedule(1.0, ("crash", incarnation))
            tools.schedule(1.0, ("tick", incarnation))
        elif kind == "crash":
            raise RuntimeError("crash")

    async def main() -> None:
        async with ak.open_actor_system() as system:
            sup = await system.supervisor("s")
            ref = await sup.spawn(ak.Behavior(name="w", init=init, handle=handle))
            ref.send_nowait(("start", 0))
            await trio.sleep(2)

    events = run(main, seed=1).events
    assert handled == [(1, "start", 0), (1, "crash", 1)]
    letters = [e for e in of(events, ak.DeadLetter) if e.reason.startswith("timer")]
    assert [(e.reason, e.message) for e in letters] == [
        ("timer of a previous incarnation (restarted)", ("tick", 1))
    ]


async def test_a_cancelled_system_still_stops_supervised_actors_in_order() -> None:
    stopped: list[str] = []

    def on_stop(name: str, reason: object) -> None:
        stopped.append(f"{name} {reason}")

    behavior: ak.Behavior[str, Any] = ak.Behavior(
        name="w", init=lambda name: name, handle=lambda s, m, t: None, on_stop=on_stop
    )
    with trio.CancelScope() as scope:
        async with ak.open_actor_system() as system:
            root = await system.supervisor("root")
            sub = await root.supervisor("sub")
            await root.spawn(behavior, "a")
            await sub.spawn(behavior, "b")
            await sub.spawn(behavior, "c")
            scope.cancel()
            await trio.sleep_forever()
    assert stopped == ["a shutdown", "c shutdown", "b shutdown"]  # reverse start order


def test_a_group_take_down_of_a_child_still_ending_its_failed_incarnation() -> None:
    """a fails and its async on_stop runs; b's failure takes the group down meanwhile."""
    lines: list[str] = []

    def init(name: str) -> str:
        lines.append(f"{trio.current_time():g} init {name}")
        return name

    def handle(name: str, msg: str, tools: ak.Tools) -> None:
        raise RuntimeError(f"{name} crashed")

    async def on_stop(name: str, reason: object) -> None:
        if name == "a" and isinstance(reason, RuntimeError):
            await trio.sleep(1)
        lines.append(f"{trio.current_time():g} on_stop {name}")

    behavior = ak.Behavior(name="w", init=init, handle=handle, on_stop=on_stop)

    async def main() -> None:
        with trio.fail_after(60):  # virtual time: a take-down that never ends fails here
            async with ak.open_actor_system() as system:
                sup = await system.supervisor("s", strategy=ak.Strategy.ONE_FOR_ALL)
                a = await sup.spawn(behavior, "a")
                b = await sup.spawn(behavior, "b")
                a.send_nowait("crash")
                await trio.sleep(0.5)
                b.send_nowait("crash")
                await trio.sleep(2)

    events = run(main, seed=1).events
    assert lines == [
        "0 init a",
        "0 init b",
        "0.5 on_stop b",
        "1 on_stop a",
        "1 init a",  # one group restart re-creates both, once
        "1 init b",
        "2.5 on_stop b",
        "2.5 on_stop a",
    ]
    assert [(e.actor_id, e.at) for e in of(events, ak.Restarted)] == [("w-2", 1), ("w-3", 1)]

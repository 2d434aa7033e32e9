"""Supervision scenarios, modelled on Erlang/OTP's own supervisor tests."""

from __future__ import annotations

import functools
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import actorkit as ak


@attrs.frozen
class Get:
    reply: ak.Reply[tuple[str, int, int]]


@attrs.frozen
class Crash:
    pass


@attrs.frozen
class Quit:
    pass


@attrs.frozen
class Incarnation:
    """ctx of a worker: a name and a counter of inits (its incarnation number)."""

    name: str
    log: list[str]
    inits: list[int] = attrs.field(factory=lambda: [0])
    fail_inits: list[int] = attrs.field(factory=list)


async def worker_init(ctx: Incarnation) -> tuple[str, int, int]:
    ctx.inits[0] += 1
    if ctx.inits[0] in ctx.fail_inits:
        raise OSError(f"{ctx.name} cannot start (init {ctx.inits[0]})")
    ctx.log.append(f"init {ctx.name}")
    return (ctx.name, ctx.inits[0], 0)


def worker_handle(state: tuple[str, int, int], msg: object, tools: ak.Tools) -> Any:
    name, incarnation, count = state
    if isinstance(msg, Get):
        msg.reply(state)
        return None
    if isinstance(msg, Crash):
        raise RuntimeError(f"{name} crashed")
    if isinstance(msg, Quit):
        tools.stop("quit")
        return None
    return (name, incarnation, count + 1)


def worker_on_stop(state: tuple[str, int, int], reason: object) -> None:
    pass


def worker(log: list[str]) -> ak.Behavior[tuple[str, int, int], Any]:
    def on_stop(state: tuple[str, int, int], reason: object) -> None:
        log.append(f"stop {state[0]}")

    return ak.Behavior(name="worker", init=worker_init, handle=worker_handle, on_stop=on_stop)


async def spawn_workers(
    sup: ak.Supervisor, log: list[str], names: str, restart: ak.Restart = ak.Restart.PERMANENT
) -> list[ak.ActorRef[Any]]:
    return [await sup.spawn(worker(log), Incarnation(name, log), restart=restart) for name in names]


async def states(refs: list[ak.ActorRef[Any]]) -> list[tuple[str, int, int]]:
    return [await ref.ask(Get) for ref in refs]


@pytest.mark.parametrize(
    ("strategy", "restarted"),
    [
        (ak.Strategy.ONE_FOR_ONE, "b"),
        (ak.Strategy.ONE_FOR_ALL, "abcd"),
        (ak.Strategy.REST_FOR_ONE, "bcd"),
    ],
)
async def test_strategies(
    strategy: ak.Strategy, restarted: str, autojump_clock: trio.testing.MockClock
) -> None:
    log: list[str] = []
    async with ak.open_actor_system() as system:
        sup = await system.supervisor("sup", strategy=strategy)
        refs = await spawn_workers(sup, log, "abcd")
        for ref in refs:
            ref.send_nowait("work")
        log.clear()
        refs[1].send_nowait(Crash())
        await trio.testing.wait_all_tasks_blocked()  # the group restart runs in the supervisor
        after = await states(refs)
        assert sup.children() == refs
        for name, (_, incarnation, count) in zip("abcd", after, strict=True):
            if name in restarted:
                assert (incarnation, count) == (2, 0), name
                assert sup.restart_count(refs["abcd".index(name)]) == 1
            else:
                assert (incarnation, count) == (1, 1), name
                assert sup.restart_count(refs["abcd".index(name)]) == 0
        others = [n for n in reversed(restarted) if n != "b"]
        # the failed child ends first; the others stop in reverse start order; all start in order
        assert log == ["stop b", *[f"stop {n}" for n in others], *[f"init {n}" for n in restarted]]


async def test_restart_types_after_failure_and_self_stop() -> None:
    log: list[str] = []
    events: list[ak.Event] = []
    async with ak.open_actor_system(on_event=events.append) as system:
        sup = await system.supervisor("sup", budget=ak.RestartBudget(10, 5))
        permanent, transient, temporary = [
            await sup.spawn(worker(log), Incarnation(name, log), restart=restart)
            for name, restart in (
                ("perm", ak.Restart.PERMANENT),
                ("trans", ak.Restart.TRANSIENT),
                ("temp", ak.Restart.TEMPORARY),
            )
        ]
        for ref in (permanent, transient):
            ref.send_nowait(Crash())
            assert (await ref.ask(Get))[1] == 2  # restarted after a failure
        temporary.send_nowait(Crash())
        with pytest.raises(ak.ActorStopped):
            await temporary.ask(Get)
        assert temporary.status is ak.Status.FAILED

        permanent.send_nowait(Quit())
        assert (await permanent.ask(Get))[1] == 3  # PERMANENT: restarted after tools.stop()
        transient.send_nowait(Quit())
        with pytest.raises(ak.ActorStopped):
            await transient.ask(Get)
        assert transient.status is ak.Status.STOPPED
        assert sup.children() == [permanent]
    declined = [(e.actor_id, e.reason) for e in events if isinstance(e, ak.RestartDeclined)]
    assert declined == [
        ("worker-4", "temporary child"),
        ("worker-3", "transient child stopped normally"),
    ]


async def test_external_stop_is_for_good_and_dead_letters_the_queue() -> None:
    log: list[str] = []
    events: list[ak.Event] = []
    async with ak.open_actor_system(on_event=events.append) as system:
        sup = await system.supervisor("sup")
        a, b = await spawn_workers(sup, log, "ab")
        await a.stop()
        assert a.status is ak.Status.STOPPED
        assert sup.children() == [b]
        with pytest.raises(ValueError, match="not a live child"):
            sup.restart_count(a)
        assert not a.send_nowait("late")
    assert any(isinstance(e, ak.DeadLetter) and e.message == "late" for e in events)


async def test_temporary_children_are_not_restarted_by_group_strategies() -> None:
    log: list[str] = []
    async with ak.open_actor_system() as system:
        sup = await system.supervisor("sup", strategy=ak.Strategy.ONE_FOR_ALL)
        a = (await spawn_workers(sup, log, "a"))[0]
        temp = (await spawn_workers(sup, log, "t", ak.Restart.TEMPORARY))[0]
        c = (await spawn_workers(sup, log, "c"))[0]
        c.send_nowait(Crash())
        await trio.testing.wait_all_tasks_blocked()
        assert (await a.ask(Get))[1] == 2
        assert temp.status is ak.Status.STOPPED
        assert sup.children() == [a, c]


async def test_restart_keeps_ref_and_mailbox_and_dead_letters_only_the_failing_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    events: list[ak.Event] = []
    async with ak.open_actor_system(on_event=events.append) as system:
        sup = await system.supervisor("sup", backoff=ak.Backoff(initial=2.0, max=10.0))
        (a,) = await spawn_workers(sup, log, "a")
        a.send_nowait(Crash())
        a.send_nowait("one")
        a.send_nowait("two")
        queued_ask = await a.ask(Get)  # queued behind the crash: survives the restart
        assert queued_ask == ("a", 2, 2)
        assert trio.current_time() == pytest.approx(2.0)  # the backoff delay
    kinds = [type(e).__name__ for e in events if e.actor_id == "worker-2"]
    assert kinds[:7] == [
        "Spawned", "Started", "Failed", "DeadLetter", "Restarting", "Restarted", "Stopping",
    ]  # fmt: skip
    [letter] = [e for e in events if isinstance(e, ak.DeadLetter)]
    assert letter.message == Crash()
    assert letter.error == "RuntimeError: a crashed"
    [restarting] = [e for e in events if isinstance(e, ak.Restarting)]
    assert (restarting.delay, restarting.attempt) == (2.0, 1)


async def test_asker_of_the_failing_message_gets_actor_failed() -> None:
    log: list[str] = []
    async with ak.open_actor_system() as system:
        sup = await system.supervisor("sup")
        (a,) = await spawn_workers(sup, log, "a")
        with pytest.raises(ak.ActorFailed) as info:
            await a.ask(lambda reply: Crash())
        assert isinstance(info.value.__cause__, RuntimeError)
        assert (await a.ask(Get))[1] == 2


async def test_failed_reinit_is_counted_and_backed_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    events: list[ak.Event] = []
    async with ak.open_actor_system(on_event=events.append) as system:
        sup = await system.supervisor(
            "sup",
            budget=ak.RestartBudget(max_restarts=5, within=100),
            backoff=ak.Backoff(initial=1.0, max=30.0, factor=2.0),
        )
        ctx = Incarnation("a", log, fail_inits=[2, 3])
        a = await sup.spawn(worker(log), ctx)
        a.send_nowait(Crash())
        assert (await a.ask(Get, timeout=30))[1] == 4  # inits 2 and 3 failed
        assert sup.restart_count(a) == 1
    delays = [(e.delay, e.attempt) for e in events if isinstance(e, ak.Restarting)]
    assert delays == [(1.0, 1), (2.0, 2), (4.0, 3)]
    failed_inits = [e for e in events if isinstance(e, ak.Failed) and e.message_type is None]
    assert [e.error for e in failed_inits] == ["a cannot start (init 2)", "a cannot start (init 3)"]
    assert [e.at for e in failed_inits] == [1.0, 3.0]


async def test_budget_window_gives_up_exactly_when_exceeded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    events: list[ak.Event] = []
    with pytest.RaisesGroup(pytest.RaisesExc(ak.SupervisorGaveUp, match="/sup gave up")) as info:
        async with ak.open_actor_system(on_event=events.append) as system:
            sup = await system.supervisor("sup", budget=ak.RestartBudget(2, within=10))
            (a,) = await spawn_workers(sup, log, "a")
            for at in (0, 6, 12, 18):  # no window of 10 s holds more than 2 of these
                await trio.sleep_until(at)
                a.send_nowait(Crash())
                assert (await a.ask(Get))[0] == "a"
            assert sup.restart_count(a) == 4
            await trio.sleep_until(22)
            a.send_nowait(Crash())  # 12, 18, 22: three in [12, 22] (the edge counts)
            await trio.sleep_forever()
    gave_up = info.value.exceptions[0]
    assert isinstance(gave_up.__cause__, RuntimeError)
    [event] = [e for e in events if isinstance(e, ak.GaveUp)]
    assert (event.at, event.restarts, event.within, event.error_type) == (
        22.0, 3, 10.0, "RuntimeError",
    )  # fmt: skip
    assert a.status is ak.Status.STOPPED


async def test_attempt_resets_after_a_stable_period(autojump_clock: trio.testing.MockClock) -> None:
    log: list[str] = []
    events: list[ak.Event] = []
    async with ak.open_actor_system(on_event=events.append) as system:
        sup = await system.supervisor(
            "sup",
            budget=ak.RestartBudget(100, within=1000),
            backoff=ak.Backoff(initial=1.0, max=8.0, reset_after=20.0),
        )
        (a,) = await spawn_workers(sup, log, "a")
        for _ in range(3):
            a.send_nowait(Crash())
            await a.ask(Get)
        await trio.sleep(25)
        a.send_nowait(Crash())
        await a.ask(Get)
    assert [e.delay for e in events if isinstance(e, ak.Restarting)] == [1.0, 2.0, 4.0, 1.0]


async def test_jitter_comes_from_the_injected_rng(autojump_clock: trio.testing.MockClock) -> None:
    import random

    async def delays(seed: int) -> list[float]:
        log: list[str] = []
        events: list[ak.Event] = []
        async with ak.open_actor_system(rng=random.Random(seed), on_event=events.append) as system:
            sup = await system.supervisor(
                "sup",
                budget=ak.RestartBudget(100, within=1000),
                backoff=ak.Backoff(initial=1.0, max=3.0, jitter=0.5),
            )
            (a,) = await spawn_workers(sup, log, "a")
            for _ in range(5):
                a.send_nowait(Crash())
                await a.ask(Get)
        return [e.delay for e in events if isinstance(e, ak.Restarting)]

    first = await delays(1)
    assert first == await delays(1)
    assert first != await delays(2)
    assert all(0 <= d <= 3.0 for d in first)


async def test_three_level_escalation_restarts_the_subtree_keeping_refs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    events: list[ak.Event] = []
    async with ak.open_actor_system(on_event=events.append) as system:
        root = await system.supervisor("root", budget=ak.RestartBudget(5, 100))
        mid = await root.supervisor("mid", budget=ak.RestartBudget(1, 100))
        leaf_sup = await mid.supervisor("leaf", budget=ak.RestartBudget(0, 100))
        (x,) = await spawn_workers(leaf_sup, log, "x")
        (y,) = await spawn_workers(mid, log, "y")
        (z,) = await spawn_workers(root, log, "z")
        assert leaf_sup.path == "/root/mid/leaf"
        assert root.children() == [mid, z]
        log.clear()
        x.send_nowait(Crash())  # leaf gives up at once; mid restarts leaf (1 restart allowed)
        assert (await x.ask(Get))[1] == 2
        assert mid.restart_count(leaf_sup) == 1
        x.send_nowait(Crash())  # leaf gives up again; mid exceeds its budget; root restarts mid
        assert (await x.ask(Get))[1] == 3
        assert (await y.ask(Get))[1] == 2  # mid's other child was re-created with it
        assert (await z.ask(Get))[1] == 1  # root's other child untouched
        assert root.restart_count(mid) == 1
        assert mid.children() == [leaf_sup, y]
    gave_up = [e.actor_id for e in events if isinstance(e, ak.GaveUp)]
    assert gave_up == [leaf_sup.id, leaf_sup.id, mid.id]


async def test_root_give_up_surfaces_from_open_actor_system_after_ordered_stop() -> None:
    log: list[str] = []
    with pytest.RaisesGroup(pytest.RaisesExc(ak.SupervisorGaveUp, match="/top/inner")) as info:
        async with ak.open_actor_system() as system:
            (before,) = await spawn_workers(await system.supervisor("first"), log, "p")
            top = await system.supervisor("top", budget=ak.RestartBudget(0, 10))
            inner = await top.supervisor("inner", budget=ak.RestartBudget(0, 10))
            (w,) = await spawn_workers(inner, log, "w")
            (after,) = await spawn_workers(await system.supervisor("last"), log, "q")
            log.clear()
            w.send_nowait(Crash())
            await trio.sleep_forever()
    top_error = info.value.exceptions[0]
    assert "/top gave up" in str(top_error)
    assert isinstance(top_error.__cause__, ak.SupervisorGaveUp)
    assert isinstance(top_error.__cause__.__cause__, RuntimeError)
    assert log == ["stop w", "stop q", "stop p"]
    assert (before.status, after.status) == (ak.Status.STOPPED, ak.Status.STOPPED)


async def test_ordered_shutdown_of_a_three_level_tree() -> None:
    log: list[str] = []
    async with ak.open_actor_system() as system:
        root = await system.supervisor("root")
        await spawn_workers(root, log, "a")
        mid = await root.supervisor("mid")
        await spawn_workers(mid, log, "b")
        leaf = await mid.supervisor("leaf")
        await spawn_workers(leaf, log, "cd")
        await spawn_workers(mid, log, "e")
        await spawn_workers(root, log, "f")
        await spawn_workers(await system.supervisor("other"), log, "g")
        log.clear()
    assert log == [f"stop {n}" for n in "gfedcba"]
    assert root.status is ak.Status.STOPPED


async def test_a_child_that_ignores_its_grace_is_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stopped: list[tuple[str, float]] = []

    async def stubborn(state: str, msg: object, tools: ak.Tools) -> None:
        await trio.sleep(1000)  # does not finish within its grace

    def on_stop(state: str, reason: object) -> None:
        stopped.append((state, trio.current_time()))

    async with ak.open_actor_system() as system:
        sup = await system.supervisor("sup")
        for name, grace in (("slow", 2.0), ("quick", 0.5)):
            ref = await sup.spawn(
                ak.Behavior(name=name, init=lambda ctx: ctx, handle=stubborn, on_stop=on_stop),
                name,
                shutdown=grace,
            )
            ref.send_nowait("go")
        await trio.testing.wait_all_tasks_blocked()
        await sup.stop()
    assert stopped == [("quick", 0.5), ("slow", 2.5)]


async def test_messages_during_backoff_wait_and_old_timers_never_fire(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[int, object]] = []

    def init(ctx: list[int]) -> int:
        ctx[0] += 1
        return ctx[0]

    def handle(incarnation: int, msg: object, tools: ak.Tools) -> None:
        if msg == "arm":
            tools.schedule(5.0, "old timer")
        elif msg == "crash":
            raise RuntimeError("boom")
        elif isinstance(msg, Get):
            msg.reply(("", incarnation, len(seen)))
        else:
            seen.append((incarnation, msg))

    async with ak.open_actor_system() as system:
        sup = await system.supervisor("sup", backoff=ak.Backoff(initial=3.0, max=3.0))
        ref = await sup.spawn(ak.Behavior(name="t", init=init, handle=handle), [0])
        ref.send_nowait("arm")
        ref.send_nowait("crash")
        await trio.sleep(1)
        assert ref.status is ak.Status.RESTARTING
        assert ref.send_nowait("during backoff")
        await trio.sleep(10)
        assert await ref.ask(Get) == ("", 2, 1)
    assert seen == [(2, "during backoff")]


async def test_monitor_ignores_restarts_and_link_fails_the_partner() -> None:
    log: list[str] = []
    downs: list[ak.Down] = []

    def watch(state: None, msg: object, tools: ak.Tools) -> None:
        if isinstance(msg, ak.Down):
            downs.append(msg)
        elif isinstance(msg, Get):
            msg.reply(("", 0, len(downs)))

    async with ak.open_actor_system() as system:
        sup = await system.supervisor("sup", budget=ak.RestartBudget(10, 5))
        a, b = await spawn_workers(sup, log, "ab")
        watcher = await system.spawn(ak.Behavior(name="watcher", handle=watch))
        system.monitor(watcher, a)
        system.link(a, b)
        a.send_nowait(Crash())
        assert (await a.ask(Get))[1] == 2
        assert (await b.ask(Get))[1] == 2  # the link failed b too; its supervisor restarted it
        assert (await watcher.ask(Get))[2] == 0  # a restart is not a stop
        await a.stop()
        assert (await watcher.ask(Get))[2] == 1
        assert downs[0].ref is a


async def test_declarative_spec_starts_children_in_order() -> None:
    log: list[str] = []
    spec = ak.SupervisorSpec(
        "app",
        strategy=ak.Strategy.REST_FOR_ONE,
        children=[
            ak.ChildSpec(worker(log), Incarnation("db", log), name="db"),
            ak.SupervisorSpec(
                "web", children=[ak.ChildSpec(worker(log), Incarnation("http", log))]
            ),
            ak.ChildSpec(worker(log), Incarnation("cache", log), restart=ak.Restart.TRANSIENT),
        ],
    )
    async with ak.open_actor_system() as system:
        app = await system.start(spec)
        assert log == ["init db", "init http", "init cache"]
        db = system.whereis("db")
        assert db is not None
        assert [c.name for c in app.children()] == ["db", "web", "worker"]
        log.clear()
        db.send_nowait(Crash())
        assert (await db.ask(Get))[1] == 2
        assert log == ["stop db", "stop cache", "stop http", "init db", "init http", "init cache"]


async def test_bad_supervisor_arguments() -> None:
    async with ak.open_actor_system() as system:
        with pytest.raises(ValueError, match="strategy"):
            await system.supervisor("s", strategy="fast")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="without '/'"):
            await system.supervisor("a/b")
        sup = await system.supervisor("s")
        with pytest.raises(ValueError, match=r"Restart\.PERMANENT"):
            await sup.spawn(worker([]), Incarnation("x", []), restart="always")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="SupervisorSpec"):
            await system.start("app")  # type: ignore[arg-type]
        await sup.stop()
        with pytest.raises(ak.SystemClosed, match="/s is STOPPED"):
            await sup.spawn(worker([]), Incarnation("x", []))


async def test_group_restart_events_carry_the_groups_attempt() -> None:
    events: list[ak.Event] = []
    log: list[str] = []
    async with ak.open_actor_system(on_event=events.append) as system:
        sup = await system.supervisor("svc", strategy=ak.Strategy.ONE_FOR_ALL)
        _a, b = await spawn_workers(sup, log, "ab")
        b.send_nowait(Crash())
        await trio.testing.wait_all_tasks_blocked()
    restarting = {e.actor_id: e.attempt for e in events if isinstance(e, ak.Restarting)}
    restarted = {e.actor_id: e.attempt for e in events if isinstance(e, ak.Restarted)}
    assert restarted == restarting == {"worker-2": 1, "worker-3": 1}


async def test_group_restart_keeps_a_sibling_whose_handler_overran_its_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handle(state: str, msg: object, tools: ak.Tools) -> None:
        if msg == "crash":
            raise RuntimeError(f"{state} crashed")
        if msg == "slow":
            await trio.sleep(100)
        if isinstance(msg, Get):
            msg.reply((state, 0, 0))

    def behavior(name: str) -> ak.Behavior[str, object]:
        return ak.Behavior(name=name, init=lambda ctx: name, handle=handle)

    events: list[ak.Event] = []
    async with ak.open_actor_system(on_event=events.append) as system:
        sup = await system.supervisor("svc", strategy=ak.Strategy.ONE_FOR_ALL)
        a = await sup.spawn(behavior("a"), shutdown=2.0)
        b = await sup.spawn(behavior("b"))
        a.send_nowait("slow")
        await trio.sleep(1)
        b.send_nowait("crash")
        await trio.sleep(10)
        assert sup.children() == [a, b]
        assert a.status is ak.Status.RUNNING
        assert (await a.ask(Get))[0] == "a"
    cancelled = [e for e in events if isinstance(e, ak.DeadLetter) and e.message == "slow"]
    assert cancelled[0].at == 3.0  # grace of 2 s from the group restart at t=1


async def test_a_subtrees_grace_bounds_its_shutdown(autojump_clock: trio.testing.MockClock) -> None:
    async def stubborn(state: object, msg: object, tools: ak.Tools) -> None:
        await trio.sleep(1000)

    async with ak.open_actor_system() as system:
        root = await system.supervisor("root")
        sub = await root.supervisor("sub", shutdown=1.0)
        ref = await sub.spawn(ak.Behavior(name="slow", handle=stubborn), shutdown=10.0)
        ref.send_nowait("go")
        await trio.testing.wait_all_tasks_blocked()
        await root.stop()
        assert trio.current_time() == 1.0
        assert ref.status is ak.Status.STOPPED


def test_linked_failures_propagate_in_link_order() -> None:
    from actorkit.testing import run

    def work(state: None, msg: str, tools: ak.Tools) -> None:
        if msg == "fail":
            raise RuntimeError("failed")

    async def main(padding: int) -> list[str]:
        junk = [object() for _ in range(padding)]  # moves later allocations around
        events: list[str] = []
        async with ak.open_actor_system(on_event=lambda e: events.append(e.actor_id)) as system:
            sup = await system.supervisor("s", budget=ak.RestartBudget(100, 1))
            refs = [await sup.spawn(ak.Behavior(name="w", handle=work)) for _ in range(6)]
            for other in refs[1:]:
                system.link(refs[0], other)
            refs[0].send_nowait("fail")
            await trio.testing.wait_all_tasks_blocked()
        del junk
        return events

    orders = {
        tuple(run(functools.partial(main, padding), seed=1).value) for padding in (0, 7, 50, 300)
    }
    assert len(orders) == 1

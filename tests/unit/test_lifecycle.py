"""Spawning, stopping, failing, the registry, monitors and system shutdown."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing

import actorkit as ak


@attrs.frozen
class Ping:
    reply: ak.Reply[str]


def pong(state: Any, msg: object, tools: ak.Tools) -> None:
    if isinstance(msg, Ping):
        msg.reply("pong")
    elif msg == "crash":
        raise ValueError("crashed on purpose")
    elif msg == "stop":
        tools.stop("asked to")


async def test_init_failure_raises_from_spawn_and_releases_name() -> None:
    events: list[ak.Event] = []

    async def bad_init(ctx: object) -> int:
        await trio.lowlevel.checkpoint()
        raise KeyError(ctx)

    async with ak.open_actor_system(on_event=events.append) as system:
        with pytest.raises(KeyError):
            await system.spawn(ak.Behavior(name="bad", handle=pong, init=bad_init), "cfg", name="x")
        assert system.whereis("x") is None
        good = await system.spawn(ak.Behavior(name="good", handle=pong), name="x")
        assert system.whereis("x") is good
    failed = [e for e in events if isinstance(e, ak.Failed)]
    assert [(e.actor_id, e.error_type, e.message_type) for e in failed] == [
        ("bad-1", "KeyError", None)
    ]


async def test_on_stop_runs_exactly_once_for_every_way_of_stopping() -> None:
    stops: list[tuple[str, object]] = []

    def on_stop(state: str, reason: object) -> None:
        stops.append((state, reason if isinstance(reason, str) else type(reason).__name__))

    def behavior(name: str) -> ak.Behavior[str, object]:
        return ak.Behavior(name=name, handle=pong, init=lambda ctx: name, on_stop=on_stop)

    async with ak.open_actor_system() as system:
        external = await system.spawn(behavior("external"))
        own = await system.spawn(behavior("own"))
        failing = await system.spawn(behavior("failing"))
        await system.spawn(behavior("at-exit"))
        await external.stop()
        await external.stop()  # a second stop is a no-op
        own.send_nowait("stop")
        failing.send_nowait("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert (own.status, failing.status) == (ak.Status.STOPPED, ak.Status.FAILED)
    assert sorted(stops) == [
        ("at-exit", "shutdown"),
        ("external", "normal"),
        ("failing", "ValueError"),
        ("own", "asked to"),
    ]


async def test_async_on_stop_is_shielded_and_bounded_by_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    progress: list[str] = []

    async def on_stop(state: None, reason: object) -> None:
        progress.append("begin")
        await trio.sleep(1)
        progress.append("after 1s")
        await trio.sleep(100)
        progress.append("never")

    async with ak.open_actor_system() as system:
        ref = await system.spawn(ak.Behavior(name="s", handle=pong, on_stop=on_stop), shutdown=3)
        with trio.CancelScope() as scope:
            scope.cancel()
            await ref.stop()  # cancelled caller: the actor still stops
        assert ref.status is ak.Status.STOPPING
        await ref.stop()
    assert progress == ["begin", "after 1s"]
    assert trio.current_time() == pytest.approx(3.0)


async def test_unsupervised_failure_stops_only_that_actor() -> None:
    events: list[ak.Event] = []
    async with ak.open_actor_system(on_event=events.append) as system:
        victim = await system.spawn(ak.Behavior(name="victim", handle=pong))
        bystander = await system.spawn(ak.Behavior(name="bystander", handle=pong))
        victim.send_nowait("crash")
        assert await bystander.ask(Ping) == "pong"
        with pytest.raises(ak.ActorStopped):
            await victim.ask(Ping)
        assert victim.status is ak.Status.FAILED
        assert await bystander.ask(Ping) == "pong"
    kinds = [(type(e).__name__, e.actor_id) for e in events if e.actor_id == "victim-1"]
    assert ("Failed", "victim-1") in kinds
    stopped = [e for e in events if isinstance(e, ak.Stopped) and e.actor_id == "victim-1"]
    assert stopped[0].failed is True
    assert stopped[0].reason == "ValueError: crashed on purpose"


async def test_failures_and_dead_letters_are_logged_without_on_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="actorkit")
    async with ak.open_actor_system() as system:
        ref = await system.spawn(ak.Behavior(name="loud", handle=pong))
        ref.send_nowait("crash")
        with pytest.raises(ak.ActorStopped):
            await ref.ask(Ping)
        ref.send_nowait("after")
    messages = [r.getMessage() for r in caplog.records if r.name == "actorkit"]
    assert any("loud-1 failed handling str" in m for m in messages)
    assert any("dead letter to loud-1" in m for m in messages)
    failure = next(r for r in caplog.records if "failed handling" in r.getMessage())
    assert failure.levelno == logging.ERROR
    assert failure.exc_info is not None


async def test_on_event_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: ak.Event) -> None:
        raise RuntimeError("listener bug")

    async with ak.open_actor_system(on_event=broken) as system:
        ref = await system.spawn(ak.Behavior(name="x", handle=pong))
        assert await ref.ask(Ping) == "pong"
    assert any("on_event raised" in r.getMessage() for r in caplog.records)


async def test_registry_names_are_unique_and_released_on_stop() -> None:
    async with ak.open_actor_system() as system:
        db = await system.spawn(ak.Behavior(name="database", handle=pong), name="db")
        assert db.name == "db"
        assert db.id == "database-1"
        assert system.whereis("db") is db
        with pytest.raises(ak.NameTaken, match="database-1"):
            await system.spawn(ak.Behavior(name="database", handle=pong), name="db")
        await db.stop()
        assert system.whereis("db") is None
        again = await system.spawn(ak.Behavior(name="database", handle=pong), name="db")
        assert system.whereis("db") is again
        assert again.id == "database-2"  # a rejected spawn uses no id


async def test_monitor_delivers_down_once_and_demonitor_undoes_it() -> None:
    downs: list[ak.Down] = []

    def watcher_handle(state: None, msg: object, tools: ak.Tools) -> None:
        if isinstance(msg, ak.Down):
            downs.append(msg)
        elif isinstance(msg, Ping):
            msg.reply("ok")

    async with ak.open_actor_system() as system:
        watcher = await system.spawn(ak.Behavior(name="watcher", handle=watcher_handle))
        a = await system.spawn(ak.Behavior(name="a", handle=pong))
        b = await system.spawn(ak.Behavior(name="b", handle=pong))
        c = await system.spawn(ak.Behavior(name="c", handle=pong))
        system.monitor(watcher, a)
        undone = system.monitor(watcher, b)
        system.monitor(watcher, c)
        system.demonitor(undone)
        await a.stop("bye")
        c.send_nowait("crash")
        await b.stop()
        with pytest.raises(ak.ActorStopped):
            await c.ask(Ping)
        system.monitor(watcher, a)  # already stopped: reported at once
        assert await watcher.ask(Ping) == "ok"
    assert [(d.ref, d.reason if isinstance(d.reason, str) else "error") for d in downs] == [
        (a, "bye"),
        (c, "error"),
        (a, "noproc"),
    ]
    assert isinstance(downs[1].reason, ValueError)


async def test_system_exit_stops_actors_in_reverse_start_order_and_dead_letters_queue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    order: list[str] = []
    events: list[ak.Event] = []

    async def busy(state: str, msg: object, tools: ak.Tools) -> None:
        await trio.sleep(10)

    def on_stop(state: str, reason: object) -> None:
        order.append(state)

    async with ak.open_actor_system(on_event=events.append) as system:
        for name in ("first", "second", "third"):
            ref = await system.spawn(
                ak.Behavior(name=name, handle=busy, init=lambda ctx: ctx, on_stop=on_stop),
                name,
                shutdown=1.0,
            )
        ref.send_nowait("being handled")
        await trio.testing.wait_all_tasks_blocked()
        ref.send_nowait("queued")
    assert order == ["third", "second", "first"]
    letters = [(e.reason, e.message) for e in events if isinstance(e, ak.DeadLetter)]
    assert ("shutdown", "queued") in letters
    assert any(m == "being handled" and "grace" in r for r, m in letters)
    with pytest.raises(ak.SystemClosed, match="open_actor_system"):
        await system.spawn(ak.Behavior(name="late", handle=pong))


async def test_an_error_in_the_body_still_shuts_down_gracefully() -> None:
    stopped: list[object] = []
    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="body failed")):
        async with ak.open_actor_system() as system:
            await system.spawn(
                ak.Behavior(name="a", handle=pong, on_stop=lambda s, r: stopped.append(r))
            )
            raise RuntimeError("body failed")
    assert stopped == ["shutdown"]


async def test_idle_actors_own_no_task_and_busy_ones_park() -> None:
    async with ak.open_actor_system() as system:
        refs = [await system.spawn(ak.Behavior(name="idle", handle=pong)) for _ in range(50)]
        stats = system.statistics()
        assert (stats.actors, stats.tasks) == (50, 0)
        for ref in refs[:10]:
            assert await ref.ask(Ping) == "pong"
        stats = system.statistics()
        assert (stats.tasks, stats.parked) == (10, 10)


async def test_parked_task_pool_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    async with ak.open_actor_system() as system:
        system._max_parked = 4
        refs = [await system.spawn(ak.Behavior(name="p", handle=pong)) for _ in range(10)]
        for ref in refs:
            assert await ref.ask(Ping) == "pong"
        await trio.testing.wait_all_tasks_blocked()
        assert system.statistics().parked == 4
        assert system.statistics().tasks == 4
        # retired actors wake up fine
        for ref in refs:
            assert await ref.ask(Ping) == "pong"

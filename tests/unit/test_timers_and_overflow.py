"""Timers (tools.schedule) and the mailbox overflow policies."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
import trio.testing

import actorkit as ak


@attrs.frozen
class Log:
    reply: ak.Reply[list[tuple[float, object]]]


def timer_handle(state: list[tuple[float, object]], msg: object, tools: ak.Tools) -> Any:
    if isinstance(msg, Log):
        msg.reply(list(state))
    elif isinstance(msg, tuple) and msg[0] == "schedule":
        _, after, payload, key = msg
        tools.schedule(after, payload, key=key)
    elif isinstance(msg, tuple) and msg[0] == "cancel":
        state.append((tools.now(), ("cancelled", tools.cancel_timer(msg[1]))))
    else:
        state.append((tools.now(), msg))
    return ak.UNCHANGED


TIMERS = ak.Behavior(name="timers", init=lambda ctx: [], handle=timer_handle)


async def test_schedule_delivers_after_delay(autojump_clock: trio.testing.MockClock) -> None:
    async with ak.open_actor_system() as system:
        ref = await system.spawn(TIMERS)
        ref.send_nowait(("schedule", 2.5, "late", None))
        ref.send_nowait(("schedule", 1.0, "early", None))
        await trio.sleep(3)
        assert await ref.ask(Log) == [(1.0, "early"), (2.5, "late")]


async def test_equal_deadlines_fire_in_scheduling_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with ak.open_actor_system() as system:
        ref = await system.spawn(TIMERS)
        for i in range(20):
            ref.send_nowait(("schedule", 1.0, i, None))
        await trio.sleep(2)
        assert [m for _, m in await ref.ask(Log)] == list(range(20))


async def test_keyed_timer_replaced_never_delivers_old_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: list[ak.Event] = []
    async with ak.open_actor_system(on_event=events.append) as system:
        ref = await system.spawn(TIMERS)
        ref.send_nowait(("schedule", 1.0, "old", "k"))
        ref.send_nowait(("schedule", 5.0, "new", "k"))
        await trio.sleep(10)
        assert await ref.ask(Log) == [(5.0, "new")]
    assert not any(isinstance(e, ak.DeadLetter) and e.message == "old" for e in events)


async def test_cancel_timer(autojump_clock: trio.testing.MockClock) -> None:
    async with ak.open_actor_system() as system:
        ref = await system.spawn(TIMERS)
        ref.send_nowait(("schedule", 1.0, "x", "k"))
        ref.send_nowait(("cancel", "k"))
        ref.send_nowait(("cancel", "k"))
        await trio.sleep(2)
        assert [m for _, m in await ref.ask(Log)] == [("cancelled", True), ("cancelled", False)]


async def test_timers_die_with_their_actor(autojump_clock: trio.testing.MockClock) -> None:
    events: list[ak.Event] = []
    async with ak.open_actor_system(on_event=events.append) as system:
        ref = await system.spawn(TIMERS)
        ref.send_nowait(("schedule", 1.0, "ghost", None))
        ref.send_nowait(("schedule", 1.0, "keyed ghost", "k"))
        await trio.testing.wait_all_tasks_blocked()
        await ref.stop()
        await trio.sleep(5)
        assert system.statistics().timers == 0
    # not delivered, and not even a dead letter: the timers were cancelled with the actor
    assert not any(isinstance(e, ak.DeadLetter) for e in events)


async def test_schedule_rejects_negative_delay() -> None:
    def handle(state: None, msg: Log, tools: ak.Tools) -> None:
        try:
            tools.schedule(-1, "x")
        except ValueError as exc:
            msg.reply([(0.0, str(exc))])

    async with ak.open_actor_system() as system:
        ref = await system.spawn(ak.Behavior(name="t", handle=handle))
        [(_, error)] = await ref.ask(Log)
    assert "after=-1" in str(error)


def gated_handle(state: list[object], msg: object, tools: ak.Tools) -> Any:
    state.append(msg)
    return ak.UNCHANGED


async def _gate(gate: trio.Event, state: list[object], msg: object, tools: ak.Tools) -> Any:
    if msg == "hold":
        await gate.wait()
    state.append(msg)
    return ak.UNCHANGED


def gated(gate: trio.Event, overflow: ak.Overflow, on_stop: Any = None) -> ak.Behavior[Any, Any]:
    async def handle(state: list[object], msg: object, tools: ak.Tools) -> Any:
        if isinstance(msg, Log):
            msg.reply(list(state))  # type: ignore[arg-type]
            return ak.UNCHANGED
        return await _gate(gate, state, msg, tools)

    return ak.Behavior(
        name="gated", init=lambda ctx: [], handle=handle, max_inbox=2, overflow=overflow,
        on_stop=on_stop,
    )  # fmt: skip


async def test_reject_returns_false_and_emits_overflow() -> None:
    events: list[ak.Event] = []
    gate = trio.Event()
    async with ak.open_actor_system(on_event=events.append) as system:
        ref = await system.spawn(gated(gate, ak.Overflow.REJECT))
        assert ref.send_nowait("hold")
        await trio.testing.wait_all_tasks_blocked()
        assert ref.send_nowait(1)
        assert ref.send_nowait(2)
        assert not ref.send_nowait(3)
        assert not await ref.send(4)
        with pytest.raises(ak.MailboxFull, match="REJECT"):
            await ref.ask(Log)
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert await ref.ask(Log) == ["hold", 1, 2]
    overflows = [e.message for e in events if isinstance(e, ak.MailboxOverflow)]
    assert overflows[:2] == [3, 4]
    assert len(overflows) == 3


async def test_drop_oldest_dead_letters_the_oldest() -> None:
    events: list[ak.Event] = []
    gate = trio.Event()
    async with ak.open_actor_system(on_event=events.append) as system:
        ref = await system.spawn(gated(gate, ak.Overflow.DROP_OLDEST))
        ref.send_nowait("hold")
        await trio.testing.wait_all_tasks_blocked()
        for i in range(1, 6):
            assert ref.send_nowait(i)
        gate.set()
        assert await ref.ask(Log) == ["hold", 5]  # the ask itself pushed 4 out
    dropped = [e.message for e in events if isinstance(e, ak.DeadLetter)]
    assert dropped == [1, 2, 3, 4]


async def test_block_applies_backpressure_to_send(autojump_clock: trio.testing.MockClock) -> None:
    gate = trio.Event()
    async with ak.open_actor_system() as system:
        ref = await system.spawn(gated(gate, ak.Overflow.BLOCK))
        ref.send_nowait("hold")
        await trio.testing.wait_all_tasks_blocked()
        assert ref.send_nowait(1)
        assert ref.send_nowait(2)
        assert not ref.send_nowait(3)  # full: send_nowait never blocks
        sent: list[int] = []

        async def producer() -> None:
            for i in (3, 4, 5):
                assert await ref.send(i)
                sent.append(i)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(producer)
            await trio.testing.wait_all_tasks_blocked()
            assert sent == []  # blocked behind the full mailbox
            assert not ref.send_nowait(99)  # blocked senders keep their turn
            gate.set()
        assert sent == [3, 4, 5]
        assert await ref.ask(Log) == ["hold", 1, 2, 3, 4, 5]


async def test_block_send_cancelled_does_not_enqueue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = trio.Event()
    async with ak.open_actor_system() as system:
        ref = await system.spawn(gated(gate, ak.Overflow.BLOCK))
        ref.send_nowait("hold")
        await trio.testing.wait_all_tasks_blocked()
        ref.send_nowait(1)
        ref.send_nowait(2)
        with trio.move_on_after(1) as scope:
            await ref.send(3)
        assert scope.cancelled_caught
        with pytest.raises(ak.AskTimeout):
            await ref.ask(Log, timeout=1)
        gate.set()
        assert await ref.ask(Log) == ["hold", 1, 2]


async def test_blocked_senders_get_false_when_actor_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: list[ak.Event] = []
    gate = trio.Event()
    async with ak.open_actor_system(on_event=events.append) as system:
        ref = await system.spawn(gated(gate, ak.Overflow.BLOCK))
        ref.send_nowait("hold")
        await trio.testing.wait_all_tasks_blocked()
        ref.send_nowait(1)
        ref.send_nowait(2)
        results: list[bool] = []

        async def producer() -> None:
            results.append(await ref.send(3))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(producer)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(ref.stop)
            await trio.testing.wait_all_tasks_blocked()
            gate.set()
        assert results == [False]
    assert [e.message for e in events if isinstance(e, ak.DeadLetter)] == [1, 2, 3]


async def test_answered_asks_do_not_hold_timer_entries() -> None:
    def answer(state: None, msg: Log, tools: ak.Tools) -> None:
        msg.reply([])

    async with ak.open_actor_system() as system:
        ref = await system.spawn(ak.Behavior(name="answer", handle=answer))
        for _ in range(5_000):
            await ref.ask(Log, timeout=60)
        assert system.statistics().timers == 0
        assert len(system._timers._heap) <= 600  # compacted, not 5,000 entries held for 60 s

"""Sending, asking and replying: the semantics api.md promises for messages."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing

import actorkit as ak


@attrs.frozen
class Get:
    reply: ak.Reply[int]


@attrs.frozen
class Add:
    n: int


@attrs.frozen
class Nap:
    seconds: float
    reply: ak.Reply[str]


async def counter_handle(state: int, msg: Any, tools: ak.Tools) -> int | None:
    if isinstance(msg, Add):
        return state + msg.n
    if isinstance(msg, Get):
        msg.reply(state)
    if isinstance(msg, Nap):
        await trio.sleep(msg.seconds)
        msg.reply("rested")
    return None


COUNTER = ak.Behavior(name="counter", init=lambda ctx: 0, handle=counter_handle)


async def test_send_and_ask_roundtrip() -> None:
    async with ak.open_actor_system() as system:
        ref = await system.spawn(COUNTER)
        assert await ref.send(Add(1))
        assert ref.send_nowait(Add(2))
        assert await ref.ask(Get, timeout=5.0) == 3
        assert ref.status is ak.Status.RUNNING
        await ref.stop()
        assert ref.status.name == "STOPPED"


async def test_per_sender_fifo_with_concurrent_senders(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[int, int]] = []

    def record(state: None, msg: tuple[int, int] | Get, tools: ak.Tools) -> None:
        if isinstance(msg, Get):
            msg.reply(len(seen))
        else:
            seen.append(msg)

    async with ak.open_actor_system() as system:
        ref = await system.spawn(ak.Behavior(name="log", handle=record, max_inbox=10_000))

        async def sender(who: int) -> None:
            for i in range(200):
                if i % (who + 2) == 0:
                    await trio.lowlevel.checkpoint()
                if i % 2:
                    ref.send_nowait((who, i))
                else:
                    await ref.send((who, i))

        async with trio.open_nursery() as nursery:
            for who in range(4):
                nursery.start_soon(sender, who)
        assert await ref.ask(Get) == 800
    for who in range(4):
        assert [i for w, i in seen if w == who] == list(range(200))
    # the senders really interleaved, or the FIFO check above proved nothing
    assert [w for w, _ in seen] != sorted(w for w, _ in seen)


async def test_handler_n_finishes_before_n_plus_one_starts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    async def slow(state: None, msg: int | Get, tools: ak.Tools) -> None:
        if isinstance(msg, Get):
            msg.reply(len(log))
            return
        log.append(f"start {msg}")
        await trio.sleep(1.0 / (msg + 1))
        log.append(f"end {msg}")

    async with ak.open_actor_system() as system:
        ref = await system.spawn(ak.Behavior(name="slow", handle=slow))
        async with trio.open_nursery() as nursery:
            for i in range(5):
                nursery.start_soon(ref.send, i)
        assert await ref.ask(Get) == 10
    starts_and_ends = [entry.split()[0] for entry in log]
    assert starts_and_ends == ["start", "end"] * 5
    for k in range(0, 10, 2):
        assert log[k].split()[1] == log[k + 1].split()[1]


async def test_ask_to_stopped_actor_raises_at_once(autojump_clock: trio.testing.MockClock) -> None:
    async with ak.open_actor_system() as system:
        ref = await system.spawn(COUNTER)
        await ref.stop()
        before = trio.current_time()
        with pytest.raises(ak.ActorStopped, match="counter-1"):
            await ref.ask(Get, timeout=30)
        assert trio.current_time() == before
        assert not ref.send_nowait(Add(1))
        assert not await ref.send(Add(1))


async def test_ask_to_actor_dying_mid_request_raises_before_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with ak.open_actor_system() as system:
        ref = await system.spawn(COUNTER, shutdown=2.0)
        queued_error: list[BaseException] = []

        async def queued_asker() -> None:
            try:
                await ref.ask(Get, timeout=100)
            except ak.ActorStopped as exc:
                queued_error.append(exc)

        async def stopper() -> None:
            await trio.sleep(1)
            await ref.stop()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stopper)
            with pytest.raises(ak.ActorStopped) as info:
                await ref.ask(lambda reply: Nap(60, reply), timeout=100)
            await trio.lowlevel.checkpoint()
            nursery.start_soon(queued_asker)
        # stopped at t=1, handler cancelled after its 2 s grace: long before the 100 s timeout
        assert trio.current_time() == pytest.approx(3.0)
        assert not isinstance(info.value, ak.ActorFailed)
        assert len(queued_error) == 1


async def test_ask_whose_message_crashes_the_actor_gets_actor_failed() -> None:
    def explode(state: None, msg: Get, tools: ak.Tools) -> None:
        raise ZeroDivisionError("bad math")

    async with ak.open_actor_system() as system:
        ref = await system.spawn(ak.Behavior(name="bomb", handle=explode))
        with pytest.raises(ak.ActorFailed) as info:
            await ref.ask(Get)
        assert isinstance(info.value.__cause__, ZeroDivisionError)
        assert "ZeroDivisionError: bad math" in str(info.value)
        assert ref.status is ak.Status.FAILED


async def test_ask_timeout_names_target_message_and_elapsed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with ak.open_actor_system() as system:
        ref = await system.spawn(COUNTER)
        with pytest.raises(ak.AskTimeout) as info:
            await ref.ask(lambda reply: Nap(10, reply), timeout=2.5)
        assert isinstance(info.value, TimeoutError)
        assert "counter-1" in str(info.value)
        assert "Nap" in str(info.value)
        assert "2.5 s" in str(info.value)
        assert trio.current_time() == pytest.approx(2.5)


async def test_late_reply_becomes_dead_letter_not_a_later_callers_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: list[ak.Event] = []
    async with ak.open_actor_system(on_event=events.append) as system:
        ref = await system.spawn(COUNTER)
        with pytest.raises(ak.AskTimeout):
            await ref.ask(lambda reply: Nap(3, reply), timeout=1)
        # the late "rested" must not be mistaken for this answer
        assert await ref.ask(Get, timeout=10) == 0
    late = [e for e in events if isinstance(e, ak.DeadLetter) and "late reply" in e.reason]
    assert len(late) == 1
    assert late[0].message == "rested"
    assert late[0].at == pytest.approx(3.0)


async def test_reply_twice_raises() -> None:
    errors: list[BaseException] = []

    def twice(state: None, msg: Get, tools: ak.Tools) -> None:
        msg.reply(1)
        try:
            msg.reply(2)
        except ak.ReplyAlreadySent as exc:
            errors.append(exc)

    async with ak.open_actor_system() as system:
        ref = await system.spawn(ak.Behavior(name="twice", handle=twice))
        assert await ref.ask(Get) == 1
    assert len(errors) == 1


async def test_self_ask_raises_at_once(autojump_clock: trio.testing.MockClock) -> None:
    outcome: list[tuple[BaseException, float]] = []

    async def handle(state: None, msg: object, tools: ak.Tools) -> None:
        if isinstance(msg, Get):
            msg.reply(7)
            return
        started = trio.current_time()
        try:
            await tools.self.ask(Get, timeout=60)
        except ak.SelfAskError as exc:
            outcome.append((exc, trio.current_time() - started))

    async with ak.open_actor_system() as system:
        ref = await system.spawn(ak.Behavior(name="narcissus", handle=handle))
        ref.send_nowait("go")
        assert await ref.ask(Get) == 7
    assert len(outcome) == 1
    exc, waited = outcome[0]
    assert isinstance(exc, ak.ActorkitError)
    assert not isinstance(exc, TimeoutError)
    assert waited == 0


async def test_cancelled_ask_leaves_message_queued_and_reply_dead_lettered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: list[ak.Event] = []
    async with ak.open_actor_system(on_event=events.append) as system:
        ref = await system.spawn(COUNTER)
        with trio.move_on_after(0.5):
            await ref.ask(lambda reply: Nap(1, reply), timeout=None)
        assert await ref.ask(Get) == 0
    assert any(isinstance(e, ak.DeadLetter) and e.message == "rested" for e in events)


async def test_message_to_stopped_actor_is_dead_letter() -> None:
    events: list[ak.Event] = []
    async with ak.open_actor_system(on_event=events.append) as system:
        ref = await system.spawn(COUNTER)
        await ref.stop()
        assert ref.send_nowait(Add(5)) is False
    letters = [e for e in events if isinstance(e, ak.DeadLetter)]
    assert [(e.message_type, e.message) for e in letters] == [("Add", Add(5))]


async def test_unchanged_and_none_is_state() -> None:
    def handle(state: int | None, msg: object, tools: ak.Tools) -> object:
        if isinstance(msg, Get):
            msg.reply(-1 if state is None else state)
            return ak.UNCHANGED
        if msg == "clear":
            return None
        if msg == "keep":
            return ak.UNCHANGED
        return 1

    async with ak.open_actor_system() as system:
        default = await system.spawn(ak.Behavior(name="d", handle=handle, init=lambda c: 5))
        nullable = await system.spawn(
            ak.Behavior(name="n", handle=handle, init=lambda c: 5, none_is_state=True)
        )
        for ref in (default, nullable):
            await ref.send("keep")
            assert await ref.ask(Get) == 5
            await ref.send("clear")
        assert await default.ask(Get) == 5
        assert await nullable.ask(Get) == -1

"""W1 one-way sends and W3 ping-pong: how fast messages move between tasks.

W1: one sender pushes ``messages`` copies of one preallocated ``Increment`` to one counting
actor (a sync handler returning ``state + 1``), using ``send_nowait`` and falling back to
``await ref.send`` when it returns False (``Overflow.BLOCK``, ``max_inbox=1024``); then one
``ask`` must return exactly ``messages``. The clock runs from the first send to the ask's
reply. Baseline: one task counting what it reads from ``trio.open_memory_channel(1024)``,
the sender doing ``await send_channel.send(msg)``; the clock stops when the reader has seen
the channel close, and its count is checked too.

W3: ``pairs`` ping/pong pairs play ``rounds`` round trips each, all pairs concurrently. A
ping actor receives ``Serve(pong)``, then bounces one preallocated ``Ball`` off its pong
(send_nowait, falling back to ``await send``) and sets a ``trio.Event`` after ``rounds``
returns. Baseline: a ping task and a pong task per pair joined by two memory channels (buffer
1024); every ping waits for one start event so that starting the 200 tasks is not timed. The
clock runs from the first serve (or the start event) until every pair has finished.
"""

from __future__ import annotations

import functools
import time

import attrs
import trio
import trio.testing

import actorkit as ak

from . import ASK_TIMEOUT, MAX_INBOX, OVERFLOW
from ._report import Better, Bound, Metric, Sample, Target, Workload, expect

MESSAGES_PER_S = "messages_per_s"
ROUND_TRIPS_PER_S = "round_trips_per_s"


# -- W1: one-way sends ---------------------------------------------------------------------------


@attrs.frozen
class Increment:
    pass


@attrs.frozen
class Get:
    reply: ak.Reply[int]


INCREMENT = Increment()


def count(state: int, msg: Increment | Get, tools: ak.Tools) -> int | None:
    if type(msg) is Increment:
        return state + 1
    assert isinstance(msg, Get)
    msg.reply(state)
    return None


def _zero(ctx: object) -> int:
    return 0


COUNTER = ak.Behavior(
    name="counter", init=_zero, handle=count, max_inbox=MAX_INBOX, overflow=OVERFLOW
)


async def one_way_actorkit(messages: int) -> Sample:
    async with ak.open_actor_system() as system:
        ref = await system.spawn(COUNTER)
        start = time.perf_counter()
        for _ in range(messages):
            if not ref.send_nowait(INCREMENT):
                await ref.send(INCREMENT)
        counted = await ref.ask(Get, timeout=ASK_TIMEOUT)
        elapsed = time.perf_counter() - start
        await ref.stop()
    expect(counted == messages, f"the actor counted {counted} of {messages} messages")
    return {MESSAGES_PER_S: messages / elapsed}


async def one_way_baseline(messages: int) -> Sample:
    send_channel, receive_channel = trio.open_memory_channel[Increment](MAX_INBOX)
    counted: list[int] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_count_messages, receive_channel, counted)
        start = time.perf_counter()
        async with send_channel:
            for _ in range(messages):
                await send_channel.send(INCREMENT)
    elapsed = time.perf_counter() - start
    expect(counted == [messages], f"the reader counted {counted} of {messages} messages")
    return {MESSAGES_PER_S: messages / elapsed}


async def _count_messages(
    receive_channel: trio.MemoryReceiveChannel[Increment], counted: list[int]
) -> None:
    total = 0
    async with receive_channel:
        async for msg in receive_channel:
            if type(msg) is Increment:
                total += 1
    counted.append(total)


def one_way(messages: int, warmup: int) -> Workload:
    return Workload(
        key="W1",
        title="one-way send to one counting actor, then one ask",
        sizes={"messages": messages},
        metrics=(Metric(MESSAGES_PER_S, "one-way send", "msg/s", Better.HIGHER),),
        targets=(Target(MESSAGES_PER_S, Bound("ratio", ">=", 1.0), aim=Bound("ratio", ">=", 5.0)),),
        actorkit=functools.partial(one_way_actorkit, messages),
        baseline=functools.partial(one_way_baseline, messages),
        warmup_actorkit=functools.partial(one_way_actorkit, warmup),
        warmup_baseline=functools.partial(one_way_baseline, warmup),
    )


# -- W3: ping-pong -------------------------------------------------------------------------------


@attrs.frozen
class Ball:
    pass


@attrs.frozen
class Serve:
    pong: ak.ActorRef[Ball]


BALL = Ball()


class Rally:
    """A ping actor's state (mutated in place: the handler returns None)."""

    __slots__ = ("pong", "remaining", "done")

    def __init__(self, rounds: int, done: trio.Event) -> None:
        self.pong: ak.ActorRef[Ball] | None = None
        self.remaining = rounds
        self.done = done


async def ping(rally: Rally, msg: Serve | Ball, tools: ak.Tools) -> None:
    if type(msg) is Serve:
        rally.pong = msg.pong
    else:
        rally.remaining -= 1
        if not rally.remaining:
            rally.done.set()
            return
    pong = rally.pong
    assert pong is not None
    if not pong.send_nowait(BALL):
        await pong.send(BALL)


async def pong(ping_ref: ak.ActorRef[Ball], msg: Ball, tools: ak.Tools) -> None:
    if not ping_ref.send_nowait(msg):
        await ping_ref.send(msg)


def _rally(ctx: Rally) -> Rally:
    return ctx


def _ping_ref(ctx: ak.ActorRef[Ball]) -> ak.ActorRef[Ball]:
    return ctx


PING = ak.Behavior(name="ping", init=_rally, handle=ping, max_inbox=MAX_INBOX, overflow=OVERFLOW)
PONG = ak.Behavior(name="pong", init=_ping_ref, handle=pong, max_inbox=MAX_INBOX, overflow=OVERFLOW)


async def ping_pong_actorkit(pairs: int, rounds: int) -> Sample:
    async with ak.open_actor_system() as system:
        done = [trio.Event() for _ in range(pairs)]
        pings = [await system.spawn(PING, Rally(rounds, event)) for event in done]
        pongs = [await system.spawn(PONG, ping_ref) for ping_ref in pings]
        start = time.perf_counter()
        for ping_ref, pong_ref in zip(pings, pongs, strict=True):
            expect(ping_ref.send_nowait(Serve(pong_ref)), f"{ping_ref} refused its serve")
        for event in done:
            await event.wait()
        elapsed = time.perf_counter() - start
    return {ROUND_TRIPS_PER_S: pairs * rounds / elapsed}


async def ping_pong_baseline(pairs: int, rounds: int) -> Sample:
    go = trio.Event()
    async with trio.open_nursery() as nursery:
        for _ in range(pairs):
            to_pong, pong_inbox = trio.open_memory_channel[Ball](MAX_INBOX)
            to_ping, ping_inbox = trio.open_memory_channel[Ball](MAX_INBOX)
            nursery.start_soon(_ping_task, go, rounds, to_pong, ping_inbox)
            nursery.start_soon(_pong_task, pong_inbox, to_ping)
        await trio.testing.wait_all_tasks_blocked()
        start = time.perf_counter()
        go.set()
    elapsed = time.perf_counter() - start
    return {ROUND_TRIPS_PER_S: pairs * rounds / elapsed}


async def _ping_task(
    go: trio.Event,
    rounds: int,
    to_pong: trio.MemorySendChannel[Ball],
    inbox: trio.MemoryReceiveChannel[Ball],
) -> None:
    await go.wait()
    async with to_pong, inbox:
        for _ in range(rounds):
            await to_pong.send(BALL)
            await inbox.receive()


async def _pong_task(
    inbox: trio.MemoryReceiveChannel[Ball], to_ping: trio.MemorySendChannel[Ball]
) -> None:
    async with inbox, to_ping:
        async for ball in inbox:
            await to_ping.send(ball)


def ping_pong(pairs: int, rounds: int, warmup_rounds: int) -> Workload:
    return Workload(
        key="W3",
        title="concurrent ping-pong pairs",
        sizes={"pairs": pairs, "round_trips_per_pair": rounds},
        metrics=(Metric(ROUND_TRIPS_PER_S, "ping-pong", "round trips/s", Better.HIGHER),),
        targets=(Target(ROUND_TRIPS_PER_S, Bound("ratio", ">=", 0.7)),),
        actorkit=functools.partial(ping_pong_actorkit, pairs, rounds),
        baseline=functools.partial(ping_pong_baseline, pairs, rounds),
        warmup_actorkit=functools.partial(ping_pong_actorkit, pairs, warmup_rounds),
        warmup_baseline=functools.partial(ping_pong_baseline, pairs, warmup_rounds),
    )

"""W2 sequential asks: the round trip of a request and its reply.

One task makes ``asks`` asks in a row, ``await ref.ask(Get, timeout=5.0)`` where ``Get`` is an
attrs frozen class with a ``reply: ak.Reply[int]`` field, and the actor's sync handler replies
with its state. Each ask is timed with ``time.perf_counter_ns`` (p50 and p99, nearest rank);
the rate is ``asks`` over the wall time of the whole loop (timing calls included, on both
sides).

Baseline: the cheapest honest raw-trio request/reply. A server task reads requests from a
bounded memory channel (buffer 1024); a request is a small slotted object holding a
``trio.Event`` and a result slot; the asker awaits ``send_channel.send(request)``, then the
event, then reads the slot. It has no timeout, which actorkit's ``ask`` always arms.
"""

from __future__ import annotations

import functools
import time

import attrs
import trio

import actorkit as ak

from . import ASK_TIMEOUT, MAX_INBOX, OVERFLOW
from ._report import Better, Bound, Metric, Sample, Target, Workload, expect, percentile

ASKS_PER_S = "asks_per_s"
P50_US = "p50_us"
P99_US = "p99_us"
ANSWER = 42


@attrs.frozen
class Get:
    reply: ak.Reply[int]


def answer(state: int, msg: Get, tools: ak.Tools) -> None:
    msg.reply(state)


def _answer(ctx: object) -> int:
    return ANSWER


SERVER = ak.Behavior(
    name="server", init=_answer, handle=answer, max_inbox=MAX_INBOX, overflow=OVERFLOW
)


async def asks_actorkit(asks: int) -> Sample:
    latencies = [0] * asks
    async with ak.open_actor_system() as system:
        ref = await system.spawn(SERVER)
        start = time.perf_counter()
        for i in range(asks):
            began = time.perf_counter_ns()
            value = await ref.ask(Get, timeout=ASK_TIMEOUT)
            latencies[i] = time.perf_counter_ns() - began
            expect(value == ANSWER, f"ask {i} returned {value!r}")
        elapsed = time.perf_counter() - start
        await ref.stop()
    return _summary(asks, elapsed, latencies)


class Request:
    """A raw-trio request with a one-shot reply: an event and a slot for the value."""

    __slots__ = ("answered", "value")

    def __init__(self) -> None:
        self.answered = trio.Event()
        self.value = 0


async def asks_baseline(asks: int) -> Sample:
    latencies = [0] * asks
    send_channel, receive_channel = trio.open_memory_channel[Request](MAX_INBOX)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_serve, receive_channel, ANSWER)
        start = time.perf_counter()
        async with send_channel:
            for i in range(asks):
                began = time.perf_counter_ns()
                request = Request()
                await send_channel.send(request)
                await request.answered.wait()
                value = request.value
                latencies[i] = time.perf_counter_ns() - began
                expect(value == ANSWER, f"request {i} returned {value!r}")
            elapsed = time.perf_counter() - start
    return _summary(asks, elapsed, latencies)


async def _serve(receive_channel: trio.MemoryReceiveChannel[Request], state: int) -> None:
    async with receive_channel:
        async for request in receive_channel:
            request.value = state
            request.answered.set()


def _summary(asks: int, elapsed: float, latencies: list[int]) -> Sample:
    latencies.sort()
    return {
        ASKS_PER_S: asks / elapsed,
        P50_US: percentile(latencies, 0.50) / 1000,
        P99_US: percentile(latencies, 0.99) / 1000,
    }


def sequential_asks(asks: int, warmup: int) -> Workload:
    return Workload(
        key="W2",
        title="sequential asks with per-ask latency",
        sizes={"asks": asks},
        metrics=(
            Metric(ASKS_PER_S, "ask", "asks/s", Better.HIGHER),
            Metric(P50_US, "ask p50", "us", Better.LOWER, decimals=1),
            Metric(P99_US, "ask p99", "us", Better.LOWER, decimals=1),
        ),
        targets=(Target(ASKS_PER_S, Bound("ratio", ">=", 0.8)),),
        actorkit=functools.partial(asks_actorkit, asks),
        baseline=functools.partial(asks_baseline, asks),
        warmup_actorkit=functools.partial(asks_actorkit, warmup),
        warmup_baseline=functools.partial(asks_baseline, warmup),
    )

"""W5 restarts: a supervised actor that raises on every second message.

actorkit: ``messages`` messages go to a worker under a ONE_FOR_ONE supervisor with no backoff
(restarts are immediate, as in OTP) and a budget of 1,000 restarts within 10 ms (it gives up
only above 100,000 restarts/s, so it never runs out here); the worker raises on
every odd message, so half the messages cause a restart: ``init`` runs again in place and the
worker goes on with the rest of its mailbox. Sends use ``send_nowait`` with the ``await send``
fallback under BLOCK. A final ask checks every even message was handled and the restart count.

Baseline: the same worker as a plain task reading a bounded memory channel; a loop runs it in
a fresh nursery and, when it raises, catches the error and runs it again (a new task and a new
nursery per restart), until the channel is closed and drained.
"""

from __future__ import annotations

import functools
import time

import attrs
import trio

import actorkit as ak

from . import MAX_INBOX, OVERFLOW
from ._report import Better, Bound, Metric, Sample, Target, Workload, expect

RESTARTS_PER_S = "restarts_per_s"
BUDGET = ak.RestartBudget(max_restarts=1_000, within=0.01)


class Boom(Exception):
    pass


@attrs.frozen
class Count:
    reply: ak.Reply[int]


def _worker_init(handled: list[int]) -> list[int]:
    return handled


def _worker_handle(handled: list[int], msg: int | Count, tools: ak.Tools) -> None:
    if isinstance(msg, Count):
        msg.reply(handled[0])
    elif msg % 2:
        raise Boom(msg)
    else:
        handled[0] += 1


WORKER = ak.Behavior(
    name="worker", init=_worker_init, handle=_worker_handle, max_inbox=MAX_INBOX, overflow=OVERFLOW
)


async def restarts_actorkit(messages: int) -> Sample:
    handled = [0]
    async with ak.open_actor_system(on_event=_ignore_event) as system:
        sup = await system.supervisor("w5", budget=BUDGET)
        ref = await sup.spawn(WORKER, handled)
        start = time.perf_counter()
        for i in range(messages):
            if not ref.send_nowait(i):
                await ref.send(i)
        count = await ref.ask(Count, timeout=None)
        elapsed = time.perf_counter() - start
        restarts = sup.restart_count(ref)
    expect(count == messages // 2, f"actorkit handled {count} of {messages // 2}")
    expect(restarts == messages // 2, f"actorkit restarted {restarts} times")
    return {RESTARTS_PER_S: restarts / elapsed}


def _ignore_event(event: ak.Event) -> None:
    """Listening keeps the per-failure log lines off stderr; the events cost is counted."""


async def restarts_baseline(messages: int) -> Sample:
    handled = [0]
    restarts = 0
    send_channel, receive_channel = trio.open_memory_channel[int](MAX_INBOX)

    async def worker() -> None:
        async for msg in receive_channel:
            if msg % 2:
                raise Boom(msg)
            handled[0] += 1

    async def produce() -> None:
        async with send_channel:
            for i in range(messages):
                await send_channel.send(i)

    start = time.perf_counter()
    async with trio.open_nursery() as outer:
        outer.start_soon(produce)
        while True:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(worker)
                break
            except* Boom:
                restarts += 1
    elapsed = time.perf_counter() - start
    expect(handled[0] == messages // 2, f"baseline handled {handled[0]}")
    expect(restarts == messages // 2, f"baseline restarted {restarts} times")
    return {RESTARTS_PER_S: restarts / elapsed}


def restarts(messages: int, warmup: int) -> Workload:
    return Workload(
        key="W5",
        title="supervised actor failing on every 2nd message, zero backoff",
        sizes={"messages": messages},
        metrics=(Metric(RESTARTS_PER_S, "restarts", "restarts/s", Better.HIGHER),),
        targets=(Target(RESTARTS_PER_S, Bound("ratio", ">=", 0.5), aim=Bound("ratio", ">=", 3.0)),),
        actorkit=functools.partial(restarts_actorkit, messages),
        baseline=functools.partial(restarts_baseline, messages),
        warmup_actorkit=functools.partial(restarts_actorkit, warmup),
        warmup_baseline=functools.partial(restarts_baseline, warmup),
    )

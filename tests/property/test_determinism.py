"""Seeded, mock-clocked runs replay exactly; different seeds explore different interleavings."""

from __future__ import annotations

import random
from typing import Any

import attrs
import trio
import trio.lowlevel
from hypothesis import given
from hypothesis import strategies as st

import actorkit as ak
from actorkit.testing import run
from actorkit.testing._run import trio_scheduler_rng


@attrs.frozen
class Dump:
    reply: ak.Reply[list[tuple[int, int]]]


def collect(state: list[tuple[int, int]], msg: Any, tools: ak.Tools) -> Any:
    if isinstance(msg, Dump):
        msg.reply(list(state))
        return ak.UNCHANGED
    state.append(msg)
    tools.emit(msg)
    if len(state) % 7 == 0:
        tools.schedule(0.5, (-1, len(state)))
    return ak.UNCHANGED


COLLECTOR = ak.Behavior(name="collector", init=lambda ctx: [], handle=collect, max_inbox=100_000)


def racy_program(senders: int, per_sender: int) -> Any:
    """Senders race to one actor; each sleeps a random (system rng) time between sends."""

    async def main() -> list[tuple[int, int]]:
        async with ak.open_actor_system() as system:
            ref = await system.spawn(COLLECTOR)

            async def sender(who: int) -> None:
                for i in range(per_sender):
                    if system.rng.random() < 0.5:
                        await trio.sleep(system.rng.choice([0, 0.1, 0.2]))
                    ref.send_nowait((who, i))

            async with trio.open_nursery() as nursery:
                for who in range(senders):
                    nursery.start_soon(sender, who)
            await trio.sleep(1)
            return await ref.ask(Dump)

    return main


def test_same_seed_same_events() -> None:
    first = run(racy_program(5, 40), seed=1234)
    second = run(racy_program(5, 40), seed=1234)
    assert len(first.events) > 200
    assert first.events == second.events
    assert first.value == second.value
    assert [e.seq for e in first.events] == list(range(1, len(first.events) + 1))


def test_different_seeds_give_different_interleavings() -> None:
    orders = {tuple(run(racy_program(5, 40), seed=seed).value) for seed in range(6)}
    assert len(orders) > 1


def test_scheduler_alone_changes_interleavings() -> None:
    # No rng use at all in the program: only trio's scheduler order differs between seeds.
    async def main() -> list[tuple[int, int]]:
        async with ak.open_actor_system() as system:
            ref = await system.spawn(COLLECTOR)

            async def sender(who: int) -> None:
                for i in range(30):
                    await ref.send((who, i))

            async with trio.open_nursery() as nursery:
                for who in range(4):
                    nursery.start_soon(sender, who)
            return await ref.ask(Dump)

    orders = {tuple(run(main, seed=seed).value) for seed in range(6)}
    assert len(orders) > 1
    assert run(main, seed=3).value == run(main, seed=3).value


def test_trio_scheduler_hook_exists_and_is_restored() -> None:
    rng = trio_scheduler_rng()
    assert isinstance(rng, random.Random)
    before = rng.getstate()
    run(racy_program(2, 5), seed=9)
    assert rng.getstate() == before


def test_run_uses_mock_clock() -> None:
    async def main() -> float:
        await trio.sleep(3600)
        return trio.current_time()

    assert run(main, seed=0).value == 3600


@given(
    seed=st.integers(0, 2**32 - 1),
    plan=st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=25), min_size=1, max_size=5),
)
def test_per_sender_fifo_and_exactly_once_under_random_interleavings(
    seed: int, plan: list[list[int]]
) -> None:
    """Each sender sends its messages in order, yielding ``k`` times before each one."""

    async def main() -> list[tuple[int, int]]:
        async with ak.open_actor_system() as system:
            ref = await system.spawn(COLLECTOR)

            async def sender(who: int, yields: list[int]) -> None:
                for i, k in enumerate(yields):
                    for _ in range(k):
                        await trio.lowlevel.checkpoint()
                    if k % 2:
                        await ref.send((who, i))
                    else:
                        ref.send_nowait((who, i))

            async with trio.open_nursery() as nursery:
                for who, yields in enumerate(plan):
                    nursery.start_soon(sender, who, yields)
            return [m for m in await ref.ask(Dump) if m[0] >= 0]

    received = run(main, seed=seed).value
    for who, yields in enumerate(plan):
        assert [i for w, i in received if w == who] == list(range(len(yields)))
    assert len(received) == sum(len(y) for y in plan)

"""Persistent actors on SQLite keep exactly the acknowledged messages when SIGKILLed.

A worker (``_persistent_worker.py``) asks persistent actors to append unique ids to their
state, announcing each id before its ask (``S``) and acknowledging it after (``A``). It is
killed with SIGKILL after a random number of acknowledgements, several rounds on one file.
After odd rounds and the last one, a fresh runtime in this process reads every actor's state,
which must hold, for each round so far, exactly the acknowledged ids in order, plus at most
the one ask in flight when the kill landed: nothing acknowledged is lost, nothing that was
never sent appears, nothing twice. Either a checker or the next worker takes over from a dead
worker at once: leases of a dead process on this host are void (else ``rt.actor`` would raise
``ActorElsewhere`` for the lease's 30 s). Asks must not fail either (``F`` lines).

Variants: one actor; one actor with ``max_resident=0`` (every message rebuilds the actor from
its snapshot, so kills land in activation and passivation too); ten actors asked concurrently
(group-commit batches in flight when the kill lands), also with ``max_resident=0``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
import trio

import actorkit as ak
import actorkit_durable as dur

WORKER = Path(__file__).resolve().parent / "_persistent_worker.py"
ROUNDS = 5
ROUND_STRIDE = 1_000_000_000
"""Round ``r``'s ids are in ``[r * ROUND_STRIDE, (r + 1) * ROUND_STRIDE)`` (the worker's
per-actor stride is 1,000,000, for at most 1,000 actors)."""
DEFAULT_CAP = 10_000


@attrs.frozen
class Read:
    reply: ak.Reply[list[int]]


def _init(params: dict[str, str]) -> list[int]:
    return []


def _read(state: list[int], msg: Read, tools: ak.Tools) -> None:
    msg.reply(list(state))


# The worker's definition, seen from a program that only reads: same path, same first state.
counter = dur.persistent_actor("/counter/:name", init=_init, handle=_read)


@attrs.define
class Round:
    """What one worker printed: per actor, the ids it announced, each with its outcome."""

    outcomes: dict[str, dict[int, str]] = attrs.Factory(dict)
    """actor -> id -> "S" (in flight), "A" (acknowledged) or "F" (failed), in ask order."""
    acks: int = 0
    failures: list[str] = attrs.Factory(list)

    def read(self, line: str) -> None:
        kind, name, text, *_ = line.split(maxsplit=3)
        self.outcomes.setdefault(name, {})[int(text)] = kind
        if kind == "A":
            self.acks += 1
        elif kind == "F":
            self.failures.append(line)

    def expected(self, name: str) -> tuple[list[int], list[int]]:
        """The ids the actor's state must hold: the acked ones, or those plus the one ask
        still in flight when the worker was killed (if any)."""
        outcomes = self.outcomes.get(name, {})
        acked = [i for i, kind in outcomes.items() if kind == "A"]
        in_flight = [i for i, kind in outcomes.items() if kind == "S"]
        # One ask at a time per actor: at most one in flight, and it was the last one.
        assert len(in_flight) <= 1
        assert not in_flight or in_flight[0] == max(outcomes)
        return acked, acked + in_flight


async def run_round(
    db: Path, actors: int, max_resident: int, index: int, rng: random.Random
) -> Round:
    """Start a worker, read its lines, SIGKILL it after a random number of acks."""
    seen = Round()
    errors = bytearray()
    target = rng.randint(5, 200)
    enough = trio.Event()
    argv = [sys.executable, str(WORKER), str(db), str(actors), str(max_resident)]
    process = await trio.lowlevel.open_process(
        [*argv, str(index * ROUND_STRIDE)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:

                async def read() -> None:
                    assert process.stdout is not None
                    pending = b""
                    async for chunk in process.stdout:
                        pending += chunk
                        *complete, pending = pending.split(b"\n")
                        for line in complete:
                            seen.read(line.decode())
                        if seen.acks >= target:
                            enough.set()
                    enough.set()  # EOF: the worker died on its own (checked below)

                async def keep_errors() -> None:
                    assert process.stderr is not None
                    async for chunk in process.stderr:
                        errors.extend(chunk)

                nursery.start_soon(read)
                nursery.start_soon(keep_errors)
                await enough.wait()
                if rng.random() < 0.5:  # vary where in the commit cycle the kill lands
                    await trio.sleep(rng.uniform(0.0, 0.01))
                process.kill()
                await process.wait()
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.stdout.aclose()
            await process.stderr.aclose()
    tail = errors[-4000:].decode(errors="replace")
    assert process.returncode == -signal.SIGKILL, (
        f"the worker exited with {process.returncode} before it was killed:\n{tail}"
    )
    assert seen.acks >= target, f"only {seen.acks} acks:\n{tail}"
    return seen


async def read_states(db: Path, names: list[str]) -> dict[str, list[int]]:
    """Every actor's state, as a fresh runtime on the file activates it."""
    async with dur.open_runtime(f"sqlite:///{db}", actors=[counter]) as rt:
        return {name: await (await rt.actor(counter, name=name)).ask(Read) for name in names}


def check(states: dict[str, list[int]], rounds: list[Round], context: str) -> None:
    for name, state in states.items():
        where = f"{context}, actor {name}"
        assert state == sorted(set(state)), f"{where}: out of order or repeated: {state}"
        assert all(0 <= i < len(rounds) * ROUND_STRIDE for i in state), f"{where}: {state}"
        for index, seen in enumerate(rounds):
            acked, at_most = seen.expected(name)
            kept = [i for i in state if index * ROUND_STRIDE <= i < (index + 1) * ROUND_STRIDE]
            assert kept in (acked, at_most), (
                f"{where}, round {index}: the state holds {kept[-5:]} (last 5 of {len(kept)}); "
                f"acked {acked[-5:]} (last 5 of {len(acked)}), at most {at_most[-5:]}"
            )


@pytest.mark.parametrize(
    ("actors", "max_resident"),
    [(1, DEFAULT_CAP), (1, 0), (10, DEFAULT_CAP), (10, 0)],
    ids=["one-actor", "one-actor-cap-0", "ten-actors", "ten-actors-cap-0"],
)
async def test_persistent_actors_keep_exactly_the_acked_messages_under_sigkill(
    tmp_path: Path, actors: int, max_resident: int
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    db = tmp_path / "actors.db"
    names = [f"c{index}" for index in range(actors)]
    rounds: list[Round] = []
    for index in range(ROUNDS):
        rounds.append(await run_round(db, actors, max_resident, index, rng))
        if index % 2 == 1 or index == ROUNDS - 1:
            check(await read_states(db, names), rounds, f"seed {seed}, after round {index}")
    assert sum(seen.acks for seen in rounds) >= 5 * ROUNDS
    failures = [line for seen in rounds for line in seen.failures]
    assert not failures, f"{len(failures)} asks failed (seed {seed}), e.g. {failures[:3]}"

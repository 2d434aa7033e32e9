"""Subprocess for test_persistent_sigkill.py: asks to persistent actors until SIGKILLed.

Usage: ``python _persistent_worker.py DB_PATH ACTORS MAX_RESIDENT FIRST_ID``. It opens a
durable runtime on the SQLite file (``max_resident`` as given: 0 rebuilds every activation
from its snapshot) and starts one trio task per actor ``c0 .. c{ACTORS-1}``. Task ``t`` asks
its actor to record the ids ``FIRST_ID + t * STRIDE + k`` for k = 0, 1, 2, ..., one ask at a
time, and around each ask prints (and flushes) a line:

- ``S name id`` before the ask is made (the id is attempted: it may reach the state);
- ``A name id`` after the ask returned (the id is acknowledged: it must be in the state);
- ``F name id error`` if the ask raised ``ActorStopped`` (the message was never handled, so
  it must not be in the state); the task goes on with the next id. No ask should fail: the
  parent checks the states first, then that there was no ``F`` line.

So every ``A`` line the parent reads is an acknowledged message, and every id that can ever
be in a state was announced by an ``S`` line first. With several actors the asks run
concurrently, so the store's group commit has batches in flight when the kill lands.
"""

from __future__ import annotations

import functools
import sys

import attrs
import trio

import actorkit as ak
import actorkit_durable as dur

STRIDE = 1_000_000
"""Ids of one task in one round stay below ``first_id + (t + 1) * STRIDE``."""


@attrs.frozen
class Record:
    """Append ``id`` to the actor's list; the reply is the list's new length."""

    id: int
    reply: ak.Reply[int]


def init(params: dict[str, str]) -> list[int]:
    return []


def handle(state: list[int], msg: Record, tools: ak.Tools) -> list[int]:
    recorded = [*state, msg.id]
    msg.reply(len(recorded))
    return recorded


counter = dur.persistent_actor("/counter/:name", init=init, handle=handle)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def drive(rt: dur.Runtime, name: str, first: int) -> None:
    ref = await rt.actor(counter, name=name)
    message_id = first
    while True:
        say(f"S {name} {message_id}")
        try:
            await ref.ask(functools.partial(Record, message_id), timeout=None)
        except ak.ActorStopped as error:
            say(f"F {name} {message_id} {type(error).__name__}: {error}")
        else:
            say(f"A {name} {message_id}")
        message_id += 1


async def main(path: str, actors: int, max_resident: int, first_id: int) -> None:
    async with (
        dur.open_runtime(f"sqlite:///{path}", actors=[counter], max_resident=max_resident) as rt,
        trio.open_nursery() as nursery,
    ):
        for index in range(actors):
            nursery.start_soon(drive, rt, f"c{index}", first_id + index * STRIDE)


if __name__ == "__main__":
    db, actors, max_resident, first_id = sys.argv[1:]
    trio.run(main, db, int(actors), int(max_resident), int(first_id))

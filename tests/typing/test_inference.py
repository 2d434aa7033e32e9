"""Checked by ``mypy --strict`` (CI runs it on tests/): the public types infer as documented.

The test also runs, so the code shown here is real.
"""

from __future__ import annotations

from typing import assert_type

import attrs

import actorkit as ak


@attrs.frozen
class Increment:
    by: int = 1


@attrs.frozen
class Get:
    reply: ak.Reply[int]


@attrs.frozen
class Name:
    reply: ak.Reply[str]


async def handle(state: int, msg: Increment | Get | Name, tools: ak.Tools) -> int | None:
    match msg:
        case Increment(by=n):
            return state + n
        case Get(reply=reply):
            reply(state)
        case Name(reply=reply):
            reply(tools.self.id)
    return None


counter = ak.Behavior(name="counter", init=lambda ctx: 0, handle=handle)


async def test_ask_infers_the_reply_type() -> None:
    async with ak.open_actor_system() as system:
        ref = await system.spawn(counter)
        assert_type(ref, ak.ActorRef[Increment | Get | Name])
        ref.send_nowait(Increment(2))
        total = await ref.ask(Get)
        assert_type(total, int)
        name = await ref.ask(Name)
        assert_type(name, str)
        assert (total, name) == (2, "counter-1")

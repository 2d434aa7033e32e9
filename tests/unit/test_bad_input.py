"""Bad input gets an error that names the argument and the fix."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

import actorkit as ak


def noop(state: Any, msg: Any, tools: ak.Tools) -> None:
    return None


@attrs.frozen
class Get:
    reply: ak.Reply[int]


def test_handle_must_be_callable() -> None:
    with pytest.raises(TypeError, match=r"Behavior\(handle=\.\.\.\) must be callable.*int"):
        ak.Behavior(name="x", handle=42)  # type: ignore[arg-type]


def test_init_and_on_stop_must_be_callable() -> None:
    with pytest.raises(TypeError, match=r"Behavior\(init=\.\.\.\)"):
        ak.Behavior(name="x", handle=noop, init=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Behavior\(on_stop=\.\.\.\)"):
        ak.Behavior(name="x", handle=noop, on_stop="bye")  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, -5])
def test_max_inbox_must_be_positive(size: int) -> None:
    with pytest.raises(ValueError, match=rf"max_inbox={size}\) must be at least 1.*max_inbox=1024"):
        ak.Behavior(name="x", handle=noop, max_inbox=size)


def test_max_inbox_must_be_an_int() -> None:
    with pytest.raises(TypeError, match="max_inbox"):
        ak.Behavior(name="x", handle=noop, max_inbox=2.5)  # type: ignore[arg-type]


def test_unknown_overflow_policy_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"overflow='spill'.*Overflow\.REJECT.*Overflow\.BLOCK"):
        ak.Behavior(name="x", handle=noop, overflow="spill")
    assert ak.Behavior(name="x", handle=noop, overflow="block").overflow is ak.Overflow.BLOCK


def test_name_must_be_a_non_empty_string() -> None:
    with pytest.raises(TypeError, match=r"name=\.\.\.\) must be a non-empty str"):
        ak.Behavior(name="", handle=noop)


async def test_spawn_on_closed_system() -> None:
    async with ak.open_actor_system() as system:
        pass
    with pytest.raises(ak.SystemClosed, match="open_actor_system"):
        await system.spawn(ak.Behavior(name="x", handle=noop))


async def test_spawn_rejects_non_behavior_and_bad_grace() -> None:
    async with ak.open_actor_system() as system:
        with pytest.raises(TypeError, match=r"spawn\(behavior=\.\.\.\) must be an actorkit"):
            await system.spawn(noop)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"spawn\(shutdown=-1\)"):
            await system.spawn(ak.Behavior(name="x", handle=noop), shutdown=-1)


async def test_ask_builder_that_does_not_take_the_reply() -> None:
    @attrs.frozen
    class NoReply:
        key: str
        extra: int

    async with ak.open_actor_system() as system:
        ref = await system.spawn(ak.Behavior(name="x", handle=noop))
        with pytest.raises(TypeError, match=r"ask\(build=.*NoReply\).*takes the reply") as info:
            await ref.ask(NoReply)  # type: ignore[arg-type]
        assert isinstance(info.value.__cause__, TypeError)
        with pytest.raises(TypeError, match=r"ask\(build=3\) must be callable"):
            await ref.ask(3)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"ask\(timeout=-1\)"):
            await ref.ask(Get, timeout=-1)


async def test_monitor_needs_refs() -> None:
    async with ak.open_actor_system() as system:
        ref = await system.spawn(ak.Behavior(name="x", handle=noop))
        with pytest.raises(TypeError, match=r"monitor\(watcher=\.\.\.\)"):
            system.monitor("me", ref)  # type: ignore[arg-type]

"""Persistent actors: snapshots, passivation, signals, supervision and leases (api.md, issue 4).

Memory-store tests run under ``MockClock(autojump_threshold=0)`` and, wherever the behaviour
does not depend on residency, twice through the ``cap`` fixture: with a resident cap of 10,000
and of 0 (every message rebuilds its actor from the snapshot), so the passivation path is as
tested as the resident one. SQLite tests use a real file and real time, and wait on asks and
events only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import actorkit as ak
import actorkit_durable as dur
from actorkit_durable._store import KEEP, Commit, CommitResult, MemoryStore, NewProcess

START = datetime(2026, 1, 1, tzinfo=UTC)
TIMEOUT = 60.0
"""Virtual seconds a memory-store test may wait for anything (autojump makes a hang fast)."""


@dur.record("tests.unit.durable.test_persistent.Deposit.v1")
@attrs.frozen
class Deposit:
    amount: int


@attrs.frozen
class DepositAsk:
    amount: int
    reply: ak.Reply[int]


@attrs.frozen
class Balance:
    """Read-only: the handler returns None (keep the state)."""

    reply: ak.Reply[int]


@attrs.frozen
class Peek:
    """Read-only: the handler returns UNCHANGED."""

    reply: ak.Reply[int]


@attrs.frozen
class Boom:
    """Add 1000 to the state in place, then raise."""


@attrs.frozen
class BoomAsk:
    """Raise, after replying first when ``reply_first``."""

    reply: ak.Reply[int]
    reply_first: bool = False


@attrs.frozen
class Garbage:
    """Make the state something the codec cannot encode."""


@attrs.frozen
class Clear:
    """Return None as the new state (meaningful with ``none_is_state=True``)."""


class Sig(dur.Signals):
    bonus = dur.signal("/account/:account/bonus", data=Deposit)
    freeze = dur.signal("/account/:account/freeze")


class Branch(dur.Signals):
    audit = dur.signal("/audit/:branch/:account")
    notice = dur.signal("/branch/:branch/notice")


@dur.record("tests.unit.durable.test_persistent.Teller.v1")
@attrs.frozen
class Teller:
    where: str
    got: tuple[str, ...] = ()


State = dict[str, int]


class Probe:
    """What a definition's callbacks saw; ``wait_until`` waits on it without polling."""

    def __init__(self) -> None:
        self.inits: list[dict[str, str]] = []
        self.handled: list[object] = []
        self.signals: list[dur.SignalReceived[Any]] = []
        self.stops: list[object] = []
        """``on_stop`` reasons, in order."""
        self._changed = trio.Event()

    def note(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()

    async def wait_stopped(self, count: int = 1) -> None:
        """Wait for ``count`` on_stop calls, then until the runtime has seen the stops."""
        await self.wait_until(lambda: len(self.stops) >= count)
        await trio.testing.wait_all_tasks_blocked()


def account_actor(probe: Probe, **options: Any) -> dur.PersistentActor[State, object]:
    """``/account/:account``: a balance, changed by deposits and bonus signals."""

    def init(params: dict[str, str]) -> State:
        probe.inits.append(params)
        probe.note()
        return {"balance": 0}

    def handle(state: State, msg: object, tools: ak.Tools) -> object:
        probe.handled.append(msg)
        probe.note()
        if isinstance(msg, Deposit):
            return {**state, "balance": state["balance"] + msg.amount}
        if isinstance(msg, DepositAsk):
            new = {**state, "balance": state["balance"] + msg.amount}
            msg.reply(new["balance"])
            return new
        if isinstance(msg, Balance):
            msg.reply(state["balance"])
            return None
        if isinstance(msg, Peek):
            msg.reply(state["balance"])
            return ak.UNCHANGED
        if isinstance(msg, Boom):
            state["balance"] += 1000
            raise RuntimeError("boom")
        if isinstance(msg, BoomAsk):
            if msg.reply_first:
                msg.reply(-1)
            raise RuntimeError("boom in ask")
        if isinstance(msg, Garbage):
            return {"balance": object()}
        if isinstance(msg, Clear):
            return None
        if isinstance(msg, dur.SignalReceived):
            probe.signals.append(msg)
            probe.note()
            if isinstance(msg.data, Deposit):
                if msg.data.amount < 0:
                    raise RuntimeError("negative bonus")
                return {**state, "balance": state["balance"] + msg.data.amount}
            return {**state, "frozen": 1}
        raise AssertionError(f"unexpected message {msg!r}")

    def on_stop(state: State | None, reason: object) -> None:
        probe.stops.append(reason)
        probe.note()

    return dur.persistent_actor(
        "/account/:account", init=init, handle=handle, on_stop=on_stop, **options
    )


def open_rt(
    store: dur.Store | str,
    *actors: dur.PersistentActor[Any, Any],
    cap: int = 10_000,
    **options: Any,
) -> AbstractAsyncContextManager[dur.Runtime]:
    return dur.open_runtime(
        store, actors=actors, signals=[Sig], start_time=START, max_resident=cap, **options
    )


class RecordingStore(MemoryStore):
    """A memory store that records commits and can hold them at gates.

    ``gate`` holds snapshot commits before they apply (``held`` tells one waits there);
    ``release_gate`` holds lease releases (passivations), before they apply or, with
    ``release_applied``, after (``releasing`` tells one waits there).
    """

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[Commit] = []
        self.gate: trio.Event | None = None
        self.held = trio.Event()
        self.release_gate: trio.Event | None = None
        self.release_applied = False
        self.releasing = trio.Event()

    async def commit(self, commit: Commit, *, now: float) -> CommitResult:
        self.commits.append(commit)
        if self.gate is not None and commit.snapshot is not KEEP:
            self.held.set()
            await self.gate.wait()
        release_gate = self.release_gate if commit.release else None
        if release_gate is not None and not self.release_applied:
            self.releasing.set()
            await release_gate.wait()
        result = await super().commit(commit, now=now)
        if release_gate is not None and self.release_applied:
            self.releasing.set()
            await release_gate.wait()
        return result

    def state_commits(self) -> list[Commit]:
        """Commits that wrote a snapshot or consumed signals (not lease releases)."""
        return [c for c in self.commits if c.snapshot is not KEEP or c.consume]


async def stored_state(store: dur.Store, actor_id: str) -> object:
    """The state as committed in the store, decoded."""
    record = await store.get(actor_id)
    assert record is not None
    assert record.snapshot is not None
    return dur.Codec().decode(record.snapshot, what=f"snapshot of {actor_id}")


@pytest.fixture(
    params=[
        pytest.param(10_000, id="resident"),
        pytest.param(0, id="cap0"),
    ]
)
def cap(request: pytest.FixtureRequest) -> int:
    """The runtime's ``max_resident``: 0 makes every message rebuild from the snapshot."""
    return int(request.param)


# -- identity, state and snapshots --------------------------------------------------------------


async def test_ref_identity_and_first_state(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    probe = Probe()
    account = account_actor(probe)
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), account, cap=cap) as rt:
            ref = await rt.actor(account, account="acc-1")
            assert ref.id == "account/acc-1"
            assert ref.params == {"account": "acc-1"}
            ref.params["account"] = "mutated"  # a copy: the ref's identity cannot change
            assert ref.params == {"account": "acc-1"}
            assert "account/acc-1" in repr(ref)
            assert await ref.ask(Balance) == 0
            assert probe.inits == [{"account": "acc-1"}]
            again = await rt.actor(account, account="acc-1")
            assert again.id == ref.id
            assert await again.ask(Balance) == 0
            assert len(probe.inits) == 1


async def test_state_accumulates_and_init_runs_once(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    probe = Probe()
    account = account_actor(probe)
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), account, cap=cap, idle_after=math.inf) as rt:
            ref = await rt.actor(account, account="acc-1")
            for amount in (1, 2, 3):
                assert await ref.send(Deposit(amount))
            assert await ref.ask(Balance) == 6
            assert await ref.ask(lambda r: DepositAsk(10, r)) == 16
            assert await ref.ask(Balance) == 16
            assert len(probe.inits) == 1
            assert await stored_state(rt.store, ref.id) == {"balance": 16}


async def test_max_resident_zero_rebuilds_every_ask_from_the_snapshot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    account = account_actor(probe)
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), account, cap=0, idle_after=math.inf) as rt:
            ref = await rt.actor(account, account="acc-1")
            await ref.send(Deposit(5))
            assert await ref.ask(Balance) == 5
            before = rt.statistics().activations
            for n in range(1, 4):
                assert await ref.ask(lambda r: DepositAsk(1, r)) == 5 + n
                assert rt.statistics().activations == before + n
            assert await ref.ask(Balance) == 8
            assert rt.statistics().activations == before + 4
            assert len(probe.inits) == 1
            assert rt.statistics().passivations >= 4
            assert set(probe.stops) == {"passivated"}


async def test_resident_actor_is_activated_once(autojump_clock: trio.testing.MockClock) -> None:
    probe = Probe()
    account = account_actor(probe)
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), account, idle_after=math.inf) as rt:
            refs: list[dur.PersistentRef[object]] = []

            async def activate() -> None:
                refs.append(await rt.actor(account, account="acc-1"))

            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(activate)
            assert [ref.id for ref in refs] == ["account/acc-1"] * 5
            for ref in refs:
                await ref.send(Deposit(1))
            assert await refs[0].ask(Balance) == 5
            stats = rt.statistics()
            assert (stats.activations, stats.resident, stats.passivations) == (1, 1, 0)
            assert all(ref.resident for ref in refs)
            assert len(probe.inits) == 1


async def test_reply_and_next_message_wait_for_the_commit(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    probe = Probe()
    account = account_actor(probe)
    store = RecordingStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, account, cap=cap, idle_after=math.inf) as rt:
            ref = await rt.actor(account, account="acc-1")
            gate = store.gate = trio.Event()
            replies: list[int] = []

            async def deposit() -> None:
                replies.append(await ref.ask(lambda r: DepositAsk(10, r), timeout=None))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(deposit)
                await store.held.wait()
                assert await ref.send(Deposit(5))
                await trio.testing.wait_all_tasks_blocked()
                # the first message's snapshot is not committed: no reply, no next message
                assert replies == []
                assert [m for m in probe.handled if isinstance(m, Deposit)] == []
                record = await rt.store.get(ref.id)
                assert record is not None
                assert record.snapshot is None
                gate.set()
            assert replies == [10]
            assert await ref.ask(Balance) == 15
            assert await stored_state(rt.store, ref.id) == {"balance": 15}


async def test_unchanged_state_costs_no_commit(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    probe = Probe()
    account = account_actor(probe)
    store = RecordingStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, account, cap=cap, idle_after=math.inf) as rt:
            ref = await rt.actor(account, account="acc-1")
            assert await ref.ask(lambda r: DepositAsk(7, r)) == 7
            writes = len(store.state_commits())
            stats = rt.statistics()
            assert await ref.ask(Balance) == 7  # returns None
            assert await ref.ask(Peek) == 7  # returns UNCHANGED
            assert await ref.send(Deposit(0))  # a new dict, equal to the old state
            assert await ref.ask(Balance) == 7
            assert len(store.state_commits()) == writes
            after = rt.statistics()
            assert after.commits == stats.commits  # only state changes and signals count
            assert await ref.send(Deposit(1))
            assert await ref.ask(Balance) == 8
            assert len(store.state_commits()) == writes + 1


async def test_none_is_state_keeps_none_as_the_state(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    probe = Probe()
    account = account_actor(probe, none_is_state=True)
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), account, cap=cap, idle_after=math.inf) as rt:
            ref = await rt.actor(account, account="acc-1")
            await ref.send(Deposit(3))
            assert await ref.ask(Peek) == 3  # UNCHANGED still keeps the state
            await ref.send(Clear())
            with pytest.raises(ak.ActorFailed):  # the state is None now: Peek's handler fails
                await ref.ask(Peek)
            assert await stored_state(rt.store, ref.id) is None
            assert len(probe.inits) == 1  # a stored None is a snapshot, not a missing one


async def test_async_callbacks(autojump_clock: trio.testing.MockClock, cap: int) -> None:
    seen: list[str] = []

    async def init(params: dict[str, str]) -> list[str]:
        await trio.lowlevel.checkpoint()
        seen.append(f"init {params['name']}")
        return []

    async def handle(state: list[str], msg: object, tools: ak.Tools) -> list[str] | None:
        await trio.lowlevel.checkpoint()
        if isinstance(msg, str):
            return [*state, msg]
        assert isinstance(msg, Balance)
        msg.reply(len(state))
        return None

    async def on_stop(state: list[str], reason: object) -> None:
        await trio.lowlevel.checkpoint()
        seen.append(f"stop {len(state)} {reason}")

    log = dur.persistent_actor("/log/:name", init=init, handle=handle, on_stop=on_stop)
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), log, cap=cap, idle_after=math.inf) as rt:
            ref = await rt.actor(log, name="l1")
            assert ref.id == "log/l1"
            await ref.send("a")
            await ref.send("b")
            assert await ref.ask(Balance) == 2
    assert seen[0] == "init l1"
    assert seen.count("init l1") == 1
    assert seen[-1] in ("stop 2 shutdown", "stop 2 passivated")
    if cap:
        assert seen == ["init l1", "stop 2 shutdown"]


# -- passivation ---------------------------------------------------------------------------------


async def test_idle_actor_is_passivated_and_reactivated_from_its_snapshot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    account = account_actor(probe)
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), account, idle_after=10) as rt:
            ref = await rt.actor(account, account="acc-1")
            assert await ref.ask(lambda r: DepositAsk(4, r)) == 4
            handled_at = trio.current_time()
            assert ref.resident
            await probe.wait_stopped()
            assert trio.current_time() - handled_at >= 10
            assert probe.stops == ["passivated"]
            assert not ref.resident
            stats = rt.statistics()
            assert (stats.resident, stats.activations, stats.passivations) == (0, 1, 1)
            await ref.send(Deposit(1))  # a ref survives passivation
            assert await ref.ask(Balance) == 5
            assert ref.resident
            assert rt.statistics().activations == 2
            assert len(probe.inits) == 1


async def test_each_message_restarts_the_idle_clock(autojump_clock: trio.testing.MockClock) -> None:
    probe = Probe()
    account = account_actor(probe)
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), account, idle_after=10) as rt:
            ref = await rt.actor(account, account="acc-1")
            for _ in range(4):
                await trio.sleep(6)
                assert await ref.ask(Balance) == 0
            assert rt.statistics().passivations == 0
            last = trio.current_time()
            await probe.wait_stopped()
            assert trio.current_time() - last >= 10
            assert rt.statistics().activations == 1


async def test_definition_idle_after_overrides_the_runtime(
    autojump_clock: trio.testing.MockClock,
) -> None:
    quick_probe, slow_probe = Probe(), Probe()
    quick = account_actor(quick_probe, idle_after=2)
    slow: dur.PersistentActor[State, object] = dur.persistent_actor(
        "/slow/:account",
        init=lambda params: {"balance": 0},
        handle=lambda state, msg, tools: None,
        on_stop=lambda state, reason: slow_probe.stops.append(reason),
    )
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), quick, slow, idle_after=30) as rt:
            began = trio.current_time()
            quick_ref = await rt.actor(quick, account="acc-1")
            slow_ref = await rt.actor(slow, account="acc-1")
            await quick_probe.wait_stopped()
            assert 2 <= trio.current_time() - began < 30
            assert not quick_ref.resident
            assert slow_ref.resident
            assert slow_probe.stops == []


async def test_resident_cap_passivates_the_least_recently_used(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    stopped: list[str] = []

    def on_stop(state: dict[str, str], reason: object) -> None:
        stopped.append(f"{state['name']} {reason}")
        probe.note()

    def handle(state: dict[str, str], msg: object, tools: ak.Tools) -> None:
        assert isinstance(msg, Balance)
        msg.reply(len(state["name"]))

    named = dur.persistent_actor(
        "/named/:name", init=lambda params: dict(params), handle=handle, on_stop=on_stop
    )
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), named, cap=2, idle_after=math.inf) as rt:
            a = await rt.actor(named, name="a")
            b = await rt.actor(named, name="b")
            assert await a.ask(Balance) == 1  # a is now more recently used than b
            c = await rt.actor(named, name="c")
            await probe.wait_until(lambda: bool(stopped))
            await trio.testing.wait_all_tasks_blocked()
            assert stopped == ["b passivated"]
            assert (a.resident, b.resident, c.resident) == (True, False, True)
            assert rt.statistics().resident == 2
            assert await b.ask(Balance) == 1  # b comes back, evicting a (now the LRU)
            await probe.wait_until(lambda: len(stopped) == 2)
            await trio.testing.wait_all_tasks_blocked()
            assert stopped == ["b passivated", "a passivated"]
            assert (a.resident, b.resident, c.resident) == (False, True, True)
    assert sorted(stopped[2:]) == ["b shutdown", "c shutdown"]


async def test_on_stop_reasons(autojump_clock: trio.testing.MockClock) -> None:
    probe = Probe()
    account = account_actor(probe, idle_after=5)
    store = MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, account) as rt:
            ref = await rt.actor(account, account="acc-1")
            await ref.send(Deposit(1))
            await probe.wait_stopped()
            assert probe.stops == ["passivated"]
            assert not ref.resident
            assert await ref.ask(Balance) == 1
            assert ref.resident
        assert probe.stops == ["passivated", "shutdown"]
        assert rt.statistics().resident == 0
        # leaving the block released the lease: the next runtime activates it at once
        async with open_rt(store, account) as rt:
            assert await (await rt.actor(account, account="acc-1")).ask(Balance) == 1


async def test_a_send_during_idle_passivation_is_handled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    account = account_actor(probe)
    store = RecordingStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, account, idle_after=10) as rt:
            ref = await rt.actor(account, account="acc-1")
            assert await ref.ask(lambda r: DepositAsk(1, r)) == 1
            gate = store.release_gate = trio.Event()
            await store.releasing.wait()  # idle: its passivation is releasing the lease
            accepted: list[bool] = []

            async def deposit() -> None:
                accepted.append(await ref.send(Deposit(2)))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(deposit)
                await trio.testing.wait_all_tasks_blocked()
                gate.set()
            assert accepted == [True]  # accepted, so it must be handled
            assert await ref.ask(Balance) == 3
            assert rt.statistics().activations == 2


async def test_an_ask_during_passivation_with_cap_zero_is_answered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    account = account_actor(probe)
    store = RecordingStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, account, cap=0, idle_after=math.inf) as rt:
            ref = await rt.actor(account, account="acc-1")
            gate = store.release_gate = trio.Event()
            assert await ref.ask(lambda r: DepositAsk(1, r)) == 1
            await store.releasing.wait()  # over the cap: its passivation is releasing the lease
            replies: list[int] = []

            async def deposit() -> None:
                replies.append(await ref.ask(lambda r: DepositAsk(1, r)))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(deposit)
                await trio.testing.wait_all_tasks_blocked()
                gate.set()
            assert replies == [2]


@pytest.mark.parametrize("release_applied", [False, True], ids=["before-release", "after-release"])
async def test_a_signal_during_passivation_is_delivered_once(
    autojump_clock: trio.testing.MockClock, release_applied: bool
) -> None:
    probe = Probe()
    account = account_actor(probe)
    store = RecordingStore()
    store.release_applied = release_applied
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, account, idle_after=10) as rt:
            ref = await rt.actor(account, account="acc-1")
            assert await ref.ask(lambda r: DepositAsk(1, r)) == 1
            gate = store.release_gate = trio.Event()
            await store.releasing.wait()
            assert await rt.emit(Sig.bonus, account="acc-1", data=Deposit(10)) == 1
            gate.set()
            await probe.wait_until(lambda: len(probe.signals) == 1)
            await trio.testing.wait_all_tasks_blocked()
            assert await ref.ask(Balance) == 11
            # released before the signal came: the actor stopped and came back for it
            assert rt.statistics().activations == (2 if release_applied else 1)
        async with open_rt(store, account) as rt:
            assert await (await rt.actor(account, account="acc-1")).ask(Balance) == 11
    assert [s.data for s in probe.signals] == [Deposit(10)]


# -- reopening the store -------------------------------------------------------------------------


async def test_reopening_a_memory_store_gives_back_the_state(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    probe = Probe()
    account = account_actor(probe)
    store = MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, account, cap=cap) as rt:
            ref = await rt.actor(account, account="acc-1")
            await ref.send(Deposit(40))
            assert await rt.emit(Sig.bonus, account="acc-1", data=Deposit(2)) == 1
            await probe.wait_until(lambda: len(probe.signals) == 1)
            assert await ref.ask(Balance) == 42
        async with open_rt(store, account, cap=cap) as rt:
            ref = await rt.actor(account, account="acc-1")
            assert await ref.ask(Balance) == 42
            assert len(probe.signals) == 1  # the consumed signal is not delivered again
        assert len(probe.inits) == 1


# -- signals -------------------------------------------------------------------------------------


async def test_signal_arrives_as_signal_received_consumed_with_the_snapshot(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    probe = Probe()
    account = account_actor(probe)
    store = RecordingStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, account, cap=cap, idle_after=math.inf) as rt:
            ref = await rt.actor(account, account="acc-1")
            await ref.send(Deposit(1))
            assert await rt.emit(Sig.bonus, account="acc-1", data=Deposit(100)) == 1
            await probe.wait_until(lambda: len(probe.signals) == 1)
            received = probe.signals[0]
            assert received.signal is Sig.bonus
            assert received.data == Deposit(100)
            assert received.params == {"account": "acc-1"}
            assert received.seq >= 1
            assert await ref.ask(Balance) == 101
            consuming = [c for c in store.commits if c.consume]
            assert [tuple(c.consume) for c in consuming] == [(received.seq,)]
            assert consuming[0].snapshot is not KEEP  # one transaction for both
            loaded = await store.load(ref.id)
            assert loaded is not None
            assert loaded.inbox == ()
            assert await stored_state(store, ref.id) == {"balance": 101}


async def test_signal_without_data_and_unchanged_state_is_still_consumed(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    probe = Probe()
    account = account_actor(probe)
    store = RecordingStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, account, cap=cap, idle_after=math.inf) as rt:
            ref = await rt.actor(account, account="acc-1")
            assert await rt.emit(Sig.freeze, account="acc-1") == 1
            await probe.wait_until(lambda: len(probe.signals) == 1)
            assert probe.signals[0].signal is Sig.freeze
            assert probe.signals[0].data is None
            assert await ref.ask(Balance) == 0
            # a second freeze leaves the state as it is: the commit only consumes
            assert await rt.emit(Sig.freeze, account="acc-1") == 1
            await probe.wait_until(lambda: len(probe.signals) == 2)
            assert await ref.ask(Balance) == 0
            consuming = [c for c in store.commits if c.consume]
            assert [tuple(c.consume) for c in consuming] == [(s.seq,) for s in probe.signals]
            assert consuming[-1].snapshot is KEEP
            loaded = await store.load(ref.id)
            assert loaded is not None
            assert loaded.inbox == ()
            assert await stored_state(store, ref.id) == {"balance": 0, "frozen": 1}


async def test_signal_wakes_a_passivated_actor_and_is_delivered_once(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    probe = Probe()
    account = account_actor(probe)
    store = MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, account, cap=cap, idle_after=5) as rt:
            ref = await rt.actor(account, account="acc-1")
            await ref.send(Deposit(1))
            await probe.wait_stopped()
            assert not ref.resident
            activations = rt.statistics().activations
            assert await rt.emit(Sig.bonus, account="acc-1", data=Deposit(10)) == 1
            # no send or ask: the runtime's due loop activates it for the signal
            await probe.wait_until(lambda: len(probe.signals) == 1)
            assert rt.statistics().activations == activations + 1
            assert await ref.ask(Balance) == 11
            assert len(probe.inits) == 1
        async with open_rt(store, account, cap=cap, idle_after=5) as rt:
            assert await (await rt.actor(account, account="acc-1")).ask(Balance) == 11
    assert [s.data for s in probe.signals] == [Deposit(10)]


async def test_signal_to_an_identity_that_never_existed_reaches_nothing(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    probe = Probe()
    account = account_actor(probe)
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), account, cap=cap) as rt:
            other = await rt.actor(account, account="acc-2")
            assert await rt.emit(Sig.bonus, account="acc-1", data=Deposit(10)) == 0
            ref = await rt.actor(account, account="acc-1")  # created after: not kept for it
            assert await ref.ask(Balance) == 0
            assert await other.ask(Balance) == 0
            assert probe.signals == []
            loaded = await rt.store.load(ref.id)
            assert loaded is not None
            assert loaded.inbox == ()


async def test_idempotency_key_delivers_once_and_returns_the_first_count(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    probe = Probe()
    account = account_actor(probe)
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), account, cap=cap) as rt:
            first = await rt.actor(account, account="acc-1")
            emit = rt.emit
            assert await emit(Sig.bonus, account="acc-1", data=Deposit(5), idempotency_key="k") == 1
            await probe.wait_until(lambda: len(probe.signals) == 1)
            assert await emit(Sig.bonus, account="acc-1", data=Deposit(5), idempotency_key="k") == 1
            assert await emit(Sig.bonus, account="acc-1", data=Deposit(7), idempotency_key="j") == 1
            await probe.wait_until(lambda: len(probe.signals) == 2)
            assert await first.ask(Balance) == 12
            assert [s.data for s in probe.signals] == [Deposit(5), Deposit(7)]
            # the key stays used whatever the params: a repeat reaches nothing new
            second = await rt.actor(account, account="acc-2")
            assert await emit(Sig.bonus, account="acc-2", data=Deposit(5), idempotency_key="k") == 1
            assert await second.ask(Balance) == 0
            assert await first.ask(Balance) == 12
            assert len(probe.signals) == 2


async def test_several_signals_arrive_in_emit_order(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    probe = Probe()
    account = account_actor(probe)
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), account, cap=cap, idle_after=math.inf) as rt:
            ref = await rt.actor(account, account="acc-1")
            for amount in range(1, 8):
                assert await rt.emit(Sig.bonus, account="acc-1", data=Deposit(amount)) == 1
            await probe.wait_until(lambda: len(probe.signals) == 7)
            assert [s.data.amount for s in probe.signals] == list(range(1, 8))
            seqs = [s.seq for s in probe.signals]
            assert seqs == sorted(seqs)
            assert len(set(seqs)) == 7
            assert await ref.ask(Balance) == 28


async def test_signals_reach_only_actors_with_matching_params(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    probe = Probe()
    account = account_actor(probe)
    got: dict[str, list[str]] = {}

    def teller_handle(state: Teller, msg: object, tools: ak.Tools) -> Teller | None:
        if isinstance(msg, Balance):
            msg.reply(len(state.got))
            return None
        assert isinstance(msg, dur.SignalReceived)
        got.setdefault(state.where, []).append(msg.signal.name)
        probe.note()
        return attrs.evolve(state, got=(*state.got, msg.signal.name))

    teller = dur.persistent_actor(
        "/bank/:branch/account/:account",
        init=lambda params: Teller(f"{params['branch']}/{params['account']}"),
        handle=teller_handle,
    )
    with trio.fail_after(TIMEOUT):
        async with dur.open_runtime(
            MemoryStore(), actors=[account, teller], signals=[Sig, Branch], max_resident=cap
        ) as rt:
            tellers = {
                where: await rt.actor(teller, branch=where[:2], account=where[3:])
                for where in ("b1/a1", "b1/a2", "b2/a1")
            }
            plain = await rt.actor(account, account="a1")
            assert tellers["b1/a2"].id == "bank/b1/account/a2"
            assert await rt.emit(Branch.audit, branch="b1", account="a1") == 1
            assert await rt.emit(Branch.notice, branch="b1") == 2
            assert await rt.emit(Branch.audit, branch="b3", account="a1") == 0
            assert await rt.emit(Branch.audit, branch="a1", account="b1") == 0
            # one param: every actor of either definition with account=a1
            assert await rt.emit(Sig.bonus, account="a1", data=Deposit(3)) == 3
            await probe.wait_until(lambda: sum(map(len, got.values())) == 5)
            await probe.wait_until(lambda: len(probe.signals) == 1)
            assert got == {
                "b1/a1": ["Branch.audit", "Branch.notice", "Sig.bonus"],
                "b1/a2": ["Branch.notice"],
                "b2/a1": ["Sig.bonus"],
            }
            assert probe.signals[0].params == {"account": "a1"}
            assert await plain.ask(Balance) == 3
            counts = {where: await ref.ask(Balance) for where, ref in tellers.items()}
            assert counts == {"b1/a1": 3, "b1/a2": 1, "b2/a1": 1}


# -- failures ------------------------------------------------------------------------------------


async def test_handler_failure_restarts_from_the_last_snapshot(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    probe = Probe()
    account = account_actor(probe)
    events: list[ak.Event] = []
    with trio.fail_after(TIMEOUT):
        async with open_rt(
            MemoryStore(), account, cap=cap, idle_after=math.inf, on_event=events.append
        ) as rt:
            ref = await rt.actor(account, account="acc-1")
            await ref.send(Deposit(10))
            boom = Boom()
            await ref.send(boom)
            assert await ref.ask(Balance) == 10  # the in-place +1000 was not kept
            await ref.send(Deposit(1))
            assert await ref.ask(Balance) == 11
            assert len(probe.inits) == 1
            assert await stored_state(rt.store, ref.id) == {"balance": 11}
    dead = [e for e in events if isinstance(e, ak.DeadLetter) and e.message is boom]
    assert len(dead) == 1
    assert dead[0].error == "RuntimeError: boom"
    failed = [e for e in events if isinstance(e, ak.Failed) and e.message_type == "Boom"]
    assert len(failed) == 1
    assert any(isinstance(e, ak.Restarted) for e in events)


async def test_failure_before_any_snapshot_restarts_from_init(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    probe = Probe()
    account = account_actor(probe)
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), account, cap=cap, idle_after=math.inf) as rt:
            ref = await rt.actor(account, account="acc-1")
            await ref.send(Boom())
            assert await ref.ask(Balance) == 0
            # no snapshot to restart from: the restart ran init again
            assert len(probe.inits) >= 2
            assert all(params == {"account": "acc-1"} for params in probe.inits)


async def test_an_actor_whose_last_message_failed_is_passivated_when_idle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    account = account_actor(probe)
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), account, idle_after=10) as rt:
            ref = await rt.actor(account, account="acc-1")
            await ref.send(Deposit(5))
            await ref.send(Boom())
            await probe.wait_until(lambda: "passivated" in probe.stops)
            await trio.testing.wait_all_tasks_blocked()
            assert not ref.resident
            assert await ref.ask(Balance) == 5


async def test_a_signal_whose_handler_failed_does_not_pin_the_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    account = account_actor(probe)
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), account, idle_after=10) as rt:
            ref = await rt.actor(account, account="acc-1")
            await ref.send(Deposit(5))
            assert await rt.emit(Sig.bonus, account="acc-1", data=Deposit(-1)) == 1
            await probe.wait_until(lambda: "passivated" in probe.stops)
            await trio.testing.wait_all_tasks_blocked()
            assert not ref.resident
            assert await ref.ask(Balance) == 5


@pytest.mark.parametrize("reply_first", [False, True], ids=["raise", "reply-then-raise"])
async def test_ask_whose_handler_raised_gets_actor_failed(
    autojump_clock: trio.testing.MockClock, cap: int, reply_first: bool
) -> None:
    probe = Probe()
    account = account_actor(probe)
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), account, cap=cap, idle_after=math.inf) as rt:
            ref = await rt.actor(account, account="acc-1")
            await ref.send(Deposit(2))
            # a reply sent before the raise is never released: its state was not committed
            with pytest.raises(ak.ActorFailed, match="boom in ask"):
                await ref.ask(lambda r: BoomAsk(r, reply_first))
            assert await ref.ask(Balance) == 2


async def test_restart_backoff_and_budget_come_from_the_definition(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    account = account_actor(
        probe, backoff=ak.Backoff(initial=3.0, max=3.0), budget=ak.RestartBudget(1, within=100)
    )
    events: list[ak.Event] = []
    with pytest.RaisesGroup(pytest.RaisesExc(ak.SupervisorGaveUp), flatten_subgroups=True):
        with trio.fail_after(TIMEOUT):
            async with open_rt(MemoryStore(), account, on_event=events.append) as rt:
                ref = await rt.actor(account, account="acc-1")
                await ref.send(Deposit(1))
                began = trio.current_time()
                await ref.send(Boom())
                assert await ref.ask(Balance) == 1
                assert trio.current_time() - began >= 3.0  # the restart waited for its backoff
                await ref.send(Boom())  # a second restart within 100 s exceeds the budget
                await trio.sleep_forever()
    assert [e.delay for e in events if isinstance(e, ak.Restarting)] == [3.0]
    assert any(isinstance(e, ak.GaveUp) for e in events)


async def test_state_the_codec_cannot_encode_fails_the_message(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    probe = Probe()
    account = account_actor(probe)
    events: list[ak.Event] = []
    with trio.fail_after(TIMEOUT):
        async with open_rt(
            MemoryStore(), account, cap=cap, idle_after=math.inf, on_event=events.append
        ) as rt:
            ref = await rt.actor(account, account="acc-1")
            await ref.send(Deposit(3))
            await ref.send(Garbage())
            assert await ref.ask(Balance) == 3
    failed = [e for e in events if isinstance(e, ak.Failed) and e.message_type == "Garbage"]
    assert len(failed) == 1
    assert failed[0].error_type == "TypeError"
    assert "account/acc-1" in failed[0].error


async def test_mailbox_overflow_follows_the_definition(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    account = account_actor(probe, max_inbox=1)
    store = RecordingStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, account, idle_after=math.inf) as rt:
            ref = await rt.actor(account, account="acc-1")
            store.gate = trio.Event()
            assert await ref.send(Deposit(1))
            await store.held.wait()  # the actor is busy committing the first deposit
            assert await ref.send(Deposit(2))
            assert not await ref.send(Deposit(4))  # REJECT: the mailbox holds one
            store.gate.set()
            await probe.wait_until(lambda: len(probe.handled) == 2)
            assert await ref.ask(Balance) == 3


# -- bad input -----------------------------------------------------------------------------------


async def test_rt_actor_checks_its_params(autojump_clock: trio.testing.MockClock) -> None:
    probe = Probe()
    account = account_actor(probe)
    async with open_rt(MemoryStore(), account) as rt:
        with pytest.raises(ValueError, match="missing parameter account"):
            await rt.actor(account)
        with pytest.raises(TypeError, match="unexpected parameter branch"):
            await rt.actor(account, account="acc-1", branch="b1")
        for bad in ("", "a/b"):
            with pytest.raises(ValueError, match=f"account={bad!r}"):
                await rt.actor(account, account=bad)
        with pytest.raises(ValueError, match="account=5"):
            await rt.actor(account, account=5)  # type: ignore[arg-type]
        assert probe.inits == []
        assert rt.statistics().activations == 0


async def test_rt_actor_rejects_unregistered_definitions(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    registered = account_actor(probe)
    same_path = account_actor(probe)
    other: dur.PersistentActor[int, object] = dur.persistent_actor(
        "/other/:id", init=lambda params: 0, handle=lambda s, m, t: None
    )
    async with open_rt(MemoryStore(), registered) as rt:
        for definition in (same_path, other):
            with pytest.raises(ValueError, match="not registered"):
                await rt.actor(definition, account="acc-1")
        with pytest.raises(TypeError, match=r"dur\.persistent_actor"):
            await rt.actor(object(), account="acc-1")  # type: ignore[arg-type]
        assert rt.statistics().activations == 0


@pytest.mark.parametrize(
    ("words", "options"),
    [
        ("start_time", {"start_time": datetime(2026, 1, 1)}),
        ("max_resident", {"max_resident": -1}),
        ("max_resident", {"max_resident": True}),
        ("idle_after", {"idle_after": -1}),
        ("lease_for", {"lease_for": 0}),
    ],
)
async def test_open_runtime_checks_its_arguments(
    autojump_clock: trio.testing.MockClock, words: str, options: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=words):
        async with dur.open_runtime(MemoryStore(), **options):
            pass  # pragma: no cover


@pytest.mark.parametrize(
    ("exception", "words", "entries"),
    [
        (TypeError, "is not a persistent actor", {"actors": [object()]}),
        (ValueError, "share the path", {"actors": "twice"}),
        (TypeError, r"dur\.Signals subclass", {"signals": [object()]}),
        (ValueError, "different data classes", {"signals": "clash"}),
    ],
    ids=["actor-entry", "actor-path-twice", "signals-entry", "signal-data-clash"],
)
async def test_open_runtime_checks_its_definitions(
    autojump_clock: trio.testing.MockClock,
    exception: type[Exception],
    words: str,
    entries: dict[str, Any],
) -> None:
    probe = Probe()
    if entries.get("actors") == "twice":
        entries = {"actors": [account_actor(probe), account_actor(probe)]}
    if entries.get("signals") == "clash":
        entries = {"signals": [Sig, dur.signal("/account/:account/bonus", data=Teller)]}
    with pytest.raises(exception, match=words):
        async with dur.open_runtime(MemoryStore(), **entries):
            pass  # pragma: no cover


def test_persistent_actor_checks_its_arguments() -> None:
    def handle(state: object, msg: object, tools: ak.Tools) -> None:
        return None

    with pytest.raises(TypeError, match=r"init=\.\.\.\) must be callable"):
        dur.persistent_actor("/a/:id", init=None, handle=handle)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"handle=\.\.\.\) must be callable"):
        dur.persistent_actor("/a/:id", init=dict, handle=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_stop"):
        dur.persistent_actor("/a/:id", init=dict, handle=handle, on_stop=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="idle_after=-1"):
        dur.persistent_actor("/a/:id", init=dict, handle=handle, idle_after=-1)
    with pytest.raises(ValueError, match="'/a/:1d'"):
        dur.persistent_actor("/a/:1d", init=dict, handle=handle)
    with pytest.raises(ValueError, match=r"dur\.persistent_actor\(.*max_inbox=0"):
        dur.persistent_actor("/a/:id", init=dict, handle=handle, max_inbox=0)
    with pytest.raises(ValueError, match="overflow='bogus'"):
        dur.persistent_actor("/a/:id", init=dict, handle=handle, overflow="bogus")
    definition = dur.persistent_actor(
        "/a/:id", init=dict, handle=handle, overflow=ak.Overflow.DROP_OLDEST, idle_after=0
    )
    assert definition.idle_after == 0
    assert definition.path == "/a/:id"
    assert definition.overflow is ak.Overflow.DROP_OLDEST
    assert repr(definition) == "<persistent_actor '/a/:id'>"


async def test_init_failure_is_raised_by_rt_actor(autojump_clock: trio.testing.MockClock) -> None:
    calls: list[dict[str, str]] = []

    def init(params: dict[str, str]) -> int:
        calls.append(params)
        if len(calls) == 1:
            raise RuntimeError("no ledger yet")
        return 7

    def handle(state: int, msg: object, tools: ak.Tools) -> None:
        assert isinstance(msg, Balance)
        msg.reply(state)

    ledger = dur.persistent_actor("/ledger/:id", init=init, handle=handle)
    with trio.fail_after(TIMEOUT):
        async with open_rt(MemoryStore(), ledger) as rt:
            with pytest.raises(RuntimeError, match="no ledger yet"):
                await rt.actor(ledger, id="l1")
            assert rt.statistics().resident == 0
            # the failed activation released its lease: the next one goes ahead
            ref = await rt.actor(ledger, id="l1")
            assert await ref.ask(Balance) == 7


async def test_a_corrupt_snapshot_fails_the_activation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    account = account_actor(probe)
    store = MemoryStore()
    async with store:
        await store.create(
            NewProcess(
                "account/acc-1",
                "actor",
                "/account/:account",
                {"account": "acc-1"},
                status=dur.Status.RUNNING,
                snapshot=b"\xc1 not msgpack",
            ),
            now=START.timestamp(),
        )
        with trio.fail_after(TIMEOUT):
            async with open_rt(store, account) as rt:
                with pytest.raises(dur.SnapshotDecodeError, match="account/acc-1"):
                    await rt.actor(account, account="acc-1")
                assert probe.inits == []
                assert rt.statistics().resident == 0


async def test_an_id_taken_by_another_definition_is_an_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    account = account_actor(probe)
    store = MemoryStore()
    async with store:
        await store.create(
            NewProcess("account/acc-1", "process", "/account/:account", {"account": "acc-1"}),
            now=START.timestamp(),
        )
        with trio.fail_after(TIMEOUT):
            async with open_rt(store, account) as rt:
                with pytest.raises(dur.DurableError, match="paths must not collide"):
                    await rt.actor(account, account="acc-1")
                assert probe.inits == []
                record = await store.get("account/acc-1")
                assert record is not None
                assert record.lease_owner is None  # released again


async def test_a_ref_outliving_its_runtime_raises_system_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    account = account_actor(probe)
    async with open_rt(MemoryStore(), account) as rt:
        ref = await rt.actor(account, account="acc-1")
        await ref.send(Deposit(1))
    with pytest.raises(ak.SystemClosed):
        await ref.send(Deposit(1))
    with pytest.raises(ak.SystemClosed):
        await ref.ask(Balance)
    assert not ref.resident


# -- time ----------------------------------------------------------------------------------------


async def test_runtime_now_is_start_time_plus_trio_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with dur.open_runtime(MemoryStore(), start_time=START) as rt:
        assert rt.now() == START.timestamp()
        await trio.sleep(3 * 86_400)
        assert rt.now() == START.timestamp() + 3 * 86_400
        assert rt.now_datetime() == datetime(2026, 1, 4, tzinfo=UTC)


# -- several runtimes on one store ---------------------------------------------------------------


async def test_one_activation_across_runtimes_sharing_a_memory_store(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    account = account_actor(probe)
    store = MemoryStore()
    with trio.fail_after(10 * TIMEOUT):
        async with (
            open_rt(store, account, idle_after=100, lease_for=5) as first,
            open_rt(store, account, idle_after=math.inf, lease_for=5) as second,
        ):
            ref = await first.actor(account, account="acc-1")
            assert await ref.ask(lambda r: DepositAsk(5, r)) == 5
            await trio.sleep(60)  # many lease periods: the first keeps renewing its lease
            assert ref.resident
            with pytest.raises(dur.ActorElsewhere, match="account/acc-1"):
                await second.actor(account, account="acc-1")
            await probe.wait_stopped()  # idle for 100 s: the first passivates it
            assert probe.stops == ["passivated"]
            moved = await second.actor(account, account="acc-1")
            assert await moved.ask(Balance) == 5
            with pytest.raises(dur.ActorElsewhere):
                await first.actor(account, account="acc-1")
            # a signal emitted through the first reaches it where it lives
            assert await first.emit(Sig.bonus, account="acc-1", data=Deposit(1)) == 1
            await probe.wait_until(lambda: len(probe.signals) == 1)
            assert await moved.ask(Balance) == 6
            assert first.statistics().activations == 1
            assert second.statistics().activations == 1
    assert len(probe.inits) == 1


# -- SQLite: a real file, real time --------------------------------------------------------------


async def test_sqlite_file_keeps_state_across_runtimes(tmp_path: Path) -> None:
    probe = Probe()
    account = account_actor(probe)
    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    with trio.fail_after(10):
        async with dur.open_runtime(url, actors=[account], signals=[Sig]) as rt:
            ref = await rt.actor(account, account="acc-1")
            await ref.send(Deposit(40))
            assert await rt.emit(Sig.bonus, account="acc-1", data=Deposit(2)) == 1
            await probe.wait_until(lambda: len(probe.signals) == 1)
            assert await ref.ask(Balance) == 42
        async with dur.open_runtime(url, actors=[account], signals=[Sig]) as rt:
            ref = await rt.actor(account, account="acc-1")
            assert await ref.ask(lambda r: DepositAsk(1, r)) == 43
            assert await ref.ask(Balance) == 43
    assert len(probe.inits) == 1
    assert len(probe.signals) == 1


async def test_sqlite_max_resident_zero_rebuilds_every_ask(tmp_path: Path) -> None:
    probe = Probe()
    account = account_actor(probe)
    url = f"sqlite:///{tmp_path / 'cap0.db'}"
    with trio.fail_after(10):
        async with dur.open_runtime(url, actors=[account], signals=[Sig], max_resident=0) as rt:
            ref = await rt.actor(account, account="acc-1")
            for n in range(1, 6):
                assert await ref.ask(lambda r: DepositAsk(1, r)) == n
            assert await ref.ask(Balance) == 5
            assert rt.statistics().activations >= 6
    assert len(probe.inits) == 1


async def test_sqlite_one_activation_across_runtimes(tmp_path: Path) -> None:
    probe = Probe()
    account = account_actor(probe)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with trio.fail_after(10):
        async with dur.open_runtime(url, actors=[account], signals=[Sig], idle_after=0.05) as first:
            async with dur.open_runtime(
                url, actors=[account], signals=[Sig], idle_after=math.inf
            ) as second:
                ref = await first.actor(account, account="acc-1")
                await ref.send(Deposit(5))
                assert await ref.ask(Balance) == 5
                with pytest.raises(dur.ActorElsewhere, match="account/acc-1"):
                    await second.actor(account, account="acc-1")
                # once the first has passivated it, the second takes it over with its state
                await probe.wait_until(lambda: probe.stops == ["passivated"])
                moved = await second.actor(account, account="acc-1")
                assert await moved.ask(Balance) == 5
                with pytest.raises(dur.ActorElsewhere):
                    await first.actor(account, account="acc-1")
                # a signal emitted through the first reaches it, resident in the second
                assert await first.emit(Sig.bonus, account="acc-1", data=Deposit(1)) == 1
                await probe.wait_until(lambda: len(probe.signals) == 1)
                assert await moved.ask(Balance) == 6
            assert probe.stops == ["passivated", "shutdown"]
            # the second runtime has exited: the first may activate it again
            again = await first.actor(account, account="acc-1")
            assert await again.ask(Balance) == 6
    assert len(probe.inits) == 1
    assert len(probe.signals) == 1

"""Durable processes: start, steps, signals, races, time, errors, cancel and recovery (api.md).

Every test runs on a memory store under ``MockClock(autojump_threshold=0)``, so days of durable
time take milliseconds, and, through the ``cap`` fixture, twice: with the default resident cap
and with ``max_resident=0``, where every wait ends the in-memory coroutine and every wake
rebuilds the process by replaying its journal. Counters kept outside the processes tell how
often a handler or a step really ran.

Durable time is kept equal to ``START`` plus trio time, also across runtimes reopened on the
same store (``open_rt`` passes ``start_time`` accordingly), so times are asserted exactly.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing

import actorkit_durable as dur
from actorkit_durable._store import NewSignal

START = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = 3600.0
DAY = 24 * HOUR
TIMEOUT = 30 * DAY
"""Virtual seconds a test may wait for anything (autojump makes a hang fail fast)."""


@dur.record("tests.unit.durable.test_processes.Payment.v1")
@attrs.frozen
class Payment:
    tx_id: str
    amount: int


@dur.record("tests.unit.durable.test_processes.Note.v1")
@attrs.frozen
class Note:
    text: str


class OrderSignals(dur.Signals):
    paid = dur.signal("/order/:order/payment/received", data=Payment)
    delivered = dur.signal("/order/:order/delivered")


class Flow(dur.Signals):
    go = dur.signal("/job/:job/go")
    note = dur.signal("/job/:job/note", data=Note)
    left = dur.signal("/job/:job/left")
    right = dur.signal("/job/:job/right")


class Ship(dur.Signals):
    order_hold = dur.signal("/order/:order/hold", data=Note)
    warehouse_closed = dur.signal("/warehouse/:warehouse/closed")
    dispatch = dur.signal("/shipment/:order/:warehouse/dispatch")


class Courier(dur.Signals):
    done = dur.signal("/courier/:courier/done")


SIGNALS: list[object] = [OrderSignals, Flow, Ship, Courier]


class InventoryDown(dur.RecoverableError):
    """A recoverable error of the tests: the process waits for an operator."""


# -- the api.md example (seed scenario), module level ------------------------------------------

CHARGED: list[tuple[str, int]] = []
"""charge_card's calls: (order, amount)."""


async def charge_card(order: str, amount: int) -> str:
    await trio.lowlevel.checkpoint()
    CHARGED.append((order, amount))
    return f"charge-{order}-{amount}"


@dur.process("/order/:order/fulfillment")
async def fulfillment(ctx: dur.Context, order: str) -> dict[str, object]:
    r = await ctx.race(OrderSignals.paid, dur.delay.days(3))
    if r.timed_out:
        return {"status": "payment_timeout", "order": order}
    payment: Payment = r.data
    await ctx.step(charge_card, order, payment.amount)  # recorded once, retried on failure
    await ctx.signal(OrderSignals.delivered)  # durable suspension
    return {"status": "delivered", "order": order, "paid": payment.amount}


# -- a handler changed by a deploy (seed scenario), module level -------------------------------

DEPLOY = {"reserve_step": "reserve"}
"""The step name ``picking`` records; a test switches it between runtimes (a code change)."""

RESERVED: list[str] = []


def reserve_stock(order: str) -> str:
    RESERVED.append(order)
    return f"reserved-{order}"


@dur.process("/order/:order/picking")
async def picking(ctx: dur.Context, order: str) -> str:
    reservation = await ctx.step(reserve_stock, order, name=DEPLOY["reserve_step"])
    await ctx.signal(OrderSignals.delivered)
    return reservation


# -- helpers -------------------------------------------------------------------------------------


def durable_at(trio_time: float) -> datetime:
    """The durable wall time at a trio time (``open_rt`` keeps them in step)."""
    return START + timedelta(seconds=trio_time)


def durable_seconds() -> float:
    """Durable time now, POSIX seconds (for calls on the store itself)."""
    return durable_at(trio.current_time()).timestamp()


def open_rt(
    store: dur.Store | str,
    *processes: dur.ProcessDef[Any],
    cap: int,
    **options: Any,
) -> AbstractAsyncContextManager[dur.Runtime]:
    """A runtime whose durable time is ``START`` plus trio time, also when reopened later."""
    options.setdefault("start_time", durable_at(trio.current_time()))
    return dur.open_runtime(
        store, processes=processes, signals=SIGNALS, max_resident=cap, **options
    )


async def settle() -> None:
    """Let every task run until all are blocked, without letting virtual time pass."""
    await trio.testing.wait_all_tasks_blocked()


async def suspended(h: dur.ProcessHandle[Any]) -> dur.ProcessState:
    """Settle, then check that ``h`` is suspended (waiting, or stopped by a recoverable error)."""
    await settle()
    state = await h.state()
    assert state.status == dur.Status.SUSPENDED, repr(state)
    return state


def last_seen(h: dur.ProcessHandle[Any]) -> dur.Status | None:
    """``h.status`` (a call, so that mypy does not narrow it between awaits)."""
    return h.status


async def ids(states: Any) -> list[str]:
    return sorted([state.id async for state in states])


class Events:
    """The ``dur.ProcessEvent`` s a runtime reported."""

    def __init__(self) -> None:
        self.events: list[dur.ProcessEvent] = []

    def __call__(self, event: object) -> None:
        if isinstance(event, dur.ProcessEvent):
            self.events.append(event)

    def statuses(self, process_id: str) -> list[str]:
        return [str(e.status) for e in self.events if e.process_id == process_id]


@pytest.fixture(
    params=[
        pytest.param(10_000, id="resident"),
        pytest.param(0, id="cap0"),
    ]
)
def cap(request: pytest.FixtureRequest) -> int:
    """The runtime's ``max_resident``: 0 makes every wake rebuild the process by replay."""
    return int(request.param)


@pytest.fixture(autouse=True)
def _module_state() -> Iterator[None]:
    CHARGED.clear()
    RESERVED.clear()
    DEPLOY["reserve_step"] = "reserve"
    yield
    DEPLOY["reserve_step"] = "reserve"


# -- definitions, ids, start ---------------------------------------------------------------------


def test_process_definition() -> None:
    assert isinstance(fulfillment, dur.ProcessDef)
    assert fulfillment.path == "/order/:order/fulfillment"
    assert fulfillment.template.params == ("order",)
    assert fulfillment.fn.__name__ == "fulfillment"


@pytest.mark.parametrize(
    "path",
    ["/order/:order", "/order/:order/item/:item"],
)
def test_process_decorator_rejects_handlers_whose_params_differ_from_the_path(path: str) -> None:
    async def wrong_name(ctx: dur.Context, orderid: str) -> None:
        pass

    async def only_ctx(ctx: dur.Context) -> None:
        pass

    async def extra(ctx: dur.Context, order: str, item: str, extra: str) -> None:
        pass

    for fn in (wrong_name, only_ctx, extra):
        with pytest.raises(TypeError, match="order"):
            dur.process(path)(fn)


def test_process_decorator_accepts_params_in_any_order() -> None:
    async def handler(ctx: dur.Context, item: str, order: str) -> str:
        return f"{order}/{item}"

    defn = dur.process("/order/:order/item/:item")(handler)
    assert defn.path == "/order/:order/item/:item"
    assert defn.fn is handler


async def test_start_handle_wait_and_state(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    runs: list[str] = []

    @dur.process("/order/:order/payment")
    async def payment(ctx: dur.Context, order: str) -> dict[str, object]:
        runs.append(order)
        paid = await ctx.signal(OrderSignals.paid)
        return {"order": order, "paid": paid.data.amount}

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), payment, cap=cap, idle_after=math.inf) as rt:
            await trio.sleep(HOUR)
            h = await rt.start(payment, order="order-123")
            assert isinstance(h, dur.ProcessHandle)
            assert h.id == "order/order-123/payment"
            state = await suspended(h)
            assert h.status == dur.Status.SUSPENDED
            assert isinstance(state, dur.ProcessState)
            assert state.id == h.id
            assert state.path == payment.path
            assert state.params == {"order": "order-123"}
            assert (state.result, state.error, state.last_error, state.last_error_at) == (
                None,
                None,
                None,
                None,
            )
            assert state.waiting_on is not None
            assert "paid" in state.waiting_on or "payment/received" in state.waiting_on
            assert state.created_at == durable_at(HOUR)
            assert state.created_at.utcoffset() == timedelta(0)
            assert state.updated_at >= state.created_at

            await trio.sleep(HOUR)
            assert await rt.emit(OrderSignals.paid, order="order-123", data=Payment("t", 5)) == 1
            assert await h.wait() == {"order": "order-123", "paid": 5}
            assert last_seen(h) == dur.Status.COMPLETED
            state = await h.state()
            assert state.status == dur.Status.COMPLETED
            assert state.result == {"order": "order-123", "paid": 5}
            assert state.waiting_on is None
            assert state.error is None
            assert state.updated_at == durable_at(2 * HOUR)
            assert state.created_at == durable_at(HOUR)
            # a handle made from the id, without I/O, sees the same process
            again = rt.handle(h.id)
            assert again.id == h.id
            assert await again.wait() == {"order": "order-123", "paid": 5}
            assert (await again.state()).status == dur.Status.COMPLETED
    assert runs == ["order-123"] * (2 if cap == 0 else 1)


async def test_start_is_idempotent(autojump_clock: trio.testing.MockClock, cap: int) -> None:
    calls: list[str] = []

    def reserve(order: str) -> str:
        calls.append(order)
        return f"reserved-{order}"

    @dur.process("/order/:order/reservation")
    async def reservation(ctx: dur.Context, order: str) -> list[object]:
        r = await ctx.step(reserve, order)
        await ctx.signal(OrderSignals.delivered)
        return [r, ctx.input]

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), reservation, cap=cap) as rt:
            first = await rt.start(reservation, input={"n": 1}, order="o1")
            await suspended(first)
            second = await rt.start(reservation, input={"n": 2}, order="o1")
            assert second.id == first.id == "order/o1/reservation"
            # concurrent starts of a new id create one process
            handles: list[dur.ProcessHandle[list[object]]] = []

            async def start_o2() -> None:
                handles.append(await rt.start(reservation, input={"n": 3}, order="o2"))

            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(start_o2)
            assert {h.id for h in handles} == {"order/o2/reservation"}
            await settle()
            assert sorted(calls) == ["o1", "o2"]
            assert await ids(rt.query()) == ["order/o1/reservation", "order/o2/reservation"]

            assert await rt.emit(OrderSignals.delivered, order="o1") == 1
            assert await rt.emit(OrderSignals.delivered, order="o2") == 1
            assert await second.wait() == ["reserved-o1", {"n": 1}]  # the first start's input
            assert await handles[0].wait() == ["reserved-o2", {"n": 3}]
            # starting a finished process returns it: nothing runs again
            third = await rt.start(reservation, input={"n": 4}, order="o1")
            assert third.id == first.id
            assert (await third.state()).status == dur.Status.COMPLETED
            assert await third.wait() == ["reserved-o1", {"n": 1}]
            await settle()
    assert sorted(calls) == ["o1", "o2"]


@pytest.mark.parametrize("bad", ["a/b", ""])
async def test_bad_param_values_are_a_value_error_naming_the_param(
    autojump_clock: trio.testing.MockClock, bad: str
) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), fulfillment, cap=10) as rt:
            with pytest.raises(ValueError, match="order"):
                await rt.start(fulfillment, order=bad)
            with pytest.raises((TypeError, ValueError), match="order"):
                await rt.start(fulfillment)
            assert await ids(rt.query()) == []


async def test_context_id_params_and_input(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    seen: list[tuple[str, dict[str, str], object]] = []

    @dur.process("/tenant/:tenant/job/:job")
    async def tenant_job(ctx: dur.Context, tenant: str, job: str) -> dict[str, object]:
        seen.append((ctx.id, dict(ctx.params), ctx.input))
        await ctx.signal(Flow.go)  # "/job/:job/go" reaches it: it has the param job
        return {"id": ctx.id, "params": dict(ctx.params), "input": ctx.input, "args": [tenant, job]}

    payload = {"items": [1, 2], "note": "fragile"}
    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), tenant_job, cap=cap) as rt:
            h = await rt.start(tenant_job, input=payload, job="j1", tenant="acme")
            assert h.id == "tenant/acme/job/j1"
            await suspended(h)
            plain = await rt.start(tenant_job, job="j2", tenant="acme")
            await suspended(plain)
            assert await rt.emit(Flow.go, job="j1") == 1
            assert await h.wait() == {
                "id": "tenant/acme/job/j1",
                "params": {"tenant": "acme", "job": "j1"},
                "input": payload,
                "args": ["acme", "j1"],
            }
            assert await rt.emit(Flow.go, job="j2") == 1
            assert (await plain.wait())["input"] is None
    mine = [s for s in seen if s[0] == "tenant/acme/job/j1"]
    assert mine == [("tenant/acme/job/j1", {"tenant": "acme", "job": "j1"}, payload)] * (
        2 if cap == 0 else 1
    )


# -- steps ---------------------------------------------------------------------------------------


async def test_recorded_steps_are_not_run_again_on_replay(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    calls = {"a": 0, "b": 0}
    runs: list[int] = []

    def step_a() -> int:
        calls["a"] += 1
        return calls["a"] * 10

    async def step_b(x: int) -> int:
        await trio.lowlevel.checkpoint()
        calls["b"] += 1
        return x + calls["b"]

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[int]:
        runs.append(1)
        a = await ctx.step(step_a)
        await ctx.signal(Flow.go)
        b = await ctx.step(step_b, a)
        await ctx.signal(Flow.go)
        return [a, b]

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap, idle_after=math.inf) as rt:
            h = await rt.start(proc, job="j1")
            await suspended(h)
            assert calls == {"a": 1, "b": 0}
            assert await rt.emit(Flow.go, job="j1") == 1
            await suspended(h)
            assert calls == {"a": 1, "b": 1}
            assert await rt.emit(Flow.go, job="j1") == 1
            assert await h.wait() == [10, 11]
    assert calls == {"a": 1, "b": 1}
    assert len(runs) == (3 if cap == 0 else 1)  # with cap 0: two rebuilds by replay


async def test_step_key_is_stable_per_step(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    keys: list[str] = []

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[str]:
        def flaky() -> str:
            keys.append(ctx.step_key)
            if len(keys) < 2:
                raise ConnectionError("flaky")
            return ctx.step_key

        def other() -> str:
            return ctx.step_key

        first = await ctx.step(flaky, name="flaky", retry=dur.Retry(max_attempts=3, initial=1.0))
        await ctx.signal(Flow.go)
        second = await ctx.step(other, name="other")
        return [first, second]

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            await trio.sleep(10)
            await suspended(h)
            assert await rt.emit(Flow.go, job="j1") == 1
            first, second = await h.wait()
    assert keys == [first, first]  # the same key on every attempt
    for key in (first, second):
        process_id, seq = key.rsplit(":", 1)
        assert process_id == "job/j1"
        assert seq.isdigit()
    assert int(first.rsplit(":", 1)[1]) < int(second.rsplit(":", 1)[1])


def test_retry_defaults() -> None:
    retry = dur.Retry()
    assert (retry.max_attempts, retry.initial, retry.factor, retry.max) == (3, 1.0, 2.0, 60.0)


async def test_step_retries_back_off_on_trio_time(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    attempts: list[float] = []
    defaults: list[float] = []

    def flaky() -> str:
        attempts.append(trio.current_time())
        if len(attempts) < 4:
            raise ConnectionError(f"attempt {len(attempts)}")
        return "ok"

    async def flaky_default() -> str:
        defaults.append(trio.current_time())
        if len(defaults) < 3:
            raise ConnectionError(f"attempt {len(defaults)}")
        return "ok too"

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[str]:
        a = await ctx.step(flaky, retry=dur.Retry(max_attempts=4, initial=1.0, factor=2.0, max=3.0))
        b = await ctx.step(flaky_default)  # Retry(max_attempts=3, initial=1.0, factor=2.0)
        return [a, b]

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            began = trio.current_time()
            h = await rt.start(proc, job="j1")
            assert await h.wait() == ["ok", "ok too"]
    assert attempts[0] == pytest.approx(began)
    assert [b - a for a, b in itertools.pairwise(attempts)] == pytest.approx(
        [1.0, 2.0, 3.0]  # 1, 2, then 4 capped at max=3
    )
    assert [b - a for a, b in itertools.pairwise(defaults)] == pytest.approx([1.0, 2.0])
    assert defaults[0] == pytest.approx(attempts[-1])


async def test_exhausted_retries_raise_the_last_exception_into_the_handler(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    attempts: list[float] = []

    def always() -> None:
        attempts.append(trio.current_time())
        raise ValueError(f"nope #{len(attempts)}")

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        try:
            await ctx.step(always, retry=dur.Retry(max_attempts=3, initial=2.0, factor=1.0))
        except ValueError as e:
            caught = f"caught {e}"
        else:
            caught = "not raised"
        await ctx.signal(Flow.go)  # with cap 0 the rebuild replays the recorded failure
        return caught

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            await trio.sleep(HOUR)
            await suspended(h)
            assert len(attempts) == 3
            assert await rt.emit(Flow.go, job="j1") == 1
            assert await h.wait() == "caught nope #3"
    assert [b - a for a, b in itertools.pairwise(attempts)] == pytest.approx([2.0, 2.0])
    assert len(attempts) == 3  # the failure was recorded: not run again on replay


async def test_uncaught_exhausted_step_fails_the_process(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    def down() -> None:
        raise ConnectionError("card network down")

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> None:
        await ctx.step(down, retry=dur.Retry(max_attempts=2, initial=1.0))

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            with pytest.raises(dur.ProcessFailed, match="ConnectionError: card network down"):
                await h.wait()
            assert (await h.state()).status == dur.Status.FAILED


async def test_recoverable_error_in_a_step_is_not_retried_and_suspends(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    calls: list[float] = []
    broken = {"on": True}

    def check_stock() -> str:
        calls.append(trio.current_time())
        if broken["on"]:
            raise InventoryDown("warehouse offline")
        return "in stock"

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        await ctx.sleep(HOUR)
        return await ctx.step(check_stock, retry=dur.Retry(max_attempts=5, initial=1.0))

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            await trio.sleep(2 * HOUR)
            state = await suspended(h)
            assert calls == [HOUR]  # not retried
            assert state.last_error == "InventoryDown: warehouse offline"
            assert state.last_error_at == durable_at(HOUR)
            assert state.error is None
            broken["on"] = False
            await rt.retry(h.id)
            assert await h.wait() == "in stock"
            state = await h.state()
            assert state.status == dur.Status.COMPLETED
            assert state.last_error is None
    assert calls == [HOUR, 2 * HOUR]


async def test_sync_and_async_steps(autojump_clock: trio.testing.MockClock, cap: int) -> None:
    def add(a: int, b: int) -> int:
        return a + b

    async def slow_mul(a: int, b: int) -> int:
        await trio.sleep(30)
        return a * b

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[int]:
        s = await ctx.step(add, 2, 3)
        p = await ctx.step(slow_mul, 2, 3)
        await ctx.signal(Flow.go)
        return [s, p]

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            began = trio.current_time()
            h = await rt.start(proc, job="j1")
            await trio.sleep(60)
            await suspended(h)
            assert await rt.emit(Flow.go, job="j1") == 1
            assert await h.wait() == [5, 6]
            assert trio.current_time() - began == pytest.approx(60)


async def test_step_timeout(autojump_clock: trio.testing.MockClock, cap: int) -> None:
    started: list[float] = []
    finished: list[float] = []

    async def hang() -> str:
        started.append(trio.current_time())
        await trio.sleep(HOUR)
        finished.append(trio.current_time())
        return "late"

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        try:
            return await ctx.step(hang, timeout=5.0, retry=dur.Retry(max_attempts=2, initial=1.0))
        except (TimeoutError, trio.TooSlowError):
            return "timed out"

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            began = trio.current_time()
            h = await rt.start(proc, job="j1")
            assert await h.wait() == "timed out"
            ended = trio.current_time()
    assert finished == []
    # attempt 1 at 0, cancelled at 5; 1 s backoff; attempt 2 at 6, cancelled at 11
    assert [t - began for t in started] == pytest.approx([0.0, 6.0])
    assert ended - began == pytest.approx(11.0)


# -- signals -------------------------------------------------------------------------------------


async def test_signal_delivers_data_params_and_signal(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    @dur.process("/order/:order/payment")
    async def payment(ctx: dur.Context, order: str) -> list[object]:
        got = await ctx.signal(OrderSignals.paid)
        return [got.data.tx_id, got.data.amount, dict(got.params), got.signal is OrderSignals.paid]

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), payment, cap=cap) as rt:
            h = await rt.start(payment, order="o1")
            await suspended(h)
            assert await rt.emit(OrderSignals.paid, order="o1", data=Payment("tx-9", 90)) == 1
            assert await h.wait() == ["tx-9", 90, {"order": "o1"}, True]


async def test_signals_sent_before_the_wait_are_kept_and_consumed_in_emit_order(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[str]:
        await ctx.signal(Flow.go)
        first = await ctx.signal(Flow.note)
        await ctx.signal(Flow.left)
        second = await ctx.signal(Flow.note)
        return [first.data.text, second.data.text]

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            await suspended(h)
            assert await rt.emit(Flow.note, job="j1", data=Note("first")) == 1
            assert await rt.emit(Flow.left, job="j1") == 1
            assert await rt.emit(Flow.note, job="j1", data=Note("second")) == 1
            await settle()
            state = await h.state()
            assert state.status == dur.Status.SUSPENDED  # still waiting for go
            assert await rt.emit(Flow.go, job="j1") == 1
            assert await h.wait() == ["first", "second"]
            # finished: nothing reaches it any more
            assert await rt.emit(Flow.note, job="j1", data=Note("third")) == 0


async def test_a_signal_sent_while_a_step_runs_is_kept(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    async def pack() -> str:
        await trio.sleep(HOUR)
        return "packed"

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[str]:
        packed = await ctx.step(pack)
        got = await ctx.signal(Flow.note)
        return [packed, got.data.text, ctx.now().isoformat()]

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            await trio.sleep(HOUR / 2)
            assert await rt.emit(Flow.note, job="j1", data=Note("during the step")) == 1
            assert await h.wait() == ["packed", "during the step", durable_at(HOUR).isoformat()]
            assert trio.current_time() == pytest.approx(HOUR)


async def test_a_signal_that_reaches_nothing_is_not_kept(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[object]:
        r = await ctx.race(Flow.note, dur.delay.hours(1))
        return [r.timed_out, r.index]

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            assert await rt.emit(Flow.note, job="j1", data=Note("early")) == 0
            began = trio.current_time()
            h = await rt.start(proc, job="j1")
            assert await h.wait() == [True, 1]
            assert trio.current_time() - began == pytest.approx(HOUR)


async def test_signals_route_on_two_params(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    @dur.process("/shipment/:order/:warehouse")
    async def shipment(ctx: dur.Context, order: str, warehouse: str) -> list[str]:
        got: list[str] = []
        while True:
            r = await ctx.race(Ship.order_hold, Ship.warehouse_closed, Ship.dispatch)
            assert r.params is not None
            if r.arm is Ship.order_hold:
                assert isinstance(r.data, Note)
                got.append(f"hold {r.params['order']} {r.data.text}")
            elif r.arm is Ship.warehouse_closed:
                got.append(f"closed {r.params['warehouse']}")
            else:
                assert r.arm is Ship.dispatch
                got.append(f"dispatch {r.params['order']} {r.params['warehouse']}")
                return got

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), shipment, cap=cap) as rt:
            a = await rt.start(shipment, order="o1", warehouse="w1")
            b = await rt.start(shipment, order="o1", warehouse="w2")
            c = await rt.start(shipment, order="o2", warehouse="w1")
            assert (a.id, b.id, c.id) == ("shipment/o1/w1", "shipment/o1/w2", "shipment/o2/w1")
            for h in (a, b, c):
                await suspended(h)
            hold = Note("fraud check")
            assert await rt.emit(Ship.order_hold, order="o1", data=hold, idempotency_key="h1") == 2
            await settle()
            # a repeated key returns the first count and delivers nothing new
            assert await rt.emit(Ship.order_hold, order="o1", data=hold, idempotency_key="h1") == 2
            assert await rt.emit(Ship.warehouse_closed, warehouse="w1") == 2
            assert await rt.emit(Ship.order_hold, order="o3", data=hold) == 0
            assert await rt.emit(Ship.dispatch, order="o1", warehouse="w2") == 1
            assert await b.wait() == ["hold o1 fraud check", "dispatch o1 w2"]
            assert await rt.emit(Ship.dispatch, order="o2", warehouse="w2") == 0
            assert await rt.emit(Ship.dispatch, order="o1", warehouse="w1") == 1
            assert await rt.emit(Ship.dispatch, order="o2", warehouse="w1") == 1
            assert await a.wait() == ["hold o1 fraud check", "closed w1", "dispatch o1 w1"]
            assert await c.wait() == ["closed w1", "dispatch o2 w1"]
            # after they finished the key still answers with its first count
            assert await rt.emit(Ship.order_hold, order="o1", data=hold, idempotency_key="h1") == 2
            assert await rt.emit(Ship.order_hold, order="o1", data=hold, idempotency_key="h2") == 0


async def test_idempotency_key_delivers_once(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[str]:
        notes: list[str] = []
        while True:
            r = await ctx.race(Flow.note, Flow.go)
            if r.arm is Flow.go:
                return notes
            assert isinstance(r.data, Note)
            notes.append(r.data.text)

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            await suspended(h)
            assert await rt.emit(Flow.note, job="j1", data=Note("a"), idempotency_key="k-a") == 1
            assert await rt.emit(Flow.note, job="j1", data=Note("a2"), idempotency_key="k-a") == 1
            await settle()
            assert await rt.emit(Flow.note, job="j1", data=Note("a3"), idempotency_key="k-a") == 1
            assert await rt.emit(Flow.note, job="j1", data=Note("b"), idempotency_key="k-b") == 1
            assert await rt.emit(Flow.go, job="j1") == 1
            assert await h.wait() == ["a", "b"]
            assert await rt.emit(Flow.note, job="j1", data=Note("a4"), idempotency_key="k-a") == 1
            assert await rt.emit(Flow.note, job="nobody", data=Note("x"), idempotency_key="k0") == 0
            assert await rt.emit(Flow.note, job="j1", data=Note("x"), idempotency_key="k0") == 0


async def test_emit_checks_data_and_params(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    @dur.process("/order/:order/payment")
    async def payment(ctx: dur.Context, order: str) -> list[object]:
        got = await ctx.signal(OrderSignals.paid)
        await ctx.signal(OrderSignals.delivered)
        return [got.data.amount]

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), payment, cap=cap) as rt:
            h = await rt.start(payment, order="o1")
            await suspended(h)
            with pytest.raises(TypeError, match=r"OrderSignals\.paid.*Payment"):
                await rt.emit(OrderSignals.paid, order="o1", data=Note("not a payment"))
            with pytest.raises(TypeError, match=r"OrderSignals\.paid"):
                await rt.emit(OrderSignals.paid, order="o1")  # data missing: None
            with pytest.raises(TypeError, match=r"OrderSignals\.delivered"):
                await rt.emit(OrderSignals.delivered, order="o1", data=Payment("t", 1))
            with pytest.raises(ValueError, match="order"):
                await rt.emit(OrderSignals.paid, data=Payment("t", 1))
            with pytest.raises(ValueError, match="order") as missing:
                await rt.emit(Ship.dispatch)
            assert "warehouse" in str(missing.value)
            with pytest.raises(ValueError, match="warehouse"):
                await rt.emit(Ship.dispatch, order="o1")
            with pytest.raises(ValueError, match="order"):
                await rt.emit(OrderSignals.paid, order="o/1", data=Payment("t", 1))
            # nothing of that reached the process
            await settle()
            assert (await h.state()).status == dur.Status.SUSPENDED
            assert await rt.emit(OrderSignals.paid, order="o1", data=Payment("t", 7)) == 1
            assert await rt.emit(OrderSignals.delivered, order="o1") == 1
            assert await h.wait() == [7]


# -- race, sleep and time ------------------------------------------------------------------------


async def test_race_signal_before_the_deadline(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[object]:
        deadline = dur.delay.days(3)
        r = await ctx.race(Flow.note, deadline)
        assert isinstance(r.data, Note)
        return [r.timed_out, r.index, r.arm is Flow.note, r.data.text, ctx.now().isoformat()]

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            await trio.sleep(DAY)
            await suspended(h)
            assert await rt.emit(Flow.note, job="j1", data=Note("in time")) == 1
            result = await h.wait()
            assert trio.current_time() == pytest.approx(DAY)
    assert result == [False, 0, True, "in time", durable_at(DAY).isoformat()]


async def test_race_deadline_before_the_signal(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[object]:
        deadline = dur.delay.days(3)
        r = await ctx.race(Flow.note, deadline)
        return [r.timed_out, r.index, r.arm is deadline, r.data, ctx.now().isoformat()]

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            result = await h.wait()
            assert trio.current_time() == pytest.approx(3 * DAY)
            assert await rt.emit(Flow.note, job="j1", data=Note("too late")) == 0
    assert result == [True, 1, True, None, durable_at(3 * DAY).isoformat()]


async def test_race_deadline_is_fixed_when_first_reached(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    runs: list[float] = []

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[object]:
        runs.append(trio.current_time())
        await ctx.sleep(dur.delay.days(1))
        r = await ctx.race(Flow.left, dur.delay.days(3))  # reached at day 1: deadline day 4
        return [r.timed_out, ctx.now().isoformat()]

    store = dur.MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            await trio.sleep(2 * DAY)
            await suspended(h)
            await rt.retry(h.id)  # runs it again: the replayed race keeps its deadline
            await trio.sleep(HOUR)
            await suspended(h)
        await trio.sleep(DAY)  # closed from day 2 to day 3
        async with open_rt(store, proc, cap=cap) as rt:
            result = await rt.handle(h.id).wait()
            assert trio.current_time() == pytest.approx(4 * DAY)
    assert result == [True, durable_at(4 * DAY).isoformat()]
    assert len(runs) >= 2  # the second runtime rebuilt it by replay


async def test_earliest_recorded_event_wins(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[object]:
        await ctx.signal(Flow.go)
        r = await ctx.race(Flow.left, Flow.right, dur.delay.hours(1))
        rest = await ctx.race(Flow.left, Flow.right, dur.delay.hours(1))
        return [r.index, rest.index]

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            await suspended(h)
            assert await rt.emit(Flow.right, job="j1") == 1
            await trio.sleep(10)
            assert await rt.emit(Flow.left, job="j1") == 1
            await trio.sleep(2 * HOUR)  # past the race's delay, had it started then
            assert await rt.emit(Flow.go, job="j1") == 1
            # right was emitted first; left, still in the inbox, wins the second race
            assert await h.wait() == [1, 0]
            assert trio.current_time() == pytest.approx(2 * HOUR + 10)


async def test_earliest_recorded_event_wins_when_both_are_due_at_reopen(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[object]:
        r = await ctx.race(Flow.left, dur.delay.days(3))  # reached at 0: deadline day 3
        rest = "nothing kept"
        if r.timed_out:
            await ctx.signal(Flow.left)  # the later signal is still in the inbox
            rest = "left kept"
        return [r.timed_out, r.index, rest]

    store = dur.MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, proc, cap=cap) as rt:
            early = await rt.start(proc, job="early")
            late = await rt.start(proc, job="late")
            await suspended(early)
            await suspended(late)
        # no runtime: signals are emitted on the store itself
        await trio.sleep(2 * DAY)
        async with store:
            sent = await store.emit(
                NewSignal(Flow.left.path, {"job": "early"}), now=durable_seconds()
            )
            assert sent.reached == 1  # day 2: before the deadline
        await trio.sleep(2 * DAY)
        async with store:
            sent = await store.emit(
                NewSignal(Flow.left.path, {"job": "late"}), now=durable_seconds()
            )
            assert sent.reached == 1  # day 4: after the deadline
        await trio.sleep(DAY)
        async with open_rt(store, proc, cap=cap) as rt:  # day 5: both events are due
            assert await rt.handle(early.id).wait() == [False, 0, "nothing kept"]
            assert await rt.handle(late.id).wait() == [True, 1, "left kept"]
            assert trio.current_time() == pytest.approx(5 * DAY)


async def test_sleep_with_seconds_and_with_a_delay(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    woke: list[float] = []

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[str]:
        await ctx.sleep(dur.delay.minutes(5))
        a = ctx.now()
        woke.append(trio.current_time())
        await ctx.sleep(1.5)
        b = ctx.now()
        await ctx.sleep(dur.delay.seconds(30))
        c = ctx.now()
        await ctx.sleep(dur.delay.hours(1))
        return [a.isoformat(), b.isoformat(), c.isoformat(), ctx.now().isoformat()]

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            began = trio.current_time()
            h = await rt.start(proc, job="j1")
            result = await h.wait()
            assert trio.current_time() - began == pytest.approx(300 + 1.5 + 30 + HOUR)
    assert result == [
        durable_at(began + 300).isoformat(),
        durable_at(began + 301.5).isoformat(),
        durable_at(began + 331.5).isoformat(),
        durable_at(began + 331.5 + HOUR).isoformat(),
    ]
    assert woke[0] == pytest.approx(began + 300)


async def test_now_and_random_are_replay_safe(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    seen: dict[str, list[tuple[str, datetime, float, float]]] = {}

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[object]:
        log = seen.setdefault(job, [])
        log.append(("start", ctx.now(), ctx.random(), ctx.random()))
        await ctx.sleep(dur.delay.hours(2))
        log.append(("slept", ctx.now(), ctx.random(), ctx.random()))
        await ctx.signal(Flow.go)
        log.append(("signalled", ctx.now(), ctx.random(), ctx.random()))
        return [ctx.now().isoformat(), ctx.random()]

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap, idle_after=math.inf) as rt:
            await trio.sleep(DAY)
            h = await rt.start(proc, job="j1")
            other = await rt.start(proc, job="j2")
            await trio.sleep(3 * HOUR)
            await suspended(h)
            assert await rt.emit(Flow.go, job="j1") == 1
            assert await rt.emit(Flow.go, job="j2") == 1
            now, last_random = await h.wait()
            assert isinstance(last_random, float)
            await other.wait()
    log = seen["j1"]
    by_point: dict[str, set[tuple[datetime, float, float]]] = {}
    for point, at, ra, rb in log:
        by_point.setdefault(point, set()).add((at, ra, rb))
    # every run saw the same values at the same point
    assert {point: len(values) for point, values in by_point.items()} == {
        "start": 1,
        "slept": 1,
        "signalled": 1,
    }
    assert [entry[0] for entry in log].count("start") == (3 if cap == 0 else 1)
    ((start, r1, r2),) = by_point["start"]
    ((slept, r3, r4),) = by_point["slept"]
    ((signalled, r5, r6),) = by_point["signalled"]
    assert start == durable_at(DAY)  # the creation time before the first journal entry
    assert slept == durable_at(DAY + 2 * HOUR)
    assert signalled == durable_at(DAY + 3 * HOUR)
    assert now == signalled.isoformat()
    randoms = [r1, r2, r3, r4, r5, r6, last_random]
    assert all(0.0 <= r < 1.0 for r in randoms)
    assert len(set(randoms)) == len(randoms)
    # another id, another sequence
    other_start = next(entry for entry in seen["j2"] if entry[0] == "start")
    assert (other_start[2], other_start[3]) != (r1, r2)


async def test_ctx_emit_is_recorded_and_not_repeated_by_replay(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    emitted: list[int] = []

    @dur.process("/courier/:courier")
    async def courier(ctx: dur.Context, courier: str) -> str:
        order = ctx.input
        assert isinstance(order, str)
        await ctx.emit(OrderSignals.paid, order=order, data=Payment(f"tx-{courier}", 30))
        emitted.append(1)
        await ctx.signal(Courier.done)  # with cap 0 the wake replays the emit
        await ctx.emit(OrderSignals.delivered, order=order)
        return "handed over"

    @dur.process("/order/:order/receiver")
    async def receiver(ctx: dur.Context, order: str) -> list[object]:
        paid = await ctx.signal(OrderSignals.paid)
        await ctx.signal(OrderSignals.delivered)
        again = await ctx.race(OrderSignals.paid, OrderSignals.delivered, dur.delay.days(1))
        return [paid.data.tx_id, paid.data.amount, "twice" if not again.timed_out else "once"]

    with trio.fail_after(TIMEOUT):
        async with open_rt(
            dur.MemoryStore(), courier, receiver, cap=cap, idle_after=math.inf
        ) as rt:
            r = await rt.start(receiver, order="o1")
            await suspended(r)
            c = await rt.start(courier, input="o1", courier="c1")
            await suspended(c)
            assert len(emitted) >= 1
            await trio.sleep(HOUR)
            assert await rt.emit(Courier.done, courier="c1") == 1
            assert await c.wait() == "handed over"
            await trio.sleep(HOUR)
            assert await r.wait() == ["tx-c1", 30, "once"]
    assert len(emitted) == (2 if cap == 0 else 1)  # replayed, yet emitted once


# -- errors --------------------------------------------------------------------------------------


def _recoverable_proc(broken: dict[str, bool], calls: list[str]) -> dur.ProcessDef[str]:
    def prepare() -> str:
        calls.append("prepare")
        return "prepared"

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        prepared = await ctx.step(prepare)
        if broken["on"]:
            raise InventoryDown("warehouse offline")
        await ctx.signal(Flow.go)
        return f"{prepared} and done"

    return proc


async def test_recoverable_error_suspends_and_rt_retry_runs_it_again(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    broken, calls = {"on": True}, list[str]()
    proc = _recoverable_proc(broken, calls)
    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            await trio.sleep(HOUR)
            h = await rt.start(proc, job="j1")
            state = await suspended(h)
            assert state.last_error == "InventoryDown: warehouse offline"
            assert state.last_error_at == durable_at(HOUR)
            assert state.error is None
            await trio.sleep(HOUR)
            await rt.retry(h.id)  # still broken: suspended again, the error time moves
            state = await suspended(h)
            assert state.last_error == "InventoryDown: warehouse offline"
            assert state.last_error_at == durable_at(2 * HOUR)
            broken["on"] = False
            await rt.retry(h.id)
            state = await suspended(h)
            assert state.last_error is None  # cleared once it ran on past that point
            assert state.waiting_on is not None
            assert await rt.emit(Flow.go, job="j1") == 1
            assert await h.wait() == "prepared and done"
    assert calls == ["prepare"]


async def test_recoverable_error_is_retried_by_a_signal_that_reaches_it(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    broken, calls = {"on": True}, list[str]()
    proc = _recoverable_proc(broken, calls)
    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            state = await suspended(h)
            assert state.last_error == "InventoryDown: warehouse offline"
            await trio.sleep(DAY)
            assert (await h.state()).status == dur.Status.SUSPENDED  # no retry on a timer
            broken["on"] = False
            assert await rt.emit(Flow.go, job="j1") == 1
            assert await h.wait() == "prepared and done"
            assert (await h.state()).last_error is None
    assert calls == ["prepare"]


async def test_recoverable_error_is_retried_when_a_runtime_reopens_the_store(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    broken, calls = {"on": True}, list[str]()
    proc = _recoverable_proc(broken, calls)
    store = dur.MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            state = await suspended(h)
            assert state.last_error == "InventoryDown: warehouse offline"
        broken["on"] = False
        async with open_rt(store, proc, cap=cap) as rt:
            again = rt.handle(h.id)
            state = await suspended(again)
            assert state.last_error is None
            assert await rt.emit(Flow.go, job="j1") == 1
            assert await again.wait() == "prepared and done"
    assert calls == ["prepare"]


async def test_other_exceptions_fail_the_process_and_rt_retry_runs_it_again(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    broken = {"on": True}

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        await ctx.sleep(HOUR)
        if broken["on"]:
            raise ValueError("boom")
        return "done"

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            with pytest.raises(dur.ProcessFailed) as failed:
                await h.wait()
            assert "ValueError: boom" in str(failed.value)
            assert isinstance(failed.value, dur.DurableError)
            assert h.status == dur.Status.FAILED
            state = await h.state()
            assert state.status == dur.Status.FAILED
            assert state.error is not None
            assert "ValueError: boom" in state.error
            assert state.result is None
            with pytest.raises(dur.ProcessFailed, match="ValueError: boom"):
                await rt.handle(h.id).wait()
            assert await rt.emit(Flow.go, job="j1") == 0  # finished: nothing reaches it
            broken["on"] = False
            await rt.retry(h.id)
            assert await h.wait() == "done"
            state = await h.state()
            assert state.status == dur.Status.COMPLETED
            assert state.result == "done"


async def test_nondeterminism_after_a_handler_change_suspends_then_fixed_code_completes(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    store = dur.MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, picking, cap=cap) as rt:
            h = await rt.start(picking, order="o1")
            await suspended(h)
        assert RESERVED == ["o1"]
        DEPLOY["reserve_step"] = "reserve_v2"  # a deploy renames the recorded step
        async with open_rt(store, picking, cap=cap) as rt:
            assert await rt.emit(OrderSignals.delivered, order="o1") == 1
            h = rt.handle(h.id)
            state = await suspended(h)
            assert state.last_error is not None
            assert "NondeterminismError" in state.last_error
            assert state.last_error_at is not None
            await rt.retry(h.id)  # the same code: the same error, the process waits
            state = await suspended(h)
            assert state.last_error is not None
            assert "NondeterminismError" in state.last_error
            DEPLOY["reserve_step"] = "reserve"  # the fix: old processes keep the old name
            await rt.retry(h.id)
            assert await h.wait() == "reserved-o1"
            assert (await h.state()).last_error is None
    assert RESERVED == ["o1"]
    assert issubclass(dur.NondeterminismError, dur.RecoverableError)


async def test_nondeterminism_when_a_deploy_inserts_a_wait_before_a_recorded_step(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    version = {"v": 1}
    calls: list[str] = []

    def bill(job: str) -> str:
        calls.append(job)
        return f"billed {job}"

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        if version["v"] == 2:
            await ctx.signal(Flow.left)  # new code waits first: the journal has a step there
        billed = await ctx.step(bill, job)
        await ctx.signal(Flow.go)
        return billed

    store = dur.MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            await suspended(h)
        version["v"] = 2
        async with open_rt(store, proc, cap=cap) as rt:
            assert await rt.emit(Flow.go, job="j1") == 1
            h = rt.handle(h.id)
            state = await suspended(h)
            assert state.last_error is not None
            assert "NondeterminismError" in state.last_error
            # the process waits, it is not lost: back to the old code, a retry completes it
            version["v"] = 1
            await rt.retry(h.id)
            assert await h.wait() == "billed j1"
    assert calls == ["j1"]


# -- cancel, not found, query, statistics, events ----------------------------------------------


async def test_cancel_a_waiting_process(autojump_clock: trio.testing.MockClock, cap: int) -> None:
    after: list[str] = []

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        await ctx.signal(Flow.go)
        after.append("ran on")
        return "done"

    with trio.fail_after(TIMEOUT):
        async with open_rt(store := dur.MemoryStore(), proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            await suspended(h)
            assert await rt.emit(Flow.note, job="j1", data=Note("kept")) == 1
            loaded = await store.load(h.id)
            assert loaded is not None
            assert len(loaded.inbox) == 1
            await h.cancel()
            assert h.status == dur.Status.CANCELLED
            loaded = await store.load(h.id)
            assert loaded is not None
            assert (loaded.inbox, loaded.waits, loaded.timers) == ((), (), ())  # rows gone
            state = await h.state()
            assert state.status == dur.Status.CANCELLED
            assert state.waiting_on is None
            with pytest.raises(dur.ProcessCancelled):
                await h.wait()
            with pytest.raises(dur.ProcessCancelled):
                await rt.handle(h.id).wait()
            assert await rt.emit(Flow.go, job="j1") == 0
            await trio.sleep(DAY)
            assert (await h.state()).status == dur.Status.CANCELLED
    assert after == []
    assert issubclass(dur.ProcessCancelled, dur.DurableError)


async def test_cancel_a_process_in_a_step(autojump_clock: trio.testing.MockClock, cap: int) -> None:
    finished: list[float] = []

    async def slow() -> None:
        await trio.sleep(DAY)
        finished.append(trio.current_time())

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        await ctx.step(slow)
        return "done"

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            await trio.sleep(HOUR)
            assert (await h.state()).status == dur.Status.RUNNING
            await h.cancel()
            with pytest.raises(dur.ProcessCancelled):
                await h.wait()
            assert trio.current_time() < DAY
            await trio.sleep(2 * DAY)
            assert (await h.state()).status == dur.Status.CANCELLED
    assert finished == []


async def test_unknown_process_id(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), fulfillment, cap=10) as rt:
            h = rt.handle("nope")
            assert h.id == "nope"
            with pytest.raises(dur.ProcessNotFound):
                await h.state()
            with pytest.raises(dur.ProcessNotFound):
                await h.wait()
            with pytest.raises(dur.ProcessNotFound):
                await h.cancel()
            with pytest.raises(dur.ProcessNotFound):
                await rt.retry("order/nope/fulfillment")
    assert issubclass(dur.ProcessNotFound, dur.DurableError)


async def test_query_and_statistics(autojump_clock: trio.testing.MockClock, cap: int) -> None:
    @dur.process("/job/:job")
    async def waiter(ctx: dur.Context, job: str) -> str:
        await ctx.signal(Flow.go)
        return job

    def compute(job: str) -> str:
        return f"quick {job}"

    @dur.process("/quick/:job")
    async def quick(ctx: dur.Context, job: str) -> str:
        return await ctx.step(compute, job)

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), waiter, quick, cap=cap, idle_after=math.inf) as rt:
            before = rt.statistics()
            assert isinstance(before, dur.RuntimeStatistics)
            assert (before.started, before.finished, before.running) == (0, 0, 0)
            a = await rt.start(waiter, job="j1")
            b = await rt.start(waiter, job="j2")
            q = await rt.start(quick, job="q1")
            assert await q.wait() == "quick q1"
            await suspended(a)
            await suspended(b)
            assert await ids(rt.query(status=dur.Status.SUSPENDED)) == ["job/j1", "job/j2"]
            assert await ids(rt.query(status=dur.Status.COMPLETED)) == ["quick/q1"]
            assert await ids(rt.query(path=waiter.path)) == ["job/j1", "job/j2"]
            assert await ids(rt.query()) == ["job/j1", "job/j2", "quick/q1"]
            states = [s async for s in rt.query(status=dur.Status.SUSPENDED)]
            assert all(s.waiting_on is not None for s in states)
            assert all(s.params == {"job": s.id.split("/")[1]} for s in states)

            mid = rt.statistics()
            assert (mid.started, mid.finished, mid.running) == (3, 1, 0)
            assert mid.suspended == (0 if cap == 0 else 2)
            if cap == 0:
                assert mid.resident == 0
            assert mid.commits > before.commits
            assert mid.store.operations > before.store.operations
            assert mid.store.transactions > before.store.transactions

            assert await rt.emit(Flow.go, job="j1") == 1
            assert await rt.emit(Flow.go, job="j2") == 1
            assert [await a.wait(), await b.wait()] == ["j1", "j2"]
            await settle()
            after = rt.statistics()
            assert (after.started, after.finished, after.running, after.suspended) == (3, 3, 0, 0)
            assert after.commits > mid.commits
            if cap == 0:
                assert after.activations >= mid.activations + 2  # each wake rebuilt one
            else:
                assert after.activations == mid.activations
            assert await ids(rt.query(status=dur.Status.SUSPENDED)) == []
            assert await ids(rt.query(status=dur.Status.COMPLETED)) == [
                "job/j1",
                "job/j2",
                "quick/q1",
            ]


async def test_process_events(autojump_clock: trio.testing.MockClock, cap: int) -> None:
    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        await ctx.signal(Flow.go)
        if job == "bad":
            raise ValueError("boom")
        return job

    events = Events()
    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap, on_event=events) as rt:
            ok = await rt.start(proc, job="ok")
            bad = await rt.start(proc, job="bad")
            await suspended(ok)
            await suspended(bad)
            assert await rt.emit(Flow.go, job="ok") == 1
            assert await rt.emit(Flow.go, job="bad") == 1
            assert await ok.wait() == "ok"
            with pytest.raises(dur.ProcessFailed):
                await bad.wait()
    ok_statuses = events.statuses(ok.id)
    assert "suspended" in ok_statuses
    assert ok_statuses[-1] == "completed"
    bad_statuses = events.statuses(bad.id)
    assert "suspended" in bad_statuses
    assert bad_statuses[-1] == "failed"
    assert all(e.path == proc.path for e in events.events)


# -- recovery ------------------------------------------------------------------------------------


async def test_a_reopened_runtime_resumes_waiting_processes(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    runs: list[str] = []

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[object]:
        runs.append(job)
        if job == "signal":
            got = await ctx.signal(Flow.note)
            return [got.data.text, ctx.now().isoformat()]
        if job == "sleep":
            await ctx.sleep(dur.delay.days(1))
            return ["slept", ctx.now().isoformat()]
        r = await ctx.race(Flow.note, dur.delay.days(3))
        return ["raced", r.timed_out, ctx.now().isoformat()]

    store = dur.MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, proc, cap=cap) as rt:
            handles = [await rt.start(proc, job=job) for job in ("signal", "sleep", "race")]
            for h in handles:
                await suspended(h)
        await trio.sleep(HOUR)  # closed for an hour
        async with open_rt(store, proc, cap=cap) as rt:
            assert await rt.emit(Flow.note, job="signal", data=Note("after reopen")) == 1
            signal, sleep, race = (rt.handle(h.id) for h in handles)
            assert await signal.wait() == ["after reopen", durable_at(HOUR).isoformat()]
            assert await sleep.wait() == ["slept", durable_at(DAY).isoformat()]
            assert trio.current_time() == pytest.approx(DAY)
            assert await race.wait() == ["raced", True, durable_at(3 * DAY).isoformat()]
            assert trio.current_time() == pytest.approx(3 * DAY)
    assert sorted(set(runs)) == ["race", "signal", "sleep"]


async def test_timers_due_while_closed_fire_at_reopen(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    store = dur.MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, fulfillment, cap=cap) as rt:
            h = await rt.start(fulfillment, order="o1")
            await suspended(h)
        await trio.sleep(10 * DAY)  # the 3-day deadline passes while no runtime runs
        async with open_rt(store, fulfillment, cap=cap) as rt:
            assert await rt.handle(h.id).wait() == {"status": "payment_timeout", "order": "o1"}
            assert trio.current_time() == pytest.approx(10 * DAY)
    assert CHARGED == []


async def test_a_runtime_closed_mid_step_reruns_the_step_at_reopen(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    calls = {"prepare": 0, "ship": 0}

    def prepare() -> str:
        calls["prepare"] += 1
        return "prepared"

    async def ship() -> str:
        calls["ship"] += 1
        if calls["ship"] == 1:
            await trio.sleep_forever()  # the first attempt is in flight when the runtime closes
        return f"shipped on call {calls['ship']}"

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> list[str]:
        a = await ctx.step(prepare)
        b = await ctx.step(ship)
        return [a, b]

    store = dur.MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            await settle()
            assert calls == {"prepare": 1, "ship": 1}
            assert (await h.state()).status == dur.Status.RUNNING
            assert rt.statistics().running == 1
        async with open_rt(store, proc, cap=cap) as rt:
            assert await rt.handle(h.id).wait() == ["prepared", "shipped on call 2"]
    assert calls == {"prepare": 1, "ship": 2}  # at least once; recorded steps once


# -- the seed scenarios of the issue -------------------------------------------------------------


async def test_seed_order_fulfilment_paid_then_delivered(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    app = dur.App(processes=[fulfillment], signals=[OrderSignals])
    with trio.fail_after(TIMEOUT):
        async with dur.open_runtime("memory://", app=app, start_time=START, max_resident=cap) as rt:
            h = await rt.start(fulfillment, order="order-123")
            assert h.id == "order/order-123/fulfillment"
            assert (await rt.start(fulfillment, order="order-123")).id == h.id  # idempotent
            await trio.sleep(DAY)
            paid = Payment("tx-1", 100)
            assert await rt.emit(OrderSignals.paid, order="order-123", data=paid) == 1
            state = await suspended(h)  # charged, now waiting for delivery
            assert CHARGED == [("order-123", 100)]
            assert state.waiting_on is not None
            assert await rt.emit(OrderSignals.delivered, order="order-123") == 1
            result = await h.wait()
            assert result["status"] == "delivered"
            assert result == {"status": "delivered", "order": "order-123", "paid": 100}
            assert trio.current_time() == pytest.approx(DAY)
    assert CHARGED == [("order-123", 100)]


async def test_seed_order_fulfilment_payment_timeout(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    app = dur.App(processes=[fulfillment], signals=[OrderSignals])
    with trio.fail_after(TIMEOUT):
        async with dur.open_runtime("memory://", app=app, start_time=START, max_resident=cap) as rt:
            h = await rt.start(fulfillment, order="order-123")
            assert await h.wait() == {"status": "payment_timeout", "order": "order-123"}
            assert trio.current_time() == pytest.approx(3 * DAY)
            paid = Payment("tx-late", 100)
            assert await rt.emit(OrderSignals.paid, order="order-123", data=paid) == 0
            state = await h.state()
            assert state.status == dur.Status.COMPLETED
            assert state.updated_at == START + timedelta(days=3)
    assert CHARGED == []


async def test_seed_signal_sent_before_the_wait(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    @dur.process("/order/:order/packing")
    async def packing(ctx: dur.Context, order: str) -> dict[str, object]:
        await ctx.sleep(dur.delay.hours(2))  # busy packing: not waiting for payment yet
        got = await ctx.signal(OrderSignals.paid)
        return {"order": order, "paid": got.data.amount, "at": ctx.now().isoformat()}

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), packing, cap=cap) as rt:
            h = await rt.start(packing, order="o1")
            await trio.sleep(HOUR)
            assert await rt.emit(OrderSignals.paid, order="o1", data=Payment("tx", 12)) == 1
            result = await h.wait()
            assert trio.current_time() == pytest.approx(2 * HOUR)
    assert result["paid"] == 12
    assert result["at"] == durable_at(2 * HOUR).isoformat()


async def test_seed_routing_on_two_params(autojump_clock: trio.testing.MockClock, cap: int) -> None:
    @dur.process("/shipment/:order/:warehouse")
    async def shipment(ctx: dur.Context, order: str, warehouse: str) -> str:
        r = await ctx.race(Ship.dispatch, Ship.warehouse_closed, dur.delay.days(1))
        if r.timed_out:
            return "waited a day"
        return "dispatched" if r.arm is Ship.dispatch else "rerouted"

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), shipment, cap=cap) as rt:
            hs = {
                (o, w): await rt.start(shipment, order=o, warehouse=w)
                for o in ("o1", "o2")
                for w in ("w1", "w2")
            }
            await settle()
            assert await rt.emit(Ship.dispatch, order="o1", warehouse="w2") == 1
            assert await rt.emit(Ship.warehouse_closed, warehouse="w1") == 2
            results = {key: await h.wait() for key, h in hs.items()}
    assert results == {
        ("o1", "w1"): "rerouted",
        ("o1", "w2"): "dispatched",
        ("o2", "w1"): "rerouted",
        ("o2", "w2"): "waited a day",
    }


async def test_seed_recoverable_error_fixed_by_a_retry(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    config = {"api_key": ""}
    calls: list[str] = []

    def call_carrier(order: str) -> str:
        calls.append(order)
        if not config["api_key"]:
            raise InventoryDown("carrier API key missing")
        return f"label-{order}"

    @dur.process("/order/:order/label")
    async def label(ctx: dur.Context, order: str) -> str:
        return await ctx.step(call_carrier, order)

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), label, cap=cap) as rt:
            h = await rt.start(label, order="o1")
            state = await suspended(h)
            assert state.last_error == "InventoryDown: carrier API key missing"
            assert state.last_error_at == START
            assert await ids(rt.query(status=dur.Status.SUSPENDED)) == [h.id]
            config["api_key"] = "k"  # the operator fixes the configuration
            await rt.retry(h.id)
            assert await h.wait() == "label-o1"
            assert (await h.state()).last_error is None
    assert calls == ["o1", "o1"]


async def test_seed_deploy_that_changes_a_handler(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    store = dur.MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, picking, cap=cap) as rt:
            old = await rt.start(picking, order="old")
            await suspended(old)
        DEPLOY["reserve_step"] = "reserve_v2"  # the deploy
        async with open_rt(store, picking, cap=cap) as rt:
            new = await rt.start(picking, order="new")  # new processes run the new code
            await suspended(new)
            assert await rt.emit(OrderSignals.delivered, order="new") == 1
            assert await new.wait() == "reserved-new"
            assert await rt.emit(OrderSignals.delivered, order="old") == 1
            old = rt.handle(old.id)
            state = await suspended(old)
            assert state.last_error is not None
            assert "NondeterminismError" in state.last_error
            assert "reserve" in state.last_error
        DEPLOY["reserve_step"] = "reserve"  # the fixed deploy: reopening the store re-runs it
        async with open_rt(store, picking, cap=cap) as rt:
            old = rt.handle(old.id)
            assert await old.wait() == "reserved-old"
            assert (await old.state()).last_error is None
    assert sorted(RESERVED) == ["new", "old"]


async def test_a_runtime_that_only_emits_leaves_the_processes_to_the_one_that_runs_them(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        await ctx.signal(Flow.go)
        return "went"

    store = dur.MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, proc, cap=cap) as worker:
            h = await worker.start(proc, job="j1")
            await suspended(h)
            # a front end: no definitions, so it claims nothing (memory leases never expire)
            async with open_rt(store, cap=cap) as emitter:
                assert await emitter.emit(Flow.go, job="j1") == 1
                assert await h.wait() == "went"
                assert emitter.statistics().activations == 0


async def test_retry_of_a_process_failed_at_a_step_calls_the_step_again(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    calls: list[bool] = []
    down = {"on": True}

    def archive() -> str:
        calls.append(down["on"])
        if down["on"]:
            raise ConnectionError("archive down")
        return "archived"

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        result = await ctx.step(
            archive, name="archive", retry=dur.Retry(max_attempts=2, initial=1.0)
        )
        await ctx.signal(Flow.go)  # a wake after the retry: with cap 0, a replay
        return result

    store = dur.MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            with pytest.raises(dur.ProcessFailed, match="ConnectionError: archive down"):
                await h.wait()
            assert calls == [True, True]
            down["on"] = False
            await rt.retry(h.id)
            await suspended(h)
            assert calls == [True, True, False]  # the step ran again, once
            assert await rt.emit(Flow.go, job="j1") == 1
            assert await h.wait() == "archived"
        async with open_rt(store, proc, cap=cap) as rt:  # a fresh replay uses the new outcome
            loaded = await store.load(h.id)
            assert loaded is not None
            kinds = [(e.kind, e.name) for e in loaded.journal]
            assert kinds == [
                ("step", "archive"), ("retry", "retry"), ("retried", "archive"),
                ("signal", Flow.go.path),
            ]  # fmt: skip
    assert calls == [True, True, False]


async def test_running_is_announced_after_every_suspension(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    events: list[str] = []

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        await ctx.signal(Flow.go)
        await ctx.sleep(HOUR)
        return "done"

    def on_event(event: object) -> None:
        if isinstance(event, dur.ProcessEvent):
            events.append(event.status)

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap, on_event=on_event) as rt:
            h = await rt.start(proc, job="j1")
            await suspended(h)
            assert await rt.emit(Flow.go, job="j1") == 1
            assert await h.wait() == "done"
    assert events == [
        "started", "suspended", "running", "suspended", "running", "completed"
    ]  # fmt: skip


def test_attrs_classes_of_a_definitions_module_are_known_to_the_codec() -> None:
    import sys
    import types

    from actorkit_durable._records import REGISTRY

    module = types.ModuleType("tests_generated_shipping")
    source = (
        "import attrs\n"
        "import actorkit_durable as dur\n"
        "@dur.process('/parcel/:parcel')\n"
        "async def parcel(ctx, parcel):\n"
        "    return Label(parcel)\n"
        "@attrs.frozen\n"
        "class Label:\n"
        "    code: str\n"
    )
    sys.modules[module.__name__] = module
    try:
        exec(compile(source, "<generated>", "exec"), module.__dict__)
        label = module.__dict__["Label"]
        assert "tests_generated_shipping:Label" not in REGISTRY.by_name  # not encoded yet

        async def main() -> None:
            async with dur.open_runtime("memory://", processes=[module.__dict__["parcel"]]):
                pass

        trio.run(main)
        assert REGISTRY.by_name["tests_generated_shipping:Label"] is label
    finally:
        del sys.modules[module.__name__]


class ClaimRecordingStore(dur.MemoryStore):
    """A memory store that records which processes ``claim`` hands out."""

    def __init__(self) -> None:
        super().__init__()
        self.claimed: list[str] = []

    async def claim(self, owner: str, **options: Any) -> Any:
        batch = await super().claim(owner, **options)
        self.claimed += [loaded.process.id for loaded in batch.claimed]
        return batch


async def test_an_emit_takes_a_process_waiting_in_memory_without_a_claim(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        received = await ctx.signal(Flow.note)
        return received.data.text

    store = ClaimRecordingStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            other = await rt.start(proc, job="j2")
            await suspended(h)
            assert await rt.emit(Flow.note, job="j1", data=Note("hi")) == 1
            assert await h.wait() == "hi"
            # resident: the emit itself claimed it; with cap 0 the due loop had to
            assert store.claimed == ([] if cap else ["job/j1"])
            assert (await other.state()).status is dur.Status.SUSPENDED


async def test_retry_of_a_process_that_caught_a_step_failure_replays_it(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    """A step failure the handler caught is history: a retry after a later failure of the
    handler's own code does not run that step again."""
    calls: list[str] = []
    broken = {"on": True}

    def flaky() -> None:
        calls.append("flaky")
        raise ConnectionError("down")

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        with contextlib.suppress(ConnectionError):
            await ctx.step(flaky, name="flaky", retry=dur.Retry(max_attempts=1))
        if broken["on"]:
            raise ValueError("bug")
        return "fixed"

    store = dur.MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, proc, cap=cap) as rt:
            h = await rt.start(proc, job="j1")
            with pytest.raises(dur.ProcessFailed, match="ValueError: bug"):
                await h.wait()
            broken["on"] = False
            await rt.retry(h.id)
            assert await h.wait() == "fixed"
    assert calls == ["flaky"]


async def test_a_process_failed_in_another_runtime_is_retried_by_one_that_can_run_it(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    down = {"on": True}

    def archive() -> str:
        if down["on"]:
            raise ConnectionError("archive down")
        return "archived"

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        return await ctx.step(archive, name="archive", retry=dur.Retry(max_attempts=1))

    store = dur.MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, proc, cap=cap) as worker:
            h = await worker.start(proc, job="j1")
            with pytest.raises(dur.ProcessFailed):
                await h.wait()
            down["on"] = False
            async with open_rt(store, cap=cap) as admin:  # no definitions, like the CLI
                await admin.retry(h.id)
            assert await h.wait() == "archived"


async def test_a_step_that_returns_while_the_runtime_closes_is_not_run_again(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    ran: list[str] = []
    started = trio.Event()

    async def charge() -> str:
        ran.append("charge")
        started.set()
        with trio.CancelScope(shield=True):  # an effect that completes once begun
            await trio.sleep(0.5)
        return "receipt"

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        receipt = await ctx.step(charge, name="charge")
        await ctx.signal(Flow.go)
        return receipt

    store = dur.MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, proc, cap=cap) as rt:
            await rt.start(proc, job="j1")
            await started.wait()
        # the block was left while charge ran: its result is written on the way out
        async with store:
            loaded = await store.load("job/j1")
        assert loaded is not None
        assert [(e.kind, e.name) for e in loaded.journal] == [("step", "charge")]
        async with open_rt(store, proc, cap=cap) as rt:
            h = rt.handle("job/j1")
            await suspended(h)
            assert await rt.emit(Flow.go, job="j1") == 1
            assert await h.wait() == "receipt"
    assert ran == ["charge"]


async def test_events_after_a_retry_of_a_recoverable_error(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    class Down(dur.RecoverableError):
        pass

    down = {"on": True}
    events: list[tuple[str, str | None]] = []

    def flaky() -> int:
        if down["on"]:
            raise Down("service down")
        return 1

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> None:
        await ctx.step(flaky, name="flaky")
        await ctx.signal(Flow.go)

    def on_event(event: object) -> None:
        if isinstance(event, dur.ProcessEvent):
            events.append((event.status, event.detail))

    with trio.fail_after(TIMEOUT):
        async with open_rt(dur.MemoryStore(), proc, cap=cap, on_event=on_event) as rt:
            h = await rt.start(proc, job="j1")
            await suspended(h)
            down["on"] = False
            await rt.retry(h.id)
            state = await suspended(h)
            assert state.waiting_on == f"signal {Flow.go.path}"
    assert events == [
        ("started", None),
        ("suspended", "Down: service down"),
        ("running", None),
        ("suspended", f"signal {Flow.go.path}"),
    ]


async def test_cancel_from_another_runtime_interrupts_a_step_that_never_returns(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    in_step = trio.Event()

    async def stuck() -> None:
        in_step.set()
        await trio.sleep_forever()

    @dur.process("/job/:job")
    async def proc(ctx: dur.Context, job: str) -> str:
        await ctx.step(stuck, name="stuck")
        return "never"

    store = dur.MemoryStore()
    with trio.fail_after(TIMEOUT):
        async with open_rt(store, proc, cap=cap) as worker:
            h = await worker.start(proc, job="j1")
            await in_step.wait()
            # another program (no definitions, like the CLI) cannot claim it: it marks it
            async with open_rt(store, cap=cap) as admin:
                await admin.handle(h.id).cancel()
            with pytest.raises(dur.ProcessCancelled):
                await h.wait()
            state = await h.state()
            assert state.status is dur.Status.CANCELLED
            assert worker.statistics().running == 0


async def test_open_runtime_rejects_definitions_that_share_a_path() -> None:
    @dur.process("/job/:job")
    async def one(ctx: dur.Context, job: str) -> None:
        return None

    @dur.process("/job/:job")
    async def other(ctx: dur.Context, job: str) -> None:
        return None

    actor: dur.PersistentActor[int, object] = dur.persistent_actor(
        "/job/:job", init=lambda params: 0, handle=lambda s, m, t: s
    )
    with pytest.raises(ValueError, match="share the path '/job/:job'"):
        async with dur.open_runtime("memory://", processes=[one, other]):
            pass
    with pytest.raises(ValueError, match="both a persistent actor and a process"):
        async with dur.open_runtime("memory://", processes=[one], actors=[actor]):
            pass
    with pytest.raises(TypeError, match="is not a durable process"):
        async with dur.open_runtime("memory://", processes=[actor]):  # type: ignore[list-item]
            pass

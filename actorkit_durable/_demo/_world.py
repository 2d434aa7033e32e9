"""The simulated world around the orders, and the board that follows them.

The plan (drawn from the demo's seed) says what happens to each order: when it is placed, when
its customer pays (or that they never do), whether the card gateway is down when it is
charged, when its courier ships it. ``SimulatedShop`` is what the steps call; ``World`` plays
the customers, couriers and an operator; ``Board`` knows where every order is, from the
runtime's process events. Times are demo seconds (``Clock``), divided by the speed factor.
"""

from __future__ import annotations

import enum
import math
import os
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import attrs
import trio

import actorkit_durable as dur

from ._shop import (
    FULFILLMENT,
    GatewayDown,
    OrderInput,
    OrderSignals,
    Outcome,
    Payment,
    Shipment,
    fulfillment,
)

# Timings in seconds at speed 1.
ARRIVALS = 8.0
"""Orders are placed over this many seconds."""
PAYMENT_TIMEOUT = 5.0
PAY_AFTER = (0.5, 4.0)
NEVER_PAY = 0.15
"""The share of customers who never pay: their orders time out."""
GATEWAY_DOWN = 0.25
"""The share of paid orders whose card gateway is down for a while when they are charged."""
OUTAGE = (0.5, 3.0)
RETRY_AFTER = 1.5
"""The operator retries an order suspended by a card error this long after it failed."""
SHIP_AFTER = (1.0, 3.0)
RESERVE_TIME = (0.1, 0.3)
CHARGE_TIME = (0.2, 0.6)
CARRIERS = ("DHL", "UPS", "GLS", "DPD")


@attrs.frozen
class OrderPlan:
    """One order's part in the simulation; times are demo seconds at speed 1."""

    order: str
    arrive_at: float
    amount: int
    items: int
    pay_at: float | None  # None: the customer never pays
    gateway_down_until: float | None
    ship_after: float
    tracking: str


def make_plan(orders: int, seed: int) -> list[OrderPlan]:
    rng = random.Random(seed)
    arrivals = [0.0, *sorted(rng.uniform(0.0, ARRIVALS) for _ in range(orders - 1))]
    plan = []
    for index, arrive_at in enumerate(arrivals):
        pay_at = None if rng.random() < NEVER_PAY else arrive_at + rng.uniform(*PAY_AFTER)
        down_until = None
        if pay_at is not None and rng.random() < GATEWAY_DOWN:
            down_until = pay_at + rng.uniform(*OUTAGE)
        plan.append(
            OrderPlan(
                order=str(1001 + index),
                arrive_at=arrive_at,
                amount=rng.randrange(15, 250),
                items=rng.randint(1, 5),
                pay_at=pay_at,
                gateway_down_until=down_until,
                ship_after=rng.uniform(*SHIP_AFTER),
                tracking=f"{rng.choice(CARRIERS)}-{rng.randrange(10**6):06d}",
            )
        )
    return plan


class Clock:
    """Demo seconds: those of the earlier runs plus the trio time since this run began."""

    def __init__(self, elapsed: float) -> None:
        self.before = elapsed
        self.began = trio.current_time()

    def now(self) -> float:
        return self.before + self.run_time()

    def run_time(self) -> float:
        return trio.current_time() - self.began

    async def sleep_until(self, at: float) -> None:
        await trio.sleep(max(0.0, at - self.now()))


# -- the board ----------------------------------------------------------------------------------


class Phase(enum.Enum):
    PLACED = "placed, reserving stock"
    AWAITING_PAYMENT = "waiting for payment"
    CHARGING = "charging the card"
    CARD_ERROR = "card error, suspended"
    AWAITING_SHIPPING = "waiting for shipping"
    DELIVERED = "delivered"
    TIMED_OUT = "payment timed out"
    FAILED = "failed"


FINISHED = frozenset({Phase.DELIVERED, Phase.TIMED_OUT, Phase.FAILED})


@attrs.frozen
class Update:
    order: str
    phase: Phase | None  # None: completed; the board reads which way from the result
    note: str | None = None  # a line for the log


class Board:
    """Where every order is, fed in order by the runtime's process events and by the steps."""

    def __init__(self, plan: Sequence[OrderPlan], log: Callable[[str], None]) -> None:
        self.plan = {p.order: p for p in plan}
        self.phases: dict[str, Phase] = {}
        self.log = log
        self.on_phase: Callable[[str, Phase], None] = lambda order, phase: None
        self._send, self._receive = trio.open_memory_channel[Update](math.inf)
        self.done = trio.Event()
        self.card_errors = 0

    def report(self, order: str, phase: Phase | None, note: str | None = None) -> None:
        self._send.send_nowait(Update(order, phase, note))

    def on_event(self, event: object) -> None:
        """For ``open_runtime(on_event=)``, which calls it synchronously at every transition."""
        if not isinstance(event, dur.ProcessEvent) or event.path != FULFILLMENT:
            return
        order = event.process_id.split("/")[1]
        detail = event.detail or ""
        if event.status == "started":
            self.report(order, Phase.PLACED, "placed")
        elif event.status == "completed":
            self.report(order, None)
        elif event.status in ("failed", "cancelled"):
            self.report(order, Phase.FAILED, f"{event.status}: {detail}")
        elif event.status == "suspended" and detail != "retried":
            phase = _waiting_phase(detail)
            if phase is None:
                self.card_errors += 1
                self.report(order, Phase.CARD_ERROR, f"suspended by {detail}")
            else:
                self.report(order, phase)

    async def load(self, rt: dur.Runtime) -> None:
        """Where the orders in the store are now (a run before this one left them there)."""
        async for state in rt.query(path=FULFILLMENT):
            self.phases[state.params["order"]] = _stored_phase(state)
        self._check_done()

    async def follow(self, rt: dur.Runtime) -> None:
        async for update in self._receive:
            if update.phase is None:
                state = await rt.handle(f"order/{update.order}/fulfillment").state()
                outcome: Outcome = state.result
                note = "payment timed out, stock released"
                if outcome.status == "delivered":
                    note = f"delivered ({outcome.tracking})"
                update = Update(update.order, _stored_phase(state), note)
            assert update.phase is not None
            if self.phases.get(update.order) in (update.phase, *FINISHED):
                continue
            self.phases[update.order] = update.phase
            if update.note is not None:
                self.log(f"order {update.order}  {update.note}")
            self.on_phase(update.order, update.phase)
            self._check_done()

    def counts(self) -> Counter[Phase]:
        return Counter(self.phases.values())

    def finished(self) -> int:
        return sum(phase in FINISHED for phase in self.phases.values())

    def in_progress(self) -> int:
        return len(self.phases) - self.finished()

    def _check_done(self) -> None:
        if self.finished() == len(self.plan):
            self.done.set()


def _waiting_phase(waiting_on: str) -> Phase | None:
    """The phase of an order that waits on ``waiting_on`` (None: a recoverable error)."""
    if OrderSignals.paid.path in waiting_on:
        return Phase.AWAITING_PAYMENT
    if OrderSignals.shipped.path in waiting_on:
        return Phase.AWAITING_SHIPPING
    return None


def _stored_phase(state: dur.ProcessState) -> Phase:
    if state.status is dur.Status.COMPLETED:
        outcome: Outcome = state.result
        return Phase.DELIVERED if outcome.status == "delivered" else Phase.TIMED_OUT
    if state.status in (dur.Status.FAILED, dur.Status.CANCELLED):
        return Phase.FAILED
    if state.status is dur.Status.SUSPENDED:
        if state.last_error is not None:
            return Phase.CARD_ERROR
        return _waiting_phase(state.waiting_on or "") or Phase.PLACED
    return Phase.PLACED  # running: it reports what it does next


# -- the shop's systems, which the steps call ---------------------------------------------------


class SimulatedShop:
    """The warehouse and the card gateway. Each successful charge may append a line to
    ``charges_log`` (fsynced): a record of the effects, to check that none happened twice."""

    def __init__(
        self, plan: Sequence[OrderPlan], *, seed: int, speed: float, clock: Clock, board: Board,
        charges_log: str | None,
    ) -> None:  # fmt: skip
        self.plan = {p.order: p for p in plan}
        self.seed = seed
        self.speed = speed
        self.clock = clock
        self.board = board
        self.charges_log = charges_log
        self.calls: Counter[str] = Counter()
        self.charged = 0
        self.limiter = trio.CapacityLimiter(1)

    async def _work(self, what: str, span: tuple[float, float]) -> None:
        self.calls[what] += 1
        rng = random.Random(f"{self.seed}/{what}/{self.calls[what]}")
        await trio.sleep(rng.uniform(*span) / self.speed)

    async def reserve_stock(self, order: str, items: int) -> str:
        await self._work(f"reserve {order}", RESERVE_TIME)
        return f"R-{order}-{items}"

    async def release_stock(self, reservation: str) -> None:
        await self._work(f"release {reservation}", RESERVE_TIME)

    async def charge_card(self, order: str, amount: int, key: str) -> str:
        self.board.report(order, Phase.CHARGING)
        await self._work(f"charge {order}", CHARGE_TIME)
        down_until = self.plan[order].gateway_down_until
        if down_until is not None and self.clock.now() < down_until / self.speed:
            raise GatewayDown(f"the card gateway is down; charge {amount} EUR later")
        receipt = f"CH-{order}-{amount}"
        if self.charges_log is not None:
            line = f"{order} {amount} {key} {receipt}\n"
            await trio.to_thread.run_sync(
                _append_synced, self.charges_log, line, limiter=self.limiter
            )
        self.charged += 1
        # Said here as well as by the process's "suspended" event: after a retry, the runtime
        # announces no event when the process goes on to wait for its shipment.
        note = f"charged {amount} EUR, waiting for shipping"
        self.board.report(order, Phase.AWAITING_SHIPPING, note)
        return receipt


def _append_synced(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the world outside --------------------------------------------------------------------------


class World:
    """Customers pay and couriers ship at the planned times; an operator retries orders
    suspended by a card error. Emits carry idempotency keys: repeating one is harmless."""

    def __init__(
        self, rt: dur.Runtime, board: Board, clock: Clock, speed: float, nursery: trio.Nursery
    ) -> None:
        self.rt = rt
        self.board = board
        self.clock = clock
        self.speed = speed
        self.nursery = nursery
        self.started: set[tuple[str, str]] = set()
        self.retrying: set[str] = set()
        self.retried = 0

    def on_phase(self, order: str, phase: Phase) -> None:
        plan = self.board.plan[order]
        if phase in (Phase.PLACED, Phase.AWAITING_PAYMENT) and plan.pay_at is not None:
            self._once("pay", plan, self._pay)
        elif phase is Phase.AWAITING_SHIPPING:
            self._once("ship", plan, self._ship)
        elif phase is Phase.CARD_ERROR and order not in self.retrying:
            self.retrying.add(order)
            self.nursery.start_soon(self._retry, order)

    def _once(
        self, what: str, plan: OrderPlan, act: Callable[[OrderPlan], Awaitable[None]]
    ) -> None:
        """Each order is paid and shipped once per run (emitted once in all, by the keys)."""
        if (what, plan.order) not in self.started:
            self.started.add((what, plan.order))
            self.nursery.start_soon(act, plan)

    async def _pay(self, plan: OrderPlan) -> None:
        assert plan.pay_at is not None
        await self.clock.sleep_until(plan.pay_at / self.speed)
        payment = Payment(f"TX-{plan.order}", plan.amount)
        key = f"demo-paid-{plan.order}"
        await self.rt.emit(OrderSignals.paid, order=plan.order, data=payment, idempotency_key=key)

    async def _ship(self, plan: OrderPlan) -> None:
        await trio.sleep(plan.ship_after / self.speed)
        shipment = Shipment(plan.tracking.split("-")[0], plan.tracking)
        key = f"demo-shipped-{plan.order}"
        await self.rt.emit(
            OrderSignals.shipped, order=plan.order, data=shipment, idempotency_key=key
        )

    async def _retry(self, order: str) -> None:
        await trio.sleep(RETRY_AFTER / self.speed)
        self.retrying.discard(order)
        if self.board.phases.get(order) is not Phase.CARD_ERROR:
            return  # it went on meanwhile (a runtime that opens the store runs it again)
        self.retried += 1
        self.board.log(f"order {order}  retried by the operator")
        await self.rt.retry(f"order/{order}/fulfillment")


async def place_orders(
    rt: dur.Runtime, plan: Sequence[OrderPlan], clock: Clock, speed: float
) -> None:
    """The shop starts each order's process at its time. Starting is idempotent: the orders
    a previous run placed are found again, nothing more."""
    for order in plan:
        await clock.sleep_until(order.arrive_at / speed)
        spec = OrderInput(order.amount, order.items, PAYMENT_TIMEOUT / speed)
        await rt.start(fulfillment, input=spec, order=order.order)

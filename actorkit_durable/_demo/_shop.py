"""The durable part of the demo: what a shop would deploy.

One process per order (``fulfillment``), the signals that move it, the records it stores, and
a persistent actor (``ledger``) that keeps the demo's own bookkeeping in the same file. The
steps call a ``Shop`` (the warehouse and the card gateway); the demo plugs in a simulated one
(``_world.SimulatedShop``) with ``use_shop``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import attrs

import actorkit as ak
import actorkit_durable as dur

FULFILLMENT = "/order/:order/fulfillment"


@dur.record("actorkit-demo.order.v1")
@attrs.frozen
class OrderInput:
    """A process's input: stored with it, so a later run keeps the same payment timeout."""

    amount: int
    items: int
    payment_timeout: float


@dur.record("actorkit-demo.payment.v1")
@attrs.frozen
class Payment:
    tx_id: str
    amount: int


@dur.record("actorkit-demo.shipment.v1")
@attrs.frozen
class Shipment:
    carrier: str
    tracking: str


@dur.record("actorkit-demo.outcome.v1")
@attrs.frozen
class Outcome:
    """A process's result."""

    status: str  # "delivered" or "payment_timeout"
    order: str
    receipt: str | None = None
    tracking: str | None = None


class OrderSignals(dur.Signals):
    paid = dur.signal("/order/:order/paid", data=Payment)
    shipped = dur.signal("/order/:order/shipped", data=Shipment)


class GatewayDown(dur.RecoverableError):
    """The card gateway is unavailable: the order is suspended until it is retried."""


class DemoNotRunning(dur.RecoverableError):
    """A program other than the demo ran one of its processes: it waits for the demo."""


class Shop(Protocol):
    """The systems the steps call. Calls may run more than once (a retry, a crash)."""

    async def reserve_stock(self, order: str, items: int) -> str: ...

    async def release_stock(self, reservation: str) -> None: ...

    async def charge_card(self, order: str, amount: int, key: str) -> str: ...


_SHOPS: list[Shop] = []


@contextmanager
def use_shop(shop: Shop) -> Iterator[None]:
    """Within the block, the processes' steps call ``shop``."""
    _SHOPS.append(shop)
    try:
        yield
    finally:
        _SHOPS.remove(shop)


def _shop() -> Shop:
    if not _SHOPS:
        raise DemoNotRunning(
            "the demo's orders go on only in the demo: python -m actorkit_durable demo"
        )
    return _SHOPS[-1]


@dur.process(FULFILLMENT)
async def fulfillment(ctx: dur.Context, order: str) -> Outcome:
    spec: OrderInput = ctx.input
    shop = _shop()
    reservation = await ctx.step(shop.reserve_stock, order, spec.items, name="reserve stock")
    race = await ctx.race(OrderSignals.paid, dur.delay.seconds(spec.payment_timeout))
    if race.timed_out:
        await ctx.step(shop.release_stock, reservation, name="release stock")
        return Outcome("payment_timeout", order)
    payment: Payment = race.data
    # ctx.step_key is the same in every attempt: a real gateway would deduplicate on it
    receipt = await ctx.step(
        shop.charge_card, order, payment.amount, ctx.step_key, name="charge card"
    )
    shipped = await ctx.signal(OrderSignals.shipped)
    return Outcome("delivered", order, receipt, shipped.data.tracking)


# -- the demo's bookkeeping ---------------------------------------------------------------------


@dur.record("actorkit-demo.ledger.v1")
@attrs.frozen
class Ledger:
    orders: int = 0  # 0: no demo in this file yet
    seed: int = 0
    epoch: float = 0.0
    """Durable time (POSIX seconds) at which the demo began."""
    elapsed: float = 0.0
    """Seconds of demo time so far, over all runs."""
    runs: int = 0


@attrs.frozen
class Begin:
    """Count a run; a new file takes ``orders``, ``seed`` and ``now`` as its demo's."""

    orders: int
    seed: int
    now: float
    reply: ak.Reply[Ledger]


@attrs.frozen
class SaveClock:
    elapsed: float
    reply: ak.Reply[None]


def _handle_ledger(state: Ledger, msg: Begin | SaveClock, tools: ak.Tools) -> Ledger:
    match msg:
        case Begin():
            if state.orders == 0:
                state = Ledger(msg.orders, msg.seed, msg.now)
            state = attrs.evolve(state, runs=state.runs + 1)
            msg.reply(state)
        case SaveClock():
            state = attrs.evolve(state, elapsed=max(state.elapsed, msg.elapsed))
            msg.reply(None)
    return state


LedgerRef = dur.PersistentRef[Begin | SaveClock]

ledger = dur.persistent_actor("/demo/:demo", init=lambda params: Ledger(), handle=_handle_ledger)

app = dur.App(processes=[fulfillment], signals=[OrderSignals], actors=[ledger])
"""The demo's definitions (``--app actorkit_durable._demo:app`` on the command line)."""

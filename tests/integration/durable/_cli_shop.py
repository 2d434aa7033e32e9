"""The app of test_cli.py: imported by the test (which runs it) and by the CLI (``--app``).

The CLI subprocess imports it as ``_cli_shop:app`` to build signal data; it never runs the
processes (only the test's runtime, and the ``worker`` command, do).
"""

from __future__ import annotations

import enum

import attrs
import trio

import actorkit as ak
import actorkit_durable as dur


@attrs.frozen
class Payment:
    tx_id: str
    amount: int


class Speed(enum.Enum):
    STANDARD = "standard"
    EXPRESS = "express"


@attrs.frozen
class Address:
    street: str
    city: str


@attrs.frozen
class Shipment:
    carrier: str
    address: Address
    speed: Speed = Speed.STANDARD
    items: list[str] = attrs.Factory(list)
    note: str | None = None


@attrs.frozen
class Receipt:
    order: str
    paid: int
    shipment: Shipment


class ShopSignals(dur.Signals):
    paid = dur.signal("/order/:order/payment/received", data=Payment)
    shipped = dur.signal("/order/:order/shipped", data=Shipment)
    go = dur.signal("/job/:job/go")


FLAKY = {"fail": True}
"""While True, the flaky step raises: the test flips it before `retry`."""
STOCK = {"in": False}
"""While False, the stock step raises a recoverable error (the process is stuck)."""


def charge(order: str, amount: int) -> str:
    return f"charged {order} {amount}"


def flaky_step(job: str) -> str:
    if FLAKY["fail"]:
        raise ValueError(f"the ledger is down for {job}")
    return f"booked {job}"


def check_stock(job: str) -> str:
    if not STOCK["in"]:
        raise dur.RecoverableError(f"no stock for {job} yet")
    return f"picked {job}"


async def stall_step(job: str) -> str:
    await trio.sleep_forever()


@dur.process("/order/:order/fulfillment")
async def fulfillment(ctx: dur.Context, order: str) -> Receipt:
    payment = (await ctx.signal(ShopSignals.paid)).data
    await ctx.step(charge, order, payment.amount)
    shipment = (await ctx.signal(ShopSignals.shipped)).data
    return Receipt(order, payment.amount, shipment)


@dur.process("/job/:job/flaky")
async def flaky(ctx: dur.Context, job: str) -> str:
    return await ctx.step(flaky_step, job, retry=dur.Retry(max_attempts=1))


@dur.process("/job/:job/stock")
async def stock(ctx: dur.Context, job: str) -> str:
    return await ctx.step(check_stock, job)


@dur.process("/job/:job/waiter")
async def waiter(ctx: dur.Context, job: str) -> str:
    await ctx.signal(ShopSignals.go)
    return f"went {job}"


@dur.process("/job/:job/stall")
async def stall(ctx: dur.Context, job: str) -> str:
    return await ctx.step(stall_step, job)


@attrs.frozen
class Balance:
    amount: int


@attrs.frozen
class Deposit:
    amount: int
    reply: ak.Reply[int]


def open_account(params: dict[str, str]) -> Balance:
    return Balance(0)


def handle_account(state: Balance, msg: Deposit, tools: ak.Tools) -> Balance:
    new = Balance(state.amount + msg.amount)
    msg.reply(new.amount)
    return new


account = dur.persistent_actor("/account/:account", init=open_account, handle=handle_account)


app = dur.App(
    processes=[fulfillment, flaky, stock, waiter, stall],
    signals=[ShopSignals],
    actors=[account],
)

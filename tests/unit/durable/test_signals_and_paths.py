"""Path templates and signal declarations: parsing, ids, routing params and bad input.

The runtime-level checks (``rt.emit`` with wrong data or params) run on a memory store under
``MockClock(autojump_threshold=0)`` and assert that a rejected emit wrote nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import actorkit as ak
import actorkit_durable as dur
from actorkit_durable._paths import PathTemplate
from actorkit_durable._signals import signals_of

START = datetime(2026, 1, 1, tzinfo=UTC)


@dur.record("tests.unit.durable.test_signals_and_paths.Payment.v1")
@attrs.frozen
class Payment:
    tx_id: str
    amount: int


@attrs.frozen
class SpecialPayment(Payment):
    pass


@attrs.frozen
class Refund:
    tx_id: str


class OrderSignals(dur.Signals):
    paid = dur.signal("/order/:order/payment/received", data=Payment)
    delivered = dur.signal("/order/:order/delivered")


class MoreOrderSignals(OrderSignals):
    refunded = dur.signal("/order/:order/refund", data=Refund)


# -- path templates ------------------------------------------------------------------------------


def test_template_parses_segments_and_params() -> None:
    template = PathTemplate.parse("/order/:order/item/:item", what="test")
    assert template.text == "/order/:order/item/:item"
    assert template.segments == ("order", ":order", "item", ":item")
    assert template.params == ("order", "item")


def test_template_fill_makes_the_id() -> None:
    template = PathTemplate.parse("/order/:order/fulfillment", what="test")
    assert template.fill({"order": "order-123"}, what="test") == (
        "order/order-123/fulfillment",
        {"order": "order-123"},
    )
    two = PathTemplate.parse("/bank/:branch/account/:account", what="test")
    actor_id, params = two.fill({"account": "a1", "branch": "b1"}, what="test")
    assert actor_id == "bank/b1/account/a1"
    assert list(params) == ["branch", "account"]  # path order, whatever the call's order
    literal = PathTemplate.parse("/config.v1/~main_", what="test")
    assert literal.params == ()
    assert literal.fill({}, what="test") == ("config.v1/~main_", {})


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("", "starts with '/'"),
        ("order/:order", "starts with '/'"),
        ("/", "at least one segment"),
        ("/order/", "without a trailing '/'"),
        ("//order", "segment ''"),
        ("/order//x", "segment ''"),
        ("/order/:", "parameter ':'"),
        ("/order/:1st", "parameter ':1st'"),
        ("/order/:a-b", "parameter ':a-b'"),
        ("/order/: x", "parameter ': x'"),
        ("/a/:x/b/:x", "parameter :x appears twice"),
        ("/or der", "segment 'or der'"),
        ("/order?x=1", "segment 'order?x=1'"),
        ("/caf\u00e9", "segment 'caf\u00e9'"),
    ],
)
def test_bad_templates_are_rejected_naming_the_path(path: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)) as info:
        PathTemplate.parse(path, what="dur.thing")
    assert str(info.value).startswith(f"dur.thing({path!r})")
    with pytest.raises(ValueError, match=re.escape(f"dur.signal({path!r})")):
        dur.signal(path)
    with pytest.raises(ValueError, match=re.escape(f"dur.persistent_actor({path!r})")):
        dur.persistent_actor(path, init=lambda params: 0, handle=lambda s, m, t: None)


def test_a_template_must_be_a_str() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        PathTemplate.parse(b"/order", what="test")
    with pytest.raises(TypeError, match=re.escape("dur.signal(None)")):
        dur.signal(None)  # type: ignore[call-overload]


def test_fill_names_missing_unexpected_and_bad_params() -> None:
    template = PathTemplate.parse("/bank/:branch/account/:account", what="test")
    with pytest.raises(ValueError, match="missing parameters branch, account") as missing:
        template.fill({}, what="rt.actor()")
    assert "rt.actor() for '/bank/:branch/account/:account'" in str(missing.value)
    with pytest.raises(ValueError, match=re.escape("missing parameter account; pass account=...")):
        template.fill({"branch": "b1"}, what="test")
    with pytest.raises(TypeError, match="unexpected parameters color, size"):
        template.fill({"branch": "b", "account": "a", "size": "1", "color": "r"}, what="t")
    bare = PathTemplate.parse("/config", what="test")
    with pytest.raises(TypeError, match="the path takes no parameters"):
        bare.fill({"x": "1"}, what="test")
    for bad in ("", "a/b", "/", 7, None, b"b1"):
        with pytest.raises(ValueError, match=re.escape(f"parameter branch={bad!r}")):
            template.fill({"branch": bad, "account": "a1"}, what="test")


# -- signal declarations -------------------------------------------------------------------------


def test_signal_declarations() -> None:
    paid = OrderSignals.paid
    assert isinstance(paid, dur.SignalDef)
    assert paid.path == "/order/:order/payment/received"
    assert paid.params == ("order",)
    assert paid.data is Payment
    assert paid.name == "OrderSignals.paid"  # where it was declared
    assert repr(paid) == "<signal OrderSignals.paid '/order/:order/payment/received', data=Payment>"
    assert OrderSignals.delivered.data is None
    assert repr(OrderSignals.delivered) == (
        "<signal OrderSignals.delivered '/order/:order/delivered'>"
    )
    loose = dur.signal("/audit/:branch/:account")
    assert loose.name == "/audit/:branch/:account"  # not declared in a class: its path
    assert loose.params == ("branch", "account")


def test_signals_classes_collect_their_declarations() -> None:
    assert OrderSignals.__signals__ == (OrderSignals.paid, OrderSignals.delivered)
    assert MoreOrderSignals.__signals__ == (
        OrderSignals.paid,
        OrderSignals.delivered,
        MoreOrderSignals.refunded,
    )
    assert signals_of(OrderSignals) == OrderSignals.__signals__
    assert signals_of(OrderSignals.paid) == (OrderSignals.paid,)
    for bad in (object(), dur.Signals(), "/order/:order", int):
        with pytest.raises(TypeError, match=r"neither a dur\.Signals subclass nor a dur\.signal"):
            signals_of(bad)


def test_signal_data_must_be_a_class() -> None:
    with pytest.raises(TypeError, match="data must be a class"):
        dur.signal("/order/:order/paid", data=Payment(tx_id="t", amount=1))  # type: ignore[call-overload]
    assert dur.signal("/counter/:name/add", data=int).data is int


def test_check_data_names_the_signal_and_the_class() -> None:
    paid = OrderSignals.paid
    paid.check_data(Payment("tx-1", 100))
    paid.check_data(SpecialPayment("tx-2", 5))  # an instance of a subclass is one of the class
    for bad in (Refund("tx-1"), {"tx_id": "tx-1", "amount": 100}, None):
        with pytest.raises(TypeError) as info:
            paid.check_data(bad)
        message = str(info.value)
        assert "OrderSignals.paid" in message
        assert "carries Payment" in message
        assert "pass data=Payment(...)" in message
    OrderSignals.delivered.check_data(None)
    with pytest.raises(TypeError, match=r"OrderSignals\.delivered .* declared without data"):
        OrderSignals.delivered.check_data(Payment("tx-1", 100))


def test_signal_received_is_a_value() -> None:
    one = dur.SignalReceived(OrderSignals.paid, Payment("t", 1), {"order": "o1"}, 3)
    assert one == dur.SignalReceived(OrderSignals.paid, Payment("t", 1), {"order": "o1"}, 3)
    assert one != dur.SignalReceived(OrderSignals.paid, Payment("t", 2), {"order": "o1"}, 3)
    assert "seq" not in repr(one)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        one.data = Payment("t", 9)  # type: ignore[misc]


# -- rt.emit checks its input --------------------------------------------------------------------


def _order_actor(received: list[dur.SignalReceived[Any]]) -> dur.PersistentActor[int, object]:
    def handle(state: int, msg: object, tools: ak.Tools) -> int | None:
        if isinstance(msg, dur.SignalReceived):
            received.append(msg)
            return state + 1
        assert isinstance(msg, ak.Reply)
        msg(state)
        return None

    return dur.persistent_actor("/order/:order", init=lambda params: 0, handle=handle)


async def test_emit_rejects_bad_input_before_writing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    received: list[dur.SignalReceived[Any]] = []
    order = _order_actor(received)
    store = dur.MemoryStore()
    bad: list[tuple[type[Exception], str, Any, dict[str, Any]]] = [
        (
            TypeError,
            "OrderSignals.paid .* carries Payment",
            OrderSignals.paid,
            {"data": Refund("t")},
        ),
        (TypeError, "OrderSignals.paid .* got data=None", OrderSignals.paid, {}),
        (
            TypeError,
            "OrderSignals.delivered .* declared without data",
            OrderSignals.delivered,
            {"data": Payment("t", 1)},
        ),
        (ValueError, "missing parameter order", OrderSignals.delivered, {"order": None}),
        (TypeError, "unexpected parameter shop", OrderSignals.delivered, {"shop": "s"}),
        (ValueError, "parameter order=''", OrderSignals.delivered, {"order": ""}),
        (ValueError, "parameter order='a/b'", OrderSignals.delivered, {"order": "a/b"}),
        (ValueError, "parameter order=1", OrderSignals.delivered, {"order": 1}),
        (TypeError, "idempotency_key=5", OrderSignals.delivered, {"idempotency_key": 5}),
        (TypeError, "pass a signal declared with dur.signal", "/order/:order/delivered", {}),
    ]
    async with dur.open_runtime(
        store, actors=[order], signals=[OrderSignals], start_time=START
    ) as rt:
        ref = await rt.actor(order, order="o1")
        operations = store.statistics().operations
        for exception, words, signal, options in bad:
            options = {"order": "o1", **options}
            if options["order"] is None:
                del options["order"]
            with pytest.raises(exception, match=words):
                await rt.emit(signal, **options)
        assert store.statistics().operations == operations
        assert await rt.emit(OrderSignals.paid, order="o1", data=SpecialPayment("t", 2)) == 1
        assert await ref.ask(lambda reply: reply) == 1
    assert [r.data for r in received] == [SpecialPayment("t", 2)]


async def test_signals_with_one_path_and_different_data_classes_are_rejected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clash = dur.signal("/order/:order/payment/received", data=Refund)
    same = dur.signal("/order/:order/payment/received", data=Payment)
    async with dur.open_runtime(dur.MemoryStore(), signals=[OrderSignals], start_time=START) as rt:
        with pytest.raises(ValueError, match=r"share the path .* different data classes"):
            await rt.emit(clash, order="o1", data=Refund("t"))
        # the same path and class declared twice is one signal
        assert await rt.emit(same, order="o1", data=Payment("t", 1)) == 0

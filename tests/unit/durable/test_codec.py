"""The durable codec: what round-trips, how records evolve, and how it fails.

Raw msgpack bytes for corrupt-data cases are written out by hand (``_ext``, ``_str``, ...), so
the tests do not import msgpack: the codec is the only module that does.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NamedTuple

import attrs
import pytest

import actorkit
import actorkit_durable as dur
from actorkit_durable import _codec as dur_codec

WHAT = "snapshot of process order/1/fulfillment"


@dur.record("tests.codec.payment.v1")
@attrs.frozen
class Payment:
    tx_id: str
    amount: int


@attrs.frozen
class Line:
    sku: str
    qty: int = 1


@attrs.define
class Order:
    id: str
    lines: list[Line]
    paid: Payment | None = None
    at: datetime | None = None
    notes: dict[str, object] = attrs.field(factory=dict)


@attrs.define
class Cart:
    items: list[object]


@attrs.frozen
class Secret:
    _token: str
    derived: int = attrs.field(init=False, default=7)


@attrs.frozen
class Positive:
    n: int = attrs.field(validator=attrs.validators.gt(0))


class Color(enum.Enum):
    RED = 1
    GREEN = "g"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Perm(enum.Flag):
    READ = 1
    WRITE = 2


@dur.record("tests.codec.size.v1")
class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


codec = dur.Codec()


def round_trip(value: object) -> object:
    return codec.decode(codec.encode(value), what="test value")


def decode_error(data: bytes, decoder: dur.Codec = codec) -> str:
    with pytest.raises(dur.SnapshotDecodeError) as info:
        decoder.decode(data, what=WHAT)
    message = str(info.value)
    assert message.startswith(f"cannot decode {WHAT}: "), message
    return message


# Hand-written msgpack, for data the codec would never write.
def _str(text: str) -> bytes:
    raw = text.encode()
    return (bytes([0xA0 | len(raw)]) if len(raw) < 32 else bytes([0xD9, len(raw)])) + raw


def _ext(code: int, payload: bytes) -> bytes:
    return bytes([0xC7, len(payload), code]) + payload


def _record(name: str, fields: dict[str, int]) -> bytes:
    body = bytes([0x80 | len(fields)]) + b"".join(_str(k) + bytes([v]) for k, v in fields.items())
    return _ext(2, b"\x92" + _str(name) + body)


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None, True, False, 0, -1, 127, -33, 2**64 - 1, -(2**63), 1.5, -0.0, float("inf"),
        "", "héllo ✓", "x" * 70_000, b"", b"\x00\xff", b"y" * 70_000,
        [], {}, [1, "a", None, [2.5, [b"z"]]], {"a": 1, "b": {"c": [True]}},
    ],
)  # fmt: skip
def test_plain_values_round_trip(value: object) -> None:
    result = round_trip(value)
    assert result == value
    assert type(result) is type(value)


def test_tuples_stay_tuples_also_as_dict_keys() -> None:
    value = {(1, "a"): (2, (3, [4, (5,)])), (): [()]}
    result = round_trip(value)
    assert result == value
    assert isinstance(result, dict)
    assert [type(key) for key in result] == [tuple, tuple]
    assert type(result[(1, "a")][1][1][1]) is tuple


def test_dict_keys_may_be_any_encodable_hashable_value() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    value = {1: "int", None: "none", b"k": "bytes", 2.5: "float", (1, 2): "tuple",
             Payment("t", 1): "record", Color.RED: "enum", when: "datetime"}  # fmt: skip
    result = round_trip(value)
    assert result == value
    assert list(result) == list(value)  # order kept


def test_bytearray_and_memoryview_decode_as_bytes() -> None:
    assert round_trip([bytearray(b"ab"), memoryview(b"cd")]) == [b"ab", b"cd"]


@pytest.mark.parametrize(
    "value",
    [
        datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 30, 15, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=timezone(timedelta(hours=-8))),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_aware_datetimes_decode_as_the_same_instant_in_utc(value: datetime) -> None:
    result = round_trip(value)
    assert isinstance(result, datetime)
    assert result == value
    assert result.tzinfo is UTC or result.utcoffset() == timedelta(0)
    assert result.microsecond == value.microsecond


def test_aware_datetime_subclass_encodes_as_a_datetime() -> None:
    class Stamp(datetime):
        pass

    value = Stamp(2024, 2, 29, 1, 2, 3, 456789, tzinfo=timezone(timedelta(hours=2)))
    result = round_trip(value)
    assert type(result) is datetime
    assert result == value


def test_records_nested_in_containers_and_records() -> None:
    at = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    order = Order("o-1", [Line("a"), Line("b", 3)], Payment("tx", 10), at, {"gift": (Line("c"),)})
    value = {"orders": [order], "by_line": {Line("a"): order}, "pair": (order, Payment("u", 2))}
    result = round_trip(value)
    assert result == value
    assert isinstance(result, dict)
    decoded = result["orders"][0]
    assert type(decoded) is Order
    assert type(decoded.lines[1]) is Line
    assert type(decoded.notes["gift"]) is tuple


def test_private_and_non_init_fields() -> None:
    result = round_trip(Secret("abc"))
    assert result == Secret("abc")
    assert codec.encode(Secret("abc")).count(b"derived") == 0  # not an init field: not stored


def test_enums_round_trip_as_their_own_type() -> None:
    value = [Color.RED, Color.GREEN, Level.HIGH, Perm.READ | Perm.WRITE, Size.LARGE]
    result = round_trip(value)
    assert result == value
    assert isinstance(result, list)
    assert [type(item) for item in result] == [Color, Color, Level, Perm, Size]


def test_record_names_are_stable_and_pinned() -> None:
    assert b"tests.codec.payment.v1" in codec.encode(Payment("t", 1))
    assert f"{Line.__module__}:Line".encode() in codec.encode(Line("a"))
    assert b"tests.codec.size.v1" in codec.encode(Size.SMALL)
    # Fields go by name.
    assert b"tx_id" in codec.encode(Payment("t", 1))


def test_encoding_is_deterministic() -> None:
    value = {"b": [Payment("t", 1), (1, 2)], "a": Color.RED}
    assert codec.encode(value) == codec.encode(value) == dur.Codec().encode(value)


# --- registration and schema evolution -----------------------------------------------------


def _invoice_class(version: int) -> type[Any]:
    """The same class as two deploys of a program would define it (same module and qualname)."""
    if version == 1:

        @dur.record("tests.codec.invoice")
        @attrs.frozen
        class Invoice:
            number: str

    elif version == 2:

        @dur.record("tests.codec.invoice")
        @attrs.frozen
        class Invoice:  # type: ignore[no-redef]
            number: str
            currency: str = "EUR"
            lines: list[str] = attrs.field(factory=list)

    else:

        @dur.record("tests.codec.invoice")
        @attrs.frozen
        class Invoice:  # type: ignore[no-redef]
            number: str
            due: str

    return Invoice


def test_a_class_that_gained_fields_with_defaults_decodes_old_data() -> None:
    old = codec.encode({"invoice": _invoice_class(1)(number="n-1")})
    new_class = _invoice_class(2)
    assert codec.decode(old, what=WHAT) == {"invoice": new_class(number="n-1")}


def test_fields_unknown_to_the_class_are_ignored() -> None:
    newer = codec.encode(_invoice_class(2)(number="n-2", currency="USD"))
    old_class = _invoice_class(1)
    assert codec.decode(newer, what=WHAT) == old_class(number="n-2")


def test_a_missing_field_without_default_is_a_decode_error() -> None:
    old = codec.encode(_invoice_class(1)(number="n-3"))
    _invoice_class(3)
    message = decode_error(old)
    assert "'due'" in message
    assert "_invoice_class.<locals>.Invoice" in message
    assert "default" in message


def test_unknown_type_name_is_a_decode_error_naming_what_and_the_type() -> None:
    @dur.record("tests.codec.ghost.v1")
    @attrs.frozen
    class Ghost:
        x: int

    data = codec.encode([Ghost(1)]).replace(b"ghost.v1", b"ghost.v9")
    message = decode_error(data)
    assert "'tests.codec.ghost.v9'" in message
    assert "not registered" in message


def test_decoding_never_imports_modules_named_by_data() -> None:
    module = "tests_codec_never_imported"
    message = decode_error(_record(f"{module}:Thing", {"x": 1}))
    assert module in message
    assert module not in sys.modules
    decode_error(_record("os:system", {"x": 1}))


def test_a_class_becomes_known_by_registration_without_being_encoded() -> None:
    @attrs.frozen
    class Known:
        x: int

    data = _record(f"{Known.__module__}:{Known.__qualname__}", {"x": 5})
    decode_error(data)
    assert dur.Codec(types=[Known]).decode(data, what=WHAT) == Known(5)


def test_dur_record_bare_and_called_keep_the_default_name() -> None:
    @dur.record
    @attrs.frozen
    class Bare:
        x: int

    @dur.record()
    @attrs.frozen
    class Called:
        x: int

    for cls in (Bare, Called):
        name = f"{cls.__module__}:{cls.__qualname__}"
        assert codec.decode(_record(name, {"x": 2}), what=WHAT) == cls(2)


def test_pinning_a_name_later_still_decodes_data_under_the_default_name() -> None:
    @attrs.frozen
    class Moved:
        x: int

    before = codec.encode(Moved(1))
    dur.record("tests.codec.moved.v1")(Moved)
    after = codec.encode(Moved(1))
    assert b"tests.codec.moved.v1" in after
    assert codec.decode(before, what=WHAT) == codec.decode(after, what=WHAT) == Moved(1)


def test_two_classes_cannot_pin_one_name() -> None:
    @dur.record("tests.codec.taken.v1")
    @attrs.frozen
    class First:
        x: int

    with pytest.raises(ValueError, match=r"'tests\.codec\.taken\.v1' already belongs to .*First"):

        @dur.record("tests.codec.taken.v1")
        @attrs.frozen
        class Second:
            x: int


def test_encoding_a_class_whose_name_is_taken_names_the_path() -> None:
    @attrs.frozen
    class Squatted:
        x: int

    @dur.record(f"{Squatted.__module__}:{Squatted.__qualname__}")
    @attrs.frozen
    class Squatter:
        x: int

    with pytest.raises(
        ValueError, match=r"^state\[0\]: type name .* already belongs to .*Squatter"
    ):
        codec.encode([Squatted(1)], what="state")


def test_registering_again_keeps_a_pinned_name() -> None:
    dur.Codec.register(Payment, Payment)
    dur.Codec(types=[Payment])
    dur.record(Payment)
    assert b"tests.codec.payment.v1" in codec.encode(Payment("t", 1))


def test_record_rejects_what_it_cannot_register() -> None:
    with pytest.raises(TypeError, match=r"attrs classes and enums.*@attrs\.frozen"):

        @dur.record("tests.codec.plain.v1")
        class Plain:
            pass

    with pytest.raises(TypeError, match="non-empty type name"):
        dur.record("")
    with pytest.raises(TypeError, match="attrs classes and enums"):
        dur.Codec(types=[dict])


# --- encode errors -------------------------------------------------------------------------


def test_unencodable_value_names_its_path_its_type_and_the_fix() -> None:
    with pytest.raises(TypeError) as info:
        codec.encode(Cart(items=[1, 2, 3, object()]), what="state")
    message = str(info.value)
    assert message.startswith("state.items[3] is a object")
    assert "attrs class" in message


def test_unencodable_dict_value_and_key_paths() -> None:
    with pytest.raises(TypeError, match=r"^value\['k'\]\[0\] is a set"):
        codec.encode({"k": [{1}]})
    with pytest.raises(TypeError, match=r"^value key frozenset\(\{1\}\) is a frozenset"):
        codec.encode({frozenset({1}): 1})


def test_naive_datetime_is_a_value_error_naming_the_fix() -> None:
    with pytest.raises(ValueError, match=r"^state\.at is a naive datetime: attach a tzinfo"):
        codec.encode(Order("o", [], at=datetime(2024, 1, 1)), what="state")


def test_datetime_outside_the_utc_range_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^value\['never'\] is a datetime whose UTC time falls"):
        codec.encode({"never": datetime.max.replace(tzinfo=timezone(timedelta(hours=-5)))})
    with pytest.raises(ValueError, match="outside years 1 to 9999"):
        codec.encode(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))))
    early = [
        datetime(1, 1, 2, tzinfo=timezone(timedelta(hours=5))),
        datetime.max.replace(tzinfo=UTC),
    ]
    assert round_trip(early) == early


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**100])
def test_int_beyond_64_bits_is_a_value_error(number: int) -> None:
    with pytest.raises(ValueError, match=r"^value\[1\] is an int of \d+ bits.*store it as a str"):
        codec.encode([0, number])


def test_string_with_lone_surrogate_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^value\[0\] is a str that is not valid UTF-8"):
        codec.encode(["\ud800"])


def test_subclasses_of_builtins_are_rejected_with_a_conversion_hint() -> None:
    class Pair(NamedTuple):
        a: int
        b: int

    @dataclasses.dataclass
    class Data:
        x: int

    with pytest.raises(TypeError, match=r"OrderedDict, a subclass of dict.*dict\(\.\.\.\)"):
        codec.encode(collections.OrderedDict(a=1))
    with pytest.raises(TypeError, match=r"Pair, a subclass of tuple"):
        codec.encode(Pair(1, 2))
    with pytest.raises(TypeError, match=r"dataclasses are not supported"):
        codec.encode(Data(1))


def test_reference_cycles_are_a_value_error_not_a_recursion_error() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match=r"^state\[0\]\[0\].*max_depth=64.*reference cycle"):
        codec.encode(loop, what="state")
    order = Order("o", [])
    order.notes["self"] = (order,)
    with pytest.raises(ValueError, match=r"^state\.notes\['self'\]\[0\].*reference cycle"):
        codec.encode(order, what="state")


def test_encode_refuses_what_decode_would_refuse() -> None:
    small = dur.Codec(max_bytes=100, max_items=3, max_depth=2)
    assert small.decode(small.encode([[1, 2, 3]]), what=WHAT) == [[1, 2, 3]]
    assert small.decode(small.encode(Line("a")), what=WHAT) == Line("a")  # a record is a level
    with pytest.raises(ValueError, match=r"^value\[0\] holds 4 items, over .*max_items=3"):
        small.encode([[1, 2, 3, 4]])
    with pytest.raises(ValueError, match=r"^value\[0\]\[0\] nests deeper .*max_depth=2"):
        small.encode([[[1]]])
    with pytest.raises(ValueError, match=r"^value\[0\]\[0\] nests deeper .*max_depth=2"):
        small.encode([(Line("a"),)])
    with pytest.raises(ValueError, match=r"^value encodes to \d+ bytes, over .*max_bytes=100"):
        small.encode("x" * 200)


def test_deep_native_nesting_beyond_msgpack_is_a_value_error() -> None:
    deep: list[object] = []
    for _ in range(600):
        deep = [deep]
    with pytest.raises(ValueError, match="max_depth=64"):
        codec.encode(deep)


def test_codec_limits_are_validated() -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="max_depth"):
            dur.Codec(max_depth=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at most 500"):
        dur.Codec(max_depth=501)
    assert repr(dur.Codec(max_items=5)) == "Codec(max_bytes=67108864, max_items=5, max_depth=64)"


# --- decode errors -------------------------------------------------------------------------


def test_every_truncation_is_a_decode_error() -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    data = codec.encode({"o": Order("o", [Line("a")], Payment("t", 1), at), "t": (1, Color.RED)})
    for end in range(len(data)):
        decode_error(data[:end])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\xc1", "not valid msgpack"),
        (b"\x01\x02", "extra bytes"),
        (b"\xa2\xff\xfe", "UTF-8"),
        (_ext(9, b"\x90"), "unknown msgpack extension type 9"),
        (_ext(1, b"\x01"), "tuple in it is not an array"),
        (_ext(2, b"\x93\x01\x02\x03"), "record in it is malformed"),
        (_ext(2, b"\x92\x01\x80"), "record in it is malformed"),
        (_ext(3, b"\x91" + _str("x")), "enum in it is malformed"),
        (_ext(2, b"\x92" + _str("tests.codec.payment.v1") + b"\x90"), "not a map"),
        (_ext(2, b"\x92" + _str("tests.codec.size.v1") + b"\x80"), "not an attrs class"),
        (_ext(3, b"\x92" + _str("tests.codec.payment.v1") + b"\x01"), "not an enum"),
        (_ext(3, b"\x92" + _str("tests.codec.size.v1") + _str("m")), "'m' is not a value of"),
        (_ext(2, b"\x92" + _str("tests.codec.size.v1") + b"\xc1"), "not valid msgpack"),
        # A timestamp whose nanoseconds overflow, and one beyond year 9999.
        (b"\xd7\xff" + (1_000_000_005 << 34 | 5).to_bytes(8, "big"), "nanoseconds"),
        (b"\xc7\x0c\xff" + bytes(4) + (2**62).to_bytes(8, "big"), "OverflowError"),
        # A map with a list as a key (unhashable in Python).
        (b"\x81\x90\x01", "unhashable"),
        # An array header claiming 4 billion items, far beyond the data.
        (b"\xdd\xff\xff\xff\xff", "max_items"),
    ],
)
def test_corrupt_data_is_a_decode_error_naming_what(data: bytes, reason: str) -> None:
    assert reason in decode_error(data)


def test_a_record_its_class_rejects_is_a_decode_error() -> None:
    data = codec.encode(Positive(1)).replace(b"\x01", b"\x00")
    message = decode_error(data)
    assert "Positive rejected the fields" in message
    assert "ValueError" in message


def test_decode_limits() -> None:
    data = codec.encode({"a": [1, 2, 3, 4], "b": (1, 2, 3, 4)})
    assert "max_bytes=10" in decode_error(data, dur.Codec(max_bytes=10))
    assert "max_items" in decode_error(codec.encode([1, 2, 3, 4]), dur.Codec(max_items=3))
    assert "max_items" in decode_error(codec.encode([(1, 2, 3, 4)]), dur.Codec(max_items=3))
    assert "max_items" in decode_error(codec.encode({1: 2, 3: 4}), dur.Codec(max_items=1))
    shallow = dur.Codec(max_depth=2)
    assert "max_depth=2" in decode_error(codec.encode([[[1]]]), shallow)
    assert "max_depth=2" in decode_error(codec.encode((((1,),),)), shallow)
    assert "max_depth=2" in decode_error(codec.encode([Order("o", [])]), shallow)
    assert "max_depth=2" in decode_error(codec.encode({((1,),): 1}), shallow)
    assert shallow.decode(codec.encode([[1], (2,), Line("x")]), what=WHAT) == [[1], (2,), Line("x")]


def test_deeply_nested_data_is_a_decode_error_not_a_crash() -> None:
    assert "nests deeper" in decode_error(b"\x91" * 100_000 + b"\x01")
    tuples = b"\x01"
    for _ in range(2000):  # 1-tuples in 1-tuples: each an extension holding the next
        payload = b"\x91" + tuples
        tuples = b"\xc9" + len(payload).to_bytes(4, "big") + b"\x01" + payload
    assert codec.decode(tuples[-400:], what=WHAT) is not None  # well formed, when shallow
    assert "nests deeper than max_depth=64" in decode_error(tuples)
    assert "nests deeper than max_depth=5" in decode_error(tuples, dur.Codec(max_depth=5))


def test_decode_takes_bytes_like_objects_only() -> None:
    data = codec.encode([1, "a"])
    assert codec.decode(bytearray(data), what=WHAT) == [1, "a"]
    assert codec.decode(memoryview(data), what=WHAT) == [1, "a"]
    with pytest.raises(TypeError, match="decode\\(\\) takes bytes"):
        codec.decode("abc", what=WHAT)  # type: ignore[arg-type]


def test_error_classes() -> None:
    assert issubclass(dur.DurableError, actorkit.ActorkitError)
    assert issubclass(dur.SnapshotDecodeError, dur.DurableError)
    assert issubclass(dur.SnapshotDecodeError, ValueError)
    assert dur.SnapshotDecodeError.__mro__[1:3] == (dur.DurableError, actorkit.ActorkitError)


# --- threads and buffers -------------------------------------------------------------------


def test_one_codec_serves_several_threads() -> None:
    values = [{"n": n, "p": Payment(str(n), n), "t": (n, [Line(str(n))])} for n in range(200)]
    expected = [codec.encode(value) for value in values]
    results: dict[int, list[bytes]] = {}

    def work(index: int) -> None:
        results[index] = [codec.encode(value) for value in values]
        assert [codec.decode(data, what=WHAT) for data in results[index]] == values

    threads = [threading.Thread(target=work, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {index: expected for index in range(4)}


def test_a_large_value_does_not_disturb_later_ones() -> None:
    big = {"blob": b"x" * (2 << 20), "p": Payment("t", 1)}
    assert round_trip(big) == big
    assert round_trip([Payment("u", 2)]) == [Payment("u", 2)]


# --- lenient decoding (for tools that show stored data: the command line) -------------------


def test_lenient_decoding_keeps_unknown_records_and_enums_as_their_name_and_fields() -> None:
    module = "tests_codec_lenient_never_imported"
    unknown = _record(f"{module}:Payment", {"amount": 5, "qty": 2})
    known = codec.encode(Line("a", 3))
    enum_member = _ext(3, b"\x92" + _str(f"{module}:Color") + bytes([1]))
    data = b"\x93" + unknown + known + enum_member  # a list of the three
    decode_error(data)  # strict decoding refuses it
    decoded = codec.decode(data, what=WHAT, lenient=True)
    assert isinstance(decoded, list)
    record, line, member = decoded
    assert isinstance(record, dur_codec.UnknownRecord)
    assert record.type_name == f"{module}:Payment"
    assert record.fields == (("amount", 5), ("qty", 2))
    assert "not registered" in record.problem
    assert repr(record) == "Payment(amount=5, qty=2)"
    assert line == Line("a", 3)  # known classes are built as usual
    assert isinstance(member, dur_codec.UnknownEnum)
    assert (member.type_name, member.value) == (f"{module}:Color", 1)
    assert repr(member) == "Color(1)"
    assert module not in sys.modules  # nothing imported


def test_lenient_decoding_keeps_records_their_class_rejects() -> None:
    rejected = codec.encode({"p": Positive(1)}).replace(b"\x01", b"\x00")
    decoded = codec.decode(rejected, what=WHAT, lenient=True)
    assert isinstance(decoded, dict)
    record = decoded["p"]
    assert isinstance(record, dur_codec.UnknownRecord)
    assert record.fields == (("n", 0),)
    assert "rejected the fields" in record.problem
    bad_member = codec.encode(Size.SMALL).replace(b"\xa1s", b"\xa1x")
    member = codec.decode(bad_member, what=WHAT, lenient=True)
    assert isinstance(member, dur_codec.UnknownEnum)
    assert member.value == "x"


def test_lenient_decoding_still_refuses_corrupt_data() -> None:
    with pytest.raises(dur.SnapshotDecodeError, match="truncated"):
        codec.decode(codec.encode([Line("a")])[:-2], what=WHAT, lenient=True)
    with pytest.raises(dur.SnapshotDecodeError, match="not a map"):
        codec.decode(_ext(2, b"\x92" + _str("x:Y") + b"\x01"), what=WHAT, lenient=True)

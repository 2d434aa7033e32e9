"""The durable codec under Hypothesis: random values round-trip exactly, and random or damaged
bytes never raise anything but SnapshotDecodeError."""

from __future__ import annotations

import enum
import math
from datetime import datetime, timedelta, timezone

import attrs
from hypothesis import given
from hypothesis import strategies as st

import actorkit_durable as dur


@dur.record("tests.props.point.v1")
@attrs.frozen
class Point:
    x: int
    y: float
    label: str = ""


@attrs.frozen
class Stamp:
    at: datetime
    point: Point | None = None


@attrs.define
class Bag:
    items: list[object]
    meta: dict[object, object] = attrs.field(factory=dict)
    tag: tuple[object, ...] = ()


class Mood(enum.Enum):
    CALM = "calm"
    ODD = (1, "x")


class Rank(enum.IntEnum):
    LOW = 1
    HIGH = 2


codec = dur.Codec()

# --- strategies ----------------------------------------------------------------------------

offsets = st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)).map(
    lambda delta: timezone(timedelta(minutes=delta // timedelta(minutes=1)))
)
# Years 2 to 9998 keep the UTC instant of every offset within what a datetime can hold.
aware_datetimes = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | aware_datetimes
    | st.sampled_from([*Mood, *Rank])
)
points = st.builds(Point, st.integers(-(2**63), 2**63), st.floats(), st.text(max_size=5))
hashables = st.recursive(
    scalars | points,
    lambda inner: st.lists(inner, max_size=3).map(tuple),
    max_leaves=5,
)


def _extend(inner: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(hashables, inner, max_size=4)
        | st.builds(Stamp, aware_datetimes, st.none() | points)
        | st.builds(
            Bag,
            st.lists(inner, max_size=3),
            st.dictionaries(hashables, inner, max_size=3),
            st.lists(inner, max_size=2).map(tuple),
        )
    )


values = st.recursive(scalars | points, _extend, max_leaves=25)


def same(a: object, b: object) -> bool:
    """Equal and of the same type all the way down (1, 1.0 and True are all ==), with NaN
    equal to NaN, -0.0 apart from 0.0, and datetimes compared as instants."""
    if type(a) is not type(b):
        return isinstance(a, datetime) and type(b) is datetime and a == b
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a == b and b.utcoffset() == timedelta(0)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) == len(b) and all(map(same, a.items(), b.items()))
    if attrs.has(type(a)):
        names = [field.name for field in attrs.fields(type(a))]  # type: ignore[arg-type]
        return same([getattr(a, name) for name in names], [getattr(b, name) for name in names])
    return a == b


# --- properties ----------------------------------------------------------------------------


@given(values)
def test_values_round_trip_exactly(value: object) -> None:
    data = codec.encode(value)
    result = codec.decode(data, what="a random value")
    assert same(value, result)
    assert codec.encode(result) == data


def decode_failure(data: bytes, what: str) -> str | None:
    """The message of the SnapshotDecodeError decoding raised, or None if it decoded."""
    try:
        codec.decode(data, what=what)
    except dur.SnapshotDecodeError as exc:
        return str(exc)
    return None


@given(st.binary(max_size=300))
def test_random_bytes_decode_or_raise_snapshot_decode_error(data: bytes) -> None:
    message = decode_failure(data, "random bytes")
    assert message is None or message.startswith("cannot decode random bytes: ")


@st.composite
def damaged_encodings(draw: st.DrawFn) -> bytes:
    data = bytearray(codec.encode(draw(values)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "extend", "replace", "insert", "cut"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "extend":
            data += draw(st.binary(min_size=1, max_size=8))
        elif kind == "replace" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 4))]
    return bytes(data)


@given(damaged_encodings())
def test_damaged_encodings_decode_or_raise_snapshot_decode_error(data: bytes) -> None:
    message = decode_failure(data, "a damaged value")
    assert message is None or message.startswith("cannot decode a damaged value: ")


@given(st.lists(st.integers(0, 200), max_size=6), st.integers(1, 6), st.integers(1, 6))
def test_limits_agree_between_encode_and_decode(
    shape: list[int], max_depth: int, max_items: int
) -> None:
    """Whatever a codec with some limits encodes, it decodes; whatever it refuses to encode,
    it refuses to decode (from a codec without those limits)."""
    value: object = list(range(shape[0] % 8)) if shape else 0
    for n in shape[1:]:
        value = [value] * (n % 3 + 1) if n % 2 else (value, Point(n, 0.5))
    strict = dur.Codec(max_depth=max_depth, max_items=max_items)
    try:
        data = strict.encode(value)
    except ValueError:
        data = codec.encode(value)
        try:
            strict.decode(data, what="value")
        except dur.SnapshotDecodeError:
            return
        raise AssertionError("decoded what encode refused") from None
    assert same(strict.decode(data, what="value"), value)

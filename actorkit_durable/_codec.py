"""The durable codec: msgpack, safe and fast, for everything actorkit_durable stores.

This is the only module that imports msgpack. What it encodes:

- ``None``, ``bool``, ``int`` (within msgpack's range, -2**63 to 2**64 - 1), ``float``,
  ``str`` and ``bytes`` as msgpack's own types (``bytearray`` and ``memoryview`` encode as
  ``bytes``); ``list`` and ``dict`` (keys may be any encodable hashable value) natively.
- ``tuple`` as extension type 1, so a tuple decodes as a tuple (and stays usable as a dict key).
- aware ``datetime`` as a msgpack Timestamp (extension type -1): it decodes as the same
  instant in UTC. A naive datetime is a ``ValueError``: attach a tzinfo.
- attrs instances as extension type 2: their stable type name and a map of field name to value.
  The name is ``"module:qualname"`` unless ``@record("name.v1")`` pins one.
- enum members as extension type 3: their type name (as for attrs classes) and their value.

Only exact builtin types are encoded: a subclass (an ``OrderedDict``, a namedtuple, a ``str``
subclass) is rejected rather than silently decoded as its base, except enums, which are the
one kind of subclass the codec knows.

Decoding builds only *known* types, looked up by name in one process-wide registry: a class is
known once it is decorated with :func:`record`, registered with :meth:`Codec.register` (or
``Codec(types=...)``), or encoded once in this process. Data never names a module to import,
nothing is unpickled, and no code runs but the known classes' own ``__init__``.

Schema evolution: a record decodes by field name. A field the data lacks takes its default (so
a class may gain fields with defaults); a field the class lacks is ignored (so a newer writer
and an older reader can share a store during a rolling deploy; the older reader drops the
field if it re-encodes the value); a field without a default missing from the data is a
:class:`SnapshotDecodeError` naming the class and the field.

Lenient decoding (``decode(..., lenient=True)``), for tools that show stored data without the
program that wrote it (the command line): a record or enum of a type this program does not
know, or a record its class rejects, decodes as an :class:`UnknownRecord` or
:class:`UnknownEnum` holding the stored type name and fields instead of failing. It builds no
more than strict decoding does: still only known classes, still nothing imported.
"""

from __future__ import annotations

import dataclasses
import enum
import reprlib
import threading
from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime
from typing import Any, Final, cast

import attrs
import msgpack

from ._exceptions import SnapshotDecodeError
from ._records import REGISTRY, BadData, qualname, shape_of

__all__ = ["Codec", "UnknownEnum", "UnknownRecord"]

_TUPLE: Final = 1
_RECORD: Final = 2
_ENUM: Final = 3

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1
# A packer that grew past this for one large value is dropped instead of kept in the pool,
# so one big snapshot does not pin its buffer for the life of the thread.
_POOLED_BUFFER_MAX: Final = 1 << 20

# The bytes that start a msgpack array, map or extension (fixmap, fixarray, ext 8/16/32,
# fixext 1-16, array 16/32, map 16/32): every level of nesting begins with one of them.
_NOT_STARTING_NESTING: Final = bytes(
    b for b in range(256) if not (0x80 <= b <= 0x9F or 0xC7 <= b <= 0xC9 or 0xD4 <= b <= 0xDF)
)
_WIDE_TIMESTAMP: Final = b"\xc7\x0c\xff"
_SCALARS: Final = frozenset({type(None), bool, float, bytes, bytearray, memoryview})
_SUPPORTED: Final = (
    "None, bool, int, float, str, bytes, list, tuple, dict, an aware datetime, an enum "
    "or an attrs class"
)


def _ext(code: int, payload: bytes) -> object:
    # ExtType is a namedtuple whose __new__ re-checks its arguments in Python; these are
    # known good, and building the tuple directly keeps records and tuples cheap to encode.
    return tuple.__new__(msgpack.ExtType, (code, payload))


_HEADERS: dict[str, bytes] = {}


def _header(name: str) -> bytes:
    """The start of every payload naming a registered type: a msgpack array of two (the name,
    then the fields or the enum value) and the name, packed once per name."""
    header: bytes = b"\x92" + msgpack.packb(name)
    _HEADERS[name] = header
    return header


# -- what lenient decoding builds -------------------------------------------------------------


@attrs.frozen
class UnknownRecord:
    """A record decoded leniently without building its class: the stored type name (e.g.
    ``"shop.orders:Payment"``) and its fields, in stored order. ``problem`` says why the class
    was not built (not registered in this program, or it rejected the fields)."""

    type_name: str
    fields: tuple[tuple[object, object], ...]
    problem: str = attrs.field(eq=False)

    @property
    def short_name(self) -> str:
        """The class name alone: the part after the module (``"Payment"``)."""
        return self.type_name.rpartition(":")[2].rpartition(".")[2] or self.type_name

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in self.fields)
        return f"{self.short_name}({inner})"


@attrs.frozen
class UnknownEnum:
    """An enum member decoded leniently without building its enum: the stored type name and
    value, and why the enum was not built."""

    type_name: str
    value: object
    problem: str = attrs.field(eq=False)

    def __repr__(self) -> str:
        short = self.type_name.rpartition(":")[2] or self.type_name
        return f"{short}({self.value!r})"


# -- the codec --------------------------------------------------------------------------------


class _Packers(threading.local):
    """Reusable packers for one codec and one thread; the default hook packs nested values
    (a record's fields, a tuple's items) while an outer packer is busy, so it takes another."""

    def __init__(self, default: Callable[[object], object]) -> None:
        self.default = default
        self.free: list[Any] = []

    def new(self) -> Any:
        return msgpack.Packer(
            default=self.default,
            use_bin_type=True,
            strict_types=True,
            datetime=True,
            buf_size=4096,
        )


class Codec:
    """Encodes durable values to bytes and back; one instance may serve every thread.

    ``Codec(types=(), *, max_bytes=64 MiB, max_items=1_000_000, max_depth=64)``: ``types``
    are attrs classes and enums to make known for decoding (see :meth:`register`); the limits
    bound what :meth:`decode` accepts, and :meth:`encode` refuses values that would break them,
    so whatever a codec writes, a codec with the same limits reads back. ``max_items`` bounds
    each list, tuple and dict; ``max_depth`` the nesting of containers and records (a list of
    ints has depth 1). The type registry is process-wide; only the limits belong to a codec.
    """

    __slots__ = ("_max_bytes", "_max_depth", "_max_items", "_packers")

    def __init__(
        self,
        types: Iterable[type[Any]] = (),
        *,
        max_bytes: int = 64 * 1024 * 1024,
        max_items: int = 1_000_000,
        max_depth: int = 64,
    ) -> None:
        for name, value, top in [
            ("max_bytes", max_bytes, None),
            ("max_items", max_items, None),
            ("max_depth", max_depth, 500),
        ]:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Codec({name}=) must be a positive int, got {value!r}")
            if top is not None and value > top:
                # msgpack's own packer and unpacker nest at most ~500 levels deep.
                raise ValueError(f"Codec({name}=) must be at most {top}, got {value!r}")
        self._max_bytes = max_bytes
        self._max_items = max_items
        self._max_depth = max_depth
        self._packers = _Packers(self._default)
        self.register(*types)

    @property
    def max_bytes(self) -> int:
        """The largest encoding, in bytes, this codec writes or reads."""
        return self._max_bytes

    @property
    def max_items(self) -> int:
        """The most items in one list, tuple or dict this codec writes or reads."""
        return self._max_items

    @property
    def max_depth(self) -> int:
        """The deepest nesting of containers and records this codec writes or reads."""
        return self._max_depth

    def __repr__(self) -> str:
        return (
            f"Codec(max_bytes={self._max_bytes}, max_items={self._max_items}, "
            f"max_depth={self._max_depth})"
        )

    @staticmethod
    def register(*types: type[Any]) -> None:
        """Make attrs classes or enums known for decoding, under their pinned name (from
        :func:`record`) or ``"module:qualname"``. Registering a class again does nothing.

        Raises ``TypeError`` for other types and ``ValueError`` if another class has the name.
        """
        for cls in types:
            REGISTRY.register(cls, None)

    # -- encoding -----------------------------------------------------------------------------

    def encode(self, value: object, *, what: str = "value") -> bytes:
        """Encode ``value`` to msgpack bytes.

        ``what`` names the value in error messages and roots their paths (``what="state"``
        reports ``state.items[3]``). Raises ``TypeError`` for a value of a type the codec does
        not encode, and ``ValueError`` for an encodable type with an unencodable value (a
        naive datetime, an int beyond 64 bits) or a value beyond the codec's limits; either
        names the path of the offending value and the fix.
        """
        try:
            data = self._pack(value)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            # A reference cycle through tuples or records ends in a RecursionError.
            kind = TypeError if isinstance(exc, TypeError) else ValueError
            raise self._encode_error(value, what, kind(f"cannot encode {what}: {exc}")) from exc
        if len(data) > self._max_bytes:
            raise self._encode_error(
                value,
                what,
                ValueError(
                    f"{what} encodes to {len(data)} bytes, over the codec's max_bytes="
                    f"{self._max_bytes}: keep large data out of durable values, or raise "
                    "Codec(max_bytes=...)"
                ),
            )
        broken = None
        if not self._surely_within_limits(data):
            broken = _limit_broken(value, self._max_depth, self._max_items)
        if broken is None:
            # msgpack packs aware datetimes itself, even one whose UTC time falls outside
            # years 1 to 9999, which no datetime can decode; only the 96-bit timestamp that
            # starts with these bytes reaches so far.
            if _WIDE_TIMESTAMP not in data or _explain(value, what, 1000, 1 << 62) is None:
                return data
            raise self._encode_error(value, what, ValueError(f"cannot encode {what}"))
        problem, option = broken
        raise self._encode_error(
            value, what, ValueError(f"cannot encode {what}: {problem}: raise Codec({option}=...)")
        )

    def _surely_within_limits(self, data: bytes | bytearray) -> bool:
        """Whether data this small cannot break max_items or max_depth, so the value needs no
        walk: each item takes a byte at least, and each level of nesting one of the bytes
        that can start a container or an extension (and this counts every such byte)."""
        size = len(data)
        if size > self._max_items:
            return False
        if size <= self._max_depth:
            return True
        return len(data.translate(None, _NOT_STARTING_NESTING)) <= self._max_depth

    def _pack(self, obj: object) -> bytes:
        packers = self._packers
        packer = packers.free.pop() if packers.free else packers.new()
        data: bytes = packer.pack(obj)
        if len(data) <= _POOLED_BUFFER_MAX:
            packers.free.append(packer)
        return data

    def _default(self, obj: object) -> object:
        """msgpack's hook for every value it does not pack natively."""
        cls = type(obj)
        if cls is tuple:
            return _ext(_TUPLE, self._pack(list(cast(tuple[object, ...], obj))))
        known = REGISTRY.known(cls)
        if known is not None:
            header = _HEADERS.get(known.name) or _header(known.name)
            if known.shape is None:
                value = cast(enum.Enum, obj).value
                return _ext(_ENUM, header + self._pack(value))
            return _ext(_RECORD, header + self._pack(known.shape.as_map(obj)))
        if isinstance(obj, datetime) and obj.utcoffset() is not None:
            # An aware datetime subclass: msgpack packs only exact datetimes itself.
            delta = obj - _EPOCH
            seconds = delta.days * 86400 + delta.seconds
            return msgpack.Timestamp(seconds, delta.microseconds * 1000)
        # Codec.encode walks the value again to name the offender's path and the fix.
        raise TypeError(f"cannot encode a {qualname(cls)}")

    def _encode_error(self, value: object, what: str, otherwise: Exception) -> Exception:
        """The error naming the path of the first value the codec cannot encode (found by a
        slow walk); ``otherwise`` when there is none, as for a value over max_bytes."""
        found = _explain(value, what, self._max_depth, self._max_items)
        if found is None:
            return otherwise
        kind, message = found
        return kind(message)

    # -- decoding -----------------------------------------------------------------------------

    def decode(
        self, data: bytes | bytearray | memoryview, *, what: str, lenient: bool = False
    ) -> object:
        """Decode bytes written by :meth:`encode`.

        ``what`` describes the data for the error message (``"snapshot of process
        order/1/fulfillment"``). Raises :class:`SnapshotDecodeError` (a ``ValueError``) for
        corrupt or truncated data, data beyond the codec's limits, a record or enum type this
        program has not registered, or a record that cannot be rebuilt; no other exception
        escapes for bad data. Never imports a module or runs code named by the data.

        ``lenient=True`` (for tools that display stored data): a record or enum that strict
        decoding rejects for its type (not registered, or rejecting its fields) decodes as an
        :class:`UnknownRecord` or :class:`UnknownEnum` instead; corrupt data still raises.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"decode() takes bytes, got a {type(data).__name__} for {what}")
        try:
            if isinstance(data, memoryview):
                data = data.tobytes()
            size = len(data)
            if size > self._max_bytes:
                raise BadData(
                    f"it is {size} bytes, over the codec's max_bytes={self._max_bytes}: if "
                    "the data is trusted, raise Codec(max_bytes=...)"
                )
            value = _Decoding(self._max_items, self._max_depth, lenient).unpack(data, size)
            if not self._surely_within_limits(data):
                broken = _limit_broken(value, self._max_depth, self._max_items)
                if broken is not None:
                    problem, option = broken
                    raise BadData(f"{problem}: if the data is trusted, raise Codec({option}=...)")
        except MemoryError:
            raise
        except Exception as exc:
            raise SnapshotDecodeError(f"cannot decode {what}: {_reason(exc)}") from exc
        return value


class _Decoding:
    """One decode call: unpacks with the codec's limits, and tracks how deep the extension
    payloads (tuples, records, enums) nest, each of which is unpacked by a nested call."""

    __slots__ = ("_depth", "_lenient", "_max_depth", "_max_items")

    def __init__(self, max_items: int, max_depth: int, lenient: bool = False) -> None:
        self._max_items = max_items
        self._max_depth = max_depth
        self._lenient = lenient
        self._depth = 0

    def unpack(self, data: bytes | bytearray, size: int) -> object:
        max_items = self._max_items
        value: object = msgpack.unpackb(
            data,
            ext_hook=self.ext_hook,
            raw=False,
            strict_map_key=False,
            timestamp=3,
            # No more items than bytes: msgpack allocates a list as long as its header says.
            max_array_len=size if size < max_items else max_items,
            max_map_len=size // 2 if size // 2 < max_items else max_items,
        )
        return value

    def ext_hook(self, code: int, payload: bytes) -> object:
        if code not in (_TUPLE, _RECORD, _ENUM):
            raise BadData(f"it holds an unknown msgpack extension type {code}")
        if self._depth >= self._max_depth:
            raise BadData(f"it nests deeper than max_depth={self._max_depth}")
        self._depth += 1
        try:
            inner = self.unpack(payload, len(payload))
        finally:
            self._depth -= 1
        if code == _TUPLE:
            if type(inner) is not list:
                raise BadData("a tuple in it is not an array")
            return tuple(inner)
        if type(inner) is not list or len(inner) != 2 or type(inner[0]) is not str:
            raise BadData(f"a {'record' if code == _RECORD else 'enum'} in it is malformed")
        name, body = inner
        if code == _RECORD and type(body) is not dict:
            raise BadData(f"the fields of record {name!r} are not a map")
        try:
            return self._build(code, name, body)
        except BadData as exc:
            if not self._lenient:
                raise
            if code == _RECORD:
                return UnknownRecord(name, tuple(body.items()), str(exc))
            return UnknownEnum(name, body, str(exc))

    @staticmethod
    def _build(code: int, name: str, body: Any) -> object:
        cls = REGISTRY.by_name.get(name)
        if cls is None:
            raise BadData(
                f"it holds a value of type {name!r}, which this program has not registered: "
                f"import the module defining that class before decoding, and pin its name with "
                f"@dur.record({name!r}) if the class moved (or register it with Codec(types=))"
            )
        shape = shape_of(cls)
        if code == _RECORD:
            if shape is None:
                raise BadData(f"type {name!r} is {qualname(cls)}, not an attrs class")
            return shape.build(name, body)
        if not issubclass(cls, enum.Enum):
            raise BadData(f"type {name!r} is {qualname(cls)}, not an enum")
        try:
            return cls(body)
        except Exception as exc:
            raise BadData(f"{reprlib.repr(body)} is not a value of {qualname(cls)}") from exc


def _reason(exc: Exception) -> str:
    """Why decoding failed, for the SnapshotDecodeError message."""
    if isinstance(exc, BadData):
        return str(exc)
    damaged = "the data is corrupt or was not written by this codec"
    if isinstance(exc, msgpack.ExtraData):
        return f"extra bytes follow the encoded value: {damaged}"
    if isinstance(exc, msgpack.StackError):
        return f"it nests deeper than msgpack allows: {damaged}"
    if isinstance(exc, msgpack.FormatError):
        return f"it is not valid msgpack: {damaged}"
    if isinstance(exc, UnicodeDecodeError):
        return f"a string in it is not valid UTF-8: {damaged}"
    message = str(exc)
    if "incomplete input" in message:
        return f"it is truncated: {damaged}"
    if "exceeds max_" in message:
        return (
            f"a container in it holds more items than the codec's max_items: {message}; if "
            "the data is trusted, raise Codec(max_items=...)"
        )
    return f"{type(exc).__name__}: {message}: {damaged}"


# -- limits -----------------------------------------------------------------------------------


# Types whose values never nest, and types that do (containers and attrs classes); both grow
# as the codec meets new types, so the walk below classifies each type once.
_LEAVES: Final[set[type]] = {type(None), bool, int, float, str, bytes, bytearray, datetime}
_NESTS: Final[set[type]] = {list, tuple, dict}


def _nests(cls: type) -> bool:
    if cls in _NESTS:
        return True
    if cls in _LEAVES:
        return False
    nests = shape_of(cls) is not None
    (_NESTS if nests else _LEAVES).add(cls)
    return nests


def _nested(values: Collection[object]) -> list[object]:
    """The values that nest (containers and records) among ``values``."""
    kinds = set(map(type, values))
    nesting = {kind for kind in kinds if _nests(kind)}
    return [value for value in values if type(value) in nesting] if nesting else []


def _too_long(node: object, max_items: int) -> int | None:
    """The length of a list, tuple or dict longer than ``max_items``, else None."""
    if type(node) is list or type(node) is tuple or type(node) is dict:
        return len(node) if len(node) > max_items else None
    return None


def _limit_broken(root: object, max_depth: int, max_items: int) -> tuple[str, str] | None:
    """Which limit ``root`` breaks, as (the problem, the Codec option to raise), or None.

    Breadth first and iterative, so a reference cycle only counts as too deep. Whether a
    container holds anything that nests is a set test run in C over its values' types; only
    then are its values looked at one by one.
    """
    leaves = _LEAVES
    level = [root]
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            return f"it nests deeper than max_depth={max_depth}", "max_depth"
        below: list[object] = []
        for node in level:
            values: Collection[object]
            if type(node) is dict:
                if not leaves.issuperset(map(type, node)):
                    below += _nested(node.keys())
                values = node.values()
            elif type(node) is list or type(node) is tuple:
                values = node
            else:
                shape = shape_of(type(node))
                if shape is None:
                    continue  # the root, when it is not a container
                values = shape.values(node)
            if len(values) > max_items:
                kind = type(node).__name__
                return f"it holds a {kind} of {len(values)} items, over max_items={max_items}", (
                    "max_items"
                )
            if not leaves.issuperset(map(type, values)):
                below += _nested(values)
        level = below
    return None


def _explain(
    root: object, what: str, max_depth: int, max_items: int
) -> tuple[type[Exception], str] | None:
    """Find the first value in ``root`` the codec cannot encode: (error type, message).

    The slow path of :meth:`Codec.encode`, run only after encoding failed: depth first and
    iterative, it tracks each value's path, which the fast path never builds.
    """
    # (value, its path, how many containers and records enclose it)
    stack: list[tuple[object, str, int]] = [(root, what, 0)]
    while stack:
        node, path, enclosing = stack.pop()
        nests = _nests(type(node))
        if nests and enclosing >= max_depth:
            if len(path) > 120:  # a cycle's path repeats itself: show its ends
                path = f"{path[:60]}...{path[-40:]}"
            return ValueError, (
                f"{path} nests deeper than the codec's max_depth={max_depth} (or is part of "
                "a reference cycle): flatten the data, or raise Codec(max_depth=...)"
            )
        length = _too_long(node, max_items)
        if length is not None:
            return ValueError, (
                f"{path} holds {length} items, over the codec's max_items={max_items}: "
                "split it, or raise Codec(max_items=...)"
            )
        found = _check_one(node, path)
        if isinstance(found, tuple):
            return found
        depth = enclosing + 1 if nests else enclosing
        stack.extend((value, path + suffix, depth) for value, suffix in reversed(found))
    return None


_Checked = tuple[type[Exception], str] | list[tuple[object, str]]


def _check_one(node: object, path: str) -> _Checked:
    """Check one value alone: a problem, or its nested values with their path suffixes."""
    if type(node) in _SCALARS:
        return []
    if type(node) is int:
        if _INT_MIN <= node <= _INT_MAX:
            return []
        return ValueError, (
            f"{path} is an int of {node.bit_length()} bits, beyond msgpack's range of -2**63 "
            "to 2**64 - 1: store it as a str"
        )
    if type(node) is str:
        try:
            node.encode()
        except UnicodeEncodeError:
            return ValueError, f"{path} is a str that is not valid UTF-8: remove lone surrogates"
        return []
    if isinstance(node, datetime):
        return _check_datetime(node, path)
    if type(node) is dict:
        found: list[tuple[object, str]] = []
        for key, value in node.items():
            shown = reprlib.repr(key)
            found += [(key, f" key {shown}"), (value, f"[{shown}]")]
        return found
    if type(node) is list or type(node) is tuple:
        return [(value, f"[{index}]") for index, value in enumerate(node)]
    return _check_typed(node, path)


def _check_datetime(node: datetime, path: str) -> _Checked:
    if node.utcoffset() is None:
        return ValueError, (
            f"{path} is a naive datetime: attach a tzinfo, e.g. "
            "value.replace(tzinfo=datetime.timezone.utc)"
        )
    try:
        node.astimezone(UTC)
    except OverflowError:
        return ValueError, f"{path} is a datetime whose UTC time falls outside years 1 to 9999"
    return []


def _check_typed(node: object, path: str) -> _Checked:
    cls = type(node)
    try:
        known = REGISTRY.known(cls)
    except ValueError as exc:
        return ValueError, f"{path}: {exc}"
    if known is not None:
        if known.shape is None:
            return [(cast(enum.Enum, node).value, ".value")]
        return [(value, f".{name}") for name, value in known.shape.as_map(node).items()]
    for base in (dict, list, tuple, str, bytes, int, float):
        if isinstance(node, base):
            return TypeError, (
                f"{path} is a {qualname(cls)}, a subclass of {base.__name__}, and the codec "
                f"encodes only exact builtin types: convert it with {base.__name__}(...), or "
                "use an attrs class"
            )
    hint = " (dataclasses are not supported)" if dataclasses.is_dataclass(node) else ""
    return TypeError, (
        f"{path} is a {qualname(cls)}, which the codec cannot encode{hint}: use {_SUPPORTED} "
        "(an attrs class is registered when first encoded; pin its name with @dur.record)"
    )

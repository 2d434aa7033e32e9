"""How the command line shows stored processes: tables, timelines and JSON.

Stored values are decoded leniently (``Codec.decode(..., lenient=True)``): the command line
runs without the program's definitions, so a record of a class it does not know shows as its
type name and fields (an ``UnknownRecord``), and data it cannot decode at all shows as a note
saying why; showing never fails and never imports or runs anything named by the data.
"""

from __future__ import annotations

import base64
import enum
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, cast

import attrs

from ._codec import Codec, UnknownEnum, UnknownRecord
from ._exceptions import SnapshotDecodeError
from ._process import KIND as PROCESS_KIND
from ._process import RETRY_MARK
from ._records import REGISTRY
from ._store import JournalEntry, LoadedProcess, ProcessRecord, SignalRecord

CODEC: Final = Codec()
SHORT: Final = 80
"""The widest rendering of one value in a table or a timeline."""


@attrs.frozen
class Undecodable:
    """Stored bytes that could not be decoded, even leniently (corrupt or truncated)."""

    reason: str

    def __repr__(self) -> str:
        return f"<undecodable: {self.reason}>"


def decode(data: bytes | None, what: str) -> object:
    """Stored bytes decoded leniently; ``Undecodable`` (never an exception) if that fails."""
    if data is None:
        return None
    try:
        return CODEC.decode(data, what=what, lenient=True)
    except SnapshotDecodeError as exc:
        return Undecodable(str(exc).removeprefix(f"cannot decode {what}: "))


# -- times ------------------------------------------------------------------------------------


def when(seconds: float | None) -> str:
    """A store time (POSIX seconds) for people: ``2026-01-05 12:00:03Z`` (UTC)."""
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def when_exactly(seconds: float) -> str:
    """With milliseconds, for timelines: ``2026-01-05 12:00:03.512Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def iso(seconds: float | None) -> str | None:
    """A store time for JSON: ISO 8601 in UTC."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


# -- values as text ---------------------------------------------------------------------------


def short(value: object, width: int = SHORT) -> str:
    """A one-line rendering of a decoded value, cut to ``width`` characters."""
    text = _text(value, 6)
    return text if len(text) <= width else text[: width - 1] + "…"


def _text(value: object, depth: int) -> str:
    if depth == 0:
        return "…"
    inner = depth - 1
    if isinstance(value, UnknownRecord):
        fields = ", ".join(f"{name}={_text(v, inner)}" for name, v in value.fields)
        return f"{value.short_name}({fields})"
    if isinstance(value, UnknownEnum | Undecodable):
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, datetime):
        return value.isoformat()
    if type(value) is list:
        return "[" + ", ".join(_text(item, inner) for item in value) + "]"
    if type(value) is tuple:
        items = [_text(item, inner) for item in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if type(value) is dict:
        pairs = (f"{_text(k, inner)}: {_text(v, inner)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    if attrs.has(type(value)):  # a known record: its fields, not its own __repr__
        fields = ", ".join(
            f"{f.name}={_text(getattr(value, f.name), inner)}" for f in _fields(value)
        )
        return f"{type(value).__name__}({fields})"
    return repr(value)


def params_text(params: dict[str, str]) -> str:
    return " ".join(f"{name}={value}" for name, value in params.items()) or "-"


# -- values as JSON ---------------------------------------------------------------------------


def jsonable(value: object) -> Any:
    """A decoded value as JSON data: records as objects with a ``"$type"`` key, enums as
    ``{"$enum": name, "value": ...}``, bytes as ``{"$bytes": base64}``, datetimes as ISO
    strings, tuples as arrays, non-finite floats as strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {_key(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, UnknownRecord):
        return {"$type": value.type_name, **{_key(k): jsonable(v) for k, v in value.fields}}
    if isinstance(value, UnknownEnum):
        return {"$enum": value.type_name, "value": jsonable(value.value)}
    if isinstance(value, Undecodable):
        return {"$undecodable": value.reason}
    if isinstance(value, enum.Enum):
        return {"$enum": _type_name(type(value)), "value": jsonable(value.value)}
    if attrs.has(type(value)):
        fields = {f.name: jsonable(getattr(value, f.name)) for f in _fields(value)}
        return {"$type": _type_name(type(value)), **fields}
    return repr(value)


def _fields(value: object) -> tuple[attrs.Attribute[Any], ...]:
    return tuple(attrs.fields(cast(Any, type(value))))


def _key(key: object) -> str:
    return key if isinstance(key, str) else short(key)


def _type_name(cls: type) -> str:
    known = REGISTRY.by_class.get(cls)
    return known.name if known is not None else f"{cls.__module__}:{cls.__qualname__}"


# -- processes --------------------------------------------------------------------------------


def note(record: ProcessRecord) -> str:
    """What a listing says about a process: its error, or what it waits on."""
    if record.error is not None:  # failed (a retried one may keep its last_error too)
        return f"failed: {record.error}"
    if record.last_error is not None:
        return f"error: {record.last_error}"
    return record.waiting_on or ""


def record_json(record: ProcessRecord) -> dict[str, Any]:
    return {
        "id": record.id, "kind": record.kind, "path": record.path,
        "params": dict(record.params), "status": record.status.value,
        "waiting_on": record.waiting_on, "error": record.error,
        "last_error": record.last_error, "last_error_at": iso(record.last_error_at),
        "created_at": iso(record.created_at), "updated_at": iso(record.updated_at),
        "due_at": iso(record.due_at), "lease_owner": record.lease_owner,
        "lease_until": iso(record.lease_until), "attempts": record.attempts,
        "journal_length": record.journal_length,
    }  # fmt: skip


def table(rows: Sequence[Sequence[str]], *, last_width: int = 70) -> list[str]:
    """Left-aligned columns; the last one cut to ``last_width`` characters."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        last = row[-1] if len(row[-1]) <= last_width else row[-1][: last_width - 1] + "…"
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, last]).rstrip())
    return lines


def listing(records: Iterable[ProcessRecord]) -> list[str]:
    rows = [("ID", "STATUS", "UPDATED (UTC)", "WAITING ON / ERROR")]
    rows += [(r.id, r.status.value, when(r.updated_at), note(r)) for r in records]
    return table(rows)


# -- one process --------------------------------------------------------------------------------


@attrs.frozen
class EntryView:
    """A journal entry as ``show`` presents it."""

    entry: JournalEntry
    summary: str
    detail: Any
    """The decoded payload as JSON data (signal data decoded too)."""


def entry_view(process_id: str, entry: JournalEntry) -> EntryView:
    payload = decode(entry.payload, f"journal entry {entry.seq} of {process_id}")
    kind = entry.kind
    if isinstance(payload, dict) and kind in ("signal", "race") and "s" in payload:
        data = payload.get("d")
        what = f"signal #{payload['s']} in journal entry {entry.seq} of {process_id}"
        payload = {**payload, "d": decode(data, what) if isinstance(data, bytes) else data}
    return EntryView(entry, _summary(kind, entry.name, payload), jsonable(payload))


def _summary(kind: str, name: str, payload: Any) -> str:
    if isinstance(payload, Undecodable):
        return repr(payload)
    if kind in ("step", "retried") and isinstance(payload, dict):
        if "e" in payload:
            return f"failed: {payload['e']}"
        return f"-> {short(payload.get('v'))}"
    if kind == "signal" and isinstance(payload, dict):
        return _signal_text(payload)
    if kind == "race" and isinstance(payload, dict):
        arms = name.split(" | ")
        index = payload.get("i")
        arm = arms[index] if isinstance(index, int) and 0 <= index < len(arms) else f"arm {index}"
        if "s" not in payload:
            return f"won by {arm} (timed out)" if arm == "delay" else f"won by {arm}"
        return f"won by {arm}: {_signal_text(payload)}"
    if kind == "deadline" and isinstance(payload, list):
        times = [when_exactly(t) for t in payload if isinstance(t, int | float)]
        return "until " + ", ".join(times) if times else short(payload)
    if kind == RETRY_MARK and isinstance(payload, dict):
        return f"retried after: {payload.get('error')}"
    return "" if payload is None else short(payload)


def _signal_text(payload: dict[str, Any]) -> str:
    params = payload.get("p")
    text = f"#{payload.get('s')}"
    if isinstance(params, dict) and params:
        text += " " + " ".join(f"{k}={v}" for k, v in params.items())
    if payload.get("d") is not None:
        text += f" data={short(payload['d'])}"
    return text


def inbox_json(process_id: str, signal: SignalRecord) -> dict[str, Any]:
    data = decode(signal.payload, f"signal #{signal.seq} in the inbox of {process_id}")
    return {
        "seq": signal.seq, "name": signal.name, "params": dict(signal.params),
        "data": jsonable(data), "idempotency_key": signal.idempotency_key,
        "created_at": iso(signal.created_at),
    }  # fmt: skip


def show_json(loaded: LoadedProcess) -> dict[str, Any]:
    record = loaded.process
    what = f"of {record.kind} {record.id}"
    views = [entry_view(record.id, entry) for entry in loaded.journal]
    return {
        **record_json(record),
        "input": jsonable(decode(record.input, f"input {what}")),
        "state": jsonable(decode(record.snapshot, f"snapshot {what}")),
        "result": jsonable(decode(record.result, f"result {what}")),
        "waits": list(loaded.waits),
        "timers": [{"id": t.timer_id, "fire_at": iso(t.fire_at)} for t in loaded.timers],
        "inbox": [inbox_json(record.id, signal) for signal in loaded.inbox],
        "journal": [_entry_json(view) for view in views],
    }


def _entry_json(view: EntryView) -> dict[str, Any]:
    entry = view.entry
    return {
        "seq": entry.seq, "at": iso(entry.at), "kind": entry.kind, "name": entry.name,
        "summary": view.summary, "payload": view.detail,
    }  # fmt: skip


def show_text(loaded: LoadedProcess) -> list[str]:
    record = loaded.process
    what = f"of {record.kind} {record.id}"
    lines = [f"{record.id}  ({record.kind} {record.path})"]

    def field(label: str, value: str) -> None:
        lines.append(f"  {label:<11} {value}")

    field("status", record.status.value)
    field("params", params_text(record.params))
    if record.input is not None:
        field("input", short(decode(record.input, f"input {what}"), 200))
    if record.snapshot is not None:
        field("state", short(decode(record.snapshot, f"snapshot {what}"), 200))
    if record.waiting_on is not None:
        field("waiting on", record.waiting_on)
    for timer in loaded.timers:
        field("timer", f"fires at {when_exactly(timer.fire_at)}")
    if record.last_error is not None:
        field("last error", f"{record.last_error} (at {when(record.last_error_at)})")
    if record.error is not None:
        field("error", record.error)
    if record.result is not None:
        field("result", short(decode(record.result, f"result {what}"), 200))
    field("created", when(record.created_at))
    field("updated", when(record.updated_at))
    if record.lease_owner is not None:
        field("leased to", f"{record.lease_owner} until {when(record.lease_until)}")
    for signal in loaded.inbox:
        data = decode(signal.payload, f"signal #{signal.seq} in the inbox of {record.id}")
        shown = "" if data is None else f" data={short(data)}"
        field("inbox", f"#{signal.seq} {signal.name} {params_text(signal.params)}{shown}")
    if record.kind == PROCESS_KIND or loaded.journal:
        count = len(loaded.journal)
        lines += ["", f"journal ({count} {'entry' if count == 1 else 'entries'})"]
        if loaded.journal:
            rows = [("SEQ", "TIME (UTC)", "KIND", "NAME", "")]
            for entry in loaded.journal:
                view = entry_view(record.id, entry)
                rows.append((str(entry.seq), when_exactly(entry.at), entry.kind, entry.name,
                             view.summary))  # fmt: skip
            lines += ["  " + line for line in table(rows, last_width=100)]
    return lines

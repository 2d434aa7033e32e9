"""The SQLite store's operations: each runs in the writer thread, inside its own savepoint.

Each returns its result (and, for writes, whether it may change what a claim returns); the
store (``_sqlite.py``) hands them to the writer (``_sqlite_writer.py``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import attrs

from ._common import (
    NO_CHANGE,
    OBSERVED,
    WORK,
    change_level,
    check_commit,
    due_at,
    lease_lost_message,
    pick,
)
from ._errors import LeaseLost, StoreError
from ._lease import owner_is_dead
from ._protocol import (
    ANY_SIGNAL,
    FINISHED,
    KEEP,
    NEW_SIGNAL,
    ClaimBatch,
    Commit,
    CommitResult,
    EmitResult,
    JournalEntry,
    LoadedProcess,
    NewProcess,
    NewSignal,
    ProcessRecord,
    SignalRecord,
    Status,
    Timer,
)

COLUMNS = (
    "id, kind, path, params, status, input, snapshot, journal_length, waiting_on, due_at, "
    "lease_owner, lease_until, lease_epoch, attempts, result, error, last_error, "
    "last_error_at, created_at, updated_at, cancel_requested"
)
_SIGNAL_COLUMNS = "s.seq, s.name, s.params, s.payload, s.idempotency_key, s.created_at"
_FINISHED_SQL = "(" + ", ".join(f"'{status.value}'" for status in sorted(FINISHED)) + ")"
UNFINISHED = f"status NOT IN {_FINISHED_SQL}"
_LIVE_LEASE = (
    "(lease_owner IS NOT NULL AND lease_until >= :now AND NOT actorkit_owner_dead(lease_owner))"
)


def owner_dead_sql(owner: str | None) -> int:
    return int(owner is not None and owner_is_dead(owner))


def _params_json(params: dict[str, str]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def record_from_row(row: Sequence[object]) -> ProcessRecord:
    values = list(row)
    values[3] = json.loads(str(values[3]))
    values[4] = Status(str(values[4]))
    values[20] = bool(values[20])
    return ProcessRecord(*values)  # type: ignore[arg-type]


def _signal(row: Sequence[object]) -> SignalRecord:
    seq, name, params, payload, key, created_at = row
    return SignalRecord(
        seq=int(seq),  # type: ignore[call-overload]
        name=str(name),
        params=json.loads(str(params)),
        payload=payload,  # type: ignore[arg-type]
        idempotency_key=key,  # type: ignore[arg-type]
        created_at=created_at,  # type: ignore[arg-type]
    )


def get_process(connection: sqlite3.Connection, process_id: str) -> ProcessRecord | None:
    row = connection.execute(f"SELECT {COLUMNS} FROM process WHERE id = ?", (process_id,))
    found = row.fetchone()
    return None if found is None else record_from_row(found)


def load_process(connection: sqlite3.Connection, process_id: str) -> LoadedProcess | None:
    record = get_process(connection, process_id)
    if record is None:
        return None
    journal = connection.execute(
        "SELECT seq, kind, name, payload, at FROM journal WHERE process_id = ? ORDER BY seq",
        (process_id,),
    )
    inbox = connection.execute(
        f"SELECT {_SIGNAL_COLUMNS} FROM inbox i JOIN signal s ON s.seq = i.signal_seq "
        "WHERE i.process_id = ? ORDER BY i.signal_seq",
        (process_id,),
    )
    waits = connection.execute(
        "SELECT name FROM wait WHERE process_id = ? ORDER BY name", (process_id,)
    )
    timers = connection.execute(
        "SELECT timer_id, fire_at FROM timer WHERE process_id = ? ORDER BY fire_at, timer_id",
        (process_id,),
    )
    return LoadedProcess(
        process=record,
        journal=tuple(JournalEntry(*row) for row in journal),
        inbox=tuple(_signal(row) for row in inbox),
        waits=tuple(row[0] for row in waits),
        timers=tuple(Timer(*row) for row in timers),
    )


def create_process(
    connection: sqlite3.Connection,
    new: NewProcess,
    now: float,
    owner: str | None,
    lease_for: float,
    read_back: bool = True,
) -> tuple[tuple[ProcessRecord | None, bool], int]:
    """Insert the process unless its id exists; ((the stored row, or None without
    ``read_back``), created), changed."""
    leased = owner is not None
    cursor = connection.execute(
        "INSERT INTO process (id, kind, path, params, status, input, snapshot, due_at, "
        "lease_owner, lease_until, lease_epoch, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (
            new.id,
            new.kind,
            new.path,
            _params_json(new.params),
            new.status.value,
            new.input,
            new.snapshot,
            None if new.status in FINISHED else new.due_at,
            owner,
            now + lease_for if leased else None,
            1 if leased else 0,
            now if new.created_at is None else new.created_at,
            now,
        ),
    )
    created = cursor.rowcount == 1
    if created:
        connection.executemany(
            "INSERT INTO process_param (process_id, key, value) VALUES (?, ?, ?)",
            [(new.id, key, value) for key, value in new.params.items()],
        )
    record = get_process(connection, new.id) if read_back or not created else None
    if not created:
        return (record, created), NO_CHANGE
    claimable = new.due_at is not None and owner is None and new.status not in FINISHED
    return (record, created), WORK if claimable else OBSERVED


def commit_process(
    connection: sqlite3.Connection, commit: Commit, now: float
) -> tuple[CommitResult, int]:
    pid = commit.process_id
    row = connection.execute(
        f"SELECT {COLUMNS}, (SELECT min(fire_at) FROM timer WHERE process_id = :id), "
        "EXISTS (SELECT 1 FROM wait WHERE process_id = :id) FROM process WHERE id = :id",
        {"id": pid},
    ).fetchone()
    before = None if row is None else record_from_row(row[:-2])
    if before is None or before.lease_epoch != commit.epoch:
        raise LeaseLost(lease_lost_message(commit, None if before is None else before.lease_epoch))
    problem = check_commit(pid, before.journal_length, commit)
    if problem is not None:
        raise StoreError(problem)
    first_timer, has_waits = row[-2], bool(row[-1])
    for seq in commit.consume:
        deleted = connection.execute(
            "DELETE FROM inbox WHERE process_id = ? AND signal_seq = ?", (pid, seq)
        )
        if deleted.rowcount != 1:
            raise StoreError(f"signal {seq} is not in the inbox of {pid!r}")
    if commit.journal:
        connection.executemany(
            "INSERT INTO journal (process_id, seq, kind, name, payload, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(pid, e.seq, e.kind, e.name, e.payload, e.at) for e in commit.journal],
        )
    if commit.waits is not KEEP:
        has_waits = bool(commit.waits)
        connection.execute("DELETE FROM wait WHERE process_id = ?", (pid,))
        connection.executemany(
            "INSERT INTO wait (process_id, name) VALUES (?, ?)",
            [(pid, name) for name in sorted(set(commit.waits))],
        )
    if commit.timers is not KEEP:
        first_timer = min((timer.fire_at for timer in commit.timers), default=None)
        connection.execute("DELETE FROM timer WHERE process_id = ?", (pid,))
        connection.executemany(
            "INSERT INTO timer (process_id, timer_id, fire_at) VALUES (?, ?, ?)",
            [(pid, timer.timer_id, timer.fire_at) for timer in commit.timers],
        )
    status = pick(commit.status, before.status)
    fields: dict[str, Any] = {
        "status": status,
        "snapshot": pick(commit.snapshot, before.snapshot),
        "waiting_on": pick(commit.waiting_on, before.waiting_on),
        "attempts": pick(commit.attempts, before.attempts),
        "result": pick(commit.result, before.result),
        "error": pick(commit.error, before.error),
        "last_error": pick(commit.last_error, before.last_error),
        "last_error_at": pick(commit.last_error_at, before.last_error_at),
        "journal_length": before.journal_length + len(commit.journal),
        "updated_at": now,
    }
    ready: tuple[SignalRecord, ...] = ()
    if status in FINISHED:
        for table in ("wait", "timer", "inbox"):
            connection.execute(f"DELETE FROM {table} WHERE process_id = ?", (pid,))
        fields.update(due_at=None, lease_owner=None, lease_until=None)
    emitted: tuple[EmitResult, ...] = ()
    if commit.emit:
        # Emits come after the rest of the commit: write the new status first, so routing
        # sees it (a signal this process emits may reach itself).
        _write(connection, attrs.evolve(before, **fields))
        emitted = tuple(emit_signal(connection, signal, now) for signal in commit.emit)
    if status not in FINISHED:
        if has_waits:
            ready = _ready(connection, pid)
        timers = () if first_timer is None else (Timer("", first_timer),)
        fields["due_at"] = due_at(
            pick(commit.due_at, before.due_at), timers, now if ready else None
        )
        if commit.release and not ready:
            fields.update(lease_owner=None, lease_until=None)
    after = attrs.evolve(before, **fields)
    _write(connection, after)
    change = change_level(before, after)
    if any(result.woken for result in emitted):
        change = WORK
    elif any(result.delivered_to for result in emitted):
        change = max(change, OBSERVED)
    return CommitResult(process=after, ready=ready, emitted=emitted), change


def _write(connection: sqlite3.Connection, record: ProcessRecord) -> None:
    """Write a process row's mutable fields."""
    connection.execute(
        "UPDATE process SET status = ?, snapshot = ?, waiting_on = ?, due_at = ?, "
        "lease_owner = ?, lease_until = ?, attempts = ?, result = ?, error = ?, "
        "last_error = ?, last_error_at = ?, journal_length = ?, updated_at = ? WHERE id = ?",
        (
            record.status.value,
            record.snapshot,
            record.waiting_on,
            record.due_at,
            record.lease_owner,
            record.lease_until,
            record.attempts,
            record.result,
            record.error,
            record.last_error,
            record.last_error_at,
            record.journal_length,
            record.updated_at,
            record.id,
        ),
    )


def _ready(connection: sqlite3.Connection, process_id: str) -> tuple[SignalRecord, ...]:
    rows = connection.execute(
        f"SELECT {_SIGNAL_COLUMNS} FROM inbox i JOIN signal s ON s.seq = i.signal_seq "
        "WHERE i.process_id = :pid AND EXISTS (SELECT 1 FROM wait w WHERE "
        "w.process_id = :pid AND (w.name = i.name OR w.name = :any)) ORDER BY i.signal_seq",
        {"pid": process_id, "any": ANY_SIGNAL},
    )
    return tuple(_signal(row) for row in rows)


def emit_signal(connection: sqlite3.Connection, signal: NewSignal, now: float) -> EmitResult:
    key = signal.idempotency_key
    if key is not None:
        seen = connection.execute(
            "SELECT seq, reached FROM signal WHERE idempotency_key = ?", (key,)
        ).fetchone()
        if seen is not None:
            return EmitResult(int(seen[0]), int(seen[1]), (), (), duplicate=True)
    cursor = connection.execute(
        "INSERT INTO signal (name, params, payload, idempotency_key, reached, created_at) "
        "VALUES (?, ?, ?, ?, 0, ?)",
        (signal.name, _params_json(signal.params), signal.payload, key, now),
    )
    seq = cursor.lastrowid
    assert seq is not None
    args: list[object] = [seq, signal.name]
    match = ""
    if signal.params:
        pairs = " OR ".join(["(key = ? AND value = ?)"] * len(signal.params))
        match = (
            f" AND id IN (SELECT process_id FROM process_param WHERE {pairs} "
            "GROUP BY process_id HAVING count(*) = ?)"
        )
        for item in signal.params.items():
            args.extend(item)
        args.append(len(signal.params))
    connection.execute(
        "INSERT INTO inbox (process_id, signal_seq, name) "
        f"SELECT id, ?, ? FROM process WHERE {UNFINISHED}{match}",
        args,
    )
    reached = tuple(
        row[0]
        for row in connection.execute(
            "SELECT process_id FROM inbox WHERE signal_seq = ? ORDER BY process_id", (seq,)
        )
    )
    woken: tuple[str, ...] = ()
    if reached:
        waiting = (
            "SELECT DISTINCT w.process_id FROM inbox i JOIN wait w ON w.process_id = "
            "i.process_id WHERE i.signal_seq = :seq AND w.name IN (:name, :any, :new)"
        )
        names = {"seq": seq, "name": signal.name, "any": ANY_SIGNAL, "new": NEW_SIGNAL, "now": now}
        woken = tuple(sorted(row[0] for row in connection.execute(waiting, names)))
        connection.execute(
            f"UPDATE process SET due_at = :now WHERE id IN ({waiting}) "
            "AND (due_at IS NULL OR due_at > :now)",
            names,
        )
        connection.execute("UPDATE signal SET reached = ? WHERE seq = ?", (len(reached), seq))
    return EmitResult(seq, len(reached), reached, woken)


def claim_processes(
    connection: sqlite3.Connection,
    owner: str,
    now: float,
    lease_for: float,
    limit: int,
    ids: list[str] | None,
    paths: list[str] | None = None,
) -> ClaimBatch:
    free: dict[str, object] = {"now": now}
    only = ""
    if paths is not None:
        only = "AND path IN (" + ", ".join(f":path{i}" for i in range(len(paths))) + ") "
        free.update({f"path{i}": path for i, path in enumerate(paths)})
    if ids is None:
        rows = connection.execute(
            f"SELECT id FROM process WHERE due_at IS NOT NULL AND due_at <= :now {only}"
            f"AND NOT {_LIVE_LEASE} ORDER BY due_at, id LIMIT :limit",
            {**free, "limit": max(limit, 0)},
        )
        chosen = [row[0] for row in rows]
    else:
        chosen = []
        for pid in ids:
            row = connection.execute(
                f"SELECT 1 FROM process WHERE id = :id AND NOT {_LIVE_LEASE}", {**free, "id": pid}
            ).fetchone()
            if row is not None:
                chosen.append(pid)
    connection.executemany(
        "UPDATE process SET lease_owner = ?, lease_until = ?, lease_epoch = lease_epoch + 1 "
        "WHERE id = ?",
        [(owner, now + lease_for, pid) for pid in chosen],
    )
    claimed = []
    for pid in chosen:
        loaded = load_process(connection, pid)
        assert loaded is not None
        claimed.append(loaded)
    next_due = connection.execute(
        f"SELECT min(CASE WHEN {_LIVE_LEASE} THEN max(due_at, lease_until) ELSE due_at END) "
        f"FROM process WHERE due_at IS NOT NULL {only}"
        "AND (lease_owner IS NULL OR lease_owner != :owner)",
        {**free, "owner": owner},
    ).fetchone()[0]
    return ClaimBatch(claimed=tuple(claimed), next_due_at=next_due)


def purge_processes(connection: sqlite3.Connection, before: float) -> int:
    doomed = f"SELECT id FROM process WHERE status IN {_FINISHED_SQL} AND updated_at < ?"
    for table in ("journal", "inbox", "wait", "timer", "process_param"):
        connection.execute(f"DELETE FROM {table} WHERE process_id IN ({doomed})", (before,))
    count = connection.execute(
        f"DELETE FROM process WHERE status IN {_FINISHED_SQL} AND updated_at < ?", (before,)
    ).rowcount
    connection.execute(
        "DELETE FROM signal WHERE created_at < ? "
        "AND NOT EXISTS (SELECT 1 FROM inbox WHERE inbox.signal_seq = signal.seq)",
        (before,),
    )
    return count


def request_cancel(
    connection: sqlite3.Connection, process_id: str, now: float
) -> tuple[ProcessRecord | None, int]:
    changed = connection.execute(
        f"UPDATE process SET cancel_requested = 1, updated_at = ? WHERE id = ? AND {UNFINISHED} "
        "AND cancel_requested = 0",
        (now, process_id),
    ).rowcount
    return get_process(connection, process_id), WORK if changed else NO_CHANGE

"""SQLiteStore: the store protocol on one SQLite file (the embedded default).

Each call is one job for the writer thread (``_sqlite_writer.py``): it runs inside a
``BEGIN IMMEDIATE`` transaction, in its own savepoint, batched with whatever other calls were
already queued (group commit). ``BEGIN IMMEDIATE`` takes the file's write lock before reading,
so emit and park (a commit that registers waits) serialise across threads and processes and a
wake-up is never lost. Several store objects and processes may share one file; the claim/lease
protocol decides who runs what.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Collection
from pathlib import Path
from typing import Literal, Self, TypeVar

import attrs
import trio

from ._common import NO_CHANGE, OBSERVED, WORK, ChangeCounters
from ._errors import StoreClosed, StoreError
from ._protocol import (
    ClaimBatch,
    Commit,
    CommitResult,
    EmitResult,
    LoadedProcess,
    NewProcess,
    NewSignal,
    ProcessRecord,
    Status,
    StoreStatistics,
)
from ._sqlite_ops import (
    COLUMNS,
    UNFINISHED,
    claim_processes,
    commit_process,
    create_process,
    emit_signal,
    get_process,
    load_process,
    owner_dead_sql,
    purge_processes,
    record_from_row,
    request_cancel,
)
from ._sqlite_schema import migrate
from ._sqlite_writer import Operation, Writer, WriterCounters

T = TypeVar("T")
Synchronous = Literal["FULL", "NORMAL"]


class SQLiteStore:
    """The store protocol on a SQLite file: ``async with SQLiteStore("app.db") as store:``.

    - WAL journal; ``synchronous="FULL"`` (the default) fsyncs every commit, so an
      acknowledged call survives power loss. ``synchronous="NORMAL"`` is an opt-in that
      fsyncs only at WAL checkpoints: still safe against a crash of the program (kill -9), but
      the last commits may be lost if the machine loses power.
    - One writer thread owns the connection; calls queued together commit together (each in
      its own savepoint, one fsync). Reads go through the same thread (see the writer).
    - ``busy_timeout`` (seconds): how long a call waits for another process's write lock
      before it fails with ``StoreError``.
    - ``poll_interval`` (seconds): how often the idle writer checks for commits by other
      connections to wake ``wait_for_change``.

    Opening creates the file and migrates its schema (``SchemaVersionError`` if the file is
    newer than this code). ``async with`` is re-entrant; the last exit closes the connection.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = 10.0,
        poll_interval: float = 0.05,
        max_batch: int = 512,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', not {synchronous!r}")
        self.path = Path(path)
        self.synchronous: Synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._poll_interval = poll_interval
        self._max_batch = max_batch
        self._counters = WriterCounters()
        self._writer: Writer | None = None
        self._depth = 0
        self._counts = ChangeCounters()
        self._opening = trio.Lock()

    def __repr__(self) -> str:
        return f"<SQLiteStore {str(self.path)!r} synchronous={self.synchronous}>"

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        async with self._opening:  # two tasks entering at once start one writer
            if self._depth == 0:
                writer = Writer(
                    self._connect,
                    describe=repr(str(self.path)),
                    counters=self._counters,
                    on_change=self._bump,
                    poll_interval=self._poll_interval,
                    max_batch=self._max_batch,
                )
                await writer.start(self._setup)
                self._writer = writer
            self._depth += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close one ``async with`` level; the last one finishes queued calls and closes."""
        if self._depth == 0:
            await trio.lowlevel.checkpoint()
            return
        self._depth -= 1
        if self._depth == 0 and self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.stop()
        else:
            await trio.lowlevel.checkpoint()

    def _connect(self) -> sqlite3.Connection:
        directory = self.path.parent
        if not directory.is_dir():
            raise StoreError(
                f"cannot open the SQLite store {str(self.path)!r}: the directory "
                f"{str(directory)!r} does not exist; create it first"
            )
        connection = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=True
        )
        try:
            mode = _set_wal(connection, self._busy_timeout)
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"the SQLite store {str(self.path)!r} cannot use WAL (journal_mode is "
                    f"{mode}); put it on a local file system"
                )
            connection.execute(f"PRAGMA synchronous={self.synchronous}")
            connection.create_function("actorkit_owner_dead", 1, owner_dead_sql)
        except BaseException:
            connection.close()
            raise
        return connection

    def _setup(self, connection: sqlite3.Connection) -> tuple[None, bool]:
        migrate(connection, repr(str(self.path)))
        return None, False

    async def _call(self, body: Operation[T], *, write: bool = True) -> T:
        writer = self._writer
        if writer is None:
            await trio.lowlevel.checkpoint()
            raise StoreClosed(f"the SQLite store {str(self.path)!r} is not open: use `async with`")
        return await writer.call(body, write=write)

    # -- the protocol --------------------------------------------------------------------------

    async def create(
        self, new: NewProcess, *, now: float, owner: str | None = None, lease_for: float = 0.0
    ) -> tuple[ProcessRecord, bool]:
        def body(connection: sqlite3.Connection) -> tuple[tuple[ProcessRecord, bool], int]:
            (record, created), changed = create_process(connection, new, now, owner, lease_for)
            assert record is not None
            return (record, created), changed

        return await self._call(body)

    async def create_committed(
        self, new: NewProcess, commit: Commit, *, now: float, owner: str, lease_for: float
    ) -> CommitResult | None:
        if commit.process_id != new.id or commit.epoch != 1:
            raise StoreError(
                f"create_committed({new.id!r}): the commit must be for that process at epoch 1"
            )

        def body(connection: sqlite3.Connection) -> tuple[CommitResult | None, int]:
            (_, created), _ = create_process(
                connection, new, now, owner, lease_for, read_back=False
            )
            if not created:
                return None, NO_CHANGE
            result, change = commit_process(connection, commit, now)
            return result, max(change, OBSERVED)

        return await self._call(body)

    async def request_cancel(self, process_id: str, *, now: float) -> ProcessRecord | None:
        return await self._call(lambda c: request_cancel(c, process_id, now))

    async def get(self, process_id: str) -> ProcessRecord | None:
        return await self._call(lambda c: (get_process(c, process_id), False), write=False)

    async def load(self, process_id: str) -> LoadedProcess | None:
        return await self._call(lambda c: (load_process(c, process_id), False), write=False)

    async def commit(self, commit: Commit, *, now: float) -> CommitResult:
        return await self._call(lambda c: commit_process(c, commit, now))

    async def emit(
        self,
        signal: NewSignal,
        *,
        now: float,
        take: Collection[str] = (),
        owner: str | None = None,
        lease_for: float = 0.0,
    ) -> EmitResult:
        wanted = set(take)

        def body(connection: sqlite3.Connection) -> tuple[EmitResult, int]:
            result = emit_signal(connection, signal, now)
            ids = sorted(pid for pid in result.woken if pid in wanted)
            if ids and owner is not None:
                batch = claim_processes(connection, owner, now, lease_for, 0, ids)
                result = attrs.evolve(result, taken=batch.claimed)
            taken = {loaded.process.id for loaded in result.taken}
            if set(result.woken) - taken:
                return result, WORK
            return result, OBSERVED if result.delivered_to else NO_CHANGE

        return await self._call(body)

    async def claim(
        self,
        owner: str,
        *,
        now: float,
        lease_for: float,
        limit: int = 100,
        ids: Collection[str] | None = None,
        paths: Collection[str] | None = None,
    ) -> ClaimBatch:
        chosen = None if ids is None else sorted(set(ids))
        runnable = None if paths is None else sorted(set(paths))
        return await self._call(
            lambda c: (claim_processes(c, owner, now, lease_for, limit, chosen, runnable), False)
        )

    async def renew(self, owner: str, *, now: float, lease_for: float) -> frozenset[str]:
        def body(connection: sqlite3.Connection) -> tuple[frozenset[str], bool]:
            connection.execute(
                "UPDATE process SET lease_until = ? WHERE lease_owner = ?", (now + lease_for, owner)
            )
            rows = connection.execute("SELECT id FROM process WHERE lease_owner = ?", (owner,))
            return frozenset(row[0] for row in rows), False

        return await self._call(body)

    async def release(self, owner: str, ids: Collection[str] | None = None) -> int:
        def body(connection: sqlite3.Connection) -> tuple[int, bool]:
            sql = "UPDATE process SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?"
            if ids is None:
                count = connection.execute(sql, (owner,)).rowcount
            else:
                rows = [(owner, pid) for pid in sorted(set(ids))]
                count = connection.executemany(sql + " AND id = ?", rows).rowcount
            return count, count > 0

        return await self._call(body)

    async def wake(self, ids: Collection[str], *, now: float) -> tuple[str, ...]:
        def body(connection: sqlite3.Connection) -> tuple[tuple[str, ...], bool]:
            woken = []
            for pid in sorted(set(ids)):
                cursor = connection.execute(
                    "UPDATE process SET due_at = CASE WHEN due_at IS NULL OR due_at > :now "
                    f"THEN :now ELSE due_at END WHERE id = :id AND {UNFINISHED}",
                    {"now": now, "id": pid},
                )
                if cursor.rowcount:
                    woken.append(pid)
            return tuple(woken), bool(woken)

        return await self._call(body)

    async def query(
        self,
        *,
        status: Status | Collection[Status] | None = None,
        kind: str | None = None,
        path: str | None = None,
        after: str | None = None,
        limit: int = 100,
        owner: str | None = None,
        due_by: float | None = None,
        cancel_requested: bool | None = None,
    ) -> tuple[ProcessRecord, ...]:
        clauses: list[str] = []
        args: list[object] = []
        if status is not None:
            statuses = [status] if isinstance(status, Status) else sorted(status)
            clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
            args.extend(Status(item).value for item in statuses)
        for column, value in (("kind", kind), ("path", path), ("lease_owner", owner)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if after is not None:
            clauses.append("id > ?")
            args.append(after)
        if due_by is not None:
            clauses.append("due_at <= ?")
            args.append(due_by)
        if cancel_requested is not None:
            clauses.append("cancel_requested = ?")
            args.append(int(cancel_requested))
        where = " AND ".join(clauses) or "1"
        sql = f"SELECT {COLUMNS} FROM process WHERE {where} ORDER BY id LIMIT ?"
        args.append(max(limit, 0))

        def body(connection: sqlite3.Connection) -> tuple[tuple[ProcessRecord, ...], bool]:
            return tuple(record_from_row(row) for row in connection.execute(sql, args)), False

        return await self._call(body, write=False)

    async def purge(self, *, finished_before: float) -> int:
        return await self._call(lambda c: (purge_processes(c, finished_before), False))

    # -- change notification and statistics ----------------------------------------------------

    @property
    def version(self) -> int:
        return self._counts.changes.value

    @property
    def work_version(self) -> int:
        return self._counts.work.value

    def _bump(self, level: int = WORK) -> None:
        self._counts.bump(level)

    async def wait_for_change(self, seen: int) -> int:
        """Wait until ``version > seen``: after a waking write through this object, or within
        about ``poll_interval`` of a commit by another connection to the file."""
        return await self._counts.changes.wait_past(seen)

    async def wait_for_work(self, seen: int) -> int:
        """Wait until ``work_version > seen`` (as ``wait_for_change``)."""
        return await self._counts.work.wait_past(seen)

    def statistics(self) -> StoreStatistics:
        counters = self._counters
        return StoreStatistics(
            operations=counters.operations,
            transactions=counters.transactions,
            largest_batch=counters.largest_batch,
            version=self._counts.changes.value,
        )


def _set_wal(connection: sqlite3.Connection, busy_timeout: float) -> object:
    """``PRAGMA journal_mode=WAL``, retried while the file is locked: switching a new file to
    WAL needs an exclusive lock, and SQLite may report a concurrent opener's lock at once
    instead of waiting for ``busy_timeout``."""
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            return connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)

"""The SQLite writer: one thread that owns one connection and runs store operations on it.

Why one thread: a sqlite3 connection must never be shared across threads, SQLite admits one
writer per file anyway, and one thread gives group commit for free. Trio tasks hand it jobs
(plain functions of the connection) through a ``queue.SimpleQueue`` and park with
``trio.lowlevel.wait_task_rescheduled``; the thread takes everything already queued (never
waiting for more), runs it in one transaction with each job in its own SAVEPOINT, commits
(one fsync for the batch) and reschedules the waiting tasks with one ``run_sync_soon`` per
trio run: one thread hop each way per batch.

A job that raises rolls back its savepoint only and gets its own exception; the others in the
batch still commit. If the COMMIT itself fails, nothing of the batch happened and every job
gets the error. Results are delivered only after COMMIT returns, so an acknowledged operation
is on disk (with ``synchronous=FULL``).

Reads go through this thread too: they see every acknowledged write (no stale reader
snapshot), batch with writes, and the store's hot path (claim, commit, emit) writes anyway.

While idle the thread wakes every ``poll_interval`` to read ``PRAGMA data_version``, which
changes when another connection (another store object or process) commits to the file; it then
calls ``on_foreign_change`` in the trio run that opened it. That is how ``wait_for_change``
notices writes by other runtimes or the CLI without trio-side polling.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar, cast

import attrs
import outcome
import trio

from ._common import WORK
from ._errors import StoreClosed, StoreError

T = TypeVar("T")

Operation = Callable[[sqlite3.Connection], tuple[T, int]]
"""A job body: runs on the writer's connection inside a savepoint; returns (result, change)
where ``change`` is ``NO_CHANGE``, ``OBSERVED`` or ``WORK`` (see ``_common``; a bool is read
as no change or work)."""

_Kind = Literal["open", "read", "write", "close"]

_WATCH_WHEN_BUSY = 0.005
"""Seconds between looks at ``PRAGMA data_version`` while batches keep coming (when idle, the
thread looks every ``poll_interval``)."""


@attrs.define(eq=False)
class _Job:
    kind: _Kind
    body: Operation[Any]
    task: trio.lowlevel.Task
    token: trio.lowlevel.TrioToken
    result: outcome.Outcome[Any] | None = None
    changed: int = 0


@attrs.define
class WriterCounters:
    """Written by the writer thread only; read (racily, as plain ints) by statistics()."""

    operations: int = 0
    transactions: int = 0
    largest_batch: int = 0


class Writer:
    """The writer thread of one SQLiteStore while it is open (see the module docstring)."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        describe: str,
        counters: WriterCounters,
        on_change: Callable[[int], None],
        poll_interval: float,
        max_batch: int,
    ) -> None:
        self._connect = connect
        self._describe = describe
        self._counters = counters
        self._on_change = on_change
        self._poll_interval = poll_interval
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._accepting = False
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread: threading.Thread | None = None

    # -- trio side -----------------------------------------------------------------------------

    async def start(self, setup: Operation[None]) -> None:
        """Start the thread, connect and run ``setup`` (migrations) outside any batch."""
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.Thread(
            target=self._main, name=f"actorkit-sqlite-writer {self._describe}", daemon=True
        )
        self._thread.start()
        self._accepting = True
        try:
            await self._submit("open", setup)
        except BaseException:
            self._accepting = False
            await trio.to_thread.run_sync(self._thread.join)
            raise

    async def stop(self) -> None:
        """Run what is queued, close the connection, join the thread."""
        if not self._accepting:
            return
        self._accepting = False
        thread = self._thread
        assert thread is not None
        with trio.CancelScope(shield=True):
            await self._submit("close", _nothing, closing=True)
            await trio.to_thread.run_sync(thread.join)

    async def call(self, body: Operation[T], *, write: bool) -> T:
        """Run ``body`` in the writer thread (see ``Store``'s docstring on cancellation)."""
        return cast(T, await self._submit("write" if write else "read", body))

    async def _submit(self, kind: _Kind, body: Operation[Any], closing: bool = False) -> Any:
        if not self._accepting and not closing:
            raise StoreClosed(f"the SQLite store {self._describe} is not open")
        await trio.lowlevel.checkpoint_if_cancelled()
        job = _Job(kind, body, trio.lowlevel.current_task(), trio.lowlevel.current_trio_token())
        self._queue.put(job)
        # Once queued, the job runs whatever happens, so the task waits for its result and any
        # cancellation is delivered at its next checkpoint.
        return await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)

    def _deliver(self, jobs: list[_Job], changed: int) -> None:
        if changed:
            self._on_change(changed)
        for job in jobs:
            assert job.result is not None
            trio.lowlevel.reschedule(job.task, job.result)

    # -- writer thread -------------------------------------------------------------------------

    def _main(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            connection = self._open(self._queue.get())
            if connection is None:
                return
            last_version = _data_version(connection)
            watched = time.monotonic()
            while True:
                try:
                    first = self._queue.get(timeout=self._poll_interval)
                except queue.Empty:
                    last_version = self._watch(connection, last_version)
                    continue
                batch, close = self._drain(first)
                if batch:
                    self._run_batch(connection, batch)
                if close is not None:
                    connection.close()
                    connection = None
                    close.result = outcome.Value(None)
                    self._send([close])
                    return
                now = time.monotonic()
                if now - watched >= _WATCH_WHEN_BUSY:  # busy: look every few ms, not per batch
                    watched = now
                    last_version = self._watch(connection, last_version)
        except BaseException as error:  # the thread must never leave a task waiting forever
            self._fail_queued(error)
            raise
        finally:
            if connection is not None:
                connection.close()

    def _open(self, job: _Job) -> sqlite3.Connection | None:
        try:
            connection = self._connect()
        except BaseException as error:
            job.result = outcome.Error(self._translate(error))
            self._send([job])
            return None
        try:
            job.body(connection)
        except BaseException as error:
            connection.close()
            job.result = outcome.Error(self._translate(error))
            self._send([job])
            return None
        job.result = outcome.Value(None)
        self._send([job])
        return connection

    def _drain(self, first: _Job) -> tuple[list[_Job], _Job | None]:
        """Everything already queued, up to max_batch; a close job ends the batch."""
        if first.kind == "close":
            return [], first
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job.kind == "close":
                return batch, job
            batch.append(job)
        return batch, None

    def _run_batch(self, connection: sqlite3.Connection, batch: list[_Job]) -> None:
        writes = sum(job.kind == "write" for job in batch)
        try:
            connection.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
        except sqlite3.Error as error:
            self._fail(batch, error)
            return
        try:
            if len(batch) == 1:  # no savepoint needed: the transaction is the job's own
                self._run_single(connection, batch[0])
            else:
                for job in batch:
                    self._run_job(connection, job)
            if connection.in_transaction:
                connection.execute("COMMIT")
        except sqlite3.Error as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            self._fail(batch, error)
            return
        if writes:
            counters = self._counters
            counters.operations += writes
            counters.transactions += 1
            counters.largest_batch = max(counters.largest_batch, writes)
        self._send(batch)

    def _run_single(self, connection: sqlite3.Connection, job: _Job) -> None:
        """A batch of one job: its error rolls the whole transaction back."""
        try:
            value, change = job.body(connection)
        except Exception as error:
            connection.execute("ROLLBACK")
            job.result = outcome.Error(self._translate(error))
        else:
            job.changed = WORK if change is True else int(change)
            job.result = outcome.Value(value)

    def _run_job(self, connection: sqlite3.Connection, job: _Job) -> None:
        """One job in its own savepoint; a sqlite3 error that breaks the transaction escapes."""
        connection.execute("SAVEPOINT operation")
        try:
            value, change = job.body(connection)
            job.changed = WORK if change is True else int(change)
        except Exception as error:
            connection.execute("ROLLBACK TO operation")
            connection.execute("RELEASE operation")
            job.result = outcome.Error(self._translate(error))
        else:
            connection.execute("RELEASE operation")
            job.result = outcome.Value(value)

    def _fail(self, batch: list[_Job], error: BaseException) -> None:
        translated = self._translate(error)
        for job in batch:
            job.result = outcome.Error(translated)
            job.changed = 0
        self._send(batch)

    def _fail_queued(self, error: BaseException) -> None:
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            job.result = outcome.Error(StoreError(f"the SQLite writer thread died: {error!r}"))
            self._send([job])

    def _send(self, jobs: list[_Job]) -> None:
        """Hand results back: one run_sync_soon per trio run (usually one)."""
        by_token: dict[trio.lowlevel.TrioToken, list[_Job]] = {}
        for job in jobs:
            by_token.setdefault(job.token, []).append(job)
        for token, group in by_token.items():
            changed = max(job.changed for job in group)
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self._deliver, group, changed)

    def _watch(self, connection: sqlite3.Connection, last_version: int) -> int:
        """Notice commits by other connections (``PRAGMA data_version``)."""
        try:
            version = _data_version(connection)
        except sqlite3.Error:
            return last_version
        if version != last_version and self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._on_change, WORK)
        return version

    def _translate(self, error: BaseException) -> BaseException:
        if isinstance(error, sqlite3.Error):
            translated = StoreError(f"SQLite failed on {self._describe}: {error}")
            translated.__cause__ = error
            return translated
        return error


def _nothing(connection: sqlite3.Connection) -> tuple[None, bool]:
    return None, False


def _data_version(connection: sqlite3.Connection) -> int:
    row = connection.execute("PRAGMA data_version").fetchone()
    return int(row[0])

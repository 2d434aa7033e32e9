"""The store protocol: what the durable runtime asks of a store, and the records it exchanges.

A store holds processes (durable processes and persistent actors alike: a ``kind`` tells them
apart), their journal rows, signals and the per-process inbox of signals not yet consumed,
waits and timers. The runtime never issues SQL: it calls the methods of ``Store``, each of
which is atomic (all of its effects or none), and passes records defined here. Every store
(memory, SQLite, PostgreSQL) passes one conformance suite
(``tests/unit/durable/test_store_conformance.py``).

The store is codec-agnostic: snapshots, inputs, results, journal payloads and signal payloads
are ``bytes`` it stores and returns untouched; params are ``dict[str, str]``.

Time always comes from the caller (``now``, in seconds on the runtime's durable wall clock,
e.g. POSIX seconds): a store never reads a clock of its own for process data, so a runtime
under ``trio.testing.MockClock`` is exact.

Leases: a runner *claims* a process (it must hold no live lease) and gets the new
``lease_epoch``; every write it makes for that process is fenced by that epoch, and a write
whose epoch is no longer current raises ``LeaseLost`` and changes nothing. An owner renews all
its leases with one ``renew`` call. A lease is live while ``now <= lease_until`` and its owner
is alive: an owner string names its host and pid (``make_owner()``), and a lease whose owner
is a process of this host that no longer exists is void at once.

Routing: a signal *reaches* every unfinished process (status not COMPLETED, FAILED or
CANCELLED) whose params include all of the signal's params with equal values. Each reached
process gets an inbox row; a reached process that waits for the signal's name (or for
``ANY_SIGNAL``) is made due (``due_at = now``). A signal that reaches nothing is not kept for
processes created later. Emitting and parking serialise, so a wake-up is never lost: either
the emit sees the wait (and wakes the process) or the park sees the inbox row (``ready``).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from typing import Final, Literal, Protocol, Self

import attrs


class Status(enum.StrEnum):
    """A process's lifecycle state as stored."""

    PENDING = "pending"
    RUNNING = "running"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True for COMPLETED, FAILED and CANCELLED: signals no longer reach the process."""
        return self in FINISHED


FINISHED: Final = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})
"""Statuses in which a process is finished: no inbox, waits, timers, lease or due time."""

ANY_SIGNAL: Final = "*"
"""A wait on this name is woken by every signal that reaches the process (persistent actors)."""

NEW_SIGNAL: Final = "+"
"""A wait on this name is woken by every signal that reaches the process *after* the wait was
set; signals already in its inbox do not make it ready (a process suspended by an error)."""


class _Keep(enum.Enum):
    KEEP = "KEEP"

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep.KEEP
"""In a ``Commit``: leave this field as it is stored."""

Keep = Literal[_Keep.KEEP]


# -- records crossing the boundary ------------------------------------------------------------


@attrs.frozen
class NewProcess:
    """A process to create (``Store.create``)."""

    id: str
    kind: str
    """What runs it, e.g. ``"process"`` or ``"actor"``; the store does not interpret it."""
    path: str
    """The definition's path template, e.g. ``"/order/:order/fulfillment"``."""
    params: dict[str, str]
    """Its identity: signals are routed on these."""
    input: bytes | None = None
    status: Status = Status.PENDING
    snapshot: bytes | None = None
    due_at: float | None = None
    """``now`` to have it claimed as due work at once; None to run it only when claimed by id
    (or woken by a signal it waits for, a timer, ``wake``)."""
    created_at: float | None = None
    """Its creation time if not the ``now`` of the create (a runner that began before)."""


@attrs.frozen
class ProcessRecord:
    """One process row as stored."""

    id: str
    kind: str
    path: str
    params: dict[str, str]
    status: Status
    input: bytes | None
    snapshot: bytes | None
    journal_length: int
    """Number of journal rows; the next row's ``seq``."""
    waiting_on: str | None
    """What it waits for, for display (the store routes on the wait rows, not on this)."""
    due_at: float | None
    """When it next needs running: claimable once ``due_at <= now`` (and no live lease)."""
    lease_owner: str | None
    lease_until: float | None
    lease_epoch: int
    """Bumped by every claim; the fencing token of every write by a runner."""
    attempts: int
    result: bytes | None
    error: str | None
    last_error: str | None
    last_error_at: float | None
    created_at: float
    updated_at: float
    cancel_requested: bool = False
    """Someone asked for it to be cancelled while another runner held it
    (``request_cancel``): the runner that holds it, or claims it next, cancels it."""


@attrs.frozen
class JournalEntry:
    """One recorded durable operation of a process (a step, a signal received, a timer...)."""

    seq: int
    """0, 1, 2, ... per process; appending must continue at ``journal_length``."""
    kind: str
    name: str
    payload: bytes
    at: float
    """Durable time at which it was recorded (``ctx.now()`` after it)."""


@attrs.frozen
class NewSignal:
    """A signal to emit (``Store.emit``, ``Commit.emit``)."""

    name: str
    """The signal's path template, e.g. ``"/order/:order/payment/received"``."""
    params: dict[str, str]
    payload: bytes | None = None
    idempotency_key: str | None = None
    """Unique across all signals of the store: a repeat is not stored and reaches nothing."""


@attrs.frozen
class SignalRecord:
    """A stored signal, as found in a process's inbox."""

    seq: int
    """Emit order, store-wide: inboxes are consumed in this order."""
    name: str
    params: dict[str, str]
    payload: bytes | None
    idempotency_key: str | None
    created_at: float


@attrs.frozen
class Timer:
    """A durable timer of a process: the process is due at ``fire_at`` at the latest."""

    timer_id: str
    fire_at: float


@attrs.frozen
class Commit:
    """One runner step for one process, applied atomically by ``Store.commit``.

    Fenced by ``epoch``: when it is not the process's current lease epoch, nothing is written
    and ``LeaseLost`` is raised. ``KEEP`` leaves a field as stored.

    After the update the store recomputes ``due_at`` as the earliest of: this ``due_at`` (or
    the stored one when ``KEEP``), the process's timers, and ``now`` if a ready signal waits
    (see ``CommitResult.ready``). A finished status clears waits, timers, the inbox, the lease
    and ``due_at``. A runner that suspends should pass ``due_at=None`` (timers still count);
    a runner between steps keeps it (``KEEP``), so a crash leaves the process due.
    """

    process_id: str
    epoch: int
    status: Status | Keep = KEEP
    snapshot: bytes | Keep | None = KEEP
    waiting_on: str | Keep | None = KEEP
    due_at: float | Keep | None = KEEP
    attempts: int | Keep = KEEP
    result: bytes | Keep | None = KEEP
    error: str | Keep | None = KEEP
    last_error: str | Keep | None = KEEP
    last_error_at: float | Keep | None = KEEP
    journal: Sequence[JournalEntry] = ()
    """Rows to append, with seqs continuing at ``journal_length`` without gaps."""
    consume: Sequence[int] = ()
    """Signal seqs to take out of the process's inbox; each must be there."""
    waits: Sequence[str] | Keep = KEEP
    """Replaces the signal names it waits for (``ANY_SIGNAL`` for any)."""
    timers: Sequence[Timer] | Keep = KEEP
    """Replaces its timers."""
    emit: Sequence[NewSignal] = ()
    """Signals emitted in the same transaction (after the rest of the commit), so a recorded
    ``ctx.emit`` is emitted exactly once."""
    release: bool = False
    """Give up the lease, unless a ready signal waits (then the runner keeps it and goes on)."""


@attrs.frozen
class EmitResult:
    """What an emit did."""

    seq: int
    """The signal's seq (for a repeated idempotency key: the first emit's seq)."""
    reached: int
    """How many processes it reached (for a repeat: the first emit's count)."""
    delivered_to: tuple[str, ...]
    """Ids of the processes reached by this call, sorted (empty for a repeat)."""
    woken: tuple[str, ...]
    """Of those, the ones waiting for it, now due (sorted)."""
    duplicate: bool = False
    """The idempotency key was seen before: nothing was stored or delivered."""
    taken: tuple[LoadedProcess, ...] = ()
    """The woken processes the emit was asked to ``take``, claimed for its ``owner``."""


@attrs.frozen
class CommitResult:
    """What a commit did."""

    process: ProcessRecord
    """The process as it is after the commit."""
    ready: tuple[SignalRecord, ...]
    """Unconsumed inbox signals matching its waits after the commit, in emit order: a park
    that returns some must consume them rather than wait (the lease was kept for that)."""
    emitted: tuple[EmitResult, ...] = ()
    """One per ``Commit.emit`` signal, in order."""


@attrs.frozen
class LoadedProcess:
    """A process with everything a runner needs to rebuild it."""

    process: ProcessRecord
    journal: tuple[JournalEntry, ...]
    inbox: tuple[SignalRecord, ...]
    """Signals delivered and not consumed yet, in emit order."""
    waits: tuple[str, ...]
    timers: tuple[Timer, ...]


@attrs.frozen
class ClaimBatch:
    """What a claim took, and when the next claim could take something."""

    claimed: tuple[LoadedProcess, ...]
    """Each with its new lease (owner, until, epoch)."""
    next_due_at: float | None
    """The earliest time at which a process not leased to this owner may become claimable
    (its due time, or its live lease's end); None if nothing is scheduled. Only a wake-up
    (``wait_for_change``) can bring it earlier."""


@attrs.frozen
class StoreStatistics:
    """Counters of a store object since it was created (``store.statistics()``)."""

    operations: int
    """Write calls applied (successful or not)."""
    transactions: int
    """Transactions committed (group commit puts several operations in one)."""
    largest_batch: int
    """The most operations one transaction held."""
    version: int
    """The change counter of ``wait_for_change``."""

    @property
    def mean_batch(self) -> float:
        """Operations per transaction."""
        return self.operations / self.transactions if self.transactions else 0.0


# -- the protocol ------------------------------------------------------------------------------


class Store(Protocol):
    """A durable store. Open it with ``async with store:`` (re-entrant: the last exit closes).

    Every async method is a trio checkpoint and one atomic operation. Cancellation: a call
    cancelled before the store started it does nothing; once started it runs to completion
    and its result is returned, and the cancellation is delivered at the caller's next
    checkpoint (the operation cannot be half done).
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def aclose(self) -> None:
        """Close one ``async with`` level (the last closes the store)."""

    async def create(
        self, new: NewProcess, *, now: float, owner: str | None = None, lease_for: float = 0.0
    ) -> tuple[ProcessRecord, bool]:
        """Create the process unless its id exists; return (the stored one, whether created).

        Idempotent: concurrent creates of one id create one row. With ``owner``, a created
        process is leased to it for ``lease_for`` seconds (epoch 1), saving a claim."""
        ...

    async def create_committed(
        self, new: NewProcess, commit: Commit, *, now: float, owner: str, lease_for: float
    ) -> CommitResult | None:
        """Create the process leased to ``owner`` (epoch 1) and apply ``commit`` (whose
        ``epoch`` must be 1) in the same atomic operation; None, changing nothing, if the id
        exists. A runner's first step and the process's creation in one write."""
        ...

    async def get(self, process_id: str) -> ProcessRecord | None:
        """The process's row, or None."""
        ...

    async def request_cancel(self, process_id: str, *, now: float) -> ProcessRecord | None:
        """Mark an unfinished process for cancellation (for a process that another runner
        holds; a caller that can claim it cancels it itself). The process, or None if there
        is no such process."""
        ...

    async def load(self, process_id: str) -> LoadedProcess | None:
        """The process with its journal, inbox, waits and timers, or None."""
        ...

    async def commit(self, commit: Commit, *, now: float) -> CommitResult:
        """Apply a runner's step atomically, fenced by ``commit.epoch`` (``LeaseLost``)."""
        ...

    async def emit(
        self,
        signal: NewSignal,
        *,
        now: float,
        take: Collection[str] = (),
        owner: str | None = None,
        lease_for: float = 0.0,
    ) -> EmitResult:
        """Store a signal, deliver it to every process it reaches, wake the waiting ones.

        ``take``: of the processes it wakes, these are also claimed for ``owner`` in the same
        operation (each unless a live lease holds it), as ``claim(ids=...)`` would, and
        returned in ``EmitResult.taken``: a runner waking a process it keeps in memory saves
        a write."""
        ...

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
        """Lease up to ``limit`` due processes (earliest ``due_at`` first) with no live lease.

        With ``paths``: only processes of those path templates (what the runner can run;
        ``next_due_at`` then counts only those too). With ``ids``: those processes instead,
        due or not, finished or not (activation, retry, cancel), each unless another live
        lease holds it."""
        ...

    async def renew(self, owner: str, *, now: float, lease_for: float) -> frozenset[str]:
        """Extend every lease ``owner`` holds to ``now + lease_for``; return their ids."""
        ...

    async def release(self, owner: str, ids: Collection[str] | None = None) -> int:
        """Drop ``owner``'s leases on ``ids`` (all of them if None); return how many."""
        ...

    async def wake(self, ids: Collection[str], *, now: float) -> tuple[str, ...]:
        """Make these unfinished processes due now (retry, a CLI poke); return those made due."""
        ...

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
        """Processes by id order matching every filter given; page on with ``after=last.id``.

        ``owner``: leased to that owner (live or not); ``due_by``: with ``due_at <= due_by`` (a
        runtime finds which of its resident processes another client made due)."""
        ...

    async def purge(self, *, finished_before: float) -> int:
        """Delete finished processes last updated before that time, with their rows, and
        signals created before it that no inbox holds (their idempotency keys are forgotten).
        Return the number of processes deleted."""
        ...

    @property
    def version(self) -> int:
        """A counter that grows after writes that may change what ``claim`` returns or when:
        a process created, woken, released or given a new status or due time, a signal that
        reached something; on a shared file or server also writes by other clients."""
        ...

    async def wait_for_change(self, seen: int) -> int:
        """Wait until ``version > seen`` and return it (no polling on the memory store)."""
        ...

    @property
    def work_version(self) -> int:
        """A counter that grows after writes that may make a process claimable or change when
        one is (created or released with a due time, woken, given timers; not a process
        finishing or one leased to its runner), and after writes by other clients of a shared
        file or server: a runner's due loop waits on it, not on every change."""
        ...

    async def wait_for_work(self, seen: int) -> int:
        """Wait until ``work_version > seen`` and return it."""
        ...

    def statistics(self) -> StoreStatistics:
        """Counters of this store object."""
        ...

"""MemoryStore: the store protocol in memory, for tests and examples.

Deterministic and thread-free: every method is a trio checkpoint followed by a synchronous
critical section (validate everything, then apply), so calls are atomic and serialise without
locks, and a cancelled call either did nothing (cancelled at its checkpoint) or all of it.
``wait_for_change`` waits on a ``trio.Event``: no polling, so a runtime on this store under
``MockClock(autojump_threshold=0)`` lets days of durable time pass at once.

The data lives in the object: close it and open it again (``async with store:``) and it is all
still there, which is how tests reopen a runtime "after a crash". One object serves one trio
run at a time.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Self

import attrs
import trio

from ._common import (
    OBSERVED,
    WORK,
    ChangeCounters,
    change_level,
    check_commit,
    due_at,
    lease_lost_message,
    pick,
    sorted_timers,
)
from ._errors import LeaseLost, StoreClosed, StoreError
from ._lease import lease_is_live
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
    StoreStatistics,
    Timer,
)


@attrs.frozen
class _SignalInfo:
    key: str | None
    reached: int
    created_at: float


class MemoryStore:
    """The store protocol in memory: deterministic, no threads, no polling (see the module)."""

    def __init__(self) -> None:
        self._processes: dict[str, ProcessRecord] = {}
        self._by_param: dict[tuple[str, str], set[str]] = {}
        self._journal: dict[str, list[JournalEntry]] = {}
        self._inbox: dict[str, dict[int, SignalRecord]] = {}
        self._waits: dict[str, tuple[str, ...]] = {}
        self._timers: dict[str, tuple[Timer, ...]] = {}
        self._signals: dict[int, _SignalInfo] = {}
        self._keys: dict[str, int] = {}
        self._next_seq = 1
        self._depth = 0
        self._counts = ChangeCounters()
        self._operations = 0

    def __repr__(self) -> str:
        return f"<MemoryStore processes={len(self._processes)} open={self._depth > 0}>"

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await trio.lowlevel.checkpoint()
        self._depth += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()
        self._depth = max(0, self._depth - 1)

    async def _enter(self) -> None:
        await trio.lowlevel.checkpoint()
        if self._depth == 0:
            raise StoreClosed("the MemoryStore is not open: use `async with store:`")

    # -- processes -----------------------------------------------------------------------------

    async def create_committed(
        self, new: NewProcess, commit: Commit, *, now: float, owner: str, lease_for: float
    ) -> CommitResult | None:
        await self._enter()
        self._operations += 1
        if new.id in self._processes:
            return None
        if commit.process_id != new.id or commit.epoch != 1:
            raise StoreError(
                f"create_committed({new.id!r}): the commit must be for that process at epoch 1"
            )
        self._create_now(new, now, owner, lease_for)
        try:
            record = self._processes[new.id]
            self._validate(record, commit)
        except BaseException:
            self._forget(new.id)
            raise
        emitted = self._apply(record, commit, now)
        return CommitResult(
            process=_out(self._processes[new.id]), ready=self._ready(new.id), emitted=emitted
        )

    def _forget(self, process_id: str) -> None:
        record = self._processes.pop(process_id)
        for item in record.params.items():
            self._by_param.get(item, set()).discard(process_id)
        for table in (self._journal, self._inbox, self._waits, self._timers):
            table.pop(process_id, None)

    async def create(
        self, new: NewProcess, *, now: float, owner: str | None = None, lease_for: float = 0.0
    ) -> tuple[ProcessRecord, bool]:
        await self._enter()
        self._operations += 1
        existing = self._processes.get(new.id)
        if existing is not None:
            return _out(existing), False
        return self._create_now(new, now, owner, lease_for), True

    def _create_now(
        self, new: NewProcess, now: float, owner: str | None, lease_for: float
    ) -> ProcessRecord:
        leased = owner is not None
        record = ProcessRecord(
            id=new.id,
            kind=new.kind,
            path=new.path,
            params=dict(new.params),
            status=new.status,
            input=new.input,
            snapshot=new.snapshot,
            journal_length=0,
            waiting_on=None,
            due_at=None if new.status in FINISHED else new.due_at,
            lease_owner=owner,
            lease_until=now + lease_for if leased else None,
            lease_epoch=1 if leased else 0,
            attempts=0,
            result=None,
            error=None,
            last_error=None,
            last_error_at=None,
            created_at=now if new.created_at is None else new.created_at,
            updated_at=now,
        )
        self._processes[new.id] = record
        for item in record.params.items():
            self._by_param.setdefault(item, set()).add(new.id)
        self._journal[new.id] = []
        self._inbox[new.id] = {}
        self._waits[new.id] = ()
        self._timers[new.id] = ()
        self._bump(change_level(None, record))
        return _out(record)

    async def request_cancel(self, process_id: str, *, now: float) -> ProcessRecord | None:
        await self._enter()
        self._operations += 1
        record = self._processes.get(process_id)
        if record is None:
            return None
        if record.status not in FINISHED and not record.cancel_requested:
            record = self._processes[process_id] = attrs.evolve(
                record, cancel_requested=True, updated_at=now
            )
            self._bump(WORK)
        return _out(record)

    async def get(self, process_id: str) -> ProcessRecord | None:
        await self._enter()
        record = self._processes.get(process_id)
        return None if record is None else _out(record)

    async def load(self, process_id: str) -> LoadedProcess | None:
        await self._enter()
        return self._loaded(process_id) if process_id in self._processes else None

    def _loaded(self, process_id: str) -> LoadedProcess:
        return LoadedProcess(
            process=_out(self._processes[process_id]),
            journal=tuple(self._journal[process_id]),
            inbox=tuple(self._inbox[process_id].values()),
            waits=self._waits[process_id],
            timers=self._timers[process_id],
        )

    # -- commit --------------------------------------------------------------------------------

    async def commit(self, commit: Commit, *, now: float) -> CommitResult:
        await self._enter()
        self._operations += 1
        record = self._processes.get(commit.process_id)
        if record is None or record.lease_epoch != commit.epoch:
            found = None if record is None else record.lease_epoch
            raise LeaseLost(lease_lost_message(commit, found))
        self._validate(record, commit)
        emitted = self._apply(record, commit, now)
        return CommitResult(
            process=_out(self._processes[commit.process_id]),
            ready=self._ready(commit.process_id),
            emitted=emitted,
        )

    def _validate(self, record: ProcessRecord, commit: Commit) -> None:
        problem = check_commit(record.id, record.journal_length, commit)
        if problem is not None:
            raise StoreError(problem)
        inbox = self._inbox[record.id]
        for seq in commit.consume:
            if seq not in inbox:
                raise StoreError(f"signal {seq} is not in the inbox of {record.id!r}")

    def _apply(self, record: ProcessRecord, commit: Commit, now: float) -> tuple[EmitResult, ...]:
        pid = record.id
        self._journal[pid].extend(commit.journal)
        inbox = self._inbox[pid]
        for seq in commit.consume:
            del inbox[seq]
        if commit.waits is not KEEP:
            self._waits[pid] = tuple(sorted(set(commit.waits)))
        if commit.timers is not KEEP:
            self._timers[pid] = sorted_timers(commit.timers)
        status = pick(commit.status, record.status)
        updated = attrs.evolve(
            record,
            status=status,
            snapshot=pick(commit.snapshot, record.snapshot),
            waiting_on=pick(commit.waiting_on, record.waiting_on),
            attempts=pick(commit.attempts, record.attempts),
            result=pick(commit.result, record.result),
            error=pick(commit.error, record.error),
            last_error=pick(commit.last_error, record.last_error),
            last_error_at=pick(commit.last_error_at, record.last_error_at),
            journal_length=record.journal_length + len(commit.journal),
            updated_at=now,
        )
        if status in FINISHED:
            self._waits[pid] = ()
            self._timers[pid] = ()
            inbox.clear()
            updated = attrs.evolve(updated, due_at=None, lease_owner=None, lease_until=None)
        # Emits come after the rest of the commit (a signal it emits may reach itself).
        self._processes[pid] = updated
        emitted = tuple(self._emit_now(signal, now) for signal in commit.emit)
        if status not in FINISHED:
            ready = bool(self._ready(pid))
            due = due_at(
                pick(commit.due_at, record.due_at), self._timers[pid], now if ready else None
            )
            updated = attrs.evolve(updated, due_at=due)
            if commit.release and not ready:
                updated = attrs.evolve(updated, lease_owner=None, lease_until=None)
        self._processes[pid] = updated
        self._bump(change_level(record, updated))
        return emitted

    def _ready(self, process_id: str) -> tuple[SignalRecord, ...]:
        waits = self._waits[process_id]
        if not waits:
            return ()
        inbox = self._inbox[process_id].values()
        if ANY_SIGNAL in waits:
            return tuple(inbox)
        return tuple(signal for signal in inbox if signal.name in waits)

    # -- signals -------------------------------------------------------------------------------

    async def emit(
        self,
        signal: NewSignal,
        *,
        now: float,
        take: Collection[str] = (),
        owner: str | None = None,
        lease_for: float = 0.0,
    ) -> EmitResult:
        await self._enter()
        self._operations += 1
        wanted = set(take) if owner is not None else set()
        # woken processes this emit takes are leased at once: not work for any due loop
        quiet = {pid for pid in wanted if self._claimable(pid, now)}
        result = self._emit_now(signal, now, quiet)
        if not wanted:
            return result
        assert owner is not None
        taken = [pid for pid in result.woken if pid in quiet]
        for pid in taken:
            self._lease(pid, owner, now, lease_for)
        return attrs.evolve(result, taken=tuple(self._loaded(pid) for pid in taken))

    def _emit_now(self, signal: NewSignal, now: float, quiet: Collection[str] = ()) -> EmitResult:
        key = signal.idempotency_key
        if key is not None and key in self._keys:
            seq = self._keys[key]
            return EmitResult(seq, self._signals[seq].reached, (), (), duplicate=True)
        seq = self._next_seq
        self._next_seq += 1
        record = SignalRecord(
            seq=seq,
            name=signal.name,
            params=dict(signal.params),
            payload=signal.payload,
            idempotency_key=key,
            created_at=now,
        )
        reached = self._route(signal.params)
        woken = []
        for pid in reached:
            self._inbox[pid][seq] = record
            waits = self._waits[pid]
            if signal.name in waits or ANY_SIGNAL in waits or NEW_SIGNAL in waits:
                woken.append(pid)
                current = self._processes[pid]
                if current.due_at is None or current.due_at > now:
                    self._processes[pid] = attrs.evolve(current, due_at=now)
        self._signals[seq] = _SignalInfo(key, len(reached), now)
        if key is not None:
            self._keys[key] = seq
        if reached:
            self._bump(WORK if set(woken) - set(quiet) else OBSERVED)
        return EmitResult(seq, len(reached), tuple(reached), tuple(woken))

    def _route(self, params: dict[str, str]) -> list[str]:
        if params:
            candidates = sorted(
                (self._by_param.get(item, set()) for item in params.items()), key=len
            )
            ids: Iterable[str] = set.intersection(*candidates)
        else:
            ids = self._processes
        return sorted(pid for pid in ids if self._processes[pid].status not in FINISHED)

    # -- leases --------------------------------------------------------------------------------

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
        await self._enter()
        self._operations += 1
        runnable = None if paths is None else frozenset(paths)
        if ids is not None:
            chosen = sorted(pid for pid in set(ids) if self._claimable(pid, now))
        else:
            due = sorted(
                (record.due_at, pid)
                for pid, record in self._processes.items()
                if record.due_at is not None
                and record.due_at <= now
                and (runnable is None or record.path in runnable)
            )
            chosen = [pid for _, pid in due if self._claimable(pid, now)][: max(limit, 0)]
        for pid in chosen:
            self._lease(pid, owner, now, lease_for)
        return ClaimBatch(
            claimed=tuple(self._loaded(pid) for pid in chosen),
            next_due_at=self._next_due_at(owner, now, runnable),
        )

    def _lease(self, process_id: str, owner: str, now: float, lease_for: float) -> None:
        """Lease the process to ``owner`` with a new epoch (a claim)."""
        record = self._processes[process_id]
        self._processes[process_id] = attrs.evolve(
            record,
            lease_owner=owner,
            lease_until=now + lease_for,
            lease_epoch=record.lease_epoch + 1,
        )

    def _claimable(self, process_id: str, now: float) -> bool:
        record = self._processes.get(process_id)
        return record is not None and not lease_is_live(record.lease_owner, record.lease_until, now)

    def _next_due_at(self, owner: str, now: float, runnable: frozenset[str] | None) -> float | None:
        times = []
        for record in self._processes.values():
            if record.due_at is None or record.lease_owner == owner:
                continue
            if runnable is not None and record.path not in runnable:
                continue
            if lease_is_live(record.lease_owner, record.lease_until, now):
                assert record.lease_until is not None
                times.append(max(record.due_at, record.lease_until))
            else:
                times.append(record.due_at)
        return min(times, default=None)

    async def renew(self, owner: str, *, now: float, lease_for: float) -> frozenset[str]:
        await self._enter()
        self._operations += 1
        held = [pid for pid, record in self._processes.items() if record.lease_owner == owner]
        for pid in held:
            self._processes[pid] = attrs.evolve(self._processes[pid], lease_until=now + lease_for)
        return frozenset(held)

    async def release(self, owner: str, ids: Collection[str] | None = None) -> int:
        await self._enter()
        self._operations += 1
        pool = self._processes if ids is None else set(ids) & self._processes.keys()
        held = [pid for pid in pool if self._processes[pid].lease_owner == owner]
        for pid in held:
            self._processes[pid] = attrs.evolve(
                self._processes[pid], lease_owner=None, lease_until=None
            )
        if held:
            self._bump()
        return len(held)

    async def wake(self, ids: Collection[str], *, now: float) -> tuple[str, ...]:
        await self._enter()
        self._operations += 1
        woken = []
        for pid in sorted(set(ids)):
            record = self._processes.get(pid)
            if record is None or record.status in FINISHED:
                continue
            woken.append(pid)
            if record.due_at is None or record.due_at > now:
                self._processes[pid] = attrs.evolve(record, due_at=now)
        if woken:
            self._bump()
        return tuple(woken)

    # -- queries and housekeeping --------------------------------------------------------------

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
        await self._enter()
        statuses = {status} if isinstance(status, Status) else status
        found = sorted(
            (
                record
                for record in self._processes.values()
                if (statuses is None or record.status in statuses)
                and (kind is None or record.kind == kind)
                and (path is None or record.path == path)
                and (after is None or record.id > after)
                and (owner is None or record.lease_owner == owner)
                and (due_by is None or (record.due_at is not None and record.due_at <= due_by))
                and (cancel_requested is None or record.cancel_requested == cancel_requested)
            ),
            key=lambda record: record.id,
        )
        return tuple(_out(record) for record in found[: max(limit, 0)])

    async def purge(self, *, finished_before: float) -> int:
        await self._enter()
        self._operations += 1
        doomed = [
            pid
            for pid, record in self._processes.items()
            if record.status in FINISHED and record.updated_at < finished_before
        ]
        for pid in doomed:
            record = self._processes.pop(pid)
            for item in record.params.items():
                self._by_param[item].discard(pid)
            for table in (self._journal, self._inbox, self._waits, self._timers):
                del table[pid]
        held = {seq for inbox in self._inbox.values() for seq in inbox}
        for seq, info in list(self._signals.items()):
            if info.created_at < finished_before and seq not in held:
                del self._signals[seq]
                if info.key is not None:
                    del self._keys[info.key]
        return len(doomed)

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
        """Wait until ``version > seen``; a checkpoint even when it already is."""
        return await self._counts.changes.wait_past(seen)

    async def wait_for_work(self, seen: int) -> int:
        """Wait until ``work_version > seen`` (as ``wait_for_change``)."""
        return await self._counts.work.wait_past(seen)

    def statistics(self) -> StoreStatistics:
        return StoreStatistics(
            operations=self._operations,
            transactions=self._operations,
            largest_batch=1 if self._operations else 0,
            version=self._counts.changes.value,
        )


def _out(record: ProcessRecord) -> ProcessRecord:
    """A record whose params dict the caller may keep or mutate."""
    return attrs.evolve(record, params=dict(record.params))

"""The durable-process half of ``Runtime``: starting, handles, retries, queries, and the runs
of processes (begun, handed a claim, parked, ended). ``Runtime`` mixes it in."""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import attrs
import trio

import actorkit as ak

from ._admin import request_cancel, request_retry
from ._codec import Codec
from ._exceptions import DurableError
from ._process import KIND as PROCESS_KIND
from ._process import ProcessDef, ProcessEvent, ProcessHandle, ProcessState, _time
from ._run import ProcessRun, _Parked
from ._store import (
    LoadedProcess,
    NewProcess,
    ProcessRecord,
    Status,
    Store,
)

if TYPE_CHECKING:
    from ._runtime import Runtime

logger = logging.getLogger("actorkit_durable")

R = TypeVar("R")


class ProcessesMixin:
    """Process operations of ``Runtime`` (which sets every attribute declared here)."""

    _store: Store
    _codec: Codec
    _owner: str
    _lease_for: float
    _max_resident: int
    _closing: bool
    _processes: dict[str, ProcessDef[Any]]
    _runs: dict[str, ProcessRun]
    _parked: OrderedDict[str, ProcessRun]
    _waiting: dict[tuple[str, tuple[str, ...]], set[str]]
    _nursery: trio.Nursery | None
    _on_event: Callable[[Any], object] | None
    _activations: int
    _passivations: int
    _started: int
    _finished: int

    def now(self) -> float:
        raise NotImplementedError

    def _as_runtime(self) -> Runtime:
        return cast("Runtime", self)

    def _foreign_due(self, loaded: LoadedProcess) -> None:
        raise NotImplementedError

    # -- durable processes ----------------------------------------------------------------------

    async def start(
        self, definition: ProcessDef[R], input: object = None, **params: str
    ) -> ProcessHandle[R]:
        """Start the process ``definition`` with identity ``params`` (idempotent: when a process
        with that id exists, its handle is returned and ``input`` is ignored)."""
        if not isinstance(definition, ProcessDef):
            raise TypeError(f"rt.start({definition!r}): pass a definition made by @dur.process")
        if self._processes.get(definition.path) is not definition:
            raise ValueError(
                f"rt.start(): process {definition.path!r} is not registered with this runtime; "
                "pass it in open_runtime(processes=[...]) or in the app"
            )
        process_id, values = definition.template.fill(params, what="rt.start()")
        payload = None
        if input is not None:
            payload = self._codec.encode(input, what=f"input of process {process_id}")
        if self._closing:
            raise ak.SystemClosed(f"the durable runtime is closing; cannot start {process_id}")
        now = self.now()
        # created leased to this runtime, which runs it at once: RUNNING from the start
        new = NewProcess(
            process_id, PROCESS_KIND, definition.path, values, input=payload,
            status=Status.RUNNING, due_at=now,
        )  # fmt: skip
        run = self._runs.get(process_id)
        if run is not None and run.unborn is not None:  # a start of it is under way here
            await run.give_birth()
            return await self.start(definition, input, **params)
        record = await self._store.get(process_id)
        if record is None:
            # Speculative start: the handler runs at once, and its first commit (its first
            # step's result, its first wait, its result) creates the process with it, in one
            # write. rt.start returns once the process exists.
            now = self.now()
            fake = ProcessRecord(
                process_id, PROCESS_KIND, definition.path, values, Status.RUNNING, payload,
                None, 0, None, now, self._owner, now + self._lease_for, 1, 0, None, None, None,
                None, now, now,
            )  # fmt: skip
            run = self._begin(definition, LoadedProcess(fake, (), (), (), ()))
            run.unborn = attrs.evolve(new, created_at=now)
            # Two checkpoints: the run has had a turn, and ran until it blocked. If that was on
            # its first commit, it creates the process; if on something else (a slow step),
            # the process is created now, with what the run recorded so far.
            await trio.lowlevel.checkpoint()
            await trio.lowlevel.checkpoint()
            with contextlib.suppress(_Parked):
                if run.birth_lock.locked():
                    await run.born.wait()
                await run.give_birth()
            if run.created:
                return ProcessHandle(self._as_runtime(), process_id, Status.RUNNING)
            record = await self._store.get(process_id)
            assert record is not None
        if record.kind != PROCESS_KIND or record.path != definition.path:
            raise DurableError(
                f"{process_id} in the store is a {record.kind} of {record.path!r}, not the "
                f"process {definition.path!r}; paths must not collide"
            )
        return ProcessHandle(self._as_runtime(), process_id, record.status)

    def _born(self, run: ProcessRun) -> None:
        """A speculatively started run created its process."""
        self._started += 1
        path = run.definition.path
        self._emit_event(ProcessEvent(run.id, path, "started", None, run.created_at))

    def handle(self, process_id: str) -> ProcessHandle[Any]:
        """A handle on the process ``process_id`` (no I/O: its calls raise ProcessNotFound)."""
        if not isinstance(process_id, str):
            raise TypeError(f"rt.handle({process_id!r}): a process id is a str")
        return ProcessHandle(self._as_runtime(), process_id.lstrip("/"))

    async def retry(self, process_id: str) -> None:
        """Run a SUSPENDED (recoverable error) or FAILED process again, in whichever runtime
        on the store can run it; other statuses are left as they are. A FAILED process that
        failed at a step whose attempts ran out calls that step again."""
        handle = self.handle(process_id)
        record = await handle._record()
        now = self.now()
        done = await request_retry(
            self._store, record, owner=self._owner, now=now, lease_for=self._lease_for
        )
        if done and record.status is Status.FAILED:
            handle.status = Status.SUSPENDED
            self._emit_event(ProcessEvent(record.id, record.path, "suspended", "retried", now))

    async def query(
        self, status: Status | None = None, *, path: str | None = None
    ) -> AsyncIterator[ProcessState]:
        """Async-iterate the store's processes (by id), optionally by status and path
        template (e.g. ``"/order/:order/fulfillment"``)."""
        after: str | None = None
        while True:
            records = await self._store.query(
                status=status, kind=PROCESS_KIND, path=path, after=after, limit=100
            )
            for record in records:
                yield self._state(record)
            if len(records) < 100:
                return
            after = records[-1].id

    def _state(self, record: ProcessRecord) -> ProcessState:
        at = _time
        return ProcessState(
            id=record.id, path=record.path, params=dict(record.params), status=record.status,
            result=self._result(record) if record.status is Status.COMPLETED else None,
            error=record.error, last_error=record.last_error,
            last_error_at=None if record.last_error_at is None else at(record.last_error_at),
            waiting_on=record.waiting_on, created_at=at(record.created_at),
            updated_at=at(record.updated_at),
        )  # fmt: skip

    def _result(self, record: ProcessRecord) -> Any:
        if record.result is None:
            return None
        return self._codec.decode(record.result, what=f"result of process {record.id}")

    async def _cancel(self, process_id: str) -> None:
        store = self._store
        while True:
            run = self._runs.get(process_id)
            if run is not None and not run.parked and not run.dropped:
                run.cancel_requested = True
                run.scope.cancel()
                await run.done.wait()
                continue
            if run is not None and run.parked:
                self._unpark(run)
                run.drop()
            before = await store.get(process_id)
            if before is None or before.status.finished:
                return
            now = self.now()
            record = await request_cancel(
                store, process_id, owner=self._owner, now=now, lease_for=self._lease_for
            )
            if record is not None and record.status is Status.CANCELLED:
                other = self._runs.get(process_id)
                if other is not None:
                    other.drop()
                self._finished += 1
                self._emit_event(ProcessEvent(process_id, record.path, "cancelled", None, now))
            return

    def _begin(self, definition: ProcessDef[Any], loaded: LoadedProcess) -> ProcessRun:
        """Run (or re-run, by replay) a process this runtime has just leased."""
        assert self._nursery is not None
        previous = self._runs.get(loaded.process.id)
        if previous is not None:
            self._unpark(previous)
            previous.drop()
        run = ProcessRun(self._as_runtime(), definition, loaded)
        self._runs[run.id] = run
        self._activations += 1
        if loaded.process.cancel_requested:  # asked while another runner held it
            run.cancel_from_outside()
        self._nursery.start_soon(run.main, name=f"process {run.id}")
        return run

    async def _cancel_requested_here(self) -> None:
        """Cancel the runs of processes that another program asked to cancel (it could not
        claim them: this runtime held them)."""
        if len(self._runs) == len(self._parked):  # every run waits: none holds a lease
            return
        found = await self._store.query(
            owner=self._owner, kind=PROCESS_KIND, cancel_requested=True, limit=1000
        )
        for record in found:
            run = self._runs.get(record.id)
            if run is not None and not run.parked:
                run.cancel_from_outside()

    def _process_due(self, loaded: LoadedProcess) -> None:
        process = loaded.process
        definition = self._processes.get(process.path)
        if definition is None:
            self._foreign_due(loaded)
            return
        run = self._runs.get(process.id)
        if run is not None and run.resume(loaded):
            self._unpark(run)
            if process.cancel_requested:
                run.cancel_from_outside()
            return
        self._begin(definition, loaded)

    def _may_park(self, run: ProcessRun) -> bool:
        """A run is about to wait resident; False if it should end instead (cap, closing)."""
        if self._closing or self._runs.get(run.id) is not run:
            return False
        if self._max_resident == 0:
            self._passivations += 1
            return False
        parked = self._parked
        parked[run.id] = run
        for key in run.wait_keys:
            self._waiting.setdefault(key, set()).add(run.id)
        while len(parked) > self._max_resident:
            oldest = next(iter(parked.values()))
            self._unpark(oldest)
            oldest.drop()
            self._passivations += 1
        return True

    def _unpark(self, run: ProcessRun) -> None:
        if self._parked.get(run.id) is run:
            del self._parked[run.id]
            for key in run.wait_keys:
                ids = self._waiting.get(key)
                if ids is not None:
                    ids.discard(run.id)
                    if not ids:
                        del self._waiting[key]

    def _run_ended(self, run: ProcessRun) -> None:
        self._unpark(run)
        if self._runs.get(run.id) is run:
            del self._runs[run.id]

    def _process_event(self, run: ProcessRun, status: str, detail: str | None) -> None:
        if status in ("completed", "failed", "cancelled"):
            self._finished += 1
        if self._on_event is not None:
            self._emit_event(ProcessEvent(run.id, run.definition.path, status, detail, self.now()))

    def _emit_event(self, event: ProcessEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            logger.exception("on_event raised for %r", event)

    async def _wake_suspended(self) -> None:
        """At opening: processes suspended by an error run again (their code may be fixed)."""
        if not self._processes:  # a runtime that runs no processes (one that only emits)
            return
        store = self._store
        after: str | None = None
        while True:
            records = await store.query(
                status=Status.SUSPENDED, kind=PROCESS_KIND, after=after, limit=100
            )
            ids = [r.id for r in records if r.last_error is not None and r.path in self._processes]
            if ids:
                await store.wake(ids, now=self.now())
            if len(records) < 100:
                return
            after = records[-1].id

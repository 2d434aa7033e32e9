"""The durable runtime: a store, an actor system, and the work loop that serves the store.

``dur.open_runtime(store, ...)`` opens the store, starts an actorkit system whose supervisors
hold the resident persistent actors (one supervisor per definition), and runs two tasks: the
*due loop*, which claims work the store says is due (a signal for a passivated actor) and
notices signals that other clients sent to resident actors, and, on stores shared between
processes, the *lease loop*, which renews this runtime's leases with one call.

Time: durable wall time is ``start_time`` (default: now, UTC) plus the trio time elapsed since
the runtime opened, as POSIX seconds in the store, so a runtime under ``MockClock`` is exact.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import sys
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import trio

import actorkit as ak

from ._admin import request_cancel, request_retry
from ._codec import Codec
from ._exceptions import DurableError
from ._persistent import (
    KIND,
    Activation,
    ActorElsewhere,
    PersistentActor,
    PersistentRef,
    Watch,
    _Passivate,
)
from ._process import KIND as PROCESS_KIND
from ._process import (
    ProcessDef,
    ProcessEvent,
    ProcessHandle,
    ProcessRun,
    ProcessState,
    _Parked,
)
from ._signals import SignalDef, SignalReceived, signals_of
from ._store import (
    ANY_SIGNAL,
    Commit,
    EmitResult,
    LoadedProcess,
    MemoryStore,
    NewProcess,
    NewSignal,
    ProcessRecord,
    SignalRecord,
    Status,
    Store,
    StoreStatistics,
    make_owner,
    open_store,
)

logger = logging.getLogger("actorkit_durable")

M = TypeVar("M")
R = TypeVar("R")

_IDLE = object()
"""The timer key of an activation's idle passivation."""


@attrs.frozen
class RuntimeStatistics:
    """A snapshot of a runtime's counters (``rt.statistics()``)."""

    resident: int
    """Persistent actors active in this runtime."""
    activations: int
    """Activations since the runtime opened: of persistent actors (first ones and
    re-activations) and of processes (each run of a process: its start, a rebuild by replay)."""
    passivations: int
    """Actors passivated and waiting processes dropped from memory (the resident cap)."""
    commits: int
    """Commits made by persistent actors and processes (snapshots, journal entries, waits)."""
    running: int
    """Durable processes executing in this runtime now."""
    suspended: int
    """Durable processes waiting resident in this runtime (the others cost no memory)."""
    started: int
    """Durable processes started (created) by this runtime."""
    finished: int
    """Durable processes this runtime saw complete, fail or be cancelled."""
    store: StoreStatistics


class Runtime:
    """A running durable runtime; created by ``dur.open_runtime``."""

    def __init__(
        self,
        store: Store,
        system: ak.ActorSystem,
        *,
        definitions: Definitions,
        start_time: datetime,
        idle_after: float,
        max_resident: int,
        lease_for: float,
        on_event: Callable[[Any], object] | None = None,
    ) -> None:
        self._store = store
        self._system = system
        self._codec = Codec()
        self._owner = make_owner()
        self._start = start_time.timestamp()
        self._opened_at = trio.current_time()
        self._idle_after = idle_after
        self._max_resident = max_resident
        self._lease_for = lease_for
        self._actors = definitions.actors
        self._processes = definitions.processes
        self._signals = definitions.signals
        self._on_event = on_event
        self._runnable = frozenset(self._actors) | frozenset(self._processes)
        """Path templates this runtime can run: it claims only those."""
        for signal in self._signals.values():
            if signal.data is not None and attrs.has(signal.data):
                self._codec.register(signal.data)
        _register_module_records(definitions)
        self._supervisors: dict[str, ak.Supervisor] = {}
        self._resident: OrderedDict[str, Activation] = OrderedDict()  # least recently used first
        self._activating: dict[str, trio.Event] = {}
        self._evicting: set[str] = set()
        self._foreign: set[str] = set()
        self._closing = False
        self._activity = trio.Event()
        self._handover: dict[str, LoadedProcess] = {}
        self._activations = 0
        self._passivations = 0
        self._commits = 0
        self._runs: dict[str, ProcessRun] = {}
        self._parked: OrderedDict[str, ProcessRun] = OrderedDict()  # least recently parked first
        self._waiting: dict[tuple[str, tuple[str, ...]], set[str]] = {}
        """Parked runs by what they wait for: (signal path, the values of its params)."""
        self._nursery: trio.Nursery | None = None
        self._started = 0
        self._finished = 0

    # -- public -----------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self._store

    def now(self) -> float:
        """Durable wall time, POSIX seconds: ``start_time`` plus trio time since opening."""
        return self._start + (trio.current_time() - self._opened_at)

    def now_datetime(self) -> datetime:
        """``now()`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now(), UTC)

    async def actor(self, definition: PersistentActor[Any, M], **params: str) -> PersistentRef[M]:
        """A ref to the persistent actor ``definition`` with identity ``params``, activated.

        Activation loads the latest snapshot (or runs ``init(params)`` the first time) and
        takes the identity's lease: ``ActorElsewhere`` if another live runtime has it.
        """
        self._check_actor(definition)
        actor_id, values = definition.template.fill(params, what="rt.actor()")
        await self._activation(definition, actor_id, values)
        return PersistentRef(self, definition, actor_id, values)

    async def emit(
        self,
        signal: SignalDef[Any],
        *,
        data: object = None,
        idempotency_key: str | None = None,
        **params: str,
    ) -> int:
        """Send ``signal`` durably; return how many processes and persistent actors it reached.

        It reaches every unfinished one whose params include all of the signal's params with
        equal values. Repeating an ``idempotency_key`` delivers nothing new and returns the
        first count.
        """
        if not isinstance(signal, SignalDef):
            raise TypeError(
                f"rt.emit({signal!r}): pass a signal declared with dur.signal(...), e.g. "
                "OrderSignals.paid"
            )
        self._definitions_add_signal(signal)
        signal.check_data(data)
        _, values = signal.template.fill(params, what=f"rt.emit({signal.name})")
        payload = None if data is None else self._codec.encode(data, what=f"{signal.name} data")
        if idempotency_key is not None and not isinstance(idempotency_key, str):
            raise TypeError(f"rt.emit(idempotency_key={idempotency_key!r}) must be a str")
        now = self.now()
        # processes parked here that wait for it are claimed by the emit itself (one write)
        take = self._waiting.get((signal.path, tuple(values[p] for p in signal.params)), ())
        new = NewSignal(signal.path, values, payload, idempotency_key)
        result = await self._store.emit(
            new, now=now, take=tuple(take), owner=self._owner, lease_for=self._lease_for
        )
        if not result.duplicate:
            self._delivered(new, result, now)
        for loaded in result.taken:
            self._process_due(loaded)
        return result.reached

    def _delivered(self, signal: NewSignal, result: EmitResult, now: float) -> None:
        """A signal reached ``result.delivered_to``: resident actors get it at once (waiting
        processes were made due by the store; the due loop claims them)."""
        record: SignalRecord | None = None
        for actor_id in result.delivered_to:
            activation = self._resident.get(actor_id)
            if activation is not None:
                if record is None:
                    record = SignalRecord(
                        result.seq, signal.name, signal.params, signal.payload,
                        signal.idempotency_key, now,
                    )  # fmt: skip
                activation.deliver([record])

    def statistics(self) -> RuntimeStatistics:
        return RuntimeStatistics(
            resident=len(self._resident),
            activations=self._activations,
            passivations=self._passivations,
            commits=self._commits,
            running=len(self._runs) - len(self._parked),
            suspended=len(self._parked),
            started=self._started,
            finished=self._finished,
            store=self._store.statistics(),
        )

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
                return ProcessHandle(self, process_id, Status.RUNNING)
            record = await self._store.get(process_id)
            assert record is not None
        if record.kind != PROCESS_KIND or record.path != definition.path:
            raise DurableError(
                f"{process_id} in the store is a {record.kind} of {record.path!r}, not the "
                f"process {definition.path!r}; paths must not collide"
            )
        return ProcessHandle(self, process_id, record.status)

    def _born(self, run: ProcessRun) -> None:
        """A speculatively started run created its process."""
        self._started += 1
        path = run.definition.path
        self._emit_event(ProcessEvent(run.id, path, "started", None, run.created_at))

    def handle(self, process_id: str) -> ProcessHandle[Any]:
        """A handle on the process ``process_id`` (no I/O: its calls raise ProcessNotFound)."""
        if not isinstance(process_id, str):
            raise TypeError(f"rt.handle({process_id!r}): a process id is a str")
        return ProcessHandle(self, process_id.lstrip("/"))

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
        at = self._datetime
        return ProcessState(
            id=record.id, path=record.path, params=dict(record.params), status=record.status,
            result=self._result(record) if record.status is Status.COMPLETED else None,
            error=record.error, last_error=record.last_error,
            last_error_at=None if record.last_error_at is None else at(record.last_error_at),
            waiting_on=record.waiting_on, created_at=at(record.created_at),
            updated_at=at(record.updated_at),
        )  # fmt: skip

    @staticmethod
    def _datetime(seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

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
        run = ProcessRun(self, definition, loaded)
        self._runs[run.id] = run
        self._activations += 1
        self._nursery.start_soon(run.main, name=f"process {run.id}")
        return run

    def _process_due(self, loaded: LoadedProcess) -> None:
        process = loaded.process
        definition = self._processes.get(process.path)
        if definition is None:
            self._foreign_due(loaded)
            return
        run = self._runs.get(process.id)
        if run is not None and run.resume(loaded):
            self._unpark(run)
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

    # -- definitions --------------------------------------------------------------------------

    def _check_actor(self, definition: object) -> None:
        if not isinstance(definition, PersistentActor):
            raise TypeError(
                f"rt.actor({definition!r}): pass a definition made by dur.persistent_actor"
            )
        if self._actors.get(definition.path) is not definition:
            raise ValueError(
                f"rt.actor(): persistent actor {definition.path!r} is not registered with this "
                "runtime; pass it in open_runtime(actors=[...])"
            )

    def _definitions_add_signal(self, signal: SignalDef[Any]) -> None:
        """A signal emitted without being declared in ``signals=``: known from now on."""
        if self._signals.get(signal.path) is not signal:
            _add_signal(self._signals, signal)
            if signal.data is not None and attrs.has(signal.data):
                self._codec.register(signal.data)

    def _signal_received(self, record: SignalRecord) -> SignalReceived[Any]:
        definition = self._signals.get(record.name)
        if definition is None:  # emitted by another program: known by its path only
            from ._paths import PathTemplate

            definition = SignalDef(PathTemplate.parse(record.name, what="signal"), None)
        what = f"data of signal {record.name} (seq {record.seq})"
        data = None if record.payload is None else self._codec.decode(record.payload, what=what)
        return SignalReceived(definition, data, dict(record.params), record.seq)

    # -- activations ----------------------------------------------------------------------------

    async def _activation(
        self, definition: PersistentActor[Any, Any], actor_id: str, params: dict[str, str]
    ) -> Activation:
        """The resident activation of ``actor_id``, activating it if needed."""
        while True:
            activation = self._resident.get(actor_id)
            if activation is not None:
                return activation
            pending = self._activating.get(actor_id)
            if pending is not None:
                await pending.wait()
                continue
            if self._closing:
                raise ak.SystemClosed(f"the durable runtime is closing; cannot activate {actor_id}")
            done = self._activating[actor_id] = trio.Event()
            try:
                loaded = await self._lease(definition, actor_id, params)
                while loaded is None:  # this runtime's due loop claimed it: it hands it over
                    loaded = self._handover.pop(actor_id, None)
                    if loaded is None:
                        await self._activity.wait()
                return await self._activate(definition, actor_id, params, loaded)
            finally:
                del self._activating[actor_id]
                done.set()
                if actor_id in self._handover:  # handed over, then this call failed
                    del self._handover[actor_id]
                    with trio.CancelScope(shield=True):
                        await self._store.release(self._owner, [actor_id])

    def _notify(self) -> None:
        """Activations changed: wake anyone waiting for the due loop's work."""
        self._activity.set()
        self._activity = trio.Event()

    async def _activate(
        self,
        definition: PersistentActor[Any, Any],
        actor_id: str,
        params: dict[str, str],
        loaded: LoadedProcess,
    ) -> Activation:
        store = self._store
        process = loaded.process
        if process.kind != KIND or process.path != definition.path:
            await store.release(self._owner, [actor_id])
            raise DurableError(
                f"{actor_id} in the store is a {process.kind} of {process.path!r}, not the "
                f"persistent actor {definition.path!r}; paths must not collide"
            )
        activation = Activation(self, definition, actor_id, params, loaded)
        supervisor = await self._supervisor(definition)
        try:
            ref = await supervisor.spawn(definition.behavior, activation)
        except BaseException:
            with trio.CancelScope(shield=True):
                await store.release(self._owner, [actor_id])
            raise
        activation.ref = ref
        ref._monitors = [*(ref._monitors or ()), Watch(activation)]  # type: ignore[list-item]
        self._resident[actor_id] = activation
        self._activations += 1
        self._notify()
        activation.deliver(loaded.inbox)
        self._touched(activation)
        return activation

    async def _lease(
        self, definition: PersistentActor[Any, Any], actor_id: str, params: dict[str, str]
    ) -> LoadedProcess | None:
        """Create the identity's row, or claim it; either way this runtime holds its lease.

        None if this runtime holds it already (its due loop is activating it)."""
        store = self._store
        now = self.now()
        new = NewProcess(actor_id, KIND, definition.path, params, status=Status.RUNNING)
        record, created = await store.create(
            new, now=now, owner=self._owner, lease_for=self._lease_for
        )
        if created:
            # a passivated actor is woken by any signal that reaches it
            result = await store.commit(
                Commit(actor_id, record.lease_epoch, waits=[ANY_SIGNAL]), now=now
            )
            return LoadedProcess(result.process, (), result.ready, (ANY_SIGNAL,), ())
        batch = await store.claim(self._owner, now=now, lease_for=self._lease_for, ids=[actor_id])
        if not batch.claimed:
            holder = (await store.get(actor_id)) or record
            if holder.lease_owner == self._owner:
                return None
            raise ActorElsewhere(
                f"persistent actor {actor_id} is active in another runtime "
                f"({holder.lease_owner}); send to it there, or wait until it passivates"
            )
        return batch.claimed[0]

    async def _supervisor(self, definition: PersistentActor[Any, Any]) -> ak.Supervisor:
        supervisor = self._supervisors.get(definition.path)
        if supervisor is None:
            supervisor = await self._system.supervisor(
                f"persistent{definition.path}".replace("/", "-").replace(":", ""),
                budget=definition.budget,
                backoff=definition.backoff,
            )
            self._supervisors[definition.path] = supervisor
        return supervisor

    def _touched(self, activation: Activation) -> None:
        """After a message (or activation): restart the idle clock, enforce the resident cap."""
        resident = self._resident
        if resident.get(activation.id) is activation:
            resident.move_to_end(activation.id)
        if activation.idle_after < math.inf:
            activation.ref._schedule(activation.idle_after, _Passivate(False), _IDLE)
        excess = len(resident) - len(self._evicting) - self._max_resident
        if excess > 0:
            for candidate in resident.values():
                if excess <= 0:
                    break
                if candidate.passivating or candidate.id in self._evicting:
                    continue
                self._evicting.add(candidate.id)
                if not candidate.ref.send_nowait(_Passivate(True)):
                    self._evicting.discard(candidate.id)
                excess -= 1

    def _passivating(self, activation: Activation, forced: bool) -> None:
        self._passivations += 1

    def _not_evicted(self, activation: Activation) -> None:
        """A forced passivation found work to do: it may be chosen again later."""
        self._evicting.discard(activation.id)

    def _gone(self, activation: Activation) -> None:
        """The activation's actor stopped for good."""
        if self._resident.get(activation.id) is activation:
            del self._resident[activation.id]
        self._evicting.discard(activation.id)
        activation.passivating = True
        activation.gone.set()
        activation.settled.set()

    # -- the due loop -----------------------------------------------------------------------------

    async def _serve_due(self) -> None:
        """Activate actors the store says are due; hand resident ones their new signals."""
        store = self._store
        while True:
            seen = store.work_version
            now = self.now()
            batch = await store.claim(
                self._owner, now=now, lease_for=self._lease_for, limit=100, paths=self._runnable
            )
            mine = []
            for loaded in batch.claimed:
                if loaded.process.kind == PROCESS_KIND:
                    self._process_due(loaded)
                elif loaded.process.id in self._activating:  # a send is activating it
                    self._handover[loaded.process.id] = loaded
                else:
                    self._activating[loaded.process.id] = trio.Event()
                    mine.append(loaded)
            self._notify()
            for loaded in mine:
                await self._activate_due(loaded)
            if self._resident:  # signals other clients sent to resident actors
                for record in await store.query(owner=self._owner, due_by=now, kind=KIND):
                    activation = self._resident.get(record.id)
                    if activation is not None and not activation.passivating:
                        fresh = await store.load(record.id)
                        if fresh is not None:
                            activation.deliver(fresh.inbox)
            if len(batch.claimed) == 100:
                continue
            deadline = math.inf
            if batch.next_due_at is not None:
                deadline = self._opened_at + (batch.next_due_at - self._start)
            with trio.move_on_at(deadline):
                await store.wait_for_work(seen)

    async def _activate_due(self, loaded: LoadedProcess) -> None:
        process = loaded.process
        definition = self._actors.get(process.path) if process.kind == KIND else None
        if definition is None:
            pending = self._activating.pop(process.id, None)
            if pending is not None:
                pending.set()
            self._foreign_due(loaded)
            return
        done = self._activating.get(process.id)
        try:
            previous = self._resident.get(process.id)
            if previous is not None:  # passivated and released just before the signal came
                await previous.gone.wait()
            await self._activate(definition, process.id, dict(process.params), loaded)
        except Exception:
            logger.exception("activating %s failed", process.id)
        finally:
            self._activating.pop(process.id, None)
            if done is not None:
                done.set()
            self._notify()

    def _foreign_due(self, loaded: LoadedProcess) -> None:
        """Not ours to run (another program's definitions): it stays leased, so that the due
        loop does not claim it again and again; the lease goes when this runtime closes."""
        process = loaded.process
        if process.id not in self._foreign:
            self._foreign.add(process.id)
            logger.warning(
                "%s (%s of %r) is due but this runtime has no definition for it",
                process.id, process.kind, process.path,
            )  # fmt: skip

    async def _renew_leases(self) -> None:
        period = self._lease_for / 3
        while True:
            await trio.sleep(period)
            await self._store.renew(self._owner, now=self.now(), lease_for=self._lease_for)


def _register_module_records(definitions: Definitions) -> None:
    """Make the attrs classes and enums defined at the top level of the modules that define
    the processes, actors and signals known to the codec, so that a process's inputs and step
    results decode after a restart without ``@dur.record`` (nothing is imported: the modules
    are loaded already). Classes elsewhere are known once encoded, or with ``@dur.record``."""
    functions: list[object] = [d.fn for d in definitions.processes.values()]
    functions += [d.handle for d in definitions.actors.values()]
    names = {getattr(f, "__module__", None) for f in functions}
    names |= {s.data.__module__ for s in definitions.signals.values() if s.data is not None}
    for name in sorted(n for n in names if isinstance(n, str)):
        module = sys.modules.get(name)
        for value in list(vars(module).values()) if module is not None else ():
            if (
                isinstance(value, type)
                and value.__module__ == name
                and (attrs.has(value) or issubclass(value, enum.Enum))
            ):
                try:
                    Codec.register(value)
                except ValueError:  # its name is taken by another class: it stays unknown
                    logger.warning("the codec cannot register %r: its name is taken", value)


@attrs.frozen
class Definitions:
    """What a runtime may run and decode, checked before anything opens."""

    actors: dict[str, PersistentActor[Any, Any]]
    signals: dict[str, SignalDef[Any]]
    processes: dict[str, ProcessDef[Any]] = attrs.Factory(dict)

    @classmethod
    def of(
        cls, actors: Iterable[object], signals: Iterable[object], processes: Iterable[object] = ()
    ) -> Definitions:
        by_process: dict[str, ProcessDef[Any]] = {}
        for item in processes:
            if not isinstance(item, ProcessDef):
                raise TypeError(
                    f"open_runtime(processes=...): {item!r} is not a durable process; define "
                    "it with @dur.process(path) on an async def"
                )
            known_process = by_process.get(item.path)
            if known_process is not None and known_process is not item:
                raise ValueError(
                    f"open_runtime(processes=...): two processes share the path {item.path!r}; "
                    "give each its own"
                )
            by_process[item.path] = item
        by_path: dict[str, PersistentActor[Any, Any]] = {}
        for definition in actors:
            if not isinstance(definition, PersistentActor):
                raise TypeError(
                    f"open_runtime(actors=...): {definition!r} is not a persistent actor; "
                    "define it with dur.persistent_actor(path, init=..., handle=...)"
                )
            known = by_path.get(definition.path)
            if known is not None and known is not definition:
                raise ValueError(
                    f"open_runtime(actors=...): two persistent actors share the path "
                    f"{definition.path!r}; give each its own"
                )
            by_path[definition.path] = definition
            if definition.path in by_process:
                raise ValueError(
                    f"open_runtime(): {definition.path!r} is the path of both a persistent actor "
                    "and a process; give each its own"
                )
        by_signal: dict[str, SignalDef[Any]] = {}
        for item in signals:
            for signal in signals_of(item):
                _add_signal(by_signal, signal)
        return cls(by_path, by_signal, by_process)


@attrs.frozen(init=False)
class App:
    """Definitions bundled for ``open_runtime(store, app=app)`` and the command line."""

    processes: tuple[ProcessDef[Any], ...]
    signals: tuple[object, ...]
    actors: tuple[PersistentActor[Any, Any], ...]

    def __init__(
        self,
        processes: Iterable[ProcessDef[Any]] = (),
        signals: Iterable[object] = (),
        actors: Iterable[PersistentActor[Any, Any]] = (),
    ) -> None:
        self.__attrs_init__(tuple(processes), tuple(signals), tuple(actors))
        Definitions.of(self.actors, self.signals, self.processes)  # errors now, not at open


def _add_signal(known: dict[str, SignalDef[Any]], signal: SignalDef[Any]) -> None:
    other = known.get(signal.path)
    if other is not None and other is not signal and other.data is not signal.data:
        raise ValueError(
            f"signals {other.name} and {signal.name} share the path {signal.path!r} with "
            "different data classes; give each its own path"
        )
    known.setdefault(signal.path, signal)


@asynccontextmanager
async def open_runtime(
    store: str | Store | None = None,
    *,
    app: App | None = None,
    processes: Iterable[ProcessDef[Any]] = (),
    signals: Iterable[object] = (),
    actors: Iterable[PersistentActor[Any, Any]] = (),
    start_time: datetime | None = None,
    on_event: Callable[[Any], object] | None = None,
    idle_after: float = 60.0,
    max_resident: int = 10_000,
    lease_for: float | None = None,
) -> AsyncIterator[Runtime]:
    """Open ``store`` (a URL such as ``"sqlite:///app.db"``, ``"memory://"``, a store object,
    or None for ``$ACTORKIT_STORE``) and run a durable runtime on it for the block.

    ``processes``: the ``@dur.process`` definitions it may start and run; ``actors``: the
    persistent actor definitions it may activate; ``signals``: ``dur.Signals`` subclasses (or
    single signals) whose data classes it decodes; ``app``: a ``dur.App`` bundling the three.
    ``start_time``: the durable wall time at opening (default: now, UTC). ``idle_after``:
    seconds without a message after which a persistent actor is passivated;
    ``max_resident``: the most resident actor activations (0: every message rebuilds its actor
    from the snapshot), and separately the most waiting processes kept resident, least
    recently parked dropped first (0: every wake rebuilds the process by replaying its
    journal).
    ``lease_for``: how long a lease lasts without renewal (default 30 s; unbounded on a memory
    store, which no other process can share). ``on_event`` receives the actorkit events of
    the runtime's actors and a ``dur.ProcessEvent`` for each transition of a process.

    At opening, processes suspended by a recoverable error run again, processes that were
    mid-run are re-run from their journal and due timers fire.

    Leaving the block (also by Ctrl-C) passivates every resident actor (their ``on_stop``
    runs), ends every process run where it is (step results not written yet are written
    first; a run mid-step goes on from its last recorded point in the next runtime) and
    releases this runtime's leases; messages still queued in
    memory are dropped as dead letters.
    """
    if app is not None:
        if not isinstance(app, App):
            raise TypeError(f"open_runtime(app={app!r}): pass a dur.App(processes=[...], ...)")
        processes = (*app.processes, *processes)
        signals = (*app.signals, *signals)
        actors = (*app.actors, *actors)
    definitions = Definitions.of(actors, signals, processes)
    if start_time is None:
        start_time = datetime.now(UTC)
    elif start_time.tzinfo is None:
        raise ValueError(
            f"open_runtime(start_time={start_time!r}) must be timezone-aware, e.g. "
            "datetime(2026, 1, 1, tzinfo=UTC)"
        )
    if isinstance(max_resident, bool) or not isinstance(max_resident, int) or max_resident < 0:
        raise ValueError(f"open_runtime(max_resident={max_resident!r}) must be an int >= 0")
    if not (isinstance(idle_after, int | float) and idle_after >= 0):
        raise ValueError(f"open_runtime(idle_after={idle_after!r}) must be seconds >= 0")
    async with open_store(store) as opened:
        lease = lease_for
        if lease is None:
            lease = math.inf if isinstance(opened, MemoryStore) else 30.0
        elif not (isinstance(lease, int | float) and lease > 0):
            raise ValueError(f"open_runtime(lease_for={lease_for!r}) must be seconds > 0")
        runtime: Runtime | None = None
        try:
            async with ak.open_actor_system(on_event=on_event) as system:
                runtime = Runtime(
                    opened, system, definitions=definitions, start_time=start_time,
                    idle_after=idle_after, max_resident=max_resident, lease_for=lease,
                    on_event=on_event,
                )  # fmt: skip
                await runtime._wake_suspended()
                async with trio.open_nursery() as nursery:
                    runtime._nursery = nursery
                    if runtime._runnable:  # a runtime that only emits claims nothing
                        nursery.start_soon(runtime._serve_due, name="actorkit_durable due loop")
                    if lease < math.inf:
                        nursery.start_soon(runtime._renew_leases, name="actorkit_durable leases")
                    try:
                        yield runtime
                    finally:
                        runtime._closing = True
                        nursery.cancel_scope.cancel()
                with trio.CancelScope(shield=True):
                    for supervisor in list(runtime._supervisors.values()):
                        await supervisor.stop("shutdown")
        finally:
            if runtime is not None:
                with trio.CancelScope(shield=True):
                    await opened.release(runtime._owner)

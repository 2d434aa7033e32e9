"""The durable runtime: a store, an actor system, and the work loop that serves the store.

``dur.open_runtime(store, ...)`` opens the store, starts an actorkit system whose supervisors
hold the resident persistent actors (one supervisor per definition), a nursery for the runs of
durable processes (see ``_runtime_processes`` and ``_run``), and two tasks: the *due loop*,
which claims work the store says is due (a process woken by a signal or a timer, a process
left mid-run by a crash, a signal for a passivated actor) and notices signals that other
clients sent to resident actors, and, on stores shared between processes, the *lease loop*,
which renews this runtime's leases with one call.

Time: durable wall time is ``start_time`` (default: now, UTC) plus the trio time elapsed since
the runtime opened, as POSIX seconds in the store, so a runtime under ``MockClock`` is exact.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import trio

import actorkit as ak

from ._codec import Codec
from ._definitions import App, Definitions, _add_signal, _register_module_records
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
from ._process import ProcessDef, _time
from ._run import ProcessRun
from ._runtime_processes import ProcessesMixin
from ._signals import SignalDef, SignalReceived
from ._store import (
    ANY_SIGNAL,
    Commit,
    EmitResult,
    LoadedProcess,
    MemoryStore,
    NewProcess,
    NewSignal,
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


class Runtime(ProcessesMixin):
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
        return _time(self.now())

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
            await self._cancel_requested_here()
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

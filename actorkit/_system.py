"""The actor system: the root nursery, spawning, the registry, monitors and the event stream."""

from __future__ import annotations

import contextvars
import inspect
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

import attrs
import trio

from . import _events as ev
from ._actor import ActorRef, Monitor, Status, TimerMessage, _describe
from ._behavior import Behavior
from ._budget import Backoff, RestartBudget
from ._exceptions import NameTaken, SupervisorGaveUp, SystemClosed
from ._supervisor import Strategy, Supervisor, SupervisorSpec, _stop_node
from ._timers import TimerService

logger = logging.getLogger("actorkit")

S = TypeVar("S")
M = TypeVar("M")

EventHandler = Callable[[ev.Event], object]

MAX_PARKED = 1024
"""Idle actor tasks kept parked for a cheap wake-up; beyond this the oldest ones exit."""


class Parent(Protocol):
    """Who decides what happens to an actor that failed or stopped: the system or a supervisor.

    ``_child_failed`` and ``_child_exited`` run in the child's own task and return False when
    that task must leave (the supervisor holds the child for a group restart or a give-up).
    """

    async def _child_failed(self, ref: ActorRef[Any], exc: Exception, msg: object) -> bool: ...

    async def _child_exited(self, ref: ActorRef[Any], reason: object) -> bool: ...

    def _restarts_after_stop(self, ref: ActorRef[Any]) -> bool: ...

    def _child_stopped(self, ref: ActorRef[Any]) -> None: ...


@attrs.frozen
class SystemStatistics:
    """A snapshot of an actor system, from ``system.statistics()``."""

    actors: int
    """Live actors (not stopped for good), supervised ones included."""
    tasks: int
    """Actors that currently own a task (busy or parked); idle ones own none."""
    parked: int
    """Of those, tasks parked waiting for a message."""
    timers: int
    """Timer entries pending (ask deadlines and scheduled messages, including cancelled ones
    not yet dropped)."""
    events: int
    """Events emitted so far."""


@attrs.frozen
class _Ambient:
    """Defaults installed by ``actorkit.testing.run`` for systems opened inside it."""

    seed: int
    on_event: EventHandler
    systems: list[int] = attrs.field(factory=list)


ambient: contextvars.ContextVar[_Ambient | None] = contextvars.ContextVar(
    "actorkit_ambient", default=None
)


class _Wakeup:
    __slots__ = ("task", "timers")

    def __init__(self, task: trio.lowlevel.Task, timers: TimerService) -> None:
        self.task: trio.lowlevel.Task | None = task
        self.timers = timers

    def _pending(self) -> bool:
        return self.task is not None

    def _fire(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            trio.lowlevel.reschedule(task)

    def abort(self, raise_cancel: object) -> trio.lowlevel.Abort:
        self.task = None
        self.timers.discard()
        return trio.lowlevel.Abort.SUCCEEDED


class ActorSystem:
    """Spawns and owns actors; created by ``open_actor_system``."""

    def __init__(
        self, nursery: trio.Nursery, rng: random.Random, on_event: EventHandler | None
    ) -> None:
        self._nursery = nursery
        self.rng = rng
        """The ``random.Random`` behind every random choice the system makes."""
        self._on_event = on_event
        self._seq = 0
        self._counter = 0
        self._roots: dict[ActorRef[Any] | Supervisor, None] = {}
        self._live: dict[ActorRef[Any], None] = {}
        self._names: dict[str, ActorRef[Any]] = {}
        self._parked: dict[ActorRef[Any], None] = {}
        self._max_parked = MAX_PARKED
        self._timers = TimerService()
        self._closed = False

    # -- public -----------------------------------------------------------------------------

    async def spawn(
        self,
        behavior: Behavior[S, M],
        ctx: object = None,
        *,
        name: str | None = None,
        shutdown: float | None = 5.0,
    ) -> ActorRef[M]:
        """Start an actor and return its ref once ``init(ctx)`` has succeeded.

        ``name`` registers the actor for ``whereis`` (released when it stops for good);
        ``shutdown`` is the grace its running handler gets when it is stopped, in seconds
        (``None``: unbounded). An exception in ``init`` propagates from here.
        """
        return await self._spawn(behavior, ctx, name, shutdown, self, self._nursery)

    async def supervisor(
        self,
        name: str,
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        budget: RestartBudget | None = None,
        backoff: Backoff | None = None,
        shutdown: float | None = None,
    ) -> Supervisor:
        """Start a root supervisor. ``budget`` defaults to 3 restarts within 5 s; without a
        ``backoff`` restarts are immediate. If it gives up, every other actor stops and
        ``open_actor_system`` raises ``SupervisorGaveUp`` (in an ExceptionGroup).
        """
        return await self._open_supervisor(
            name, strategy, budget, backoff, shutdown, self, self._nursery, f"/{name}"
        )

    async def start(self, spec: SupervisorSpec) -> Supervisor:
        """Start the supervision tree described by ``spec``; children start in list order."""
        if not isinstance(spec, SupervisorSpec):
            raise TypeError(
                f"start(spec=...) must be a SupervisorSpec, got {type(spec).__name__}; "
                'build one with SupervisorSpec("name", children=[ChildSpec(behavior), ...])'
            )
        sup = await self.supervisor(
            spec.name, strategy=spec.strategy, budget=spec.budget, backoff=spec.backoff,
            shutdown=spec.shutdown,
        )  # fmt: skip
        await sup._start_children(spec.children)
        return sup

    def link(self, a: ActorRef[Any], b: ActorRef[Any]) -> None:
        """Fail each of ``a`` and ``b`` (with ``LinkedFailure``) when the other fails.

        The linked actor fails once its current message is handled; its supervisor then
        decides as for any failure. A link outlives restarts and ends when either stops for
        good.
        """
        _check_ref("link", "a", a)
        _check_ref("link", "b", b)
        if a is b:
            raise ValueError(f"link({a.id}, {b.id}): an actor cannot be linked to itself")
        for ref in (a, b):
            if ref._status in (Status.STOPPED, Status.FAILED):
                raise ValueError(f"link(): {ref.id} is already {ref._status.name}")
        for one, other in ((a, b), (b, a)):
            if one._links is None:
                one._links = {}
            one._links[other] = None

    def unlink(self, a: ActorRef[Any], b: ActorRef[Any]) -> None:
        """Undo ``link(a, b)``."""
        for one, other in ((a, b), (b, a)):
            if one._links is not None:
                one._links.pop(other, None)

    def whereis(self, name: str) -> ActorRef[Any] | None:
        """The live actor registered under ``name``, or None."""
        return self._names.get(name)

    def monitor(self, watcher: ActorRef[Any], target: ActorRef[Any]) -> Monitor:
        """Send ``Down(target, reason)`` to ``watcher`` when ``target`` stops for good.

        A target that is already stopped is reported at once. Supervised restarts are not
        stops.
        """
        _check_ref("monitor", "watcher", watcher)
        _check_ref("monitor", "target", target)
        monitor = Monitor(watcher, target)
        if target._status is Status.STOPPED or target._status is Status.FAILED:
            monitor._deliver("noproc")
        else:
            if target._monitors is None:
                target._monitors = []
            target._monitors.append(monitor)
        return monitor

    def demonitor(self, monitor: Monitor) -> None:
        """Undo ``monitor``; no ``Down`` is delivered for it afterwards."""
        monitor.active = False
        monitors = monitor.target._monitors
        if monitors is not None and monitor in monitors:
            monitors.remove(monitor)

    def statistics(self) -> SystemStatistics:
        tasks = sum(1 for ref in self._live if ref._has_task)
        return SystemStatistics(
            actors=len(self._live),
            tasks=tasks,
            parked=len(self._parked),
            timers=len(self._timers),
            events=self._seq,
        )

    # -- spawning ---------------------------------------------------------------------------

    async def _spawn(
        self,
        behavior: Behavior[S, M],
        ctx: object,
        name: str | None,
        shutdown: float | None,
        parent: Parent,
        nursery: trio.Nursery,
    ) -> ActorRef[M]:
        if not isinstance(behavior, Behavior):
            raise TypeError(
                f"spawn(behavior=...) must be an actorkit.Behavior, got {type(behavior).__name__}; "
                'build one with Behavior(name="...", handle=...)'
            )
        if shutdown is not None and (
            isinstance(shutdown, bool) or not isinstance(shutdown, int | float) or not shutdown >= 0
        ):
            raise ValueError(
                f"spawn(shutdown={shutdown!r}) must be a grace in seconds >= 0, or None for "
                "no limit"
            )
        if self._closed:
            raise SystemClosed(
                "this actor system is closed; spawn actors inside "
                "`async with actorkit.open_actor_system() as system:`"
            )
        if name is not None and name in self._names:
            raise NameTaken(
                f"spawn(name={name!r}): {self._names[name].id} already holds that name; "
                "choose another name, or stop that actor first"
            )
        self._counter += 1
        ref: ActorRef[M] = ActorRef(
            self,
            behavior,
            f"{behavior.name}-{self._counter}",
            name,
            ctx,
            shutdown,
            parent,
            nursery,
        )
        if name is not None:
            self._names[name] = ref
        self._emit(ev.Spawned, ref._id, behavior=behavior.name, name=name)
        try:
            state = await self._run_init(ref)
        except BaseException as exc:
            ref._status = Status.FAILED
            if name is not None:
                del self._names[name]
            if isinstance(exc, Exception):
                self._report_failure(ref, exc, None)
            raise
        ref._state = state
        ref._live = True
        ref._status = Status.RUNNING
        ref._open = True
        self._live[ref] = None
        if parent is self:
            self._roots[ref] = None
        self._emit(ev.Started, ref._id)
        return ref

    async def _open_supervisor(
        self,
        name: str,
        strategy: Strategy,
        budget: RestartBudget | None,
        backoff: Backoff | None,
        shutdown: float | None,
        parent: Any,
        nursery: trio.Nursery,
        path: str,
    ) -> Supervisor:
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(
                f"supervisor(name={name!r}) must be a non-empty str without '/', "
                'e.g. supervisor("services")'
            )
        if not isinstance(strategy, Strategy):
            choices = ", ".join(f"Strategy.{s.name}" for s in Strategy)
            raise ValueError(f"supervisor(strategy={strategy!r}) is not a strategy; use {choices}")
        if budget is not None and not isinstance(budget, RestartBudget):
            raise TypeError(f"supervisor(budget=...) must be a RestartBudget, got {budget!r}")
        if backoff is not None and not isinstance(backoff, Backoff):
            raise TypeError(f"supervisor(backoff=...) must be a Backoff or None, got {backoff!r}")
        if self._closed:
            raise SystemClosed(
                "this actor system is closed; start supervisors inside "
                "`async with actorkit.open_actor_system() as system:`"
            )
        self._counter += 1
        sup = Supervisor(
            self, parent, name, f"{name}-{self._counter}", path, strategy,
            budget if budget is not None else RestartBudget(), backoff, shutdown,
        )  # fmt: skip
        self._emit(ev.Spawned, sup.id, behavior="supervisor", name=name)
        await nursery.start(sup._main, name=f"supervisor {path}")
        if parent is self:
            self._roots[sup] = None
        self._emit(ev.Started, sup.id)
        return sup

    async def _run_init(self, ref: ActorRef[Any], *, checkpoint: bool = True) -> Any:
        """Run ``init(ctx)`` (sync or async); a checkpoint unless ``checkpoint=False``.

        Restarts pass False: they happen inside a run loop that checkpoints on its own.
        """
        init = ref._behavior.init
        state: Any = init(ref._ctx) if init is not None else None
        if inspect.isawaitable(state):
            return await state
        if checkpoint:
            await trio.lowlevel.checkpoint()
        return state

    async def _sleep(self, delay: float) -> None:
        """Sleep on the system's timer service, so equal deadlines wake in a fixed order."""
        if delay <= 0:
            await trio.lowlevel.checkpoint()
            return
        wakeup = _Wakeup(trio.lowlevel.current_task(), self._timers)
        self._timers.add(trio.current_time() + delay, wakeup)
        await trio.lowlevel.wait_task_rescheduled(wakeup.abort)

    # -- the Parent protocol (the root: unsupervised actors stop when they fail) ----------------

    async def _child_failed(self, ref: Any, exc: Exception, msg: object) -> bool:
        if isinstance(ref, Supervisor):
            await self._root_gave_up(ref, exc)
            return False
        ref._request_stop(exc, "failed", error=exc)
        return True

    async def _root_gave_up(self, sup: Supervisor, failure: Exception) -> None:
        """A root supervisor gave up: everything stops in order, then the failure surfaces."""
        assert isinstance(failure, SupervisorGaveUp)
        await sup._finalize(failure, failure)
        await self._stop_roots()
        sup._escalate = failure

    async def _child_exited(self, ref: ActorRef[Any], reason: object) -> bool:
        raise AssertionError("unsupervised actors stop for good")  # pragma: no cover

    def _restarts_after_stop(self, ref: ActorRef[Any]) -> bool:
        return False

    def _child_stopped(self, ref: Any) -> None:
        self._roots.pop(ref, None)

    def _release(self, ref: ActorRef[Any]) -> None:
        self._live.pop(ref, None)
        name = ref._name
        if name is not None and self._names.get(name) is ref:
            del self._names[name]

    # -- shutdown ---------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        """Stop every actor and supervisor in reverse start order, each within its grace."""
        with trio.CancelScope(shield=True):
            await self._stop_roots()

    async def _stop_roots(self) -> None:
        self._closed = True
        while self._roots:
            node = next(reversed(self._roots))
            await _stop_node(node, "shutdown")
            self._roots.pop(node, None)

    # -- events -----------------------------------------------------------------------------

    def _emit(self, cls: type[ev.Event], actor_id: str, **fields: Any) -> None:
        on_event = self._on_event
        if on_event is None:
            return
        self._seq += 1
        event = cls(seq=self._seq, at=trio.current_time(), actor_id=actor_id, **fields)
        try:
            on_event(event)
        except Exception:
            logger.exception("on_event raised while handling %r", event)

    def _dead_letter(
        self, actor_id: str, msg: object, reason: str, error: BaseException | None = None
    ) -> None:
        if type(msg) is TimerMessage:
            msg = msg.msg
        error_text = None if error is None else f"{type(error).__name__}: {error}"
        if self._on_event is None:
            logger.warning(
                "dead letter to %s (%s): %s%s",
                actor_id, reason, type(msg).__name__, f" [{error_text}]" if error_text else "",
            )  # fmt: skip
            return
        self._emit(
            ev.DeadLetter, actor_id, reason=reason, message_type=type(msg).__name__,
            error=error_text, message=msg,
        )  # fmt: skip

    def _overflowed(self, ref: ActorRef[Any], msg: object) -> None:
        if type(msg) is TimerMessage:
            msg = msg.msg
        if self._on_event is None:
            logger.warning(
                "mailbox of %s is full (%d messages, REJECT): %s rejected",
                ref._id, ref._max_inbox, type(msg).__name__,
            )  # fmt: skip
            return
        self._emit(
            ev.MailboxOverflow, ref._id, message_type=type(msg).__name__,
            max_inbox=ref._max_inbox, message=msg,
        )  # fmt: skip

    def _report_failure(self, ref: ActorRef[Any] | Supervisor, exc: Exception, msg: object) -> None:
        """A handler (``msg``) or ``init`` (``msg`` None) raised ``exc``."""
        during = "init" if msg is None else f"handling {type(msg).__name__}"
        if self._on_event is None:
            logger.error("%s failed %s", ref.id, during, exc_info=exc)
        else:
            self._emit(
                ev.Failed, ref.id, error_type=type(exc).__name__, error=str(exc),
                message_type=None if msg is None else type(msg).__name__,
            )  # fmt: skip
        if msg is not None:
            self._dead_letter(ref.id, msg, "the handler raised", exc)

    def _report_failure_quietly(self, sup: Supervisor, exc: Exception) -> None:
        """A supervisor's own failure, as an event (it has no message and was logged)."""
        self._emit(
            ev.Failed, sup.id, error_type=type(exc).__name__, error=str(exc), message_type=None
        )

    def _report_on_stop_error(self, ref: ActorRef[Any], exc: Exception) -> None:
        logger.error("on_stop of %s raised", ref._id, exc_info=exc)

    def _emit_stopping(self, node: ActorRef[Any] | Supervisor, reason: object) -> None:
        self._emit(ev.Stopping, node.id, reason=_describe(reason))

    def _emit_stopped(self, node: ActorRef[Any] | Supervisor, reason: object, failed: bool) -> None:
        self._emit(ev.Stopped, node.id, reason=_describe(reason), failed=failed)

    def _emit_user(self, ref: ActorRef[Any], payload: object) -> None:
        self._emit(ev.UserEvent, ref._id, payload=payload)


def _check_ref(call: str, argument: str, value: object) -> None:
    if not isinstance(value, ActorRef):
        raise TypeError(
            f"{call}({argument}=...) must be an ActorRef returned by spawn, got "
            f"{type(value).__name__}"
        )


@asynccontextmanager
async def open_actor_system(
    *, rng: random.Random | None = None, on_event: EventHandler | None = None
) -> AsyncIterator[ActorSystem]:
    """Open an actor system that owns a nursery; no actor outlives the ``async with``.

    ``rng`` is used for every random choice (default: a fresh ``random.Random()``);
    ``on_event(event)`` receives every transition, synchronously and in ``seq`` order.
    Leaving the block stops every actor in reverse start order, each within its grace
    (queued messages become dead letters, reason ``"shutdown"``), also when the block raises
    or is interrupted by KeyboardInterrupt, which then propagates.
    """
    ambient_defaults = ambient.get()
    if ambient_defaults is not None:
        number = len(ambient_defaults.systems)
        ambient_defaults.systems.append(number)
        if rng is None:
            rng = random.Random(ambient_defaults.seed + number)
        on_event = _chain(ambient_defaults.on_event, on_event)
    if rng is None:
        rng = random.Random()
    async with trio.open_nursery() as nursery:
        system = ActorSystem(nursery, rng, on_event)
        nursery.start_soon(system._timers.run, name="actorkit timers")
        try:
            yield system
        finally:
            await system._shutdown()
            system._timers.stop()
            nursery.cancel_scope.cancel()


def _chain(first: EventHandler, second: EventHandler | None) -> EventHandler:
    if second is None:
        return first

    def both(event: ev.Event) -> None:
        first(event)
        second(event)

    return both

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
from ._actor import ActorRef, Monitor, Status, _describe
from ._behavior import Behavior
from ._exceptions import NameTaken, SystemClosed
from ._timers import TimerService

logger = logging.getLogger("actorkit")

S = TypeVar("S")
M = TypeVar("M")

EventHandler = Callable[[ev.Event], object]

MAX_PARKED = 1024
"""Idle actor tasks kept parked for a cheap wake-up; beyond this the oldest ones exit."""


class Parent(Protocol):
    """Who decides what happens to an actor that failed or stopped: the system or a supervisor."""

    async def _child_failed(self, ref: ActorRef[Any], exc: Exception, msg: object) -> None: ...

    def _child_stopped(self, ref: ActorRef[Any]) -> None: ...


@attrs.frozen
class SystemStatistics:
    """A snapshot of an actor system, from ``system.statistics()``."""

    actors: int
    """Live top-level actors (not stopped)."""
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
        self._actors: dict[ActorRef[Any], None] = {}
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
        tasks = sum(1 for ref in self._actors if ref._has_task)
        return SystemStatistics(
            actors=len(self._actors),
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
            state: Any = behavior.init(ctx) if behavior.init is not None else None
            if inspect.isawaitable(state):
                state = await state
            else:
                await trio.lowlevel.checkpoint()
        except BaseException as exc:
            ref._status = Status.FAILED
            if name is not None:
                del self._names[name]
            if isinstance(exc, Exception):
                self._report_failure(ref, exc, None)
            raise
        ref._state = state
        ref._status = Status.RUNNING
        ref._open = True
        if parent is self:
            self._actors[ref] = None
        self._emit(ev.Started, ref._id)
        return ref

    # -- the Parent protocol (the root: unsupervised actors stop when they fail) ----------------

    async def _child_failed(self, ref: ActorRef[Any], exc: Exception, msg: object) -> None:
        ref._request_stop(exc, "failed", error=exc)

    def _child_stopped(self, ref: ActorRef[Any]) -> None:
        self._actors.pop(ref, None)

    def _release(self, ref: ActorRef[Any]) -> None:
        name = ref._name
        if name is not None and self._names.get(name) is ref:
            del self._names[name]

    # -- shutdown ---------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        """Stop every actor in reverse start order, each within its grace."""
        self._closed = True
        with trio.CancelScope(shield=True):
            while self._actors:
                ref = next(reversed(self._actors))
                ref._request_stop("shutdown", "shutdown")
                if ref._stopped is None:
                    ref._stopped = trio.Event()
                await ref._stopped.wait()

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

    def _report_failure(self, ref: ActorRef[Any], exc: Exception, msg: object) -> None:
        """A handler (``msg``) or ``init`` (``msg`` None) raised ``exc``."""
        during = "init" if msg is None else f"handling {type(msg).__name__}"
        if self._on_event is None:
            logger.error("%s failed %s", ref._id, during, exc_info=exc)
        else:
            self._emit(
                ev.Failed, ref._id, error_type=type(exc).__name__, error=str(exc),
                message_type=None if msg is None else type(msg).__name__,
            )  # fmt: skip
        if msg is not None:
            self._dead_letter(ref._id, msg, "the handler raised", exc)

    def _report_on_stop_error(self, ref: ActorRef[Any], exc: Exception) -> None:
        logger.error("on_stop of %s raised", ref._id, exc_info=exc)

    def _emit_stopping(self, ref: ActorRef[Any], reason: object) -> None:
        self._emit(ev.Stopping, ref._id, reason=_describe(reason))

    def _emit_stopped(self, ref: ActorRef[Any], reason: object, failed: bool) -> None:
        self._emit(ev.Stopped, ref._id, reason=_describe(reason), failed=failed)

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
            nursery.cancel_scope.cancel()


def _chain(first: EventHandler, second: EventHandler | None) -> EventHandler:
    if second is None:
        return first

    def both(event: ev.Event) -> None:
        first(event)
        second(event)

    return both

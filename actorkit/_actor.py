"""Actors: the ``ActorRef`` slot, its run loop, ``Tools`` and ``Status``.

An ``ActorRef`` is the actor's slot: it holds the mailbox, the state and the bookkeeping, and
stays the same object for the actor's whole life (supervised restarts included). An idle actor
owns no task: the first message starts one in the owner's nursery; the task drains the mailbox
in batches (a checkpoint every ``BATCH`` messages, for fairness) and then parks, cheap to wake.
The system keeps a bounded pool of parked tasks and retires the least recently parked ones, so
memory stays bounded however many actors have ever been busy.
"""

from __future__ import annotations

import enum
import inspect
import math
from collections import deque
from collections.abc import Callable
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import trio

from ._behavior import UNCHANGED, Behavior, Overflow
from ._exceptions import ActorFailed, ActorStopped, LinkedFailure, MailboxFull, SelfAskError
from ._mailbox import admit_blocked, overflow_nowait, release_blocked, send_blocking
from ._reply import _PENDING, Reply

if TYPE_CHECKING:
    from ._mailbox import BlockedSend
    from ._system import ActorSystem, Parent

M = TypeVar("M")
T = TypeVar("T")

BATCH = 128
"""Messages an actor handles before it yields to other tasks."""


class Status(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@attrs.frozen
class Down:
    """Delivered to a watcher when the actor it monitors stops for good.

    ``reason`` is ``"normal"`` for a stop without a reason, the reason given to ``stop``,
    ``"shutdown"`` when the system closed, or the exception that failed the actor.
    """

    ref: ActorRef[Any]
    reason: object


_RETIRED, _CONTROLLED, _DETACHED = range(3)
"""How ``_serve`` ended: the idle task was retired; a control request; the task must leave."""

_STOP, _SUSPEND, _RESTART, _FAIL = range(4)
"""Control kinds: stop for good; end the incarnation and hold (group restart); a PERMANENT
child stopped itself; a linked actor failed."""


class _Control:
    """A request to end the current incarnation: what kind, why, and by when."""

    __slots__ = ("kind", "reason", "error", "letter", "deadline")

    def __init__(
        self,
        kind: int,
        reason: object,
        error: BaseException | None,
        letter: str,
        deadline: float,
    ) -> None:
        self.kind = kind
        self.reason = reason
        self.error = error
        self.letter = letter
        self.deadline = deadline


class TimerMessage:
    """A fired timer's message in the mailbox, tagged with the incarnation that scheduled it.

    The mailbox outlives a restart; the tag keeps the new incarnation from handling a message
    its predecessor scheduled (it becomes a dead letter instead).
    """

    __slots__ = ("msg", "incarnation")

    def __init__(self, msg: object, incarnation: int) -> None:
        self.msg = msg
        self.incarnation = incarnation


class _Timer:
    __slots__ = ("ref", "msg", "key", "alive")

    def __init__(self, ref: ActorRef[Any], msg: object, key: object) -> None:
        self.ref = ref
        self.msg = msg
        self.key = key
        self.alive = True

    def _pending(self) -> bool:
        return self.alive

    def _cancel(self) -> None:
        if self.alive:
            self.alive = False
            self.ref._system._timers.discard()

    def _fire(self) -> None:
        if not self.alive:
            return
        self.alive = False
        ref = self.ref
        timers = ref._timers
        if timers is not None and timers.get(self.key) is self:
            del timers[self.key]
        msg = TimerMessage(self.msg, ref._incarnation)
        if not ref.send_nowait(msg) and ref._open and ref._behavior.overflow is Overflow.BLOCK:
            ref._system._dead_letter(ref._id, self.msg, "timer message: mailbox full (BLOCK)")


class ActorRef(Generic[M]):
    """A handle to an actor: send it messages, ask it questions, stop it.

    Refs are created by ``spawn``; they stay valid across supervised restarts. ``send`` and
    ``send_nowait`` return False when the message was not accepted (the actor stopped, or a
    full mailbox rejected it); an undeliverable message becomes a ``DeadLetter`` event.
    """

    __slots__ = (
        "_system", "_behavior", "_id", "_name", "_ctx", "_shutdown", "_parent", "_nursery",
        "_status", "_open", "_state", "_queue", "_max_inbox", "_blocked", "_idle",
        "_has_task", "_task", "_parked", "_scope", "_control", "_asks", "_timers",
        "_monitors", "_stopped", "_current", "_live", "_incarnation", "_suspended",
        "_backoff_scope", "_links", "_held_replies", "__weakref__",
    )  # fmt: skip

    def __init__(
        self,
        system: ActorSystem,
        behavior: Behavior[Any, M],
        actor_id: str,
        name: str | None,
        ctx: object,
        shutdown: float | None,
        parent: Parent,
        nursery: trio.Nursery,
    ) -> None:
        self._system = system
        self._behavior = behavior
        self._id = actor_id
        self._name = name
        self._ctx = ctx
        self._shutdown = math.inf if shutdown is None else shutdown
        self._parent = parent
        self._nursery = nursery
        self._status = Status.STARTING
        self._open = False
        self._state: Any = None
        self._queue: deque[Any] | None = None
        self._max_inbox = behavior.max_inbox
        self._blocked: deque[BlockedSend] | None = None
        self._idle = True
        self._has_task = False
        self._task: trio.lowlevel.Task | None = None
        self._parked: trio.lowlevel.Task | None = None
        self._scope: trio.CancelScope | None = None
        self._control: _Control | None = None
        self._asks: set[Reply[Any]] | None = None
        self._timers: dict[object, _Timer] | None = None
        self._monitors: list[Monitor] | None = None
        self._stopped: trio.Event | None = None
        self._current: object = None
        self._live = False
        self._incarnation = 0
        self._suspended: trio.Event | None = None
        self._backoff_scope: trio.CancelScope | None = None
        self._links: dict[ActorRef[Any], None] | None = None  # ordered: replays are exact
        self._held_replies: list[Reply[Any]] | None = None

    # -- public -----------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """Unique and deterministic: the behavior's name and a counter, e.g. ``counter-1``."""
        return self._id

    @property
    def name(self) -> str:
        """The registered name given to ``spawn(name=)``, else the behavior's name."""
        return self._name if self._name is not None else self._behavior.name

    @property
    def status(self) -> Status:
        return self._status

    def __repr__(self) -> str:
        return f"<ActorRef {self._id} {self._status.name}>"

    def send_nowait(self, msg: M) -> bool:
        """Enqueue ``msg`` without ever blocking; True if the mailbox accepted it."""
        if self._open:
            queue = self._queue
            if queue is None:
                queue = self._queue = deque()
            if len(queue) < self._max_inbox:
                queue.append(msg)
                if self._idle:
                    self._wake()
                return True
            return overflow_nowait(self, msg)
        self._system._dead_letter(self._id, msg, self._closed_reason())
        return False

    async def send(self, msg: M) -> bool:
        """Enqueue ``msg``; True if the mailbox accepted it.

        Under ``Overflow.BLOCK`` this waits for room (backpressure). It is a checkpoint; if it
        is cancelled, the message was not sent.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if (
            self._open
            and self._behavior.overflow is Overflow.BLOCK
            and self._queue is not None
            and len(self._queue) >= self._max_inbox
        ):
            return await send_blocking(self, msg)
        accepted = self.send_nowait(msg)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return accepted

    async def ask(self, build: Callable[[Reply[T]], M], *, timeout: float | None = 5.0) -> T:
        """Send ``build(reply)`` and wait for the handler to call ``reply(value)``.

        Raises ``AskTimeout`` after ``timeout`` seconds (``None``: wait forever),
        ``ActorStopped`` as soon as the actor stops without replying (``ActorFailed`` when the
        asker's own message crashed it), ``SelfAskError`` when an actor asks itself, and
        ``MailboxFull`` when a REJECT mailbox is full. On cancellation the message stays
        queued and a later reply becomes a dead letter.
        """
        task = trio.lowlevel.current_task()
        if task is self._task and task is not None:
            await trio.lowlevel.checkpoint()
            raise SelfAskError(
                f"{self._id} asked itself from its own handler, which would wait forever; "
                "handle the request directly, or send yourself a message"
            )
        if timeout is not None and not timeout >= 0:
            raise ValueError(
                f"ask(timeout={timeout!r}) must be a number of seconds >= 0, or None to wait "
                "without a deadline"
            )
        if not self._open:
            await trio.lowlevel.checkpoint()
            raise ActorStopped(f"ask to {self._id}: the actor is {self._status.name}")
        reply: Reply[T] = Reply(self, trio.current_time())
        reply._msg = msg = _build_message(build, reply)
        asks = self._asks
        if asks is None:
            asks = self._asks = set()
        asks.add(reply)
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        if len(queue) < self._max_inbox:
            queue.append(msg)
            if self._idle:
                self._wake()
        else:
            await self._ask_overflow(reply, msg, timeout)
        if reply._state == _PENDING:
            if timeout is not None:
                reply._timed = True
                self._system._timers.add(reply._started + timeout, reply)
            reply._task = task
            await trio.lowlevel.wait_task_rescheduled(reply._abort)
        return reply._result()

    async def stop(self, reason: object = None) -> None:
        """Stop the actor for good and wait until it has stopped.

        The handler in progress gets the actor's shutdown grace, then is cancelled; queued
        messages become dead letters; ``on_stop`` runs. Called from the actor's own handler
        it only requests the stop (as ``tools.stop``). If this call is cancelled, the actor
        still stops.
        """
        if self._status is Status.STOPPED or self._status is Status.FAILED:
            await trio.lowlevel.checkpoint()
            return
        self._request_stop("normal" if reason is None else reason, "stopped")
        if self._ended() or trio.lowlevel.current_task() is self._task:
            await trio.lowlevel.checkpoint()
            return
        if self._stopped is None:
            self._stopped = trio.Event()
        await self._stopped.wait()

    def _ended(self) -> bool:
        return self._status is Status.STOPPED or self._status is Status.FAILED

    # -- the run loop ----------------------------------------------------------------------

    def _wake(self) -> None:
        self._idle = False
        task = self._parked
        if task is not None:
            self._parked = None
            del self._system._parked[self]
            trio.lowlevel.reschedule(task)
        elif not self._has_task:
            self._start_task()

    def _start_task(self) -> None:
        self._has_task = True
        self._nursery.start_soon(self._run, name=self._id)

    @trio.lowlevel.enable_ki_protection
    async def _run(self) -> None:
        self._task = trio.lowlevel.current_task()
        try:
            while True:
                control = self._control
                stopping = control is not None and control.kind == _STOP
                deadline = control.deadline if control is not None and stopping else math.inf
                # Shielded: only this actor's own grace cancels its handler. A cancelled outer
                # scope leads to the system's (shielded) shutdown, which stops actors in order.
                with trio.CancelScope(deadline=deadline, shield=True) as scope:
                    self._scope = scope
                    if not await self._serve_incarnations(scope):
                        return
                    break
                # a handler ran past its grace and was cancelled
                self._drop_current("cancelled: the handler ran past its grace")
                control = self._control
                if control is None or control.kind == _STOP:
                    break
                # the incarnation ends (group restart, self-stop, link): carry on from there
        except BaseException:
            if self._control is None or self._control.kind != _STOP:
                self._control = None
                self._request_stop("cancelled", "cancelled")
            await self._terminate()
            raise
        finally:
            self._scope = None
        await self._terminate()

    async def _serve_incarnations(self, scope: trio.CancelScope) -> bool:
        """Serve until the actor must stop for good (True) or the task leaves (False).

        The task leaves when it is retired while idle, or when a supervisor holds the actor
        between incarnations (its mailbox keeps filling; the supervisor resumes it).
        """
        while True:
            outcome = await self._serve()
            if outcome == _RETIRED:
                self._leave(idle=True)
                return False
            if outcome == _DETACHED:
                # held for the supervisor's decision task; a take-down that asked for this
                # incarnation's end while its parent was deciding has it now
                if self._control is not None and self._control.kind == _SUSPEND:
                    self._control = None
                self._leave(idle=False)
                self._signal_suspended()
                return False
            control = self._control
            assert control is not None
            if control.kind == _STOP:
                return True
            if control.kind == _SUSPEND:
                await self._end_incarnation("restart")
                self._control = None
                self._leave(idle=False)
                self._signal_suspended()
                return False
            # a PERMANENT child stopped itself, or a linked actor failed: its supervisor decides
            self._control = None
            scope.deadline = math.inf
            if control.kind == _FAIL:
                assert isinstance(control.error, Exception)
                keep = await self._on_failure(control.error, None)
            else:
                await self._end_incarnation(control.reason)
                keep = await self._parent._child_exited(self, control.reason)
            if not keep:
                self._leave(idle=False)
                return False

    def _leave(self, *, idle: bool) -> None:
        """This task exits without ending the actor; ``idle=False`` holds new messages."""
        self._task = None
        self._has_task = False
        self._idle = idle

    async def _serve(self) -> int:
        """Handle messages until a control request, retirement, or detachment."""
        behavior = self._behavior
        handle = behavior.handle
        is_async = behavior._async_handle
        none_is_state = behavior.none_is_state
        tools = Tools(self)
        budget = BATCH
        while True:
            queue = self._queue
            while queue and self._control is None:
                if not budget:  # every BATCH messages (failures included), let others run
                    budget = BATCH
                    await trio.lowlevel.checkpoint()
                    continue
                budget -= 1
                msg = queue.popleft()
                if self._blocked:
                    admit_blocked(self)
                if type(msg) is TimerMessage:
                    if msg.incarnation != self._incarnation:
                        self._system._dead_letter(
                            self._id, msg, "timer of a previous incarnation (restarted)"
                        )
                        continue
                    msg = msg.msg
                self._current = msg
                try:
                    result = handle(self._state, msg, tools)
                    if is_async or type(result) is CoroutineType:
                        result = await result  # type: ignore[misc]
                except Exception as exc:
                    self._current = None
                    if not await self._on_failure(exc, msg):
                        return _DETACHED
                    continue
                self._current = None
                if result is None:
                    if none_is_state:
                        self._state = None
                elif result is not UNCHANGED:
                    self._state = result
            if self._control is not None:
                return _CONTROLLED
            self._idle = True
            if not await self._park():
                return _RETIRED

    async def _park(self) -> bool:
        """Wait for work; False if the system retired this task while there was none."""
        system = self._system
        self._parked = self._task
        pool = system._parked
        pool[self] = None
        if len(pool) > system._max_parked:
            oldest = next(iter(pool))
            del pool[oldest]
            task = oldest._parked
            oldest._parked = None
            assert task is not None
            trio.lowlevel.reschedule(task)
        await trio.lowlevel.wait_task_rescheduled(self._abort_park)
        return not self._idle

    def _abort_park(self, raise_cancel: object) -> trio.lowlevel.Abort:
        if self._parked is not None:
            self._parked = None
            del self._system._parked[self]
        return trio.lowlevel.Abort.SUCCEEDED

    async def _on_failure(self, exc: Exception, msg: object) -> bool:
        """Report a failure and let the parent decide; False if this task must leave."""
        system = self._system
        system._report_failure(self, exc, msg)
        if msg is not None:
            self._fail_ask_of(msg, exc)
        if self._links:
            self._propagate_to_links(exc)
        control = self._control
        if control is not None:
            if control.kind == _STOP or control.kind == _SUSPEND:
                return True  # it is being ended anyway: no restart decision for this failure
            self._control = None  # its own failure supersedes a self-stop or a link's failure
        return await self._parent._child_failed(self, exc, msg)

    # -- incarnations (used by supervisors) ------------------------------------------------

    async def _end_incarnation(self, reason: object) -> None:
        """Run ``on_stop`` for the current incarnation and cancel its timers; keep the mailbox."""
        self._cancel_timers()
        if self._status is not Status.STOPPING:
            self._status = Status.RESTARTING
        if self._live:
            self._live = False
            if self._behavior.on_stop is not None:
                deadline = trio.current_time() + self._shutdown
                with trio.CancelScope(shield=True, deadline=deadline):
                    await self._run_on_stop(reason)
            self._state = None
        self._incarnation += 1

    async def _reinit(self) -> None:
        """Start a new incarnation: fresh state from ``init``; the mailbox is kept."""
        state = await self._system._run_init(self, checkpoint=False)
        self._state = state
        self._live = True
        self._status = Status.RUNNING

    def _resume(self) -> None:
        """Let a held actor's task run again (after ``_reinit``)."""
        if self._has_task or self._control is not None:
            return
        self._idle = True
        if self._queue:
            self._wake()

    async def _suspend(self) -> None:
        """End the current incarnation (grace, then ``on_stop``) and hold the actor."""
        if self._status in (Status.STOPPED, Status.FAILED, Status.STOPPING):
            return
        if not self._live and not self._has_task:
            return
        if self._control is None:
            self._control = _Control(
                _SUSPEND, "restart", None, "", trio.current_time() + self._shutdown
            )
            self._interrupt()
        if self._suspended is None:
            self._suspended = trio.Event()
        await self._suspended.wait()

    def _signal_suspended(self) -> None:
        event, self._suspended = self._suspended, None
        if event is not None:
            event.set()

    def _interrupt(self) -> None:
        """Make the task notice ``_control``: wake it, or bound its handler by the grace."""
        if self._backoff_scope is not None:
            self._backoff_scope.cancel()
        if self._idle:
            self._wake()
        elif not self._has_task:
            self._start_task()
        else:
            control = self._control
            scope = self._scope
            if control is not None and scope is not None and control.deadline < scope.deadline:
                scope.deadline = control.deadline

    async def _backoff(self, delay: float) -> None:
        """Wait ``delay`` seconds before a restart; a stop request cuts it short."""
        with trio.CancelScope() as scope:
            self._backoff_scope = scope
            await self._system._sleep(delay)
        self._backoff_scope = None

    def _propagate_to_links(self, exc: BaseException) -> None:
        chain = exc.chain if isinstance(exc, LinkedFailure) else frozenset()
        chain = chain | {self._id}
        for other in list(self._links or ()):
            if other._id in chain or other._status in (Status.STOPPED, Status.FAILED):
                continue
            failure = LinkedFailure(
                f"linked actor {self._id} failed: {type(exc).__name__}: {exc}", chain
            )
            failure.__cause__ = exc
            other._inject_failure(failure)

    def _inject_failure(self, failure: BaseException) -> None:
        if self._control is not None:
            return
        self._control = _Control(_FAIL, failure, failure, "failed", math.inf)
        self._interrupt()

    # -- stopping --------------------------------------------------------------------------

    def _closed_reason(self) -> str:
        control = self._control
        return control.letter if control is not None and control.letter else "not started"

    def _request_stop(
        self,
        reason: object,
        letter: str,
        error: BaseException | None = None,
        *,
        by_self: bool = False,
        deadline: float = math.inf,
    ) -> None:
        """Ask the actor to end; never blocks. A stop for good overrides a pending restart.

        ``deadline`` caps the grace (a parent subtree's own grace running out).
        """
        if self._status in (Status.STOPPED, Status.FAILED):
            return
        control = self._control
        if control is not None and control.kind == _STOP:
            if deadline < control.deadline:
                control.deadline = deadline
                self._interrupt()
            return
        if by_self and self._parent._restarts_after_stop(self):
            if control is None:
                self._control = _Control(_RESTART, reason, None, "", math.inf)
            return
        deadline = min(deadline, trio.current_time() + self._shutdown)
        self._control = _Control(_STOP, reason, error, letter, deadline)
        self._open = False
        self._cancel_timers()  # its mailbox is closed: a timer firing now could only be lost
        self._status = Status.STOPPING
        self._system._emit_stopping(self, reason)
        self._discard_mailbox(letter, reason)
        if not self._has_task and (not self._live or self._behavior.on_stop is None):
            # nothing of the user's left to run: finish here instead of starting a task
            self._cancel_timers()
            self._finish(self._control)
            return
        self._interrupt()
        if control is not None and control.kind == _SUSPEND:
            self._signal_suspended()

    async def _terminate(self) -> None:
        """End the actor for good; runs once, in the actor's own task, shielded."""
        control = self._control
        assert control is not None
        self._cancel_timers()
        self._drop_current("cancelled: the handler ran past its grace")
        self._open = False
        self._discard_mailbox(control.letter, control.reason)
        if self._live:
            self._live = False
            with trio.CancelScope(shield=True, deadline=control.deadline):
                await self._run_on_stop(control.reason)
        self._finish(control)

    def _drop_current(self, reason: str) -> None:
        """The message being handled was cancelled: a dead letter; its asker is told."""
        current, self._current = self._current, None
        if current is None:
            return
        self._system._dead_letter(self._id, current, reason)
        asks = self._asks
        for reply in [r for r in asks or () if r._msg is current]:
            reply._fail(ActorStopped(f"{self._id}: {reason} before replying"))

    def _finish(self, control: _Control) -> None:
        """The synchronous end of ``_terminate``: record the stop and tell everyone."""
        system = self._system
        self._live = False
        self._status = Status.FAILED if control.error is not None else Status.STOPPED
        self._state = None
        self._task = None
        self._has_task = False
        if self._parked is not None:
            self._parked = None
            system._parked.pop(self, None)
        system._emit_stopped(self, control.reason, control.error is not None)
        self._parent._child_stopped(self)
        system._release(self)
        for other in self._links or ():
            if other._links is not None:
                other._links.pop(self, None)
        self._links = None
        monitors, self._monitors = self._monitors, None
        for monitor in monitors or ():
            monitor._deliver(control.reason)
        self._signal_suspended()
        if self._stopped is not None:
            self._stopped.set()

    def _discard_mailbox(self, letter: str, reason: object) -> None:
        """Queued and blocked messages become dead letters; their askers get ActorStopped.

        Only the ask of the message being handled right now stays pending: its handler may
        still reply within the grace.
        """
        queue = self._queue
        while queue:
            self._system._dead_letter(self._id, queue.popleft(), letter)
        release_blocked(self, letter)
        asks = self._asks
        if asks:
            current = self._current
            error = f"{self._id} stopped ({_describe(reason)}) before replying"
            for reply in [r for r in asks if r._msg is not current or current is None]:
                reply._fail(ActorStopped(error))

    async def _run_on_stop(self, reason: object) -> None:
        on_stop = self._behavior.on_stop
        if on_stop is None:
            return
        try:
            result = on_stop(self._state, reason)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            self._system._report_on_stop_error(self, exc)

    # -- asks and timers -------------------------------------------------------------------

    async def _ask_overflow(self, reply: Reply[Any], msg: object, timeout: float | None) -> None:
        policy = self._behavior.overflow
        if policy is Overflow.DROP_OLDEST:
            overflow_nowait(self, msg)
        elif policy is Overflow.BLOCK:
            deadline = math.inf if timeout is None else reply._started + timeout
            with trio.move_on_at(deadline) as scope:
                await send_blocking(self, msg)
            if scope.cancelled_caught:
                reply._fire()
        else:
            reply._fail(
                MailboxFull(
                    f"ask to {self._id}: its mailbox is full ({self._max_inbox} messages, "
                    "Overflow.REJECT); retry later, raise max_inbox, or use Overflow.BLOCK"
                )
            )
            self._system._overflowed(self, msg)
            await trio.lowlevel.checkpoint()

    def _fail_ask_of(self, msg: object, exc: Exception) -> None:
        asks = self._asks
        if not asks:
            return
        for reply in asks:
            if reply._msg is msg:
                error = ActorFailed(
                    f"{self._id} failed handling {type(msg).__name__}: {type(exc).__name__}: {exc}"
                )
                error.__cause__ = exc
                reply._fail(error)
                return

    def _drop_ask_of(self, msg: object) -> None:
        asks = self._asks
        if not asks:
            return
        for reply in asks:
            if reply._msg is msg:
                reply._fail(
                    MailboxFull(f"ask to {self._id}: its message was dropped (DROP_OLDEST)")
                )
                return

    def _schedule(self, after: float, msg: object, key: object) -> None:
        timers = self._timers
        if timers is None:
            timers = self._timers = {}
        timer = _Timer(self, msg, key)
        if key is None:
            timer.key = timer
        else:
            old = timers.get(key)
            if old is not None:
                old._cancel()
        timers[timer.key] = timer
        self._system._timers.add(trio.current_time() + after, timer)

    def _cancel_timer(self, key: object) -> bool:
        timers = self._timers
        timer = timers.pop(key, None) if timers else None
        if timer is None:
            return False
        timer._cancel()
        return True

    def _cancel_timers(self) -> None:
        timers, self._timers = self._timers, None
        for timer in (timers or {}).values():
            timer._cancel()


class Monitor:
    """A watch set up by ``system.monitor``; pass it to ``system.demonitor`` to undo it."""

    __slots__ = ("watcher", "target", "active")

    def __init__(self, watcher: ActorRef[Any], target: ActorRef[Any]) -> None:
        self.watcher = watcher
        self.target = target
        self.active = True

    def _deliver(self, reason: object) -> None:
        if self.active:
            self.active = False
            self.watcher.send_nowait(Down(self.target, reason))

    def __repr__(self) -> str:
        return f"<Monitor {self.watcher.id} watching {self.target.id}>"


class Tools:
    """What a handler can do besides returning its new state; the third handler argument."""

    __slots__ = ("_ref",)

    def __init__(self, ref: ActorRef[Any]) -> None:
        self._ref = ref

    @property
    def self(self) -> ActorRef[Any]:
        """This actor's own ref."""
        return self._ref

    def now(self) -> float:
        """The trio clock, in seconds."""
        return trio.current_time()

    def schedule(self, after: float, msg: object, *, key: object = None) -> None:
        """Send ``msg`` to this actor after ``after`` seconds.

        A new timer with the same ``key`` replaces the old one, whose message is then never
        delivered. Timers are cancelled when the actor stops or restarts.
        """
        if isinstance(after, bool) or not isinstance(after, int | float) or not after >= 0:
            raise ValueError(f"tools.schedule(after={after!r}) must be a number of seconds >= 0")
        self._ref._schedule(after, msg, key)

    def cancel_timer(self, key: object) -> bool:
        """Cancel the timer with ``key``; True if one was pending."""
        return self._ref._cancel_timer(key)

    def emit(self, event: object) -> None:
        """Publish ``event`` on the system's event stream as a ``UserEvent``."""
        self._ref._system._emit_user(self._ref, event)

    def stop(self, reason: object = None) -> None:
        """Stop this actor once the current handler returns.

        Under a supervisor a PERMANENT child is restarted after this (as in Erlang/OTP).
        """
        self._ref._request_stop("normal" if reason is None else reason, "stopped", by_self=True)


def _build_message(build: Callable[[Reply[T]], M], reply: Reply[T]) -> M:
    if not callable(build):
        raise TypeError(
            f"ask(build={build!r}) must be callable: it is called with the reply and returns "
            "the message, e.g. ref.ask(Get) for a message class with one `reply` field"
        )
    try:
        return build(reply)
    except TypeError as exc:
        name = getattr(build, "__qualname__", repr(build))
        raise TypeError(
            f"ask(build={name}): calling it with the reply failed ({exc}); pass a callable "
            "that takes the reply as its only argument, e.g. "
            "ref.ask(lambda reply: Get(key, reply=reply))"
        ) from exc


def _describe(reason: object) -> str:
    if isinstance(reason, BaseException):
        return f"{type(reason).__name__}: {reason}"
    return str(reason)

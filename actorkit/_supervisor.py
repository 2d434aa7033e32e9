"""Supervisors: restart children in place, within a budget, with backoff; escalate; shut down.

A supervisor owns a nursery (its children's tasks run there) and a task that serialises its
decisions that involve more than one child: group restarts (ONE_FOR_ALL, REST_FOR_ONE),
giving up, and stopping. A ONE_FOR_ONE restart needs no coordination and runs in the failing
child's own task: ``on_stop``, backoff, ``init`` again, then the next queued message, without
a new task. The policy itself (budget window, backoff delays) lives in ``_budget.py``.
"""

from __future__ import annotations

import enum
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import trio

from . import _events as ev
from ._actor import ActorRef, Status
from ._behavior import Behavior
from ._budget import (
    Backoff,
    RestartBudget,
    backoff_delay,
    needs_draw,
    next_attempt,
    record_restart,
    restarts_in_window,
)
from ._exceptions import SupervisorGaveUp, SystemClosed

if TYPE_CHECKING:
    from ._system import ActorSystem

logger = logging.getLogger("actorkit")

S = TypeVar("S")
M = TypeVar("M")
R = TypeVar("R")


class Strategy(enum.Enum):
    """Which children a supervisor restarts when one fails (Erlang/OTP's definitions)."""

    ONE_FOR_ONE = "one_for_one"
    """Only the failed child."""
    ONE_FOR_ALL = "one_for_all"
    """Every child: all stop (reverse start order), then all start again (start order)."""
    REST_FOR_ONE = "rest_for_one"
    """The failed child and every child started after it."""


class Restart(enum.Enum):
    """When a child is restarted (Erlang/OTP's restart types)."""

    PERMANENT = "permanent"
    """Always, also after it stopped itself with ``tools.stop()``."""
    TRANSIENT = "transient"
    """Only after a failure."""
    TEMPORARY = "temporary"
    """Never, also when a group strategy takes it down."""


@attrs.frozen
class ChildSpec:
    """A child actor of a ``SupervisorSpec``."""

    behavior: Behavior[Any, Any]
    ctx: object = None
    restart: Restart = Restart.PERMANENT
    shutdown: float | None = 5.0
    name: str | None = None


@attrs.frozen
class SupervisorSpec:
    """A supervisor and its children, started in list order by ``system.start(spec)``."""

    name: str
    strategy: Strategy = Strategy.ONE_FOR_ONE
    budget: RestartBudget = attrs.Factory(RestartBudget)
    backoff: Backoff | None = None
    children: Sequence[ChildSpec | SupervisorSpec] = ()
    restart: Restart = Restart.PERMANENT
    shutdown: float | None = None


class _Entry:
    """A supervisor's record of one child."""

    __slots__ = ("node", "restart", "restarts", "attempt", "last_restart_at")

    def __init__(self, node: ActorRef[Any] | Supervisor, restart: Restart) -> None:
        self.node = node
        self.restart = restart
        self.restarts = 0
        self.attempt = 0
        self.last_restart_at: float | None = None


class Supervisor:
    """Supervises actors and subtrees; created by ``system.supervisor`` or ``sup.supervisor``."""

    def __init__(
        self,
        system: ActorSystem,
        parent: Any,
        name: str,
        supervisor_id: str,
        path: str,
        strategy: Strategy,
        budget: RestartBudget,
        backoff: Backoff | None,
        shutdown: float | None,
    ) -> None:
        self._system = system
        self._parent = parent
        self._name = name
        self._id = supervisor_id
        self._path = path
        self._strategy = strategy
        self._budget = budget
        self._backoff_policy = backoff
        self._shutdown = math.inf if shutdown is None else shutdown
        self._status = Status.STARTING
        self._entries: list[_Entry] = []
        self._index: dict[ActorRef[Any] | Supervisor, _Entry] = {}
        self._stamps: tuple[float, ...] = ()
        self._nursery: trio.Nursery | None = None
        self._jobs: deque[Callable[[], Awaitable[None]]] = deque()
        self._wakeup: trio.Event | None = None
        self._loop_task: trio.lowlevel.Task | None = None
        self._finished = False
        self._done = trio.Event()
        self._escalate: BaseException | None = None
        self._backoff_scope: trio.CancelScope | None = None
        self._incarnation = 0
        self._stop_requested = False
        # This incarnation is over (the budget ran out, or the parent took the subtree down):
        # no restart of a child goes ahead until the parent re-creates the subtree.
        self._held = False
        self._suspend_pending = False

    # -- public -----------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    @property
    def name(self) -> str:
        return self._name

    @property
    def path(self) -> str:
        """The supervisor's place in the tree, e.g. ``/services/workers``."""
        return self._path

    @property
    def status(self) -> Status:
        return self._status

    def __repr__(self) -> str:
        return f"<Supervisor {self._path} {self._status.name}>"

    async def spawn(
        self,
        behavior: Behavior[S, M],
        ctx: object = None,
        *,
        restart: Restart = Restart.PERMANENT,
        shutdown: float | None = 5.0,
        name: str | None = None,
    ) -> ActorRef[M]:
        """Start a supervised child actor; returns its ref once ``init`` succeeded."""
        _check_restart(restart)
        self._check_open("spawn")
        assert self._nursery is not None
        ref = await self._system._spawn(behavior, ctx, name, shutdown, self, self._nursery)
        self._adopt(ref, restart)
        return ref

    async def supervisor(
        self,
        name: str,
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        budget: RestartBudget | None = None,
        backoff: Backoff | None = None,
        restart: Restart = Restart.PERMANENT,
        shutdown: float | None = None,
    ) -> Supervisor:
        """Start a child supervisor (a subtree). Its ``shutdown`` grace defaults to unbounded."""
        _check_restart(restart)
        self._check_open("supervisor")
        assert self._nursery is not None
        sub = await self._system._open_supervisor(
            name, strategy, budget, backoff, shutdown, self, self._nursery, f"{self._path}/{name}"
        )
        self._adopt(sub, restart)
        return sub

    async def start(self, spec: SupervisorSpec) -> Supervisor:
        """Start a subtree described by ``spec``, its children in list order."""
        sub = await self.supervisor(
            spec.name, strategy=spec.strategy, budget=spec.budget, backoff=spec.backoff,
            restart=spec.restart, shutdown=spec.shutdown,
        )  # fmt: skip
        await sub._start_children(spec.children)
        return sub

    def children(self) -> list[ActorRef[Any] | Supervisor]:
        """The live children, in start order."""
        return [entry.node for entry in self._entries]

    def restart_count(self, child: ActorRef[Any] | Supervisor) -> int:
        """How many times ``child`` was restarted by this supervisor."""
        entry = self._index.get(child)
        if entry is None:
            raise ValueError(
                f"restart_count({child!r}): not a live child of supervisor {self._path}; "
                "pass a ref from its children()"
            )
        return entry.restarts

    async def stop(self, reason: object = None) -> None:
        """Stop every child in reverse start order, each within its grace, then the supervisor."""
        await self._stop_within("normal" if reason is None else reason, math.inf)

    async def _stop_within(self, reason: object, deadline: float) -> None:
        """Stop for good; children's graces are cut short at ``deadline``."""
        if self._status in (Status.STOPPED, Status.FAILED):
            await trio.lowlevel.checkpoint()
            return
        self._stop_requested = True  # no restart decided from now on may go ahead
        if self._backoff_scope is not None:
            self._backoff_scope.cancel()
        await self._call(lambda: self._finalize(reason, None, deadline))
        await self._done.wait()

    # -- the decision task ------------------------------------------------------------------

    async def _main(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._loop_task = trio.lowlevel.current_task()
            self._status = Status.RUNNING
            task_status.started()
            try:
                # Shielded: a supervisor ends when it is stopped (the system's shutdown always
                # stops it), so that an outer cancellation still stops children in order.
                with trio.CancelScope(shield=True):
                    await self._loop()
            finally:
                self._done.set()
        if self._escalate is not None:
            raise self._escalate

    async def _loop(self) -> None:
        while True:
            # jobs queued before the supervisor finished still run (late ones are no-ops), so
            # that nobody waiting in `_call` waits forever
            while self._jobs:
                await self._jobs.popleft()()
            if self._finished:
                break
            self._wakeup = trio.Event()
            await self._wakeup.wait()
            self._wakeup = None

    def _post(self, job: Callable[[], Awaitable[None]]) -> None:
        self._jobs.append(job)
        if self._wakeup is not None:
            self._wakeup.set()

    async def _call(self, job: Callable[[], Awaitable[R]]) -> R:
        """Run ``job`` in the decision task (directly if already there) and return its result."""
        if trio.lowlevel.current_task() is self._loop_task or self._finished:
            return await job()
        done = trio.Event()
        outcome: list[Any] = []

        async def wrapper() -> None:
            try:
                outcome.append((True, await job()))
            except Exception as exc:
                outcome.append((False, exc))
            finally:
                done.set()

        self._post(wrapper)
        await done.wait()
        ok, value = outcome[0]
        if not ok:
            raise value
        result: R = value
        return result

    # -- the Parent protocol: what happens when a child fails or stops ------------------------

    async def _child_failed(self, node: Any, exc: Exception, msg: object) -> bool:
        """In the child's task (an actor) or decision task (a subtree): end it, then decide."""
        await node._end_incarnation(exc)
        return await self._decide(node, exc, exc)

    async def _child_exited(self, ref: ActorRef[Any], reason: object) -> bool:
        return await self._decide(ref, reason, None)

    def _restarts_after_stop(self, ref: ActorRef[Any]) -> bool:
        """A child called ``tools.stop()``: True if it is to be restarted (PERMANENT)."""
        entry = self._index.get(ref)
        if entry is None or self._closing:
            return False
        if entry.restart is Restart.PERMANENT:
            return True
        why = "temporary child" if entry.restart is Restart.TEMPORARY else "transient child"
        self._system._emit(ev.RestartDeclined, ref.id, reason=f"{why} stopped normally")
        return False

    def _child_stopped(self, node: Any) -> None:
        entry = self._index.pop(node, None)
        if entry is not None:
            self._entries.remove(entry)

    @property
    def _closing(self) -> bool:
        return self._stop_requested or (
            self._status is not Status.RUNNING and self._status is not Status.RESTARTING
        )

    async def _decide(self, node: Any, reason: object, error: Exception | None) -> bool:
        """Restart, decline or give up; False if the child is held for the decision task."""
        entry = self._index.get(node)
        if entry is None:
            return await self._decline(node, "the supervisor is stopping", reason, error)
        if self._closing:
            return False  # held: the stop in progress ends it, in reverse start order
        if entry.restart is Restart.TEMPORARY:
            return await self._decline(node, "temporary child", reason, error)
        if entry.restart is Restart.TRANSIENT and error is None:
            return await self._decline(node, "transient child stopped normally", reason, error)
        if self._count_failure(error):  # stamped when seen, also while the decision task is busy
            return False  # held: the give-up, or the subtree's restart, takes it from here
        if self._strategy is not Strategy.ONE_FOR_ONE or self._status is Status.RESTARTING:
            incarnation = node._incarnation
            self._post(lambda: self._group_restart(entry, incarnation, error))
            return False
        return await self._restart_in_place(entry)

    @property
    def _abandoning(self) -> bool:
        """A restart in progress must not go on: stopping, held, or about to be taken down."""
        return self._closing or self._held or self._suspend_pending

    def _count_failure(self, error: BaseException | None) -> bool:
        """Stamp a restart-worthy failure; True if the supervisor is (now) held.

        A held subtree (it gave up, or its parent took it down) counts nothing more: its
        restart by its parent re-creates every child anyway.
        """
        if self._held:
            return True
        if self._stamp():
            self._hold_and_give_up(error)
            return True
        return False

    def _hold_and_give_up(self, error: BaseException | None) -> None:
        """The budget is exceeded: stop every pending restart, then give up (once)."""
        self._held = True
        if self._backoff_scope is not None:
            self._backoff_scope.cancel()
        incarnation = self._incarnation
        self._post(lambda: self._give_up(error, incarnation))

    async def _decline(self, node: Any, why: str, reason: object, error: Exception | None) -> bool:
        self._system._emit(ev.RestartDeclined, node.id, reason=why)
        if isinstance(node, ActorRef):
            node._request_stop(reason, "failed" if error is not None else "stopped", error)
            return True
        await node._finalize(reason, error)
        return False

    def _stamp(self) -> bool:
        """Record a restart-worthy failure now; True if that exceeds the budget."""
        decision = record_restart(self._stamps, trio.current_time(), self._budget)
        self._stamps = decision.stamps
        return decision.exceeded

    def _next_delay(self, entry: _Entry, retry: bool = False) -> float:
        """The delay before the next restart of ``entry``; ``retry`` after a failed ``init``."""
        policy = self._backoff_policy
        if retry:
            entry.attempt += 1
        else:
            entry.attempt = next_attempt(
                entry.attempt, entry.last_restart_at, trio.current_time(), policy,
                budget=self._budget,
            )  # fmt: skip
        draw = self._system.rng.uniform(-1.0, 1.0) if needs_draw(policy) else 0.0
        return backoff_delay(policy, entry.attempt, draw)

    async def _restart_in_place(self, entry: _Entry) -> bool:
        """ONE_FOR_ONE: backoff, then ``init`` again, in the calling task."""
        node = entry.node
        retry = False
        while True:
            if self._abandoning:
                return False  # held: the stop, give-up or take-down in progress has it
            delay = self._next_delay(entry, retry)
            retry = True
            self._system._emit(ev.Restarting, node.id, delay=delay, attempt=entry.attempt)
            if delay > 0:
                await node._backoff(delay)
            if _interrupted(node):
                return True
            if self._abandoning:
                return False
            try:
                await node._reinit()
            except Exception as exc:
                self._system._report_failure(node, exc, None)
                if self._count_failure(exc):
                    return False
                continue
            self._restarted(entry, entry.attempt)
            node._resume()
            return True

    def _restarted(self, entry: _Entry, attempt: int) -> None:
        entry.restarts += 1
        entry.last_restart_at = trio.current_time()
        self._system._emit(ev.Restarted, entry.node.id, attempt=attempt)

    async def _group_restart(
        self, entry: _Entry, incarnation: int, error: Exception | None
    ) -> None:
        """ONE_FOR_ALL / REST_FOR_ONE (and ONE_FOR_ONE while busy), in the decision task."""
        node = entry.node
        if self._index.get(node) is not entry or node._incarnation != incarnation or node._live:
            return  # stale: that incarnation was already replaced
        if self._abandoning:
            return  # the child stays held: the stop, give-up or take-down in progress has it
        if self._strategy is Strategy.ONE_FOR_ONE:
            group = [entry]
        elif self._strategy is Strategy.ONE_FOR_ALL:
            group = list(self._entries)
        else:
            group = self._entries[self._entries.index(entry) :]
        await self._take_down(group, skip=entry)
        group = [e for e in group if self._index.get(e.node) is e]
        retry = False
        while not self._abandoning:
            delay = self._next_delay(entry, retry)
            retry = True
            for member in group:
                self._system._emit(
                    ev.Restarting, member.node.id, delay=delay, attempt=entry.attempt
                )
            if delay > 0:
                await self._backoff(delay)
            if self._abandoning:
                return
            if not await self._start_group(group, entry.attempt):
                return  # started, or the failed start made the supervisor give up

    async def _take_down(self, group: list[_Entry], skip: _Entry) -> None:
        """End the group's incarnations in reverse start order; TEMPORARY ones for good."""
        for member in reversed(group):
            if member is skip:
                continue
            if member.restart is Restart.TEMPORARY:
                self._system._emit(ev.RestartDeclined, member.node.id, reason="temporary child")
                await _stop_node(member.node, "shutdown")
            else:
                await member.node._suspend()

    async def _start_group(self, group: list[_Entry], attempt: int) -> bool:
        """``init`` each member in start order; True if one failed and the restart goes on.

        A failed ``init`` is stamped at once; then the members already started are taken
        down again. False once the group runs, or when the failure made the supervisor hold.
        """
        started: list[_Entry] = []
        group[:] = [member for member in group if self._index.get(member.node) is member]
        for member in group:  # (a member stopped for good while the group was down is gone)
            try:
                await member.node._reinit()
            except Exception as exc:
                self._system._report_failure(member.node, exc, None)
                held = self._count_failure(exc)
                for done in reversed(started):
                    await done.node._suspend()
                return not held
            started.append(member)
        for member in group:
            self._restarted(member, attempt)
            member.node._resume()
        return False

    async def _give_up(self, error: BaseException | None, incarnation: int) -> None:
        """Budget exceeded: hold every child (reverse start order), emit GaveUp, escalate."""
        if self._closing or incarnation != self._incarnation:
            return  # stopping, or the parent already took this incarnation down
        self._status = Status.RESTARTING
        for entry in reversed(list(self._entries)):
            await entry.node._suspend()
        within = self._budget.within
        count = restarts_in_window(self._stamps, trio.current_time(), self._budget)
        error_type, error_text = ("", "") if error is None else ev.describe_error(error)
        self._system._emit(
            ev.GaveUp, self._id, restarts=count, within=within, error_type=error_type,
            error=error_text,
        )  # fmt: skip
        failure = SupervisorGaveUp(
            f"supervisor {self._path} gave up: {count} restarts within {within:g} s exceed its "
            f"budget of {self._budget.max_restarts}"
            + (f"; last error {error_type}: {error_text}" if error is not None else "")
        )
        failure.__cause__ = error
        if self._system._on_event is None:
            logger.error("%s", failure)
        self._system._report_failure_quietly(self, failure)
        await self._parent._child_failed(self, failure, None)

    # -- this supervisor as a child of another -----------------------------------------------

    async def _end_incarnation(self, reason: object) -> None:
        self._status = Status.RESTARTING
        self._held = True
        self._incarnation += 1

    @property
    def _live(self) -> bool:
        return self._status is Status.RUNNING

    async def _suspend(self) -> None:
        # Abandon a restart this subtree is backing off for (its own, or its parent's restart
        # of it running in its decision task), so that the take-down does not wait for it.
        self._suspend_pending = True
        if self._backoff_scope is not None:
            self._backoff_scope.cancel()
        await self._call(self._suspend_children)

    async def _suspend_children(self) -> None:
        self._suspend_pending = False
        self._held = True
        if self._status is not Status.RUNNING:
            return
        self._status = Status.RESTARTING
        for entry in reversed(list(self._entries)):
            await entry.node._suspend()
        self._incarnation += 1

    async def _reinit(self) -> None:
        await self._call(self._reinit_children)

    async def _reinit_children(self) -> None:
        """A restarted subtree re-creates its non-TEMPORARY children, keeping their refs."""
        self._stamps = ()
        for entry in list(self._entries):
            if entry.restart is Restart.TEMPORARY:
                await _stop_node(entry.node, "shutdown")
        entries = list(self._entries)
        started: list[_Entry] = []
        for entry in entries:
            # (a child spawned while the subtree was down is already live)
            if self._index.get(entry.node) is entry and not entry.node._live:
                try:
                    await entry.node._reinit()
                except BaseException:
                    # a failed restart holds every child again, as a failed group start does
                    for done in reversed(started):
                        await done.node._suspend()
                    raise
                started.append(entry)
        self._held = False
        self._status = Status.RUNNING
        for entry in entries:
            entry.node._resume()

    def _resume(self) -> None:
        pass

    async def _backoff(self, delay: float) -> None:
        with trio.CancelScope() as scope:
            self._backoff_scope = scope
            await self._system._sleep(delay)
        self._backoff_scope = None

    async def _finalize(
        self, reason: object, error: BaseException | None, deadline: float = math.inf
    ) -> None:
        """Stop every child for good (reverse start order), then this supervisor.

        Children get their own graces, cut short at ``deadline``: this supervisor's own grace
        as its parent's child.
        """
        if self._status in (Status.STOPPING, Status.STOPPED, Status.FAILED):
            return
        self._status = Status.STOPPING
        self._system._emit_stopping(self, reason)
        for entry in reversed(list(self._entries)):
            await _stop_node(entry.node, reason, deadline)
        self._status = Status.FAILED if error is not None else Status.STOPPED
        self._system._emit_stopped(self, reason, error is not None)
        self._finished = True
        if self._wakeup is not None:
            self._wakeup.set()
        self._parent._child_stopped(self)

    async def _start_children(self, children: Sequence[ChildSpec | SupervisorSpec]) -> None:
        try:
            for child in children:
                if isinstance(child, SupervisorSpec):
                    await self.start(child)
                elif isinstance(child, ChildSpec):
                    await self.spawn(
                        child.behavior, child.ctx, restart=child.restart,
                        shutdown=child.shutdown, name=child.name,
                    )  # fmt: skip
                else:
                    raise TypeError(
                        f"SupervisorSpec({self._name!r}).children holds {child!r}; use ChildSpec "
                        "or SupervisorSpec entries"
                    )
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.stop()
            raise

    # -- helpers -------------------------------------------------------------------------------

    def _adopt(self, node: ActorRef[Any] | Supervisor, restart: Restart) -> None:
        entry = _Entry(node, restart)
        self._entries.append(entry)
        self._index[node] = entry

    def _check_open(self, call: str) -> None:
        if self._closing:
            raise SystemClosed(
                f"supervisor {self._path} is {self._status.name}; {call}() needs a running one"
            )


def _interrupted(node: ActorRef[Any] | Supervisor) -> bool:
    if isinstance(node, ActorRef):
        return node._control is not None
    return node._closing or node._suspend_pending


async def _stop_node(
    node: ActorRef[Any] | Supervisor, reason: object, deadline: float = math.inf
) -> None:
    """Stop a child for good within its grace (and by ``deadline``), from any state."""
    if isinstance(node, Supervisor):
        await node._stop_within(reason, min(deadline, trio.current_time() + node._shutdown))
        return
    letter = "shutdown" if reason == "shutdown" else "stopped"
    node._request_stop(reason, letter, deadline=deadline)
    if node._status in (Status.STOPPED, Status.FAILED):
        return
    if node._stopped is None:
        node._stopped = trio.Event()
    await node._stopped.wait()


def _check_restart(restart: object) -> None:
    if not isinstance(restart, Restart):
        choices = ", ".join(f"Restart.{r.name}" for r in Restart)
        raise ValueError(f"restart={restart!r} is not a restart type; use one of {choices}")

"""A reference model of a supervision tree, checked item by item against a real run's trace.

The stateful test (``test_supervision_stateful.py``) runs a root supervisor, its workers and
at most one subtree at a time, and records one trace: every actorkit event, plus what the
workers themselves saw (``Init``, ``InitFailed``, ``Handled``, ``OnStop``), in the order it
happened. This module replays that trace against a model of api.md's supervision contract.

The model does not guess trio's scheduling. Where several actors are ready at the same
instant, the trace says who went first, and the model checks that each step is allowed in
the model's state at that point and that every decision (restart after which delay with
which attempt number, decline, give up) is the one api.md prescribes: budget stamps at the
time a failure is seen, the backoff formula with a replica of the system's rng (one draw per
decision, in the order of the decisions), ``n`` back to 1 only after a child *ran*
``reset_after`` seconds. Sequences that must follow a decision are *expected*: an expectation
names the node an item must come from, and items of a node with a pending expectation must
match it, in order (so stops come in reverse start order, dead letters in mailbox order).
What the model expects but never sees is reported when the trio side is quiet again
(``check_quiescent``).

The contract checked, beyond api.md's text:

- A restart-worthy failure (a failure, or a PERMANENT child's own stop) is stamped when its
  supervisor decides about it, right after the child's ``on_stop``, whatever the strategy and
  whatever the supervisor's decision task is busy with; a failed re-init when the init fails.
- A stamp that exceeds the budget *holds* the supervisor at once: a group restart backing off
  in its decision task is abandoned, every restart of its children that has not begun yet is
  abandoned (no ``Restarting`` or ``init`` after that point), and one give-up follows: every
  child suspended in reverse start order, one ``GaveUp`` counting exactly the stamps in the
  window, then the parent decides.
- While a subtree is held (it gave up, its parent took it down, or its incarnation ended), a
  failure of one of its children is neither stamped nor decided: the child stays held until
  the subtree's restart re-creates it (a TEMPORARY child is declined and stops for good). A
  child spawned into a held subtree runs at once and is kept by the restart.
- While a supervisor is stopping, a failure of a child causes no decision: the stop stops it
  in reverse start order like every other child. Queued group restarts then do nothing.
- Taking a subtree down abandons a restart it is backing off for (its own group restart, or
  its parent's restart of it): no ``init`` runs for it; the take-down goes on at once.
- A subtree restart whose init fails half-way suspends again (reverse order) the children it
  re-initialised, then the parent stamps the failed re-init and retries per its policy.
- A timer message that fired before a restart is not handled by the new incarnation: it
  becomes a dead letter when the new incarnation reaches it in mailbox order.

Where api.md is silent the model follows the implementation's documented choices: restart
counts of a subtree's children are not bumped when the subtree restarts (its supervisor did not
restart them); every member of a group restart reports the group's attempt number; TEMPORARY
children of a restarted subtree stop for good.
"""

from __future__ import annotations

import enum
import functools
import math
import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import NoReturn

import attrs

import actorkit as ak

# -- what the test's workers record ------------------------------------------------------------


@attrs.frozen
class Msg:
    """A message to a worker. ``mid`` is unique per example; ``origin`` marks timer messages."""

    mid: int
    kind: str  # note | crash | poison | quit | echo | schedule
    after: float = 0.0  # schedule: the timer's delay
    payload: str = ""  # schedule: the kind of the timer message (note | crash)
    payload_mid: int = 0  # schedule: the mid of the timer message
    fail_inits: int = 0  # poison: how many of the next inits fail
    origin: int = 0  # a timer message: the incarnation that scheduled it (0: not a timer)
    reply: ak.Reply[int] | None = attrs.field(default=None, eq=False, repr=False)

    def __str__(self) -> str:
        extra = ""
        if self.kind == "schedule":
            extra = f" {self.payload}#{self.payload_mid} after {self.after:g}"
        elif self.kind == "poison":
            extra = f" x{self.fail_inits}"
        timer = f" (timer of inc {self.origin})" if self.origin else ""
        return f"{self.kind}#{self.mid}{extra}{timer}"


@attrs.frozen
class Init:
    key: str
    inc: int
    at: float


@attrs.frozen
class InitFailed:
    key: str
    at: float


@attrs.frozen
class Handled:
    key: str
    inc: int
    msg: Msg
    at: float


@attrs.frozen
class OnStop:
    key: str
    inc: int
    reason: str
    at: float


Record = Init | InitFailed | Handled | OnStop


def describe(item: object) -> str:
    """One line per trace item, for failure reports."""
    if isinstance(item, Init):
        return f"{item.at:<9.6g} [{item.key}] init -> incarnation {item.inc}"
    if isinstance(item, InitFailed):
        return f"{item.at:<9.6g} [{item.key}] init raised"
    if isinstance(item, Handled):
        return f"{item.at:<9.6g} [{item.key}] inc {item.inc} handles {item.msg}"
    if isinstance(item, OnStop):
        return f"{item.at:<9.6g} [{item.key}] on_stop of inc {item.inc} ({item.reason})"
    if isinstance(item, ak.Event):
        fields = attrs.asdict(item, recurse=False)
        at, actor_id = fields.pop("at"), fields.pop("actor_id")
        fields.pop("seq")
        if "message" in fields:
            fields["message"] = str(fields["message"])
        body = ", ".join(f"{k}={v!r}" for k, v in fields.items())
        return f"{at:<9.6g} {actor_id}: {type(item).__name__}({body})"
    return repr(item)


# -- the policy, written out from api.md --------------------------------------------------------


def expected_delay(backoff: ak.Backoff | None, attempt: int, u: float) -> float:
    """api.md: ``base = min(max, initial * factor**(n-1))``, then ``clamp(base*(1+jitter*u))``."""
    if backoff is None:
        return 0.0
    base = min(backoff.max, backoff.initial * backoff.factor ** (attempt - 1))
    if backoff.jitter == 0:
        return base
    return min(backoff.max, max(0.0, base * (1 + backoff.jitter * u)))


def in_window(stamps: Iterable[float], now: float, within: float) -> int:
    """Stamps in ``[now - within, now]`` (the same float expression as a supervisor uses)."""
    cutoff = now - within
    return sum(1 for stamp in stamps if cutoff <= stamp <= now)


# -- the model --------------------------------------------------------------------------------


class ModelError(AssertionError):
    """The run did something the model does not allow (or failed to do what it requires)."""


STALE_TIMER = "timer of a previous incarnation (restarted)"
"""The dead-letter reason of a timer message that fired before its actor was restarted."""


class Pending:
    """A restart that has not begun yet: a hold or a stop abandons it (the restart checks for
    that right before its first ``init``), once begun it runs to its end."""

    def __init__(self, on_abandon: Callable[[], None]) -> None:
        self.begun = False
        self.on_abandon = on_abandon


class Phase(enum.Enum):
    RUNNING = "running"  # a live incarnation that handles its messages
    BUSY = "busy"  # inside a sequence of expected items (failing, stopping, starting)
    BACKOFF = "backoff"  # its supervisor waits until `until`, then restarts it in place
    HELD = "held"  # incarnation ended: waiting for a group restart, a give-up or its parent
    DEAD = "dead"  # stopped for good and removed from its supervisor


class Node:
    """A child of a supervisor (a worker or a subtree), as its supervisor sees it."""

    def __init__(self, key: str, parent: Sup | None, restart: str, obj: object) -> None:
        self.key = key
        self.actor_id = ""
        self.parent = parent
        self.restart = restart  # permanent | transient | temporary
        self.obj = obj  # the ActorRef or Supervisor, for identity checks
        self.phase = Phase.BUSY
        self.restarts = 0  # restart_count() in its supervisor
        self.attempt = 0  # n of its last restart
        self.last_restart_at: float | None = None
        self.until: float | None = None  # end of an in-place backoff
        self.dead_failed = False
        self.pending_job: Job | None = None  # the group restart its own failure asked for
        self.starting: Pending | None = None  # its in-place restart, due and not begun yet

    @property
    def live(self) -> bool:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{self.key}({self.actor_id}, {self.restart}, {self.phase.value})"


class Worker(Node):
    def __init__(self, key: str, parent: Sup, restart: str, obj: object) -> None:
        super().__init__(key, parent, restart, obj)
        self.inc = 0  # incarnations started so far (what the worker counts in init)
        self.alive = False  # an incarnation is live: init succeeded, on_stop not run yet
        self.queue: deque[Msg] = deque()
        self.timers: list[tuple[float, int, Msg]] = []  # (due, seq, message) of the live inc
        self.scheduled = 0  # timers scheduled so far: equal deadlines fire in this order
        self.fail_inits = 0  # how many of the next inits raise (set by a poison message)
        self.fates: dict[int, str] = {}  # mid -> queued | handled | crashed | dead

    @property
    def live(self) -> bool:
        return self.alive


class Sup(Node):
    def __init__(
        self,
        key: str,
        parent: Sup | None,
        restart: str,
        obj: object,
        strategy: ak.Strategy,
        budget: ak.RestartBudget,
        backoff: ak.Backoff | None,
    ) -> None:
        super().__init__(key, parent, restart, obj)
        self.strategy = strategy
        self.budget = budget
        self.backoff = backoff
        self.children: list[Node] = []  # live children, start order
        self.stamps: list[float] = []
        self.jobs: deque[Job] = deque()  # queued work of its decision task
        self.active: Job | None = None  # what its decision task is doing
        self.held = False  # gave up or taken down: no decision about a child until restarted
        self.incarnation = 0  # bumped when its incarnation ends (a stale give-up is skipped)
        self.stop_requested = False  # stopping for good: no decision about a child any more

    @property
    def live(self) -> bool:
        return self.phase is Phase.RUNNING


class Job:
    """Work of a supervisor's decision task: a group restart, or giving up."""

    def __init__(self, kind: str, sup: Sup, failing: Node | None, error: str) -> None:
        self.kind = kind  # group | giveup
        self.sup = sup
        self.failing = failing
        self.error = error  # the failure's error type; "" for a PERMANENT child's own stop
        self.stage = "queued"  # queued | takedown | restarting | backoff | starting
        self.group: list[Node] = []
        self.cursor: list[tuple[Node, str]] = []  # take-down steps left: (node, suspend|temporary)
        self.held: list[Node] = []  # every node the take-down holds
        self.until = 0.0
        self.retry = False  # the last start of the group failed: n grows regardless
        self.inc = sup.incarnation  # a give-up of an incarnation that has ended is skipped
        self.touched = False  # a step of its take-down showed
        self.token: Pending | None = None  # the group's start, due and not begun yet

    def __repr__(self) -> str:
        failing = self.failing.key if self.failing else "-"
        return f"<{self.kind} job of {self.sup.key} for {failing}: {self.stage}>"


@attrs.frozen
class Expect:
    """The next item of ``node`` (in its channel) must pass ``test``; then ``then`` runs."""

    node: Node
    what: str
    test: Callable[[object], bool]
    then: Callable[[object], None] | None = None
    token: Pending | None = None  # part of a restart that a hold or a stop may abandon
    or_else: Callable[[], None] | None = None  # the very next item, or it never comes: this


Channel = deque[Expect]


def is_event(cls: type[ak.Event], **fields: object) -> Callable[[object], bool]:
    def test(item: object) -> bool:
        return isinstance(item, cls) and all(getattr(item, k) == v for k, v in fields.items())

    return test


class Model:
    """The supervision contract of api.md, fed one trace item at a time."""

    def __init__(
        self,
        seed: int,
        strategy: ak.Strategy,
        budget: ak.RestartBudget,
        backoff: ak.Backoff | None,
    ) -> None:
        self.rng = random.Random(seed)  # a replica of the system's rng: one draw per decision
        self.now = 0.0
        self.nodes: dict[str, Node] = {}
        self.by_id: dict[str, Node] = {}
        self.channels: list[Channel] = []
        self.current: Channel | None = None  # the channel whose expectation is being met
        self.history: deque[str] = deque(maxlen=50)
        self.terminal = False  # the root gave up: open_actor_system must raise
        self.root_error = ""  # the error type the root's give-up names
        self.shutting_down = False
        self.asks: dict[int, tuple[str, object]] = {}  # mid -> expected outcome of an echo ask
        self.root = Sup("root", None, "permanent", None, strategy, budget, backoff)

    # -- registration ------------------------------------------------------------------------

    def add_root(self, obj: object, actor_id: str) -> None:
        """``system.supervisor("root")`` returned: expect Spawned and Started."""
        root = self.root
        root.obj = obj
        self._register(root, actor_id)

        def started(item: object) -> None:
            root.phase = Phase.RUNNING

        self._expect(
            Expect(root, "Spawned", is_event(ak.Spawned, behavior="supervisor")),
            Expect(root, "Started", is_event(ak.Started), started),
        )

    def _register(self, node: Node, actor_id: str) -> None:
        node.actor_id = actor_id
        self.nodes[node.key] = node
        self.by_id[actor_id] = node

    def spawn_worker(self, worker: Worker, actor_id: str) -> None:
        """``sup.spawn`` returned: expect Spawned, init and Started."""
        self._register(worker, actor_id)
        parent = worker.parent
        assert parent is not None

        def inited(item: object) -> None:
            worker.inc, worker.alive = 1, True

        def started(item: object) -> None:
            worker.phase = Phase.RUNNING
            parent.children.append(worker)

        self._expect(
            Expect(worker, "Spawned", is_event(ak.Spawned, behavior="worker")),
            Expect(worker, "init -> incarnation 1", lambda i: _is_init(i, worker.key, 1), inited),
            Expect(worker, "Started", is_event(ak.Started), started),
        )

    def spawn_sub(self, sub: Sup, actor_id: str) -> None:
        """``sup.supervisor`` returned: expect Spawned and Started."""
        self._register(sub, actor_id)
        parent = sub.parent
        assert parent is not None

        def started(item: object) -> None:
            sub.phase = Phase.RUNNING
            parent.children.append(sub)

        self._expect(
            Expect(sub, "Spawned", is_event(ak.Spawned, behavior="supervisor")),
            Expect(sub, "Started", is_event(ak.Started), started),
        )

    # -- actions of the test -----------------------------------------------------------------

    def send(self, worker: Worker, msg: Msg) -> bool:
        """The test sends ``msg``; returns whether the send must be accepted."""
        if worker.phase is Phase.DEAD:
            self._expect(
                Expect(
                    worker,
                    f"DeadLetter of {msg} (sent to a stopped actor)",
                    lambda i: isinstance(i, ak.DeadLetter) and _mid(i) == msg.mid,
                    lambda i: worker.fates.__setitem__(msg.mid, "dead"),
                )
            )
            return False
        worker.queue.append(msg)
        worker.fates[msg.mid] = "queued"
        return True

    def ask(self, worker: Worker, msg: Msg) -> None:
        """An echo ask: queued, or (to a stopped actor) an immediate ActorStopped."""
        if worker.phase is Phase.DEAD:
            self.asks[msg.mid] = ("error", "ActorStopped")
            return
        worker.queue.append(msg)
        worker.fates[msg.mid] = "queued"

    def stop(self, node: Node) -> None:
        """An external ``ref.stop()`` / ``sup.stop()``: the node stops for good."""
        if node.phase is not Phase.DEAD:
            if isinstance(node, Sup):
                node.stop_requested = True
            self._cancel_restarts(node)
            self._expect(*self._stop_seq(node, failed=False))

    def shutdown(self) -> None:
        """Leaving ``open_actor_system``: the whole tree stops in reverse start order."""
        self.shutting_down = True
        self.stop(self.root)

    def _cancel_restarts(self, node: Node) -> None:
        """A node that stops for good is not restarted, nor restarts anything below it."""
        node.pending_job = None
        if node.phase is Phase.BACKOFF:
            node.phase, node.until = Phase.HELD, None
        self._abandon(node.starting)
        if isinstance(node, Sup):
            job = node.active
            if job is not None:
                self._abandon(job.token)
            node.jobs.clear()
            node.active = None
            for child in node.children:
                self._cancel_restarts(child)

    def _abandon(self, token: Pending | None) -> None:
        """A restart that has not begun yet will not begin: forget what it would do."""
        if token is None or token.begun:
            return
        token.begun = True  # (once only)
        for channel in self.channels:
            kept = [e for e in channel if e.token is not token]
            channel.clear()
            channel.extend(kept)
        self.channels = [channel for channel in self.channels if channel]
        token.on_abandon()

    # -- feeding the trace --------------------------------------------------------------------

    def feed(self, item: object) -> None:
        at = getattr(item, "at", None)
        if not isinstance(at, float | int):
            self._fail(f"trace item without a time: {item!r}")
        if at < self.now:
            self._fail(f"the trace went back in time: {describe(item)} after t={self.now}")
        self.advance(at)
        self.history.append(describe(item))
        self._drop_unmet(item)
        self._dispatch(item)

    def _drop_unmet(self, item: object) -> None:
        """Expectations that only the very next item could meet, and ``item`` does not."""
        node = self._node_of(item)
        for channel in list(self.channels):
            head = channel[0]
            if head.or_else is None or (head.node is node and head.test(item)):
                continue
            channel.popleft()
            if not channel:
                self.channels.remove(channel)
            head.or_else()

    def _dispatch(self, item: object) -> None:
        node = self._node_of(item)
        covering = [ch for ch in self.channels if any(e.node is node for e in ch)]
        if len(covering) > 1:
            self._fail(f"model: {node} is awaited in two channels: {covering}")
        if not covering:
            self._spontaneous(node, item)
            return
        channel = covering[0]
        expect = channel[0]
        if expect.node is not node or not expect.test(item):
            self._fail(f"expected [{expect.node.key}: {expect.what}], got: {describe(item)}")
        channel.popleft()
        if expect.token is not None:
            expect.token.begun = True
        if expect.then is not None:
            self.current = channel
            try:
                expect.then(item)
            finally:
                self.current = None
        if not channel and channel in self.channels:
            self.channels.remove(channel)

    def _node_of(self, item: object) -> Node:
        node: Node | None = None
        if isinstance(item, Init | InitFailed | Handled | OnStop):
            node = self.nodes.get(item.key)
        elif isinstance(item, ak.Event):
            node = self.by_id.get(item.actor_id)
        if node is None:
            self._fail(f"a trace item of an unknown actor: {describe(item)}")
        return node

    def _spontaneous(self, node: Node, item: object) -> None:
        """Items nobody awaits: a running worker's handling, and the steps of a take-down."""
        if isinstance(item, Handled):
            assert isinstance(node, Worker)
            self._handled(node, item)
            return
        job = self._takedown_touching(node, item)
        if job is not None:
            if isinstance(item, OnStop) and item.reason == "restart":
                self._take_down_step(job, node, "suspend", item)
                return
            if isinstance(item, ak.RestartDeclined) and item.reason == "temporary child":
                self._take_down_step(job, node, "temporary", item)
                return
            if isinstance(item, ak.Restarting | ak.GaveUp):
                self._finish_take_down(job)
                self._dispatch(item)
                return
        if isinstance(item, Init):
            if node.phase is Phase.DEAD:
                self._fail(f"{node.key} was stopped for good, yet init ran: {describe(item)}")
            if node.live:
                self._fail(
                    f"{node.key}: init ran while incarnation {item.inc - 1} was live (its "
                    f"on_stop never ran): {describe(item)}"
                )
            self._fail(
                f"{node.key} ({node.phase.value}) was re-initialised although no restart of it "
                f"is due (stopping supervisor? cancelled backoff?): {describe(item)}"
            )
        if isinstance(item, ak.DeadLetter) and item.reason == STALE_TIMER:
            assert isinstance(node, Worker)
            self._stale_timer(node, item)
            return
        if isinstance(item, ak.GaveUp):
            self._fail(f"{node.key} gave up, but no give-up is pending: {describe(item)}")
        self._fail(f"unexpected item ({node.key} is {node.phase.value}): {describe(item)}")

    # -- workers handling messages ------------------------------------------------------------

    def _stale_timer(self, worker: Worker, item: ak.DeadLetter) -> None:
        """A running worker reached a timer message of a previous incarnation: a dead letter."""
        if worker.phase is not Phase.RUNNING or not worker.alive:
            self._fail(f"{worker.key} is {worker.phase.value}, yet it dequeued {describe(item)}")
        head = worker.queue[0] if worker.queue else None
        if head is None or head.mid != _mid(item):
            self._fail(f"{worker.key}: {describe(item)}, but the next queued message is {head}")
        if not head.origin or head.origin == worker.inc:
            self._fail(
                f"{worker.key}: {head} dead-lettered as a timer of a previous incarnation, but "
                f"incarnation {worker.inc} scheduled it"
            )
        worker.queue.popleft()
        worker.fates[head.mid] = "dead"

    def _handled(self, worker: Worker, item: Handled) -> None:
        msg = item.msg
        if msg.origin and msg.origin != item.inc:
            self._fail(
                f"{worker.key}: a message of a timer that incarnation {msg.origin} scheduled "
                f"was handled by incarnation {item.inc} (it must become a dead letter): "
                f"{describe(item)}"
            )
        if worker.phase is not Phase.RUNNING or not worker.alive:
            self._fail(f"{worker.key} is {worker.phase.value}, yet it handled {msg}")
        if item.inc != worker.inc:
            self._fail(f"{worker.key}: {msg} handled by incarnation {item.inc}, not {worker.inc}")
        if not worker.queue or worker.queue[0].mid != msg.mid:
            head = str(worker.queue[0]) if worker.queue else "nothing"
            self._fail(f"{worker.key} handled {msg}; the next queued message is {head}")
        worker.queue.popleft()
        if msg.kind in ("crash", "poison"):
            worker.fates[msg.mid] = "crashed"
            if msg.kind == "poison":
                worker.fail_inits = msg.fail_inits
            self._worker_fails(worker, msg)
            return
        worker.fates[msg.mid] = "handled"
        if msg.kind == "echo":
            self.asks[msg.mid] = ("ok", item.inc)
        elif msg.kind == "schedule":
            timer = Msg(msg.payload_mid, msg.payload, origin=item.inc)
            worker.scheduled += 1
            worker.timers.append((item.at + msg.after, worker.scheduled, timer))
        elif msg.kind == "quit" and self._stopping(worker):
            self._expect(*self._stop_seq(worker, failed=False))  # no decision while stopping
        elif msg.kind == "quit" and worker.restart == "permanent":
            worker.phase = Phase.BUSY
            self._expect(
                Expect(
                    worker,
                    f"on_stop of inc {worker.inc} (normal)",
                    lambda i: _is_on_stop(i, worker.key, worker.inc, "normal"),
                    lambda i: self._ended(worker, error="", init_failure=False),
                )
            )
        elif msg.kind == "quit":
            why = f"{worker.restart} child stopped normally"
            self._expect(
                Expect(worker, f"RestartDeclined({why})", _declined(why)),
                *self._stop_seq(worker, failed=False),
            )

    def _worker_fails(self, worker: Worker, msg: Msg) -> None:
        """The handler raised: Failed, the message dead-lettered, on_stop, then a decision."""
        worker.phase = Phase.BUSY
        self._expect(
            Expect(
                worker, "Failed(Crash)", is_event(ak.Failed, error_type="Crash", message_type="Msg")
            ),
            Expect(
                worker,
                f"DeadLetter of {msg} ('the handler raised')",
                lambda i: (
                    isinstance(i, ak.DeadLetter)
                    and _mid(i) == msg.mid
                    and i.reason == "the handler raised"
                ),
            ),
            Expect(
                worker,
                f"on_stop of inc {worker.inc} (Crash)",
                lambda i: _is_on_stop(i, worker.key, worker.inc, "Crash"),
                lambda i: self._ended(worker, error="Crash", init_failure=False),
            ),
        )

    def _ended(self, node: Node, *, error: str, init_failure: bool) -> None:
        if isinstance(node, Worker):
            node.alive = False
            node.timers.clear()
        self._decide(node, error=error, init_failure=init_failure)

    # -- a supervisor's decisions ---------------------------------------------------------------

    def _stopping(self, node: Node) -> bool:
        """``node``'s supervisor was asked to stop for good."""
        return node.parent is not None and node.parent.stop_requested

    def _decide(self, node: Node, *, error: str, init_failure: bool) -> None:
        """``node`` failed (``error``) or a PERMANENT child stopped itself: restart it or not."""
        sup = node.parent
        assert sup is not None
        node.phase = Phase.HELD
        if sup.stop_requested:
            return  # no decision: the stop in progress stops it, in reverse start order
        if node.restart == "temporary":
            self._expect(
                Expect(node, "RestartDeclined(temporary child)", _declined("temporary child")),
                *self._stop_seq(node, failed=bool(error)),
            )
            return
        if sup.held:
            return  # not stamped: the subtree's restart re-creates it
        if self._stamp(sup, self.now):
            self._hold_and_give_up(sup, error)
            return
        if sup.strategy is not ak.Strategy.ONE_FOR_ONE:
            job = Job("group", sup, node, error)
            node.pending_job = job
            sup.jobs.append(job)
            self._run_jobs(sup)
            return
        self._restart_in_place(node, init_failure=init_failure)

    def _stamp(self, sup: Sup, at: float) -> bool:
        """Stamp a restart-worthy failure seen at ``at``; True if the budget is exceeded."""
        sup.stamps.append(at)
        return in_window(sup.stamps, at, sup.budget.within) > sup.budget.max_restarts

    def _hold_and_give_up(self, sup: Sup, error: str) -> None:
        """The budget is exceeded: abandon every restart not begun yet, then give up once."""
        sup.held = True
        for child in sup.children:
            if child.phase is Phase.BACKOFF:
                child.phase, child.until = Phase.HELD, None
            self._abandon(child.starting)
        job = sup.active
        if job is not None and job.kind == "group":
            if job.stage == "backoff":
                sup.active = None  # cancelled at once; its members stay held
            elif job.stage == "starting":
                self._abandon(job.token)
            elif job.stage == "takedown":
                # the take-down goes on; then no restart, and the give-up takes the rest down.
                # Until it shows, it may not have begun (then the give-up does it all): a
                # TEMPORARY member may be declined (group) or suspended (give-up).
                steps = job.cursor
                if not job.touched:
                    steps = [(n, "either" if m == "temporary" else m) for n, m in steps]
                self._give_up_after(job, steps, error)
                return
        sup.jobs.append(Job("giveup", sup, None, error))
        self._run_jobs(sup)

    def _give_up_after(self, job: Job, steps: list[tuple[Node, str]], error: str) -> None:
        """``job`` ends once it took ``steps`` down, without a restart: its supervisor is
        held, and the give-up (the one already queued, else for ``error``) follows at once."""
        sup = job.sup
        queued = next((j for j in sup.jobs if j.kind == "giveup"), None)
        if queued is not None:
            sup.jobs.remove(queued)
            error = queued.error
        held = job.held + job.group
        job.kind, job.error, job.failing, job.group = "giveup", error, None, []
        everyone = self._take_down_steps(list(reversed(sup.children)), temporary_stop=False)
        self._begin_take_down(job, steps + everyone)
        job.held = held + job.held
        sup.active = job
        sup.phase = Phase.BUSY

    def _next_attempt(self, node: Node, *, init_failure: bool) -> int:
        """n of api.md: back to 1 once the child has *run* ``reset_after`` s without failing."""
        sup = node.parent
        assert sup is not None
        if init_failure:
            return node.attempt + 1  # its init failed: it has not run since its last failure
        if node.attempt == 0 or node.last_restart_at is None:
            return 1
        if self.now - node.last_restart_at >= self._stable_period(sup):
            return 1
        return node.attempt + 1

    def _stable_period(self, sup: Sup) -> float:
        """How long a child must run without failing for n to go back to 1."""
        if sup.backoff is None:
            return sup.budget.within  # no delay to grow: n counts the budget's burst
        if sup.backoff.reset_after is None:
            return sup.backoff.max
        return sup.backoff.reset_after

    def _restarting(self, nodes: list[Node], failing: Node, *, init_failure: bool) -> list[Expect]:
        """One restart decision: one draw, then a Restarting per node with the same delay."""
        sup = failing.parent
        assert sup is not None
        decided: list[tuple[int, float]] = []

        def decide() -> tuple[int, float]:
            if not decided:
                attempt = self._next_attempt(failing, init_failure=init_failure)
                failing.attempt = attempt
                backoff = sup.backoff
                draw = backoff is not None and backoff.jitter > 0
                u = self.rng.uniform(-1.0, 1.0) if draw else 0.0
                decided.append((attempt, expected_delay(backoff, attempt, u)))
            return decided[0]

        def test(item: object) -> bool:
            if not isinstance(item, ak.Restarting):
                return False
            attempt, delay = decide()
            if item.attempt != attempt or item.delay != delay:
                self._fail(
                    f"{failing.key}: Restarting(delay={item.delay!r}, attempt={item.attempt}) "
                    f"but the model says delay={delay!r} for attempt {attempt} ({sup.backoff}; "
                    f"last restart at {failing.last_restart_at}, now {self.now})"
                )
            return True

        return [Expect(node, f"Restarting (restart of {failing.key})", test) for node in nodes]

    def _restart_in_place(self, node: Node, *, init_failure: bool) -> None:
        """ONE_FOR_ONE: Restarting now, init again after the delay."""
        node.phase = Phase.BUSY
        (expect,) = self._restarting([node], node, init_failure=init_failure)

        def after(item: object) -> None:
            assert isinstance(item, ak.Restarting)
            if item.delay > 0:
                node.phase, node.until = Phase.BACKOFF, item.at + item.delay
            else:
                self._restart_now(node)

        def abandoned() -> None:
            node.phase = Phase.HELD

        # Restarting follows the decision at once, unless the subtree was asked to go down
        # (its parent's take-down reached it, which shows only later): then it never comes
        sup = node.parent
        assert sup is not None
        or_else = abandoned if self._may_be_taken_down(sup) else None
        self._expect(attrs.evolve(expect, then=after, or_else=or_else))

    def _may_be_taken_down(self, sub: Sup) -> bool:
        """A take-down in progress may have asked ``sub`` to go down already."""
        parent = sub.parent
        job = parent.active if parent is not None else None
        if job is None or job.stage != "takedown":
            return False
        for node, mode in job.cursor:
            if node is sub:
                return mode != "temporary"
            if not self._skippable(node, mode):
                return False
        return False

    def _restart_now(self, node: Node) -> None:
        """An in-place restart's delay is over: init again, then Restarted (or fail again)."""
        node.phase, node.until = Phase.BUSY, None

        sup = node.parent
        assert sup is not None

        def failed(culprit: Worker) -> None:
            node.phase = Phase.HELD
            if sup.held or sup.stop_requested:
                return  # not stamped: the give-up (or the stop) in progress takes it
            if self._stamp(sup, self.now):
                self._hold_and_give_up(sup, "InitError")
            else:
                self._restart_in_place(node, init_failure=True)

        def restarted(item: object) -> None:
            node.restarts += 1
            node.last_restart_at = self.now
            if runs_now:
                self._set_running(node)

        def abandoned() -> None:
            node.phase = Phase.HELD

        steps, ok = self._start_seq(node, failed)
        # (a subtree runs from its last child's init on: by its Restarted it may be held again)
        runs_now = isinstance(node, Worker) or not steps
        if ok:
            steps.append(
                Expect(node, f"Restarted(attempt={node.attempt})", _restarted(node), restarted)
            )
        node.starting = token = Pending(abandoned)
        self._expect(*(attrs.evolve(step, token=token) for step in steps))

    def _start_seq(
        self, node: Node, on_failure: Callable[[Worker], None]
    ) -> tuple[list[Expect], bool]:
        """The items of starting ``node`` again; False if they end in an init failure."""
        if isinstance(node, Worker):
            if node.fail_inits > 0:
                return self._init_failure(node, node, on_failure), False
            return [self._init_expect(node)], True
        assert isinstance(node, Sup)
        node.stamps = []  # a restarted supervisor starts with a fresh budget
        steps: list[Expect] = []
        for child in list(node.children):  # TEMPORARY children are not re-created
            if child.restart == "temporary":
                steps.extend(self._stop_seq(child, failed=False))
        started: list[Worker] = []
        for child in list(node.children):
            if child.restart == "temporary" or child.live:
                continue  # live: spawned while the subtree was down
            if isinstance(child, Worker) and child.fail_inits > 0:
                # the restart failed half-way: the children it started are suspended again
                # (reverse order), then the subtree reports the failure and its parent decides
                failed = self._init_failure(child, node, on_failure)
                steps.append(failed[0])
                steps.extend(self._suspend_expect(w) for w in reversed(started))
                steps.append(failed[1])
                return steps, False
            steps.append(self._init_expect(child))
            if isinstance(child, Worker):
                started.append(child)

        def running(item: object) -> None:
            self._set_running(node)

        if steps:  # (else the caller's Restarted sets it running)
            steps[-1] = _chain_then(steps[-1], running)
        return steps, True

    def _suspend_expect(self, worker: Worker) -> Expect:
        def suspended(item: object) -> None:
            worker.alive = False
            worker.timers.clear()
            worker.phase, worker.until = Phase.HELD, None

        return Expect(
            worker,
            f"on_stop of inc {worker.inc} (restart)",
            lambda i: _is_on_stop(i, worker.key, worker.inc, "restart"),
            suspended,
        )

    def _init_expect(self, node: Node) -> Expect:
        worker = node
        assert isinstance(worker, Worker)

        def test(item: object) -> bool:
            if isinstance(item, Init) and item.key == worker.key and worker.alive:
                self._fail(
                    f"{worker.key}: init ran while incarnation {worker.inc} was live (its "
                    f"on_stop never ran): {describe(item)}"
                )
            return _is_init(item, worker.key, worker.inc + 1)

        def inited(item: object) -> None:
            worker.inc += 1
            worker.alive = True

        return Expect(worker, f"init -> incarnation {worker.inc + 1}", test, inited)

    def _init_failure(
        self, worker: Worker, reported_by: Node, on_failure: Callable[[Worker], None]
    ) -> list[Expect]:
        def raised(item: object) -> None:
            worker.fail_inits -= 1

        return [
            Expect(worker, "init raises", lambda i: isinstance(i, InitFailed), raised),
            Expect(
                reported_by,
                f"Failed(InitError) (init of {worker.key})",
                is_event(ak.Failed, error_type="InitError", message_type=None),
                lambda i: on_failure(worker),
            ),
        ]

    def _set_running(self, node: Node) -> None:
        """``node`` runs again; so do a subtree's held children (not those failing anew)."""
        node.phase, node.until = Phase.RUNNING, None
        if isinstance(node, Sup):
            node.held = False
            for child in node.children:
                if child.phase is Phase.HELD:
                    child.phase = Phase.RUNNING

    # -- group restarts and giving up (a supervisor's decision task) ---------------------------

    def _takedown_touching(self, node: Node, item: object) -> Job | None:
        """The take-down in progress that ``item`` (of ``node``) belongs to, if any.

        The nearest supervisor's comes first: a subtree giving up suspends its children while
        its parent may be waiting to take the same children down.
        """
        sups = self._sups()
        if node.parent is not None:
            sups.remove(node.parent)
            sups.insert(0, node.parent)
        for sup in sups:
            job = sup.active
            if job is None or job.stage != "takedown":
                continue
            if isinstance(item, OnStop) and item.reason == "restart":
                if any(n is node and mode in ("suspend", "either") for n, mode in job.cursor):
                    return job
            elif isinstance(item, ak.RestartDeclined) and item.reason == "temporary child":
                if any(n is node and mode in ("temporary", "either") for n, mode in job.cursor):
                    return job
            elif isinstance(item, ak.Restarting):
                if job.kind == "group" and node in job.group:
                    return job
            elif isinstance(item, ak.GaveUp) and job.kind == "giveup" and node is sup:
                return job
        return None

    def _sups(self) -> list[Sup]:
        return [n for n in self.nodes.values() if isinstance(n, Sup)]

    def _run_jobs(self, sup: Sup) -> None:
        """Start the next queued job of ``sup`` if its decision task is free."""
        while sup.active is None and sup.jobs:
            job = sup.jobs.popleft()
            if sup.stop_requested:
                continue  # the stop in progress stops the held children
            if job.kind == "giveup":
                if job.inc != sup.incarnation:
                    continue  # its parent took that incarnation down meanwhile
                self._start_give_up(sup, job)
                return
            failing = job.failing
            assert failing is not None
            if failing.pending_job is not job:
                continue  # stale: an earlier group restart took it, or it was stopped
            failing.pending_job = None
            if sup.held:
                continue  # the give-up (or the subtree's restart) takes it from here
            if sup.strategy is ak.Strategy.ONE_FOR_ALL:
                job.group = list(sup.children)
            else:
                job.group = sup.children[sup.children.index(failing) :]
            others = [m for m in reversed(job.group) if m is not failing]
            self._begin_take_down(job, self._take_down_steps(others, temporary_stop=True))
            sup.active = job

    def _take_down_steps(
        self, members: list[Node], *, temporary_stop: bool
    ) -> list[tuple[Node, str]]:
        """What taking ``members`` down does, in order (members given in reverse start order)."""
        steps: list[tuple[Node, str]] = []
        for member in members:
            if temporary_stop and member.restart == "temporary":
                steps.append((member, "temporary"))
            elif isinstance(member, Sup):
                steps.append((member, "suspend"))
                if member.phase is Phase.RUNNING:
                    steps.extend((c, "suspend") for c in reversed(member.children))
            else:
                steps.append((member, "suspend"))
        return steps

    def _begin_take_down(self, job: Job, steps: list[tuple[Node, str]]) -> None:
        job.stage = "takedown"
        job.cursor = steps
        job.touched = False
        job.held = [n for n, mode in steps if mode != "temporary"]

    def _take_down_step(self, job: Job, node: Node, mode: str, item: object) -> None:
        """A member was taken down: every step before it must have had nothing to do.

        A subtree's own step shows only through its children (or what comes after it): the
        subtree counts as taken down (held) from the first sign that the take-down passed it.
        """
        job.touched = True
        while job.cursor:
            head, head_mode = job.cursor.pop(0)
            if head is node and head_mode in (mode, "either"):
                break
            if not self._skippable(head, head_mode):
                self._fail(
                    f"{job.sup.key} took {node.key} down before {head.key} ({head_mode}): "
                    f"not reverse start order; {describe(item)}"
                )
            if isinstance(head, Sup) and head_mode != "temporary":
                self._take_down_sub(head)
        else:
            self._fail(f"{node.key} was taken down, but not by {job}: {describe(item)}")
        if mode == "suspend":
            assert isinstance(node, Worker)
            node.alive = False
            node.timers.clear()
            node.phase, node.until = Phase.HELD, None
            return
        self._expect(*self._stop_seq(node, failed=False))  # a TEMPORARY member stops for good

    def _take_down_sub(self, sub: Sup) -> None:
        """A take-down reaches ``sub``: a restart it backs off for is abandoned at once (its
        own group restart, or its parent's restart of it), and its incarnation ends."""
        giving_up = any(job.kind == "giveup" for job in [*sub.jobs, sub.active] if job)
        if sub.phase is Phase.RUNNING and not giving_up:
            sub.incarnation += 1  # (a give-up queued before the take-down runs first)
        sub.held = True
        if sub.phase is Phase.BACKOFF:
            sub.phase, sub.until = Phase.HELD, None
        self._abandon(sub.starting)
        job = sub.active
        if job is not None and job.kind == "group":
            if job.stage == "backoff":
                sub.active = None  # its members stay held
            elif job.stage == "starting":
                self._abandon(job.token)
            elif job.stage == "takedown":
                # asked to go down before its take-down ended: it ended there, no restart
                for node in job.held + job.group:
                    self._hold(node)
                sub.active = None
            self._run_jobs(sub)

    def _skippable(self, node: Node, mode: str) -> bool:
        if mode == "either":
            return self._skippable(node, "temporary") or self._skippable(node, "suspend")
        if mode == "temporary":
            return node.phase is Phase.DEAD
        if isinstance(node, Sup):
            return True  # a supervisor's own suspension shows only through its children
        return not node.live

    def _finish_take_down(self, job: Job) -> None:
        for node, mode in job.cursor:
            if not self._skippable(node, mode):
                self._fail(f"{job} went on, but {node.key} was never taken down ({mode})")
            if isinstance(node, Sup) and mode != "temporary":
                self._take_down_sub(node)
        job.cursor = []
        for node in job.held + job.group:
            self._hold(node)
        if job.kind == "giveup":
            self._give_up_now(job)
        else:
            self._expect_restarting(job)

    def _hold(self, node: Node) -> None:
        """``node`` is held for a restart; a running subtree's children with it (a subtree that
        is already down keeps whatever was spawned into it meanwhile running)."""
        if node.phase in (Phase.DEAD, Phase.BUSY):
            return
        was_running = node.phase is Phase.RUNNING
        node.phase, node.until = Phase.HELD, None
        node.pending_job = None
        if isinstance(node, Sup):
            node.jobs.clear()
            node.active = None
            if was_running:
                for child in node.children:
                    self._hold(child)

    def _expect_restarting(self, job: Job) -> None:
        job.stage = "restarting"
        job.group = [m for m in job.group if m.phase is not Phase.DEAD]
        failing = job.failing
        assert failing is not None
        if not job.group:
            self._job_done(job)
            return
        expects = self._restarting(job.group, failing, init_failure=job.retry)

        def after(item: object) -> None:
            assert isinstance(item, ak.Restarting)
            if item.delay > 0:
                job.stage, job.until = "backoff", item.at + item.delay
            else:
                self._start_group(job)

        expects[-1] = _chain_then(expects[-1], after)
        self._expect(*expects)

    def _start_group(self, job: Job) -> None:
        """The group's delay is over: init every member in start order, then Restarted."""
        job.stage = "starting"
        members = [m for m in job.group if m.phase is not Phase.DEAD]
        job.group = members
        if not members:
            self._job_done(job)
            return
        steps: list[Expect] = []
        ok = True
        quiet: list[Node] = []  # subtrees restarted without an item of their own (yet)
        for index, member in enumerate(members):

            def failed(culprit: Worker, index: int = index) -> None:
                self._group_start_failed(job, members[index], members[:index])

            member.phase = Phase.BUSY
            seq, ok = self._start_seq(member, failed)
            if seq and quiet:
                seq[0] = _chain_then(seq[0], functools.partial(self._all_running, quiet))
                quiet = []
            if not seq:
                quiet.append(member)
            steps.extend(seq)
            if not ok:
                break
        if ok:
            for member in members:
                # (a subtree runs from its last child's init on: by now it may be held again)
                runs_now = isinstance(member, Worker) or member in quiet

                def restarted(
                    item: object, member: Node = member, runs_now: bool = runs_now
                ) -> None:
                    member.restarts += 1
                    member.last_restart_at = self.now
                    if runs_now:
                        self._set_running(member)
                    if member is members[-1]:
                        self._job_done(job)

                failing = job.failing
                assert failing is not None
                steps.append(
                    Expect(
                        member, "Restarted (the group's attempt)", _restarted(failing), restarted
                    )
                )

        def abandoned() -> None:
            for member in members:
                if member.phase is Phase.BUSY:
                    member.phase = Phase.HELD
            if job.sup.active is job:
                job.sup.active = None

        job.token = token = Pending(abandoned)
        self._expect(*(attrs.evolve(step, token=token) for step in steps))

    def _all_running(self, nodes: list[Node], item: object) -> None:
        for node in nodes:
            self._set_running(node)

    def _group_start_failed(self, job: Job, member: Node, started: list[Node]) -> None:
        """A member's init failed: the started ones are taken down, then stamp and retry."""
        sup = job.sup
        member.phase = Phase.HELD
        steps = self._take_down_steps(list(reversed(started)), temporary_stop=False)
        if sup.held or self._stamp(sup, self.now):  # (held already: not stamped)
            sup.held = True
            self._give_up_after(job, steps, "InitError")
            return
        job.retry = True
        self._begin_take_down(job, steps)
        job.held += job.group

    def _job_done(self, job: Job) -> None:
        sup = job.sup
        if sup.active is job:
            sup.active = None
        self._run_jobs(sup)

    def _start_give_up(self, sup: Sup, job: Job) -> None:
        """Hold every child (reverse start order), then GaveUp, then the parent decides."""
        job.kind = "giveup"
        members = list(reversed(sup.children))
        self._begin_take_down(job, self._take_down_steps(members, temporary_stop=False))
        sup.active = job
        sup.phase = Phase.BUSY

    def _give_up_now(self, job: Job) -> None:
        sup = job.sup
        count = in_window(sup.stamps, self.now, sup.budget.within)

        def gave_up(item: object) -> bool:
            if not isinstance(item, ak.GaveUp):
                return False
            if item.restarts != count or item.within != sup.budget.within:
                self._fail(
                    f"GaveUp(restarts={item.restarts}, within={item.within}), but the model "
                    f"counts {count} stamps in [{self.now} - {sup.budget.within}, {self.now}] "
                    f"of {sup.stamps}"
                )
            if item.error_type != job.error:
                self._fail(f"GaveUp names error {item.error_type!r}; the model {job.error!r}")
            return True

        def failed(item: object) -> None:
            sup.active = None
            sup.jobs.clear()
            sup.phase = Phase.HELD
            sup.incarnation += 1  # its parent ends this incarnation
            if sup is self.root:
                self.root_error = job.error
                self._expect(*self._stop_seq(sup, failed=True, terminal=True))
            else:
                self._decide(sup, error="SupervisorGaveUp", init_failure=False)

        self._expect(
            Expect(sup, f"GaveUp({count} restarts in the window)", gave_up),
            Expect(
                sup,
                "Failed(SupervisorGaveUp)",
                is_event(ak.Failed, error_type="SupervisorGaveUp", message_type=None),
                failed,
            ),
        )

    # -- stopping for good -------------------------------------------------------------------

    def _stop_seq(self, node: Node, *, failed: bool, terminal: bool = False) -> list[Expect]:
        """Stopping, then (decided when it starts) dead letters or children, on_stop, Stopped."""

        def stopped(item: object) -> None:
            node.phase = Phase.DEAD
            node.dead_failed = failed
            node.pending_job = None
            if node.parent is not None and node in node.parent.children:
                node.parent.children.remove(node)
            if terminal:
                self.terminal = True

        def stopping(item: object) -> None:
            if isinstance(node, Sup):
                node.stop_requested = True
            self._cancel_restarts(node)
            node.phase = Phase.BUSY
            rest: list[Expect] = []
            if isinstance(node, Worker):
                rest.extend(self._dead_letter_expect(node, msg) for msg in node.queue)
                node.queue.clear()
                node.timers.clear()
                if node.alive:

                    def ended(item: object) -> None:
                        assert isinstance(node, Worker)
                        node.alive = False

                    on_stop = f"on_stop of inc {node.inc}"
                    is_on_stop = _on_stop_of(node.key, node.inc)
                    rest.append(Expect(node, on_stop, is_on_stop, ended))
            else:
                assert isinstance(node, Sup)
                for child in reversed(node.children):
                    rest.extend(self._stop_seq(child, failed=False))
            stopped_test = is_event(ak.Stopped, failed=failed)
            rest.append(Expect(node, f"Stopped(failed={failed})", stopped_test, stopped))
            self._expect_front(rest)

        return [Expect(node, "Stopping", is_event(ak.Stopping), stopping)]

    def _dead_letter_expect(self, worker: Worker, msg: Msg) -> Expect:
        def dead(item: object) -> None:
            worker.fates[msg.mid] = "dead"
            if msg.kind == "echo":
                self.asks[msg.mid] = ("error", "ActorStopped")

        return Expect(
            worker,
            f"DeadLetter of queued {msg}",
            lambda i: isinstance(i, ak.DeadLetter) and _mid(i) == msg.mid,
            dead,
        )

    # -- expectations and time ------------------------------------------------------------------

    def _expect(self, *expects: Expect) -> None:
        """Await ``expects`` in order, after whatever is already awaited from their node."""
        if not expects:
            return
        node = expects[0].node
        for channel in self.channels:
            if any(e.node is node for e in channel):
                channel.extend(expects)
                return
        self.channels.append(deque(expects))

    def _expect_front(self, expects: list[Expect]) -> None:
        """Continue the channel being met with ``expects`` before the rest of it."""
        channel = self.current
        if channel is None:
            self._expect(*expects)
            return
        channel.extendleft(reversed(expects))
        if channel not in self.channels:
            self.channels.append(channel)

    def deadlines(self) -> list[float]:
        """Every future instant at which the model expects something to happen."""
        times: list[float] = []
        for node in self.nodes.values():
            if node.phase is Phase.BACKOFF and node.until is not None:
                times.append(node.until)
            if isinstance(node, Worker) and node.alive:
                times.extend(t for t, _, _ in node.timers)
            job = node.active if isinstance(node, Sup) else None
            if job is not None and job.stage == "backoff":
                times.append(job.until)
        return sorted({t for t in times if t > self.now})

    def edges(self) -> list[float]:
        """Boundary instants ahead (each with the float just past it): when a restart stamp
        leaves its supervisor's budget window, and when a restarted child has run long enough
        for its next restart to count as the first again (``reset_after``)."""
        edges: set[float] = set()
        for node in self.nodes.values():
            if node.phase is Phase.DEAD:
                continue
            if isinstance(node, Sup):
                edges.update(stamp + node.budget.within for stamp in node.stamps)
            sup = node.parent
            if sup is not None and node.phase is Phase.RUNNING and node.last_restart_at is not None:
                edges.add(node.last_restart_at + self._stable_period(sup))
        ahead = [edge for edge in edges if edge > self.now]
        return sorted({*ahead, *(math.nextafter(edge, math.inf) for edge in ahead)})

    def advance(self, to: float) -> None:
        """Let model time reach ``to``: fire timers and end backoffs, in time order."""
        while True:
            due: list[tuple[float, int, Callable[[], None]]] = []
            for order, node in enumerate(self.nodes.values()):
                if node.phase is Phase.BACKOFF and node.until is not None and node.until <= to:
                    due.append((node.until, order, functools.partial(self._restart_now, node)))
                if isinstance(node, Worker) and node.alive and node.timers:
                    first = min(node.timers, key=lambda t: (t[0], t[1]))
                    if first[0] <= to:
                        due.append((first[0], order, functools.partial(self._fire_timer, node)))
                if isinstance(node, Sup) and node.active is not None:
                    job = node.active
                    if job.stage == "backoff" and job.until <= to:
                        due.append((job.until, order, functools.partial(self._start_group, job)))
            if not due:
                break
            at, _, fire = min(due, key=lambda d: (d[0], d[1]))
            self.now = max(self.now, at)
            fire()
        self.now = max(self.now, to)

    def _fire_timer(self, worker: Worker) -> None:
        first = min(worker.timers, key=lambda t: (t[0], t[1]))
        worker.timers.remove(first)
        msg = first[2]
        worker.queue.append(msg)
        worker.fates[msg.mid] = "queued"

    # -- checks when the trio side is quiet ----------------------------------------------------

    def check_quiescent(self) -> None:
        """Nothing the model expects by now may be missing."""
        for channel in self.channels:
            expect = channel[0]
            self._fail(f"still awaited at t={self.now}: [{expect.node.key}: {expect.what}]")
        for sup in self._sups():
            job = sup.active
            if job is not None and job.stage != "backoff":
                self._fail(f"{job} is stuck at t={self.now}")
            if job is None and sup.jobs:
                self._fail(f"{sup.key} never ran its queued jobs {list(sup.jobs)}")
        for node in self.nodes.values():
            if node.phase is Phase.BUSY:
                self._fail(f"model: {node} still busy at t={self.now}")
            if node.phase is Phase.BACKOFF and (node.until is None or node.until <= self.now):
                self._fail(f"{node.key} should have been restarted at {node.until}")
            if isinstance(node, Worker) and node.phase is Phase.RUNNING:
                if node.queue:
                    self._fail(f"{node.key} is running but never handled {node.queue[0]}")
                due = [t for t, _, _ in node.timers if t <= self.now]
                if due:
                    self._fail(f"{node.key}: a timer due at {due[0]} never fired")

    def workers(self) -> list[Worker]:
        return [n for n in self.nodes.values() if isinstance(n, Worker)]

    def expected_status(self, node: Node) -> ak.Status:
        if node.phase is Phase.RUNNING:
            return ak.Status.RUNNING
        if node.phase is Phase.DEAD:
            return ak.Status.FAILED if node.dead_failed else ak.Status.STOPPED
        return ak.Status.RESTARTING

    def _fail(self, message: str) -> NoReturn:
        recent = "\n    ".join(self.history)
        text = f"{message}\n  trace so far (last {len(self.history)} items):\n    {recent}"
        raise ModelError(text)


# -- small predicates ---------------------------------------------------------------------------


def _mid(item: ak.DeadLetter) -> int | None:
    message = item.message
    return message.mid if isinstance(message, Msg) else None


def _is_init(item: object, key: str, inc: int) -> bool:
    return isinstance(item, Init) and item.key == key and item.inc == inc


def _is_on_stop(item: object, key: str, inc: int, reason: str) -> bool:
    return (
        isinstance(item, OnStop) and item.key == key and item.inc == inc and item.reason == reason
    )


def _on_stop_of(key: str, inc: int) -> Callable[[object], bool]:
    return lambda item: isinstance(item, OnStop) and item.key == key and item.inc == inc


def _declined(reason: str) -> Callable[[object], bool]:
    return is_event(ak.RestartDeclined, reason=reason)


def _restarted(node: Node) -> Callable[[object], bool]:
    """Restarted, reporting the node's attempt number as it is when the event arrives."""
    return lambda item: isinstance(item, ak.Restarted) and item.attempt == node.attempt


def _chain_then(expect: Expect, extra: Callable[[object], None]) -> Expect:
    first = expect.then

    def both(item: object) -> None:
        if first is not None:
            first(item)
        extra(item)

    return attrs.evolve(expect, then=both)

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

Where api.md is silent the model follows the implementation's documented choices: restart
counts of a subtree's children are not bumped when the subtree restarts (its supervisor did not
restart them); every member of a group restart reports the group's attempt number; a failure
seen while its supervisor is already giving up may or may not count in ``GaveUp.restarts``
and changes nothing else; a child spawned into a subtree that waits to be restarted runs at
once and is kept by the restart; TEMPORARY children of a restarted subtree stop for good.

A symptom of a bug listed in the test's ``KNOWN_BUGS`` raises ``KnownBug`` (with the bug's
key) rather than a plain ``ModelError``, so that the test can end the example there.
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


class KnownBug(ModelError):
    """A symptom of a known actorkit bug, named by ``key`` (see the test's ``KNOWN_BUGS``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


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
        self.giveups = 0
        self.folded = 0  # failures seen while already giving up (see KnownBug "double give-up")
        self.held_failures = 0  # failures of children while it waits to be restarted
        self.folded_stamps: list[float] = []  # failures seen while giving up (may be stamped)

    @property
    def live(self) -> bool:
        return self.phase is Phase.RUNNING


class Job:
    """Work of a supervisor's decision task: a group restart, or giving up."""

    def __init__(self, kind: str, sup: Sup, failing: Node | None, error: str, at: float) -> None:
        self.kind = kind  # group | giveup
        self.sup = sup
        self.failing = failing
        self.error = error  # the failure's error type; "" for a PERMANENT child's own stop
        self.at = at  # when the failure was seen
        self.stage = "queued"  # queued | takedown | restarting | backoff | starting
        self.group: list[Node] = []
        self.cursor: list[tuple[Node, str]] = []  # take-down steps left: (node, suspend|temporary)
        self.held: list[Node] = []  # every node the take-down holds
        self.until = 0.0
        self.retry = False  # the last start of the group failed: n grows regardless
        self.giveups = sup.giveups

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
    known: str | None = None  # a known bug (KNOWN_BUGS) makes this expectation fail


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
        if isinstance(node, Sup):
            node.jobs.clear()
            node.active = None
            for child in node.children:
                self._cancel_restarts(child)

    # -- feeding the trace --------------------------------------------------------------------

    def feed(self, item: object) -> None:
        at = getattr(item, "at", None)
        if not isinstance(at, float | int):
            self._fail(f"trace item without a time: {item!r}")
        if at < self.now:
            self._fail(f"the trace went back in time: {describe(item)} after t={self.now}")
        self.advance(at)
        self.history.append(describe(item))
        self._dispatch(item)

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
        known = self._known_symptom(node, item)
        if isinstance(item, ak.GaveUp):
            self._fail(
                f"{node.key} gave up, but the model has no give-up pending: {describe(item)}",
                known=known,
            )
        self._fail(
            f"unexpected item ({node.key} is {node.phase.value}): {describe(item)}", known=known
        )

    def _known_symptom(self, node: Node, item: object) -> str | None:
        """Symptoms of known bugs (the test's KNOWN_BUGS says which are still there)."""
        sup = node if isinstance(node, Sup) else node.parent
        if sup is None:
            return None
        stopping = (
            isinstance(item, ak.RestartDeclined) and item.reason == "the supervisor is stopping"
        )
        if stopping and node.pending_job is None and self._stop_pending(sup):
            return "stop with a queued restart"
        acting = isinstance(item, ak.GaveUp | ak.Restarting | ak.RestartDeclined) or (
            isinstance(item, OnStop | Init) and sup.phase is not Phase.RUNNING
        )
        if sup.held_failures and acting:
            return "failure in a restarting subtree"
        if not sup.folded:
            return None
        if isinstance(item, ak.GaveUp) or (isinstance(item, OnStop) and item.reason == "restart"):
            return "double give-up"
        return None

    def _stop_pending(self, sup: Sup) -> bool:
        """A stop of ``sup`` (or above it) was asked for and has not begun yet."""
        for channel in self.channels:
            for expect in channel:
                if expect.what == "Stopping" and expect.node in (sup, sup.parent):
                    return True
        return False

    # -- workers handling messages ------------------------------------------------------------

    def _handled(self, worker: Worker, item: Handled) -> None:
        msg = item.msg
        if msg.origin and msg.origin != item.inc:
            self._fail(
                f"{worker.key}: a message of a timer that incarnation {msg.origin} scheduled "
                f"was handled by incarnation {item.inc}: {describe(item)}",
                known="timer into a new incarnation",
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

    def _decide(self, node: Node, *, error: str, init_failure: bool) -> None:
        """``node`` failed (``error``) or a PERMANENT child stopped itself: restart it or not."""
        sup = node.parent
        assert sup is not None
        node.phase = Phase.HELD
        if node.restart == "temporary":
            self._expect(
                Expect(node, "RestartDeclined(temporary child)", _declined("temporary child")),
                *self._stop_seq(node, failed=bool(error)),
            )
            return
        if sup.phase in (Phase.HELD, Phase.BACKOFF):
            sup.held_failures += 1
            return  # its supervisor waits to be restarted, which re-creates it anyway
        if self._giving_up(sup):
            # Seen before the GaveUp: it may count in GaveUp.restarts (a ONE_FOR_ONE
            # supervisor stamps it until its give-up starts); it changes nothing else.
            if sup.strategy is ak.Strategy.ONE_FOR_ONE:
                sup.folded_stamps.append(self.now)
            sup.folded += 1
            return
        if sup.phase is not Phase.RUNNING or self.shutting_down:
            self._fail(f"model: {node.key} ended while {sup.key} is {sup.phase.value}")
        if sup.strategy is not ak.Strategy.ONE_FOR_ONE:
            job = Job("group", sup, node, error, self.now)
            node.pending_job = job
            sup.jobs.append(job)
            self._run_jobs(sup)
            return
        if self._stamp(sup, self.now):
            self._post_give_up(sup, error)
            return
        self._restart_in_place(node, init_failure=init_failure)

    def _giving_up(self, sup: Sup) -> bool:
        jobs = [sup.active, *sup.jobs]
        return any(job is not None and job.kind == "giveup" for job in jobs)

    def _stamp(self, sup: Sup, at: float) -> bool:
        """Stamp a restart-worthy failure seen at ``at``; True if the budget is exceeded."""
        sup.stamps.append(at)
        return in_window(sup.stamps, at, sup.budget.within) > sup.budget.max_restarts

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

        self._expect(attrs.evolve(expect, then=after))

    def _restart_now(self, node: Node) -> None:
        """An in-place restart's delay is over: init again, then Restarted (or fail again)."""
        node.phase, node.until = Phase.BUSY, None

        def failed(culprit: Worker) -> None:
            sup = node.parent
            assert sup is not None
            node.phase = Phase.HELD
            if self._stamp(sup, self.now):
                self._post_give_up(sup, "InitError")
            else:
                self._restart_in_place(node, init_failure=True)

        def restarted(item: object) -> None:
            node.restarts += 1
            node.last_restart_at = self.now
            self._set_running(node)

        steps, ok = self._start_seq(node, failed)
        if ok:
            steps.append(
                Expect(node, f"Restarted(attempt={node.attempt})", _restarted(node), restarted)
            )
        self._expect(*steps)

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
                then = functools.partial(self._subtree_start_failed, started, on_failure)
                steps.extend(self._init_failure(child, node, then))
                return steps, False
            steps.append(self._init_expect(child))
            if isinstance(child, Worker):
                started.append(child)

        def running(item: object) -> None:
            self._set_running(node)

        if steps:
            steps[-1] = _chain_then(steps[-1], running)
        else:
            self._set_running(node)
        return steps, True

    def _subtree_start_failed(
        self, started: list[Worker], on_failure: Callable[[Worker], None], culprit: Worker
    ) -> None:
        """A subtree's restart failed half-way: the children it started are held again
        (as a group restart does with the members it started), then the parent decides."""
        steps = [
            attrs.evolve(self._suspend_expect(w), known="partial subtree restart")
            for w in reversed(started)
        ]
        if not steps:
            on_failure(culprit)
            return
        steps[-1] = _chain_then(steps[-1], lambda item: on_failure(culprit))
        self._expect(*steps)

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
                if any(n is node and mode == "suspend" for n, mode in job.cursor):
                    return job
            elif isinstance(item, ak.RestartDeclined) and item.reason == "temporary child":
                if any(n is node and mode == "temporary" for n, mode in job.cursor):
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
            if job.kind == "giveup":
                if job.giveups != sup.giveups or sup.phase is not Phase.RUNNING:
                    continue  # that burst already ended in a give-up
                self._start_give_up(sup, job)
                return
            failing = job.failing
            assert failing is not None
            if failing.pending_job is not job:
                continue  # stale: an earlier group restart took it, or it was stopped
            failing.pending_job = None
            if job.at < self.now:
                self._fail(
                    f"{job} waited behind another restart from t={job.at} to t={self.now}",
                    known="late stamp",
                )
            if self._stamp(sup, job.at):
                self._start_give_up(sup, Job("giveup", sup, None, job.error, job.at))
                return
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
        for node, _ in steps:
            if isinstance(node, Sup) and self._backing_off(node):
                self._fail(
                    f"{job} must take {node.key} down while a restart of it backs off",
                    known="take-down waits for subtree backoff",
                )
        job.stage = "takedown"
        job.cursor = steps
        job.held = [n for n, mode in steps if mode == "suspend"]

    def _take_down_step(self, job: Job, node: Node, mode: str, item: object) -> None:
        """A member was taken down: every step before it must have had nothing to do."""
        while job.cursor:
            head, head_mode = job.cursor.pop(0)
            if head is node and head_mode == mode:
                break
            if not self._skippable(head, head_mode):
                self._fail(
                    f"{job.sup.key} took {node.key} down before {head.key} ({head_mode}): "
                    f"not reverse start order; {describe(item)}"
                )
        else:
            self._fail(f"{node.key} was taken down, but not by {job}: {describe(item)}")
        if mode == "suspend":
            assert isinstance(node, Worker)
            node.alive = False
            node.timers.clear()
            node.phase, node.until = Phase.HELD, None
            return
        self._expect(*self._stop_seq(node, failed=False))  # a TEMPORARY member stops for good

    def _backing_off(self, sup: Sup) -> bool:
        """Its decision task sleeps: its parent restarts it in place, or it restarts a group."""
        if sup.phase is Phase.BACKOFF:
            return True
        return sup.active is not None and sup.active.stage == "backoff"

    def _skippable(self, node: Node, mode: str) -> bool:
        if mode == "temporary":
            return node.phase is Phase.DEAD
        if isinstance(node, Sup):
            return True  # a supervisor's own suspension shows only through its children
        return not node.live

    def _finish_take_down(self, job: Job) -> None:
        for node, mode in job.cursor:
            if not self._skippable(node, mode):
                self._fail(f"{job} went on, but {node.key} was never taken down ({mode})")
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
        for index, member in enumerate(members):

            def failed(culprit: Worker, index: int = index) -> None:
                self._group_start_failed(job, members[index], members[:index])

            member.phase = Phase.BUSY
            seq, ok = self._start_seq(member, failed)
            steps.extend(seq)
            if not ok:
                self._expect(*steps)
                return
        for member in members:

            def restarted(item: object, member: Node = member) -> None:
                member.restarts += 1
                member.last_restart_at = self.now
                self._set_running(member)
                if member is members[-1]:
                    self._job_done(job)

            failing = job.failing
            assert failing is not None
            steps.append(
                Expect(member, "Restarted (the group's attempt)", _restarted(failing), restarted)
            )
        self._expect(*steps)

    def _group_start_failed(self, job: Job, member: Node, started: list[Node]) -> None:
        """A member's init failed: the started ones are taken down, then stamp and retry."""
        sup = job.sup
        member.phase = Phase.HELD
        steps = self._take_down_steps(list(reversed(started)), temporary_stop=False)
        if self._stamp(sup, self.now):
            give_up = Job("giveup", sup, None, "InitError", self.now)
            everyone = self._take_down_steps(list(reversed(sup.children)), temporary_stop=False)
            self._begin_take_down(give_up, steps + everyone)
            sup.active = give_up
            sup.phase = Phase.BUSY
            return
        job.retry = True
        self._begin_take_down(job, steps)
        job.held += job.group

    def _job_done(self, job: Job) -> None:
        sup = job.sup
        if sup.active is job:
            sup.active = None
        self._run_jobs(sup)

    def _post_give_up(self, sup: Sup, error: str) -> None:
        sup.jobs.append(Job("giveup", sup, None, error, self.now))
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
        most = count + in_window(sup.folded_stamps, self.now, sup.budget.within)

        def gave_up(item: object) -> bool:
            if not isinstance(item, ak.GaveUp):
                return False
            if not count <= item.restarts <= most or item.within != sup.budget.within:
                self._fail(
                    f"GaveUp(restarts={item.restarts}, within={item.within}), but the model "
                    f"counts {count} stamps in [{self.now} - {sup.budget.within}, {self.now}] "
                    f"of {sup.stamps} (+ up to {most - count} seen while giving up)"
                )
            if item.error_type != job.error:
                self._fail(f"GaveUp names error {item.error_type!r}; the model {job.error!r}")
            return True

        def failed(item: object) -> None:
            sup.giveups += 1
            sup.folded_stamps = []
            sup.active = None
            sup.jobs.clear()
            sup.phase = Phase.HELD
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
                waits = [n for n, _ in job.cursor if isinstance(n, Sup) and self._backing_off(n)]
                self._fail(
                    f"{job} is stuck at t={self.now}",
                    known="take-down waits for subtree backoff" if waits else None,
                )
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

    def _fail(self, message: str, known: str | None = None) -> NoReturn:
        if known is None:  # things go wrong after a known bug's symptom: blame the bug
            pending = [ch[0].known for ch in self.channels if ch and ch[0].known]
            known = pending[0] if pending else None
        recent = "\n    ".join(self.history)
        text = f"{message}\n  trace so far (last {len(self.history)} items):\n    {recent}"
        if known is not None:
            raise KnownBug(known, text)
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

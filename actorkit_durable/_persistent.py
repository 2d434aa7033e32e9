"""Persistent actors: actors whose state is snapshotted to a store after every message.

A definition (``dur.persistent_actor(path, init=, handle=, ...)``) has the shape of an
``actorkit.Behavior``; ``init`` receives the identity params as a dict. An *activation* is one
resident life of one identity: an actorkit actor (supervised: a failure restarts it from the
last snapshot) whose handler is wrapped so that, after each message,

1. the new state is encoded (msgpack, through the codec) and committed to the store, fenced
   by the activation's lease epoch, in the same transaction as the consumption of the signal
   being handled, if any;
2. only then do the replies the handler sent go out and the next message start.

A state that encodes to the bytes already stored costs no commit (a read-only ask). When idle
for ``idle_after`` seconds, or when the runtime holds more than ``max_resident`` activations,
an actor is passivated: its lease is released and its actor stopped; a ref survives this and
re-activates it on the next send. Signals reach passivated actors through the store, which
makes them due; the runtime then activates them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import trio

import actorkit as ak
from actorkit._actor import TimerMessage
from actorkit._behavior import UNCHANGED
from actorkit._reply import hold_replies, release_replies

from ._exceptions import DurableError
from ._paths import PathTemplate
from ._signals import SignalReceived
from ._store import KEEP, Commit, LoadedProcess, SignalRecord

if TYPE_CHECKING:
    from ._runtime import Runtime

logger = logging.getLogger("actorkit_durable")

S = TypeVar("S")
M = TypeVar("M")
T = TypeVar("T")

KIND = "actor"
"""The store's ``kind`` of persistent-actor rows."""


class ActorElsewhere(DurableError):
    """The persistent actor is active in another live runtime sharing the store."""


@attrs.frozen(eq=False)
class PersistentActor(Generic[S, M]):
    """A persistent actor definition; create it with ``dur.persistent_actor``."""

    template: PathTemplate
    init: Callable[[dict[str, str]], S | Awaitable[S]]
    handle: Callable[[S, M, ak.Tools], Any]
    on_stop: Callable[[S, object], object] | None = None
    max_inbox: int = 1024
    overflow: ak.Overflow = ak.Overflow.REJECT
    none_is_state: bool = False
    idle_after: float | None = None
    budget: ak.RestartBudget = attrs.Factory(lambda: ak.RestartBudget(10, within=1.0))
    backoff: ak.Backoff | None = None
    behavior: ak.Behavior[Any, Any] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        behavior: ak.Behavior[Any, Any] = ak.Behavior(
            name=self.template.segments[0],
            init=_init,
            handle=_handle,
            on_stop=_on_stop,
            max_inbox=self.max_inbox,
            overflow=self.overflow,
            none_is_state=True,  # the wrapper decides; it always returns the state to keep
        )
        object.__setattr__(self, "behavior", behavior)

    @property
    def path(self) -> str:
        return self.template.text

    def __repr__(self) -> str:
        return f"<persistent_actor {self.path!r}>"


def persistent_actor(
    path: str,
    *,
    init: Callable[[dict[str, str]], S | Awaitable[S]],
    handle: Callable[[S, M, ak.Tools], Any],
    on_stop: Callable[[S, object], object] | None = None,
    max_inbox: int = 1024,
    overflow: ak.Overflow | str = ak.Overflow.REJECT,
    none_is_state: bool = False,
    idle_after: float | None = None,
    budget: ak.RestartBudget | None = None,
    backoff: ak.Backoff | None = None,
) -> PersistentActor[S, M]:
    """Define a persistent actor addressed by ``path`` (e.g. ``"/account/:account"``).

    ``init(params)`` builds the first state of an identity (later activations load the latest
    snapshot instead); ``handle(state, msg, tools)`` and ``on_stop(state, reason)`` are as in
    ``actorkit.Behavior``. The state must be encodable by the codec (attrs classes, dicts,
    lists, str, int, ...). ``idle_after`` overrides the runtime's passivation delay; ``budget``
    and ``backoff`` configure the supervisor that restarts failed activations from their last
    snapshot (default: at most 10 restarts within 1 s, no backoff).
    """
    template = PathTemplate.parse(path, what="dur.persistent_actor")
    for argument, value, optional in (("init", init, False), ("handle", handle, False)):
        if not callable(value) and not (optional and value is None):
            raise TypeError(
                f"dur.persistent_actor({path!r}, {argument}=...) must be callable, got {value!r}"
            )
    if on_stop is not None and not callable(on_stop):
        raise TypeError(f"dur.persistent_actor({path!r}, on_stop=...) must be callable or None")
    if idle_after is not None and not (isinstance(idle_after, int | float) and idle_after >= 0):
        raise ValueError(
            f"dur.persistent_actor({path!r}, idle_after={idle_after!r}) must be seconds >= 0"
        )
    # max_inbox and overflow are checked (and overflow converted) as actorkit does it
    try:
        checked = ak.Behavior(name="check", handle=handle, max_inbox=max_inbox, overflow=overflow)
    except (TypeError, ValueError) as exc:
        text = str(exc).replace("Behavior(", f"dur.persistent_actor({path!r}, ")
        raise type(exc)(text) from None
    return PersistentActor(
        template, init, handle, on_stop, max_inbox, checked.overflow, none_is_state, idle_after,
        budget if budget is not None else ak.RestartBudget(10, within=1.0), backoff,
    )  # fmt: skip


class PersistentRef(Generic[M]):
    """A ref to a persistent actor identity; valid across passivations and runtimes' lives.

    ``send`` and ``ask`` re-activate the actor when it is passivated (loading its latest
    snapshot). Messages are durable once handled: an acknowledged ask or a completed send of
    a handled message is reflected in the committed state; messages still queued in the
    mailbox are in memory only.
    """

    __slots__ = ("_runtime", "_definition", "_id", "_params")

    def __init__(
        self,
        runtime: Runtime,
        definition: PersistentActor[Any, M],
        actor_id: str,
        params: dict[str, str],
    ) -> None:
        self._runtime = runtime
        self._definition = definition
        self._id = actor_id
        self._params = params

    @property
    def id(self) -> str:
        """The identity, e.g. ``"account/acc-1"``."""
        return self._id

    @property
    def params(self) -> dict[str, str]:
        return dict(self._params)

    @property
    def resident(self) -> bool:
        """True while an activation of it lives in this runtime."""
        return self._id in self._runtime._resident

    def __repr__(self) -> str:
        return f"<PersistentRef {self._id}>"

    async def send(self, msg: M) -> bool:
        """Deliver ``msg``, activating the actor if needed; False if its mailbox refused it."""
        while True:
            activation = await self._runtime._activation(self._definition, self._id, self._params)
            if activation.passivating:
                await activation.settled.wait()
                continue
            return await activation.ref.send(msg)

    async def ask(self, build: Callable[[ak.Reply[T]], M], *, timeout: float | None = 5.0) -> T:
        """As ``ActorRef.ask``; the reply is sent once the state it reflects is committed."""
        while True:
            activation = await self._runtime._activation(self._definition, self._id, self._params)
            if activation.passivating:
                await activation.settled.wait()
                continue
            return await activation.ref.ask(build, timeout=timeout)


class _Passivate:
    """Internal message: passivate if still idle (``idle``) or because of the resident cap."""

    __slots__ = ("forced",)

    def __init__(self, forced: bool) -> None:
        self.forced = forced


class Activation:
    """One resident life of a persistent actor identity (the actorkit actor's ctx)."""

    def __init__(
        self,
        runtime: Runtime,
        definition: PersistentActor[Any, Any],
        actor_id: str,
        params: dict[str, str],
        loaded: LoadedProcess,
    ) -> None:
        self.runtime = runtime
        self.definition = definition
        self.id = actor_id
        self.params = params
        self.loaded: LoadedProcess | None = loaded
        self.epoch = loaded.process.lease_epoch
        self.snapshot = loaded.process.snapshot
        self.ref: ak.ActorRef[Any] = None  # type: ignore[assignment]  # set right after spawn
        self.enqueued: set[int] = set()  # signal seqs in the mailbox or being handled
        self.passivating = False
        self.settled = trio.Event()  # set when a passivation ends (done or called off)
        self.gone = trio.Event()
        idle = definition.idle_after
        self.idle_after = runtime._idle_after if idle is None else idle

    def carry_on(self) -> None:
        """A passivation was called off: the activation serves messages again."""
        self.passivating = False
        self.settled.set()
        self.settled = trio.Event()

    def deliver(self, records: tuple[SignalRecord, ...] | list[SignalRecord]) -> None:
        """Enqueue inbox signals not enqueued yet, in emit order."""
        for record in sorted(records, key=lambda r: r.seq):
            if record.seq in self.enqueued or self.passivating:
                continue
            try:
                message = self.runtime._signal_received(record)
            except Exception:  # undecodable data: it stays in the inbox, for a fixed program
                logger.exception("persistent actor %s: cannot take signal %s", self.id, record.seq)
                continue
            if self.ref.send_nowait(message):
                self.enqueued.add(record.seq)
            # else: a full mailbox; the signal stays in the store's inbox for a later delivery

    async def commit(self, **changes: Any) -> tuple[SignalRecord, ...]:
        """Commit for this activation (fenced); return inbox signals ready and not enqueued."""
        runtime = self.runtime
        result = await runtime._store.commit(
            Commit(self.id, self.epoch, **changes), now=runtime.now()
        )
        return tuple(r for r in result.ready if r.seq not in self.enqueued)


# -- the wrapped behavior ------------------------------------------------------------------------


class _Box:
    """The actorkit actor's state: the activation and the user's state."""

    __slots__ = ("activation", "state")

    def __init__(self, activation: Activation, state: Any) -> None:
        self.activation = activation
        self.state = state


async def _init(activation: Activation) -> _Box:
    """Load the latest snapshot (or build the first state); also after a restart."""
    runtime = activation.runtime
    loaded, activation.loaded = activation.loaded, None
    if loaded is None:  # a restart after a failure: back to the last committed state
        loaded = await runtime._store.load(activation.id)
        if loaded is None or loaded.process.lease_epoch != activation.epoch:
            raise DurableError(
                f"persistent actor {activation.id}: its lease was lost while it restarted"
            )
    activation.snapshot = snapshot = loaded.process.snapshot
    if activation.ref is not None:  # a restart: the idle clock starts again
        runtime._touched(activation)
    what = f"snapshot of persistent actor {activation.id}"
    if snapshot is not None:
        return _Box(activation, runtime._codec.decode(snapshot, what=what))
    init = activation.definition.init
    state = init(dict(activation.params))
    if inspect.isawaitable(state):
        state = await state
    return _Box(activation, state)


async def _handle(box: _Box, msg: object, tools: ak.Tools) -> _Box:
    activation = box.activation
    state = box.state
    if type(msg) is _Passivate:
        await _maybe_passivate(activation, msg.forced, tools)
        return box
    definition = activation.definition
    runtime = activation.runtime
    consume: tuple[int, ...] = ()
    if type(msg) is SignalReceived and msg.seq in activation.enqueued:
        consume = (msg.seq,)
    hold_replies(tools.self)
    try:
        result = definition.handle(state, msg, tools)
        if inspect.isawaitable(result):
            result = await result
        if result is UNCHANGED or (result is None and not definition.none_is_state):
            result = state
        snapshot = runtime._codec.encode(result, what=f"state of persistent actor {activation.id}")
        ready: tuple[SignalRecord, ...] = ()
        if snapshot != activation.snapshot or consume:
            ready = await activation.commit(
                snapshot=snapshot if snapshot != activation.snapshot else KEEP, consume=consume
            )
            runtime._commits += 1
            activation.snapshot = snapshot
            activation.enqueued.difference_update(consume)
    except BaseException as exc:
        release_replies(
            tools.self,
            ak.ActorFailed(
                f"persistent actor {activation.id}: its new state was not committed "
                f"({type(exc).__name__}: {exc})"
            ),
        )
        if consume and isinstance(exc, Exception):
            await _consume_failed(activation, consume)
        raise
    release_replies(tools.self)
    if ready:
        activation.deliver(ready)
    runtime._touched(activation)
    box.state = result
    return box


async def _consume_failed(activation: Activation, consume: tuple[int, ...]) -> None:
    """A signal whose handler raised is consumed without a state change, like any message
    whose handler raised (it becomes a dead letter); the restart goes on from the snapshot."""
    try:
        await activation.commit(consume=consume)
    except Exception:  # the lease is gone or the store fails: the restart will tell
        logger.exception("persistent actor %s: consuming failed signal(s)", activation.id)
        return
    activation.enqueued.difference_update(consume)


async def _maybe_passivate(activation: Activation, forced: bool, tools: ak.Tools) -> None:
    """Passivate unless messages are waiting or a signal is ready in the store."""
    runtime = activation.runtime
    ref = tools.self
    if activation.passivating or _has_work(ref):
        if forced:
            runtime._not_evicted(activation)
        return
    activation.passivating = True  # from now on, sends wait for the outcome
    try:
        ready = await activation.commit(due_at=None, release=True)
    except BaseException:
        activation.carry_on()
        raise
    if ready:  # the store kept the lease for us: handle them first
        activation.carry_on()
        if forced:
            runtime._not_evicted(activation)
        activation.deliver(ready)
        return
    queue = ref._queue
    if queue:  # only internal messages can have come in: they end with this activation
        kept = [m for m in queue if not _internal(m)]
        queue.clear()
        queue.extend(kept)
    runtime._passivating(activation, forced)
    await ref.stop("passivated")


def _has_work(ref: ak.ActorRef[Any]) -> bool:
    """Messages other than the runtime's own passivation requests are queued."""
    return not all(_internal(m) for m in ref._queue or ())


def _internal(msg: object) -> bool:
    if type(msg) is TimerMessage:
        msg = msg.msg
    return type(msg) is _Passivate


async def _on_stop(box: _Box, reason: object) -> None:
    on_stop = box.activation.definition.on_stop
    if on_stop is not None:
        result = on_stop(box.state, reason)
        if inspect.isawaitable(result):
            await result


class Watch:
    """Told by actorkit when an activation's actor has stopped for good (a private hook
    shaped like ``actorkit.Monitor``): the identity leaves the resident set."""

    __slots__ = ("activation", "active")

    def __init__(self, activation: Activation) -> None:
        self.activation = activation
        self.active = True

    def _deliver(self, reason: object) -> None:
        if self.active:
            self.active = False
            self.activation.runtime._gone(self.activation)

"""A run: one resident life of a durable process in a runtime.

A process is a row of the store (``kind="process"``) plus its journal. A run is a trio task
executing the user's handler with a ``Context``. Every awaited durable operation (a step's
result, a signal received, a race's outcome, a timer's deadline, an emit) is recorded in the
journal, and written with the run's next commit before anything that depends on it can be
seen outside the process (see ``ProcessRun._stage``).

Rebuilding is replay: a new run re-executes the handler from the start, and each durable
operation whose journal entry exists returns the recorded result without doing anything
(steps do not run again); at the end of the journal the run goes on live. An operation that
does not match the entry at its position (another kind or name) raises ``NondeterminismError``.

Two speeds: a waiting run parks (the store keeps what it waits for, the lease is released) and
stays resident; when the runtime claims the process again (a signal made it due, its timer
came), the claim is handed to the parked run, which goes on without replay. A parked run over
the resident cap (the least recently parked first, as a cache) is dropped (cancelled): the
next wake replays.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import random as _random
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import trio

from ._context import Context
from ._exceptions import (
    NondeterminismError,
    RecoverableError,
    SnapshotDecodeError,
)
from ._process import (
    DEFAULT_RETRY,
    RETRY_MARK,
    Delay,
    ProcessDef,
    RaceResult,
    Retry,
    StepFailed,
    _time,
    describe_error,
)
from ._signals import SignalDef, SignalReceived
from ._store import (
    NEW_SIGNAL,
    Commit,
    CommitResult,
    JournalEntry,
    LeaseLost,
    LoadedProcess,
    NewProcess,
    NewSignal,
    ProcessRecord,
    SignalRecord,
    Status,
    Timer,
)

if TYPE_CHECKING:
    from ._runtime import Runtime


class _Parked(BaseException):
    """Internal: the run ends here without committing anything more (passivated while it
    waited, or its lease was lost). A BaseException, so that a handler's ``except
    Exception`` does not keep a run going that no longer owns its process."""


class ProcessRun:
    """One resident life of a process in a runtime (see the module docstring)."""

    def __init__(
        self, runtime: Runtime, definition: ProcessDef[Any], loaded: LoadedProcess
    ) -> None:
        record = loaded.process
        self.runtime = runtime
        self.definition = definition
        self.id = record.id
        self.params = dict(record.params)
        self.created_at = record.created_at
        self.epoch = record.lease_epoch
        self.status = record.status
        self.journal: list[JournalEntry] = list(loaded.journal)
        self.inbox: list[SignalRecord] = list(loaded.inbox)
        self.cursor = 0
        self.last_at = record.created_at
        self.input: Any = None
        self.raw_input = record.input
        self._random: _random.Random | None = None
        self.scope = trio.CancelScope()
        self.parked = False
        self.wait_keys: list[tuple[str, tuple[str, ...]]] = []
        """What a parked run waits for, as the runtime indexes it (see ``Runtime.emit``)."""
        self.handover: LoadedProcess | None = None
        self.woken = trio.Event()
        self.busy = False
        self.staged: list[JournalEntry] = []
        self.staged_consume: list[int] = []
        """Inbox signals taken by staged entries, consumed with them."""
        self.staged_since = 0.0
        """Entries to write with the next commit (a wait's deadlines go with its park)."""
        self.announced = record.status is Status.SUSPENDED
        """A "suspended" event was given (by this run or a previous one) since the last
        "running" one: the next live commit announces "running"."""
        self.nondeterminism: NondeterminismError | None = None
        self.cancel_requested = False
        self.dropped = False
        self.done = trio.Event()
        self.watch = trio.Event()
        """Set (and replaced) when the run parks or ends: ``h.wait()`` looks at the store
        again then (a parked process may be finished by another runtime)."""
        self.unborn: NewProcess | None = None
        """Set while the process does not exist in the store yet: ``rt.start`` runs the
        handler at once and the run's first commit creates the process (one write for the
        creation and the first step, wait or result)."""
        self.born = trio.Event()
        self.created = False
        self.birth_lock = trio.Lock()
        self.final: ProcessRecord | None = None
        """The process as stored after this run finished it (for ``h.wait()``)."""

    def rng(self) -> _random.Random:
        """The generator of ``ctx.random()``, seeded by the process id (made on first use)."""
        if self._random is None:
            seed = hashlib.sha256(self.id.encode()).digest()
            self._random = _random.Random(int.from_bytes(seed[:8], "big"))
        return self._random

    # -- the task -------------------------------------------------------------------------------

    async def main(self) -> None:
        runtime = self.runtime
        outcome: tuple[str, Any] | None = None
        try:
            with self.scope:
                try:
                    if self.raw_input is not None:
                        what = f"input of process {self.id}"
                        self.input = runtime._codec.decode(self.raw_input, what=what)
                    value = await self.definition.fn(Context(self), **self.params)
                    if self.nondeterminism is not None:
                        raise self.nondeterminism
                    self._pass_marks()
                    if self.cursor < len(self.journal):
                        entry = self.journal[self.cursor]
                        raise self._nondeterminism(
                            f"the handler returned, but the journal goes on with {entry.kind} "
                            f"{entry.name!r}"
                        )
                    outcome = ("completed", value)
                except _Parked:
                    return
                except (RecoverableError, SnapshotDecodeError) as exc:
                    # a decode error is fixed by code (a class to register), like a recoverable one
                    outcome = ("suspended", exc)
                except Exception as exc:
                    if self.nondeterminism is not None:
                        outcome = ("suspended", self.nondeterminism)
                    else:
                        outcome = ("failed", exc)
            if self.dropped:
                return
            if outcome is None:  # cancelled: by h.cancel(), a drop, or the runtime closing
                if self.cancel_requested and not self.dropped:
                    with trio.CancelScope(shield=True):
                        await self._finish_cancelled()
                return
            await self._finish(*outcome)
        except _Parked:
            return
        except trio.Cancelled:
            # the runtime is closing: step results not written yet are written now, so that
            # those steps do not run again in the next runtime
            if self.staged and not self.dropped:
                with (
                    trio.CancelScope(shield=True),
                    trio.move_on_after(_FLUSH_GRACE),
                    contextlib.suppress(_Parked, Exception),
                ):
                    await self._commit(**self._live_changes())
            raise
        finally:
            runtime._run_ended(self)
            self.done.set()
            self.watch.set()

    async def _finish(self, how: str, value: Any) -> None:
        runtime = self.runtime
        now = runtime.now()
        if how == "completed":
            try:
                result = runtime._codec.encode(value, what=f"result of process {self.id}")
            except (TypeError, ValueError) as exc:
                how, value = "failed", exc
            else:
                done = await self._commit(
                    status=Status.COMPLETED, result=result, waiting_on=None, error=None,
                    last_error=None, last_error_at=None, due_at=None,
                )  # fmt: skip
                self.final = done.process
                runtime._process_event(self, "completed", None)
                return
        if how == "failed":
            error = describe_error(value)
            done = await self._commit(
                status=Status.FAILED, error=error, waiting_on=None, due_at=None,
                last_error=None, last_error_at=None, release=True,
            )  # fmt: skip
            self.final = done.process
            runtime._process_event(self, "failed", error)
            return
        error = describe_error(value)
        self.announced = False
        await self._commit(
            status=Status.SUSPENDED, last_error=error, last_error_at=now,
            waiting_on="a retry (recoverable error)", waits=[NEW_SIGNAL], timers=[],
            due_at=None, release=True,
        )  # fmt: skip
        self.status = Status.SUSPENDED
        runtime._process_event(self, "suspended", error)

    async def _finish_cancelled(self) -> None:
        try:
            done = await self._commit(status=Status.CANCELLED, waiting_on=None, due_at=None)
        except _Parked:
            return
        self.final = done.process
        self.runtime._process_event(self, "cancelled", None)

    # -- store access ---------------------------------------------------------------------------

    async def _commit(self, **changes: Any) -> CommitResult:
        runtime = self.runtime
        if self.dropped:
            raise _Parked(self.id)
        if self.unborn is not None or self.birth_lock.locked():
            async with self.birth_lock:
                if self.unborn is not None:
                    return await self._birth(changes)
        staged, staged_consume = self.staged, self.staged_consume
        if staged:
            changes["journal"] = staged
            self.staged = []
            if staged_consume:
                changes["consume"] = [*staged_consume, *changes.get("consume", ())]
                self.staged_consume = []
        try:
            result = await runtime._store.commit(
                Commit(self.id, self.epoch, **changes), now=runtime.now()
            )
        except LeaseLost:
            # another runtime took the process over (or it was cancelled from outside)
            self.dropped = True
            raise _Parked(self.id) from None
        except BaseException:
            # not applied (a store call is atomic, and one cancelled before it started does
            # nothing): the entries stay staged, for the flush on the way out
            if staged:
                self.staged = [*staged, *self.staged]
                self.staged_consume = [*staged_consume, *self.staged_consume]
            raise
        runtime._commits += 1
        if result.process.cancel_requested:
            self.cancel_from_outside()
        return result

    def cancel_from_outside(self) -> None:
        """Another program asked for this process to be cancelled while this run held it:
        the handler is cancelled at its current await, and the run records CANCELLED."""
        if not self.cancel_requested and not self.dropped:
            self.cancel_requested = True
            self.scope.cancel()

    async def give_birth(self) -> None:
        """Create the process now with what it has recorded so far (``rt.start`` does this
        when the handler takes a while to reach its first commit)."""
        async with self.birth_lock:
            if self.unborn is not None:
                await self._birth({})

    async def _birth(self, changes: dict[str, Any]) -> CommitResult:
        runtime = self.runtime
        new = self.unborn
        assert new is not None
        if self.staged:
            changes["journal"] = self.staged
            self.staged = []
            self.staged_consume = []  # an unborn process has no inbox
        try:
            result = await runtime._store.create_committed(
                new, Commit(self.id, 1, **changes), now=runtime.now(), owner=runtime._owner,
                lease_for=runtime._lease_for,
            )  # fmt: skip
        except BaseException:
            self.dropped = True
            raise
        finally:
            self.unborn = None
            self.born.set()
        if result is None:  # created meanwhile (another runtime's start): that one runs it
            self.dropped = True
            raise _Parked(self.id)
        self.created = True
        runtime._commits += 1
        runtime._born(self)
        return result

    def _live_changes(self) -> dict[str, Any]:
        """What the first live commit after a (re)start or a wait sets besides its entry."""
        if self.status is Status.RUNNING:
            return {}
        self.status = Status.RUNNING
        changes: dict[str, Any] = {
            "status": Status.RUNNING, "waiting_on": None, "waits": [], "timers": [],
            "error": None, "last_error": None, "last_error_at": None,
            "due_at": self.runtime.now(),
        }  # fmt: skip
        return changes

    def _stage(
        self,
        kind: str,
        name: str,
        payload: object,
        consume: int | None = None,
        since: float | None = None,
    ) -> JournalEntry:
        """An entry for the next commit. Staging is for results the handler may go on with
        before they are durable, because what it runs until its next durable operation is
        deterministic and has no effects: a step's result is written with the next wait,
        emit or the completion, or before the next step runs; only results that came in the
        last ``STAGE_WINDOW`` seconds may ride along with a step (a run of fast steps is
        written in one commit), so a crash re-runs at most the steps of that window and the
        one running."""
        runtime = self.runtime
        entry = JournalEntry(
            len(self.journal),
            kind,
            name,
            runtime._codec.encode(payload, what=f"{kind} {name!r} of process {self.id}"),
            runtime.now(),
        )
        self._announce_running()  # live again after a wait or an error
        if not self.staged:
            self.staged_since = trio.current_time() if since is None else since
        self.staged.append(entry)
        if consume is not None:
            self.staged_consume.append(consume)
        self.journal.append(entry)
        self.cursor += 1
        self.last_at = entry.at
        return entry

    def _announce_running(self) -> None:
        if self.announced:
            self.announced = False
            self.runtime._process_event(self, "running", None)

    # -- replay ---------------------------------------------------------------------------------

    def _nondeterminism(self, detail: str) -> NondeterminismError:
        error = NondeterminismError(
            f"process {self.id} ({self.definition.path}): at journal entry {self.cursor} "
            f"{detail}; the code changed under a running process: restore the old code, or "
            "retry once the handler agrees with its journal"
        )
        self.nondeterminism = error
        return error

    def _replay(self, kind: str, name: str) -> Any:
        """The recorded payload of the next entry if it exists (checked), else ``_LIVE``."""
        if self.dropped:
            raise _Parked(self.id)
        if self.nondeterminism is not None:
            raise self.nondeterminism
        self._pass_marks()
        if self.cursor >= len(self.journal):
            return _LIVE
        entry = self.journal[self.cursor]
        if entry.kind != kind or entry.name != name:
            raise self._nondeterminism(
                f"the handler asked for {kind} {name!r}, but the journal recorded {entry.kind} "
                f"{entry.name!r}"
            )
        self.cursor += 1
        self.last_at = entry.at
        return self.runtime._codec.decode(
            entry.payload, what=f"journal entry {entry.seq} of process {self.id}"
        )

    def _retried_here(self, failure: dict[str, Any]) -> bool:
        """The next entry is a retry mark for the error this step failure ended the process
        with (a failure the handler caught, then failed otherwise, stays history)."""
        if not self._next_is(RETRY_MARK, RETRY_MARK):
            return False
        entry = self.journal[self.cursor]
        mark = self.runtime._codec.decode(entry.payload, what=f"retry mark of process {self.id}")
        return isinstance(mark, dict) and mark.get("error") == failure.get("e")

    def _pass_marks(self) -> None:
        """Go past retry marks that no step failure claimed (the retried process had failed
        in its own code, not at a step)."""
        journal = self.journal
        while self.cursor < len(journal) and journal[self.cursor].kind == RETRY_MARK:
            self.cursor += 1

    def _next_is(self, kind: str, name: str) -> bool:
        if self.cursor >= len(self.journal):
            return False
        entry = self.journal[self.cursor]
        return entry.kind == kind and entry.name == name

    def _enter(self, what: str) -> None:
        if self.busy:
            raise RuntimeError(
                f"process {self.id}: ctx.{what}() while another ctx operation is in progress; "
                "await durable operations one at a time (they are recorded in order)"
            )
        self.busy = True

    # -- operations -----------------------------------------------------------------------------

    async def step(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        name: str | None,
        retry: Retry | None,
        timeout: float | None,
    ) -> Any:
        if not callable(fn):
            raise TypeError(f"ctx.step({fn!r}): pass a function (sync or async) to run")
        if name is None:
            name = getattr(fn, "__qualname__", None) or repr(fn)
        if retry is None:
            retry = DEFAULT_RETRY
        elif not isinstance(retry, Retry):
            raise TypeError(f"ctx.step(retry={retry!r}): pass dur.Retry(...)")
        if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
            raise ValueError(f"ctx.step(timeout={timeout!r}) must be seconds > 0, or None")
        self._enter("step")
        try:
            kind = "step"
            recorded = self._replay("step", name)
            while recorded is not _LIVE and "e" in recorded:
                # A failure followed by a retry mark (a retry of the process that this failure
                # ended) runs the step again, recorded as a "retried" entry that supersedes it.
                if not self._retried_here(recorded):
                    raise _rebuild_error(recorded)
                self.cursor += 1
                if self._next_is("retried", name):
                    recorded = self._replay("retried", name)
                elif self.cursor == len(self.journal):
                    recorded = _LIVE
                    kind = "retried"
                else:
                    raise _rebuild_error(recorded)
            if recorded is not _LIVE:
                return recorded["v"]
            if self.staged and trio.current_time() - self.staged_since >= STAGE_WINDOW:
                # earlier results are durable before this step runs, unless all of them came
                # within STAGE_WINDOW seconds (of trio time) from the start of the first of
                # them: a run of fast steps is written together
                await self._commit(**self._live_changes())
                self._announce_running()
            attempt = 0
            began = trio.current_time()
            while True:
                attempt += 1
                try:
                    if timeout is None:
                        value = fn(*args)
                        if inspect.isawaitable(value):
                            value = await value
                    else:
                        with trio.fail_after(timeout):
                            value = fn(*args)
                            if inspect.isawaitable(value):
                                value = await value
                except RecoverableError:
                    raise
                except Exception as exc:
                    if attempt < retry.max_attempts:
                        await trio.sleep(retry.delay_after(attempt))
                        continue
                    failure = {
                        "e": describe_error(exc), "m": type(exc).__module__,
                        "t": type(exc).__qualname__, "a": str(exc),
                    }  # fmt: skip
                    self._stage(kind, name, failure, since=began)
                    raise
                self._stage(kind, name, {"v": value}, since=began)
                return value
        finally:
            self.busy = False

    async def signal(self, signal: SignalDef[Any]) -> SignalReceived[Any]:
        if not isinstance(signal, SignalDef):
            raise TypeError(f"ctx.signal({signal!r}): pass a signal declared with dur.signal()")
        self.runtime._definitions_add_signal(signal)
        self._enter("signal")
        try:
            recorded = self._replay("signal", signal.path)
            if recorded is _LIVE:
                record, _ = await self._wait((signal,), [], f"signal {signal.path}")
                assert record is not None
                recorded = _signal_payload(record)
                self._stage("signal", signal.path, recorded, consume=record.seq)
            return self._received(signal, recorded)
        finally:
            self.busy = False

    async def race(self, arms: Sequence[SignalDef[Any] | Delay]) -> RaceResult[Any]:
        if not arms:
            raise ValueError("ctx.race() needs at least one arm: signals and/or dur.delay(...)")
        names: list[str] = []
        for arm in arms:
            if isinstance(arm, SignalDef):
                self.runtime._definitions_add_signal(arm)
                names.append(arm.path)
            elif isinstance(arm, Delay):
                names.append("delay")
            else:
                raise TypeError(
                    f"ctx.race(..., {arm!r}, ...): arms are signals (dur.signal) and delays "
                    "(dur.delay.seconds(n), ...)"
                )
        name = " | ".join(names)
        self._enter("race")
        try:
            deadlines = await self._deadlines(
                "race", name, [a.seconds for a in arms if isinstance(a, Delay)]
            )
            recorded = self._replay("race", name)
            if recorded is _LIVE:
                signals = tuple(a for a in arms if isinstance(a, SignalDef))
                timers = [
                    (i, deadline)
                    for i, deadline in zip(
                        [i for i, a in enumerate(arms) if isinstance(a, Delay)],
                        deadlines,
                        strict=True,
                    )
                ]
                waiting = " | ".join(
                    f"signal {a.path}" if isinstance(a, SignalDef) else "timer" for a in arms
                )
                record, timer = await self._wait(signals, timers, waiting)
                if record is not None:
                    index = next(
                        i for i, a in enumerate(arms)
                        if isinstance(a, SignalDef) and a.path == record.name
                    )  # fmt: skip
                    recorded = {"i": index, **_signal_payload(record)}
                    self._stage("race", name, recorded, consume=record.seq)
                else:
                    recorded = {"i": timer}
                    self._stage("race", name, recorded)
            index = recorded["i"]
            arm = arms[index]
            if isinstance(arm, Delay):
                return RaceResult[Any](arm, index, None, None, True)
            received = self._received(arm, recorded)
            return RaceResult(arm, index, received.data, received.params, False)
        finally:
            self.busy = False

    async def sleep(self, duration: Delay | float) -> None:
        if not isinstance(duration, Delay):
            duration = Delay(duration)
        self._enter("sleep")
        try:
            (deadline,) = await self._deadlines("sleep", "sleep", [duration.seconds])
            if self._replay("sleep", "sleep") is _LIVE:
                until = "sleep until " + _time(deadline).isoformat()
                await self._wait((), [(0, deadline)], until)
                self._stage("sleep", "sleep", None)
        finally:
            self.busy = False

    async def emit(
        self,
        signal: SignalDef[Any],
        data: object,
        idempotency_key: str | None,
        params: dict[str, str],
    ) -> None:
        runtime = self.runtime
        if not isinstance(signal, SignalDef):
            raise TypeError(f"ctx.emit({signal!r}): pass a signal declared with dur.signal()")
        runtime._definitions_add_signal(signal)
        signal.check_data(data)
        _, values = signal.template.fill(params, what=f"ctx.emit({signal.name})")
        if idempotency_key is not None and not isinstance(idempotency_key, str):
            raise TypeError(f"ctx.emit(idempotency_key={idempotency_key!r}) must be a str")
        self._enter("emit")
        try:
            if self._replay("emit", signal.path) is not _LIVE:
                return
            payload = None if data is None else runtime._codec.encode(data, what=signal.name)
            new = NewSignal(signal.path, values, payload, idempotency_key)
            entry = self._stage("emit", signal.path, None)
            result = await self._commit(emit=[new], **self._live_changes())
            self._announce_running()
            for emitted in result.emitted:
                if not emitted.duplicate:
                    runtime._delivered(new, emitted, entry.at)
        finally:
            self.busy = False

    # -- waiting ----------------------------------------------------------------------------------

    async def _deadlines(self, what: str, name: str, delays: list[float]) -> list[float]:
        """The deadlines of a wait's delays: recorded when it is first reached."""
        if not delays:
            return []
        recorded = self._replay("deadline", name)
        if recorded is _LIVE:
            # Written with the wait's next commit (its park, or its outcome): the handler does
            # not go on before that, so a crash before it leaves nothing observed.
            now = self.runtime.now()
            recorded = [now + seconds for seconds in delays]
            self._stage("deadline", name, recorded)
        return [float(d) for d in recorded]

    async def _wait(
        self,
        signals: tuple[SignalDef[Any], ...],
        timers: list[tuple[int, float]],
        waiting_on: str,
    ) -> tuple[SignalRecord | None, int]:
        """Until one of ``signals`` is in the inbox or a timer is due: the earliest wins.

        Returns (the signal record, -1) or (None, the winning timer's arm index)."""
        runtime = self.runtime
        names = {s.path for s in signals}
        while True:
            match = next(
                (r for r in sorted(self.inbox, key=lambda r: r.seq) if r.name in names), None
            )
            first_timer = min(timers, key=lambda t: t[1]) if timers else None
            if match is not None and (first_timer is None or match.created_at < first_timer[1]):
                self.inbox.remove(match)
                self._announce_running()
                return match, -1
            if first_timer is not None and runtime.now() >= first_timer[1]:
                self._announce_running()
                return None, first_timer[0]
            # park: the store keeps the wait; the lease goes unless a signal is ready already
            result = await self._commit(
                **{
                    **self._live_changes(),
                    "status": Status.SUSPENDED, "waiting_on": waiting_on, "waits": sorted(names),
                    "timers": [Timer(f"t{i}", at) for i, at in timers], "due_at": None,
                    "release": True,
                }
            )  # fmt: skip
            self.status = Status.SUSPENDED
            if result.ready:
                self._take(result.ready)
                continue
            if not self.announced:
                self.announced = True
                runtime._process_event(self, "suspended", waiting_on)
            self.wait_keys = [
                (s.path, tuple(self.params[p] for p in s.params))
                for s in signals
                if all(p in self.params for p in s.params)
            ]
            loaded = await self._park()
            self.epoch = loaded.process.lease_epoch
            self.inbox = list(loaded.inbox)

    def _take(self, records: Sequence[SignalRecord]) -> None:
        known = {r.seq for r in self.inbox}
        self.inbox.extend(r for r in records if r.seq not in known)

    async def _park(self) -> LoadedProcess:
        """Wait, resident, until the runtime hands over a fresh claim of this process."""
        runtime = self.runtime
        if not runtime._may_park(self):
            self.dropped = True
            raise _Parked(self.id)
        self.parked = True
        self.woken = trio.Event()
        self.watch.set()
        self.watch = trio.Event()
        try:
            await self.woken.wait()
        finally:
            self.parked = False
        loaded = self.handover
        assert loaded is not None
        self.handover = None
        return loaded

    def resume(self, loaded: LoadedProcess) -> bool:
        """Hand a fresh claim to this parked run; False if it cannot go on from it."""
        process = loaded.process
        if (
            not self.parked
            or self.dropped
            or self.woken.is_set()
            or process.journal_length != len(self.journal)
            or process.status is not Status.SUSPENDED
        ):
            return False
        self.handover = loaded
        self.woken.set()
        return True

    def drop(self) -> None:
        """End this run (passivation, a newer run, a cancel from here): it commits nothing."""
        self.dropped = True
        self.scope.cancel()

    def _received(self, signal: SignalDef[Any], recorded: dict[str, Any]) -> SignalReceived[Any]:
        raw = recorded.get("d")
        data = None
        if raw is not None:
            what = f"data of signal {signal.path} (seq {recorded['s']}) for process {self.id}"
            data = self.runtime._codec.decode(raw, what=what)
        return SignalReceived(signal, data, dict(recorded["p"]), recorded["s"])


def _rebuild_error(recorded: dict[str, Any]) -> Exception:
    """The recorded exception of a failed step, rebuilt as its class with its message when
    that class is a builtin or defined in an already-loaded module (nothing is imported)."""
    module = sys.modules.get(str(recorded.get("m")))
    found: Any = module
    for part in str(recorded.get("t")).split("."):
        found = getattr(found, part, None)
    if isinstance(found, type) and issubclass(found, Exception):
        try:
            return found(recorded.get("a", ""))
        except Exception:
            pass
    return StepFailed(str(recorded["e"]))


_LIVE: Any = object()

STAGE_WINDOW = 0.001
"""Step results (and the outcomes around them) wait to be written with later ones only while
they all came within this many seconds of trio time: a run of fast steps is one commit, and a
step that took longer is durable before the next step runs."""

_FLUSH_GRACE = 5.0
"""Seconds a closing runtime gives a run to write its staged journal entries."""


def _signal_payload(record: SignalRecord) -> dict[str, Any]:
    return {"s": record.seq, "d": record.payload, "p": dict(record.params)}

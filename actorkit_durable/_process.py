"""Durable process definitions and the values handlers and callers see.

``@dur.process(path)`` makes a ``ProcessDef``; a handler gets a ``Context`` (``_context``) and
runs in a ``ProcessRun`` (``_run``), which records every durable operation in the process's
journal and rebuilds a process by replaying it. This module holds what those share: delays,
retry policies, race results, process states and events, handles, and ``StepFailed``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import attrs

from ._exceptions import (
    DurableError,
    ProcessCancelled,
    ProcessFailed,
    ProcessNotFound,
)
from ._paths import PathTemplate
from ._store import (
    ProcessRecord,
    Status,
)

if TYPE_CHECKING:
    from ._runtime import Runtime

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
T = TypeVar("T")

KIND = "process"
"""The store's ``kind`` of durable-process rows."""

RETRY_MARK = "retry"
"""Journal entry kind (and name) written by a retry of a FAILED process: a step failure
right before it runs again (see ``ProcessRun.step``); replay passes over it elsewhere."""


# -- definitions ---------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class ProcessDef(Generic[R_co]):
    """A durable process definition; create it with ``@dur.process(path)``."""

    template: PathTemplate
    fn: Callable[..., Awaitable[R_co]]

    @property
    def path(self) -> str:
        return self.template.text

    @property
    def name(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))

    def __repr__(self) -> str:
        return f"<process {self.path!r} {self.name}>"


def process(path: str) -> Callable[[Callable[..., Awaitable[R]]], ProcessDef[R]]:
    """Declare a durable process addressed by ``path`` (e.g. ``"/order/:order/fulfillment"``).

    The decorated ``async def handler(ctx, **params)`` takes the context plus exactly the path
    params as keyword arguments; its return value (any codec value) is the process's result.
    """
    template = PathTemplate.parse(path, what="dur.process")

    def decorate(fn: Callable[..., Awaitable[R]]) -> ProcessDef[R]:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"@dur.process({path!r}) decorates an 'async def handler(ctx, ...)', got {fn!r}"
            )
        _check_signature(path, template, fn)
        return ProcessDef(template, fn)

    return decorate


def _check_signature(path: str, template: PathTemplate, fn: Callable[..., Any]) -> None:
    parameters = list(inspect.signature(fn).parameters.values())
    expected = ", ".join(["ctx", *template.params])
    fix = f"define it as 'async def {fn.__name__}({expected})' (ctx, then the path params)"
    if not parameters or parameters[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise TypeError(f"@dur.process({path!r}): the handler takes ctx first; {fix}")
    names: list[str] = []
    for parameter in parameters[1:]:
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(f"@dur.process({path!r}): *args/**kwargs are not allowed; {fix}")
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise TypeError(f"@dur.process({path!r}): {parameter.name} is positional-only; {fix}")
        names.append(parameter.name)
    if sorted(names) != sorted(template.params):
        missing = sorted(set(template.params) - set(names))
        extra = sorted(set(names) - set(template.params))
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"not in the path: {', '.join(extra)}" if extra else "",
            )
            if part
        )
        raise TypeError(
            f"@dur.process({path!r}): handler parameters do not match ({detail}); {fix}"
        )


# -- values handlers see -------------------------------------------------------------------------


@attrs.frozen
class Delay:
    """A durable delay (a race arm, or ``ctx.sleep``); build it with ``dur.delay``."""

    seconds: float

    def __attrs_post_init__(self) -> None:
        if not (isinstance(self.seconds, int | float) and math.isfinite(self.seconds)):
            raise ValueError(f"dur.delay: {self.seconds!r} is not a finite number of seconds")
        if self.seconds < 0:
            raise ValueError(f"dur.delay: {self.seconds!r} seconds is negative")


class _DelayFactory:
    """``dur.delay.seconds(n)``, ``.minutes(n)``, ``.hours(n)``, ``.days(n)``."""

    __slots__ = ()

    @staticmethod
    def seconds(n: float) -> Delay:
        return Delay(n)

    @staticmethod
    def minutes(n: float) -> Delay:
        return Delay(n * 60.0)

    @staticmethod
    def hours(n: float) -> Delay:
        return Delay(n * 3600.0)

    @staticmethod
    def days(n: float) -> Delay:
        return Delay(n * 86400.0)


delay = _DelayFactory()


@attrs.frozen
class Retry:
    """How ``ctx.step`` retries: ``max_attempts`` runs in all, sleeping ``initial *
    factor**(n-1)`` seconds (at most ``max``) after the n-th failed one."""

    max_attempts: int = 3
    initial: float = 1.0
    factor: float = 2.0
    max: float = 60.0

    def __attrs_post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise TypeError(f"dur.Retry(max_attempts={self.max_attempts!r}) must be an int")
        if self.max_attempts < 1:
            raise ValueError(f"dur.Retry(max_attempts={self.max_attempts!r}) must be >= 1")
        for name in ("initial", "factor", "max"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value)):
                raise ValueError(f"dur.Retry({name}={value!r}) must be a finite number >= 0")

    def delay_after(self, attempt: int) -> float:
        """Seconds to sleep after failed attempt ``attempt`` (1-based)."""
        return float(min(self.max, self.initial * self.factor ** (attempt - 1)))


DEFAULT_RETRY = Retry()


@attrs.frozen
class RaceResult(Generic[T]):
    """Which arm of ``ctx.race`` won: ``arm`` (the object passed), ``index``, the signal's
    ``data`` and ``params`` (None for a delay), and ``timed_out`` (a delay won)."""

    arm: object
    index: int
    data: T
    """The signal's data; None when a delay won (or the signal carries none)."""
    params: dict[str, str] | None
    timed_out: bool


@attrs.frozen
class ProcessState:
    """A process as stored, decoded (``await h.state()``, ``rt.query()``)."""

    id: str
    path: str
    params: dict[str, str]
    status: Status
    result: Any
    error: str | None
    last_error: str | None
    last_error_at: datetime | None
    waiting_on: str | None
    created_at: datetime
    updated_at: datetime


@attrs.frozen
class ProcessEvent:
    """A transition of a durable process, given to ``open_runtime(on_event=)``.

    ``status``: "started", "running" (resumed live), "suspended" (waiting, or a recoverable
    error: see ``detail``), "completed", "failed", "cancelled"."""

    process_id: str
    path: str
    status: str
    detail: str | None
    at: float
    """Durable wall time, POSIX seconds."""


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class ProcessHandle(Generic[R]):
    """A handle on one process: ``id``, ``status`` (the last one seen), ``state()``, ``wait()``,
    ``cancel()``. Cheap to make (``rt.handle(id)`` does no I/O)."""

    __slots__ = ("_runtime", "id", "status")

    def __init__(self, runtime: Runtime, process_id: str, status: Status | None = None) -> None:
        self._runtime = runtime
        self.id = process_id
        self.status = status

    def __repr__(self) -> str:
        return f"<ProcessHandle {self.id} {self.status}>"

    async def _record(self) -> ProcessRecord:
        record = await self._runtime._store.get(self.id)
        if record is None or record.kind != KIND:
            raise ProcessNotFound(f"no durable process has the id {self.id!r} in this store")
        self.status = record.status
        return record

    async def state(self) -> ProcessState:
        """The process as stored now."""
        return self._runtime._state(await self._record())

    async def wait(self) -> R:
        """Wait until the process finishes; its result, or ``ProcessFailed`` /
        ``ProcessCancelled``."""
        runtime = self._runtime
        store = runtime._store
        while True:
            run = runtime._runs.get(self.id)
            record: ProcessRecord | None = None
            if run is not None and not run.parked:  # running here: it says when to look again
                await run.watch.wait()
                record = run.final
            seen = store.version
            if record is None:
                record = await self._record()
            self.status = record.status
            if record.status is Status.COMPLETED:
                return cast(R, self._runtime._result(record))
            if record.status is Status.FAILED:
                raise ProcessFailed(
                    f"durable process {self.id} failed: {record.error}",
                    process_id=self.id,
                    error=record.error,
                )
            if record.status is Status.CANCELLED:
                raise ProcessCancelled(
                    f"durable process {self.id} was cancelled", process_id=self.id
                )
            run = runtime._runs.get(self.id)
            if run is None or run.parked:
                await store.wait_for_change(seen)

    async def cancel(self) -> None:
        """Cancel the process at its current await: it becomes CANCELLED and never runs
        again. A finished process is left as it is."""
        await self._record()
        await self._runtime._cancel(self.id)
        self.status = (await self._record()).status


class StepFailed(DurableError):
    """Raised in a replay for a step whose attempts ran out, when its exception class cannot
    be rebuilt (it is not loaded, or does not take one message argument): ``error`` is the
    original's ``"Type: message"``."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error

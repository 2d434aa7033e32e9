"""``ctx``: what a process handler gets, its identity and its durable operations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from ._process import Delay, RaceResult, Retry, _time
from ._signals import SignalDef, SignalReceived

if TYPE_CHECKING:
    from ._run import ProcessRun

T = TypeVar("T")


class Context:
    """What a process handler gets as ``ctx``: its identity and its durable operations."""

    __slots__ = ("_run",)

    def __init__(self, run: ProcessRun) -> None:
        self._run = run

    @property
    def id(self) -> str:
        return self._run.id

    @property
    def params(self) -> dict[str, str]:
        return dict(self._run.params)

    @property
    def input(self) -> Any:
        return self._run.input

    @property
    def step_key(self) -> str:
        """``"process_id:seq"``: a stable idempotency key for the step being run (the same in
        every attempt and after a crash), for external APIs that take one."""
        return f"{self._run.id}:{self._run.cursor}"

    def now(self) -> datetime:
        """The durable time of the latest journal entry the handler has passed (or the
        process's creation time): the same in a replay."""
        return _time(self._run.last_at)

    def random(self) -> float:
        """A float in [0, 1) from a generator seeded by the process id: the same in a replay."""
        return self._run.rng().random()

    @overload
    async def step(
        self,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> T: ...

    @overload
    async def step(
        self,
        fn: Callable[..., T],
        *args: Any,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> T: ...

    async def step(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Run ``fn(*args)`` (sync or async) once for this process and record its result; a
        replay returns the recorded result without running it. On failure it is retried as
        ``retry`` says; when attempts run out the last exception is raised here. A
        ``RecoverableError`` is not retried: it suspends the process."""
        return await self._run.step(fn, args, name, retry, timeout)

    async def signal(self, signal: SignalDef[T]) -> SignalReceived[T]:
        """Wait for ``signal`` (the oldest one already in the inbox, or the next to come)."""
        return cast(SignalReceived[T], await self._run.signal(signal))

    async def race(self, *arms: SignalDef[Any] | Delay) -> RaceResult[Any]:
        """Wait for the first of several signals and delays (``dur.delay.days(3)``); a delay's
        deadline is fixed when the race is first reached. The earliest event wins."""
        return await self._run.race(arms)

    async def sleep(self, duration: Delay | float) -> None:
        """Sleep durably (a timer row: the process costs nothing while it sleeps)."""
        await self._run.sleep(duration)

    async def emit(
        self,
        signal: SignalDef[Any],
        *,
        data: object = None,
        idempotency_key: str | None = None,
        **params: str,
    ) -> None:
        """Emit a signal, recorded with the journal: a replay does not emit it again."""
        await self._run.emit(signal, data, idempotency_key, params)

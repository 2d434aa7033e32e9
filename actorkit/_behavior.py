"""What an actor does: ``Behavior``, its overflow policy, and the ``UNCHANGED`` marker."""

from __future__ import annotations

import enum
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, Generic, TypeAlias, TypeVar, Union

import attrs

if TYPE_CHECKING:
    from ._actor import Tools

S = TypeVar("S")
M = TypeVar("M")


class Overflow(enum.Enum):
    """What a full mailbox does with one more message."""

    REJECT = "reject"
    """``send`` returns False and a ``MailboxOverflow`` event is emitted."""
    DROP_OLDEST = "drop_oldest"
    """The oldest queued message becomes a ``DeadLetter``; the new one is accepted."""
    BLOCK = "block"
    """``await send`` waits for room (backpressure); ``send_nowait`` returns False."""


@enum.unique
class _UnchangedType(enum.Enum):
    UNCHANGED = "UNCHANGED"

    def __repr__(self) -> str:
        return "actorkit.UNCHANGED"


UNCHANGED: Final = _UnchangedType.UNCHANGED
"""Returned by a handler: keep the state as it is (needed when ``None`` is a valid state)."""

HandleResult: TypeAlias = Union[S, _UnchangedType, None]  # noqa: UP007
HandleFn: TypeAlias = Callable[[S, M, "Tools"], HandleResult[S] | Awaitable[HandleResult[S]]]
InitFn: TypeAlias = Callable[[Any], S | Awaitable[S]]
StopFn: TypeAlias = Callable[[S, object], object]


def _check_callable(argument: str, example: str, optional: bool = False) -> Any:
    def validate(instance: object, attribute: object, value: object) -> None:
        if value is None and optional:
            return
        if not callable(value):
            raise TypeError(
                f"Behavior({argument}=...) must be callable, got {value!r} of type "
                f"{type(value).__name__}; pass a function such as {example}"
            )

    return validate


def _check_max_inbox(instance: object, attribute: object, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"Behavior(max_inbox=...) must be a positive int, got {value!r}; "
            "pass the number of messages the mailbox may hold, e.g. max_inbox=1024"
        )
    if value < 1:
        raise ValueError(
            f"Behavior(max_inbox={value}) must be at least 1; pass the number of messages the "
            "mailbox may hold, e.g. max_inbox=1024 (use overflow=Overflow.BLOCK for backpressure)"
        )


def _to_overflow(value: Overflow | str) -> Overflow:
    if isinstance(value, Overflow):
        return value
    if isinstance(value, str):
        for member in Overflow:
            if value.lower() in (member.value, member.name.lower()):
                return member
    choices = ", ".join(f"Overflow.{m.name}" for m in Overflow)
    raise ValueError(
        f"Behavior(overflow={value!r}) is not an overflow policy; use one of {choices}"
    )


def _check_name(instance: object, attribute: object, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise TypeError(
            f"Behavior(name=...) must be a non-empty str, got {value!r}; "
            'name the actor for ids and logs, e.g. name="counter"'
        )


@attrs.frozen
class Behavior(Generic[S, M]):
    """How an actor starts, handles each message, and stops.

    ``handle(state, msg, tools)`` returns the new state, or ``None`` (or ``UNCHANGED``) to keep
    it; it may be sync or async. Messages are handled one at a time in arrival order: handler
    N finishes before handler N+1 starts, even when handlers await. ``init(ctx)`` returns the
    initial state (``None`` when no ``init`` is given); an exception in it propagates out of
    ``spawn``. ``on_stop(state, reason)`` runs exactly once when the actor stops, shielded
    from cancellation and bounded by the actor's shutdown grace.

    When ``None`` is a meaningful state, pass ``none_is_state=True``: a returned ``None`` then
    becomes the new state and only ``UNCHANGED`` keeps the old one.
    """

    name: str = attrs.field(validator=_check_name)  # type: ignore[assignment]
    handle: HandleFn[S, M] = attrs.field(
        validator=_check_callable("handle", "handle(state, msg, tools) -> new state")
    )
    init: InitFn[S] | None = attrs.field(
        default=None, validator=_check_callable("init", "init(ctx) -> state", optional=True)
    )
    on_stop: StopFn[S] | None = attrs.field(
        default=None,
        validator=_check_callable("on_stop", "on_stop(state, reason)", optional=True),
    )
    max_inbox: int = attrs.field(default=1024, validator=_check_max_inbox)
    overflow: Overflow = attrs.field(default=Overflow.REJECT, converter=_to_overflow)
    none_is_state: bool = False
    _async_handle: bool = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_async_handle", inspect.iscoroutinefunction(self.handle))

"""Events: every transition of an actor system, as frozen values.

Each event carries ``seq`` (1, 2, ... per system), ``at`` (trio time) and ``actor_id``. Fields
are plain values (an error is its type name and its message) so that two runs of the same
program under the same seed produce equal event sequences. Where the original object is useful
(the message of a dead letter) it is attached with ``eq=False`` and does not take part in
comparisons.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Event:
    """Base of all events."""

    seq: int
    at: float
    actor_id: str


@attrs.frozen
class Spawned(Event):
    """An actor was created; its ``init`` runs next."""

    behavior: str
    name: str | None


@attrs.frozen
class Started(Event):
    """``init`` succeeded; the actor accepts messages."""


@attrs.frozen
class Failed(Event):
    """``init`` or a handler raised. ``message_type`` is None for ``init`` failures."""

    error_type: str
    error: str
    message_type: str | None


@attrs.frozen
class Restarting(Event):
    """A supervisor will restart the actor after ``delay`` seconds (restart ``attempt``)."""

    delay: float
    attempt: int


@attrs.frozen
class Restarted(Event):
    """The actor was restarted in place: fresh state, same ref, same mailbox."""

    attempt: int


@attrs.frozen
class RestartDeclined(Event):
    """A supervisor decided not to restart the actor, and why."""

    reason: str


@attrs.frozen
class GaveUp(Event):
    """A supervisor exceeded its restart budget; ``actor_id`` is the supervisor's."""

    restarts: int
    within: float
    error_type: str
    error: str


@attrs.frozen
class Stopping(Event):
    """The actor is stopping: its mailbox is closed and ``on_stop`` runs next."""

    reason: str


@attrs.frozen
class Stopped(Event):
    """The actor stopped for good. ``failed`` tells a failure from a normal stop."""

    reason: str
    failed: bool


@attrs.frozen
class DeadLetter(Event):
    """A message that was not and will not be handled, and why."""

    reason: str
    message_type: str
    error: str | None = None
    message: object = attrs.field(default=None, eq=False)


@attrs.frozen
class MailboxOverflow(Event):
    """A REJECT mailbox was full; the message was not accepted (``send`` returned False)."""

    message_type: str
    max_inbox: int
    message: object = attrs.field(default=None, eq=False)


@attrs.frozen
class UserEvent(Event):
    """An event a handler emitted with ``tools.emit(payload)``."""

    payload: object


def describe_error(exc: BaseException) -> tuple[str, str]:
    """The plain-value form of an error: its type name and its message."""
    return type(exc).__name__, str(exc)

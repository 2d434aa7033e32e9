"""One-shot replies for ``ask``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import trio

from ._exceptions import ReplyAlreadySent

if TYPE_CHECKING:
    from ._actor import ActorRef

T = TypeVar("T")

_PENDING, _DONE, _CLOSED, _LATE = range(4)


class Reply(Generic[T]):
    """A one-shot reply callable handed to a message by ``ask``: call ``reply(value)`` once.

    The asker is resumed with ``value``. Calling it a second time raises ``ReplyAlreadySent``.
    If the asker has already given up (timeout, cancellation, or the actor stopped), the value
    goes to dead letters instead, never to a later caller.
    """

    __slots__ = ("_target", "_task", "_msg", "_state", "_value", "_error", "_started", "_timed")

    def __init__(self, target: ActorRef[Any], started: float) -> None:
        self._target = target
        self._task: trio.lowlevel.Task | None = None
        self._msg: object = None
        self._state = _PENDING
        self._value: Any = None
        self._error: BaseException | None = None
        self._started = started
        self._timed = False

    def __call__(self, value: T) -> None:
        if self._state == _PENDING:
            self._state = _DONE
            self._value = value
            held = self._target._held_replies
            if held is None:
                self._settle()
            else:
                held.append(self)  # sent once the actor's new state is durable
        elif self._state == _CLOSED:
            self._state = _LATE
            self._target._system._dead_letter(
                self._target.id, value, "late reply: the asker had already given up"
            )
        else:
            raise ReplyAlreadySent(
                f"this reply to an ask of {self._target.id} "
                f"({type(self._msg).__name__}) was already sent; call a Reply once"
            )

    def __repr__(self) -> str:
        return f"Reply(<ask to {self._target.id}>)"

    @property
    def done(self) -> bool:
        """True once the reply was sent or the asker gave up."""
        return self._state != _PENDING

    # -- internal ---------------------------------------------------------------------------

    def _settle(self) -> None:
        if self._timed:
            self._timed = False
            self._target._system._timers.discard()
        asks = self._target._asks
        if asks is not None:
            asks.discard(self)
        task = self._task
        if task is not None:
            self._task = None
            trio.lowlevel.reschedule(task)

    def _fail(self, error: BaseException) -> None:
        if self._state == _PENDING:
            self._state = _CLOSED
            self._error = error
            self._settle()

    def _pending(self) -> bool:
        return self._state == _PENDING

    def _retract(self, error: BaseException) -> None:
        """A held reply cannot be sent (its state was not saved): the asker gets ``error``."""
        if self._state == _DONE:
            self._state = _PENDING
            self._value = None
            self._fail(error)

    def _fire(self) -> None:  # the ask's deadline passed
        self._timed = False
        if self._state == _PENDING:
            from ._exceptions import AskTimeout

            elapsed = trio.current_time() - self._started
            self._fail(
                AskTimeout(
                    f"ask to {self._target.id} ({type(self._msg).__name__}) got no reply "
                    f"within {elapsed:.3g} s; raise timeout= or check that the handler "
                    "calls the message's reply"
                )
            )

    def _abort(self, raise_cancel: object) -> trio.lowlevel.Abort:
        self._task = None
        if self._state == _PENDING:
            self._state = _CLOSED
            if self._timed:
                self._timed = False
                self._target._system._timers.discard()
            asks = self._target._asks
            if asks is not None:
                asks.discard(self)
        return trio.lowlevel.Abort.SUCCEEDED

    def _result(self) -> T:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        value: T = self._value
        return value


def hold_replies(ref: ActorRef[Any]) -> None:
    """From now on, replies sent by ``ref``'s handler wait for ``release_replies``.

    Persistent actors use this so that no reply goes out before the state it reflects is
    committed.
    """
    if ref._held_replies is None:
        ref._held_replies = []


def release_replies(ref: ActorRef[Any], error: BaseException | None = None) -> None:
    """Send the held replies (or fail their asks with ``error``); replies flow again."""
    held, ref._held_replies = ref._held_replies, None
    for reply in held or ():
        if error is None:
            reply._settle()
        else:
            reply._retract(error)

"""Mailbox policies: what a full mailbox does, and senders blocked under ``Overflow.BLOCK``.

The fast path (room in the queue) lives inline in ``ActorRef.send_nowait``; this module holds
the slower paths so that the fast one stays a few attribute lookups and an append.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import trio

from ._behavior import Overflow

if TYPE_CHECKING:
    from ._actor import ActorRef


class BlockedSend:
    """A sender waiting for room under ``Overflow.BLOCK``; admitted in arrival order."""

    __slots__ = ("task", "msg", "admitted")

    def __init__(self, task: trio.lowlevel.Task, msg: object) -> None:
        self.task = task
        self.msg = msg
        self.admitted = False


def overflow_nowait(ref: ActorRef[Any], msg: object) -> bool:
    """Apply the overflow policy to ``msg`` arriving at a full mailbox; True if accepted."""
    policy = ref._behavior.overflow
    if policy is Overflow.DROP_OLDEST:
        queue = ref._queue
        assert queue is not None
        oldest = queue.popleft()
        ref._system._dead_letter(ref.id, oldest, "dropped: mailbox full (DROP_OLDEST)")
        ref._drop_ask_of(oldest)
        queue.append(msg)
        if ref._idle:
            ref._wake()
        return True
    if policy is Overflow.REJECT:
        ref._system._overflowed(ref, msg)
    return False


async def send_blocking(ref: ActorRef[Any], msg: object) -> bool:
    """Wait for room and enqueue ``msg`` (BLOCK policy); False if the actor stopped first.

    On cancellation the message is not enqueued and ``Cancelled`` propagates.
    """
    waiter = BlockedSend(trio.lowlevel.current_task(), msg)
    blocked = ref._blocked
    if blocked is None:
        blocked = ref._blocked = deque()
    blocked.append(waiter)

    def abort(raise_cancel: object) -> trio.lowlevel.Abort:
        blocked.remove(waiter)
        return trio.lowlevel.Abort.SUCCEEDED

    await trio.lowlevel.wait_task_rescheduled(abort)
    return waiter.admitted


def admit_blocked(ref: ActorRef[Any]) -> None:
    """Move blocked senders' messages into the queue while there is room, in arrival order."""
    blocked = ref._blocked
    queue = ref._queue
    assert blocked is not None
    assert queue is not None
    while blocked and len(queue) < ref._max_inbox:
        waiter = blocked.popleft()
        queue.append(waiter.msg)
        waiter.admitted = True
        trio.lowlevel.reschedule(waiter.task)


def release_blocked(ref: ActorRef[Any], reason: str) -> None:
    """The actor stopped: blocked senders return False, their messages become dead letters."""
    blocked = ref._blocked
    while blocked:
        waiter = blocked.popleft()
        ref._system._dead_letter(ref.id, waiter.msg, reason)
        trio.lowlevel.reschedule(waiter.task)

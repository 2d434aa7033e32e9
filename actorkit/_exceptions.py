"""The actorkit exception tree.

::

    ActorkitError
    ├── AskTimeout (also TimeoutError)        an ask got no reply in time
    ├── ActorStopped                          the target stopped before replying
    │   └── ActorFailed                       ... because the asker's own message crashed it
    ├── SelfAskError                          an actor asked itself from its handler
    ├── MailboxFull                           an ask hit a full REJECT mailbox
    ├── ReplyAlreadySent (also RuntimeError)  a Reply was called twice
    ├── NameTaken (also ValueError)           spawn(name=) with a name in use
    ├── SystemClosed (also RuntimeError)      spawn on a system that is shutting down or closed
    ├── LinkedFailure                         a linked actor failed, so this one fails too
    └── SupervisorGaveUp                      a supervisor exhausted its restart budget

Bad arguments raise the builtin ``TypeError`` / ``ValueError`` with a message that names the
argument and the fix.
"""

from __future__ import annotations


class ActorkitError(Exception):
    """Root of every error actorkit raises on its own behalf."""


class AskTimeout(ActorkitError, TimeoutError):
    """An ``ask`` received no reply within its timeout."""


class ActorStopped(ActorkitError):
    """The target actor stopped (or was already stopped) before it replied."""


class ActorFailed(ActorStopped):
    """The asker's own message made the target's handler raise; the error is ``__cause__``."""


class SelfAskError(ActorkitError):
    """An actor asked itself from its own handler, which could never be answered."""


class MailboxFull(ActorkitError):
    """An ``ask`` found the target's REJECT mailbox full."""


class ReplyAlreadySent(ActorkitError, RuntimeError):
    """A one-shot ``Reply`` was called a second time."""


class NameTaken(ActorkitError, ValueError):
    """``spawn(name=...)`` used a name that a live actor already holds."""


class SystemClosed(ActorkitError, RuntimeError):
    """The actor system is shutting down or closed; nothing new can be spawned on it."""


class LinkedFailure(ActorkitError):
    """The error an actor fails with when an actor linked to it failed (``__cause__``).

    ``chain`` holds the ids of the actors this failure already went through, so a failure
    travels once around a group of linked actors instead of bouncing between them.
    """

    def __init__(self, message: str, chain: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.chain = chain


class SupervisorGaveUp(ActorkitError):
    """A supervisor exceeded its restart budget; the last child error is ``__cause__``."""

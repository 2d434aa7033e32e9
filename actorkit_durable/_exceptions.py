"""The actorkit_durable exception tree.

::

    actorkit.ActorkitError
    └── DurableError                               root of every durable error
        ├── SnapshotDecodeError (also ValueError)  stored data is corrupt, truncated or unknown
        ├── ProcessFailed                          h.wait(): the process failed (its error)
        ├── StepFailed                             a replayed step failure whose class is unknown
        ├── ProcessCancelled                       h.wait(): the process was cancelled
        └── ProcessNotFound (also LookupError)     no process has that id

    Exception
    └── RecoverableError                           raise it to suspend a process until retried
        └── NondeterminismError (also DurableError)  the handler disagrees with its journal

Values the codec cannot encode raise the builtin ``TypeError`` (an unsupported type) or
``ValueError`` (a supported type with an unsupported value, such as a naive datetime), with a
message that names the value's path and the fix.
"""

from __future__ import annotations

from actorkit import ActorkitError


class DurableError(ActorkitError):
    """Root of every error actorkit_durable raises on its own behalf."""


class SnapshotDecodeError(DurableError, ValueError):
    """Stored data could not be decoded: corrupt, truncated, over a size limit, or naming a
    type this program does not know. The message names what was being decoded."""


class ProcessFailed(DurableError):
    """The process failed; the message names it and its error as ``"Type: message"``."""

    def __init__(self, message: str, *, process_id: str, error: str | None) -> None:
        super().__init__(message)
        self.process_id = process_id
        self.error = error


class ProcessCancelled(DurableError):
    """The process was cancelled (``h.cancel()``, the command line)."""

    def __init__(self, message: str, *, process_id: str) -> None:
        super().__init__(message)
        self.process_id = process_id


class ProcessNotFound(DurableError, LookupError):
    """No process with that id exists in the store."""


class RecoverableError(Exception):
    """Raised by a process handler or step: the process is SUSPENDED at its last recorded
    point with ``last_error`` set, and runs again when a signal reaches it, when a runtime next
    opens the store, or on ``rt.retry(id)``. Steps do not retry it. Subclass it freely."""


class NondeterminismError(RecoverableError, DurableError):
    """The handler asked for a different durable operation than its journal recorded at that
    point (code changed under a running process). Recoverable: fix the code, then retry."""

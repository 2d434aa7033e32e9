"""The actorkit_durable exception tree.

::

    actorkit.ActorkitError
    └── DurableError                               root of every durable error
        └── SnapshotDecodeError (also ValueError)  stored data is corrupt, truncated or unknown

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

"""Errors a store raises on its own behalf.

::

    DurableError
    └── StoreError                    a store call failed; a driver error is its ``__cause__``
        ├── LeaseLost                 a fenced write found that someone else took the process over
        ├── SchemaVersionError        the store's schema is newer than this actorkit knows
        └── StoreClosed (RuntimeError)  the store was used while not open

Stores translate their driver's errors (``sqlite3.Error``, later psycopg's) into ``StoreError``
at their boundary, so callers never catch a driver error.
"""

from __future__ import annotations

from .._exceptions import DurableError


class StoreError(DurableError):
    """A store call failed: I/O, a locked or corrupt database, or a call the store refuses."""


class LeaseLost(StoreError):
    """A fenced write carried a lease epoch that is no longer the process's current one.

    Another owner claimed the process since (or the process is gone), so nothing was written;
    the caller must stop running that process.
    """


class SchemaVersionError(StoreError):
    """The store was written by a newer actorkit: its schema version is above the known one."""


class StoreClosed(StoreError, RuntimeError):
    """A store call was made while the store was not open (``async with store:``)."""

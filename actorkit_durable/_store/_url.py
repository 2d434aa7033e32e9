"""Store URLs: ``open_store("memory://" | "sqlite:///app.db" | store object)``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, unquote, urlsplit

from ._memory import MemoryStore
from ._protocol import Store
from ._sqlite import SQLiteStore

ENV_VAR = "ACTORKIT_STORE"

FORMS = (
    '"memory://", "sqlite:///relative/path.db" (three slashes: relative to the working '
    'directory), "sqlite:////absolute/path.db" (four slashes), optionally with '
    '"?synchronous=NORMAL", or "postgresql://user@host/db"'
)

_SQLITE_OPTIONS = {"synchronous", "busy_timeout"}


def store_from_url(url: str) -> Store:
    """A store object (not opened yet) for ``url``; ValueError naming the accepted forms."""
    if not isinstance(url, str):
        raise TypeError(f"a store URL must be a str, not {type(url).__name__}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        if parts.netloc or parts.path or parts.query:
            raise ValueError(f"bad store URL {url!r}: the memory store takes no path; use {FORMS}")
        return MemoryStore()
    if scheme == "sqlite":
        return _sqlite(url, parts.netloc, parts.path, parts.query)
    if scheme in ("postgresql", "postgres"):
        raise NotImplementedError(
            f"PostgreSQL store is not available yet (store URL {url!r}); use a SQLite store "
            f'such as "sqlite:///app.db" for now'
        )
    raise ValueError(f"bad store URL {url!r}: accepted forms are {FORMS}")


def _sqlite(url: str, netloc: str, path: str, query: str) -> SQLiteStore:
    if netloc or not path.startswith("/") or path in ("/", "//"):
        raise ValueError(f"bad store URL {url!r}: a SQLite URL needs a file path; use {FORMS}")
    file = unquote(path[1:])  # "sqlite:///rel.db" -> "rel.db"; "sqlite:////abs.db" -> "/abs.db"
    if file.endswith("/") or file == ":memory:":
        raise ValueError(f"bad store URL {url!r}: a SQLite URL needs a file path; use {FORMS}")
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=False))
    unknown = sorted(options.keys() - _SQLITE_OPTIONS)
    if unknown:
        raise ValueError(
            f"bad store URL {url!r}: unknown option(s) {', '.join(unknown)}; "
            f"SQLite URLs accept {', '.join(sorted(_SQLITE_OPTIONS))}"
        )
    synchronous = options.get("synchronous", "FULL").upper()
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"bad store URL {url!r}: synchronous must be FULL or NORMAL")
    try:
        busy_timeout = float(options.get("busy_timeout", "10"))
    except ValueError:
        raise ValueError(
            f"bad store URL {url!r}: busy_timeout must be a number of seconds"
        ) from None
    return SQLiteStore(
        file,
        synchronous="NORMAL" if synchronous == "NORMAL" else "FULL",
        busy_timeout=busy_timeout,
    )


@asynccontextmanager
async def open_store(url_or_store: str | Store | None = None) -> AsyncIterator[Store]:
    """Open a store for the duration of the block.

    ``url_or_store``: a URL (see ``FORMS``), a store object (opened with ``async with`` too,
    which is re-entrant, so its owner may keep it open longer), or None for the URL in the
    ``ACTORKIT_STORE`` environment variable. Bad URLs raise ValueError naming the accepted
    forms; a PostgreSQL URL raises NotImplementedError until that store lands.
    """
    if url_or_store is None:
        url_or_store = os.environ.get(ENV_VAR) or None
        if url_or_store is None:
            raise ValueError(f"no store given: pass a store URL or set {ENV_VAR}; use {FORMS}")
    store = store_from_url(url_or_store) if isinstance(url_or_store, str) else url_or_store
    async with store:
        yield store

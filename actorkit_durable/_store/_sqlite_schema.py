"""The SQLite schema and its versioned migrations, applied at open under the write lock."""

from __future__ import annotations

import sqlite3

from ._errors import SchemaVersionError

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1
    (
        """CREATE TABLE process (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            path TEXT NOT NULL,
            params TEXT NOT NULL,
            status TEXT NOT NULL,
            input BLOB,
            snapshot BLOB,
            journal_length INTEGER NOT NULL DEFAULT 0,
            waiting_on TEXT,
            due_at REAL,
            lease_owner TEXT,
            lease_until REAL,
            lease_epoch INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            result BLOB,
            error TEXT,
            last_error TEXT,
            last_error_at REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        "CREATE INDEX process_due ON process (due_at) WHERE due_at IS NOT NULL",
        "CREATE INDEX process_lease_owner ON process (lease_owner) WHERE lease_owner IS NOT NULL",
        "CREATE INDEX process_status ON process (status, id)",
        # Routing: a signal reaches the processes having all of its (key, value) pairs.
        """CREATE TABLE process_param (
            process_id TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (process_id, key)
        ) WITHOUT ROWID""",
        "CREATE INDEX process_param_value ON process_param (key, value)",
        """CREATE TABLE journal (
            process_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            payload BLOB NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (process_id, seq)
        ) WITHOUT ROWID""",
        """CREATE TABLE signal (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            params TEXT NOT NULL,
            payload BLOB,
            idempotency_key TEXT UNIQUE,
            reached INTEGER NOT NULL,
            created_at REAL NOT NULL
        )""",
        # A row per (process, signal) delivered and not consumed yet; the architecture's
        # "consumption" is the deletion of the row, in the consumer's commit.
        """CREATE TABLE inbox (
            process_id TEXT NOT NULL,
            signal_seq INTEGER NOT NULL,
            name TEXT NOT NULL,
            PRIMARY KEY (process_id, signal_seq)
        ) WITHOUT ROWID""",
        "CREATE INDEX inbox_signal ON inbox (signal_seq)",
        # Routing is on the process's identity, so a wait needs only the signal's name.
        """CREATE TABLE wait (
            process_id TEXT NOT NULL,
            name TEXT NOT NULL,
            PRIMARY KEY (process_id, name)
        ) WITHOUT ROWID""",
        """CREATE TABLE timer (
            process_id TEXT NOT NULL,
            timer_id TEXT NOT NULL,
            fire_at REAL NOT NULL,
            PRIMARY KEY (process_id, timer_id)
        ) WITHOUT ROWID""",
    ),
    # 1 -> 2: cancellation asked of a process that another runner holds
    ("ALTER TABLE process ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",),
)

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this code writes and the newest it can open."""


def read_version(connection: sqlite3.Connection) -> int:
    """The file's schema version (0 for a new file)."""
    exists = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = connection.execute("SELECT version FROM schema_version").fetchone()
    return 0 if row is None else int(row[0])


def migrate(connection: sqlite3.Connection, describe: str) -> None:
    """Bring the file to SCHEMA_VERSION in one transaction (BEGIN IMMEDIATE is the lock)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        current = read_version(connection)
        if current > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"the SQLite store {describe} has schema version {current}, but this actorkit "
                f"knows versions up to {SCHEMA_VERSION}: it was written by a newer actorkit. "
                f"Upgrade actorkit to open it (or open a different file)."
            )
        if current == SCHEMA_VERSION:
            connection.execute("COMMIT")
            return
        if current == 0:
            connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            connection.execute("INSERT INTO schema_version (version) VALUES (0)")
        for version in range(current, SCHEMA_VERSION):
            for statement in MIGRATIONS[version]:
                connection.execute(statement)
        connection.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise

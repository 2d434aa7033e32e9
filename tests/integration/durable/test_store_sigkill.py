"""Each store call is atomic when the process making it is SIGKILLed (SQLite, real processes).

A worker (``_store_worker.py``) runs multi-row calls in a loop on one file (emit; commit =
two journal rows + snapshot + consuming the signal) from several trio tasks, so kills land
inside group commits too. It is killed at a random moment, several rounds, each round
resuming where the store says the last one stopped (its dead predecessor's leases are void at
once). After every kill the file must hold, for each process, exactly the calls that were
done: all of a commit or none of it, and at least every call the worker acknowledged.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import trio

from actorkit_durable._store import SQLiteStore

WORKER = Path(__file__).resolve().parent / "_store_worker.py"
ROUNDS = 6
PROCESSES = 6


class Acked:
    """What the workers acknowledged so far, across rounds."""

    def __init__(self) -> None:
        self.emits: dict[str, set[int]] = {}
        self.commits: dict[str, int] = {}
        self.lines = 0

    def read(self, line: str) -> None:
        words = line.split()
        if words[0] == "E":
            self.emits.setdefault(words[1], set()).add(int(words[2]))
        elif words[0] == "C":
            self.commits[words[1]] = max(self.commits.get(words[1], -1), int(words[2]))
        self.lines += 1


async def run_round(db: Path, acked: Acked, rng: random.Random) -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, str(WORKER), str(db)], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    working = trio.Event()
    try:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:

                async def read() -> None:
                    assert process.stdout is not None
                    pending = b""
                    async for chunk in process.stdout:
                        pending += chunk
                        *complete, pending = pending.split(b"\n")
                        for line in complete:
                            acked.read(line.decode())
                            if line.startswith(b"C"):
                                working.set()

                nursery.start_soon(read)
                await working.wait()
                await trio.sleep(rng.uniform(0.0, 0.2))
                process.kill()
                await process.wait()
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.stdout.aclose()
    assert process.returncode == -signal.SIGKILL, "the worker ended before it was killed"


async def check(db: Path, acked: Acked) -> None:
    connection = sqlite3.connect(db)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        keys = {row[0] for row in connection.execute("SELECT idempotency_key FROM signal")}
    finally:
        connection.close()
    async with SQLiteStore(db) as store:
        for index in range(PROCESSES):
            pid = f"w{index}"
            loaded = await store.load(pid)
            assert loaded is not None
            record = loaded.process
            done = -1 if record.snapshot is None else int(record.snapshot)
            # All-or-nothing: the snapshot, the journal and the inbox agree.
            assert record.journal_length == 2 * (done + 1)
            assert [int(e.payload) for e in loaded.journal] == [
                seq // 2 for seq in range(record.journal_length)
            ]
            assert [e.seq for e in loaded.journal] == list(range(record.journal_length))
            assert record.waiting_on == (None if done < 0 else f"after {done}")
            pending = [int(s.payload or b"") for s in loaded.inbox]
            assert pending in ([], [done + 1]), f"{pid}: inbox {pending} after commit {done}"
            # Every acknowledged call is there.
            assert acked.commits.get(pid, -1) <= done
            for emitted in acked.emits.get(pid, set()):
                assert f"{pid}:{emitted}" in keys
                assert emitted <= done + 1


async def test_store_calls_are_atomic_under_sigkill(tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    db = tmp_path / "kill.db"
    acked = Acked()
    for _ in range(ROUNDS):
        await run_round(db, acked, rng)
        await check(db, acked)
    assert sum(acked.commits.values()) > ROUNDS, f"too little work done (seed {seed})"

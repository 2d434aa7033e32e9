"""Subprocess for test_store_sigkill.py: multi-row store calls in a loop until SIGKILLed.

Usage: ``python _store_worker.py DB_PATH``. For each of a few processes ``w0..wN`` (created if
missing, then claimed: the previous worker's lease is void since that worker is dead), one
trio task loops from where the store says it stopped, i = 0, 1, 2, ...:

- emit signal ``tick`` to it with payload ``i`` and idempotency key ``{pid}:{i}`` (a repeat
  after a crash returns the first emit's seq), then print ``E pid i seq``;
- commit: journal rows ``2i`` and ``2i + 1`` (payload ``i``), snapshot ``i``, consume the
  signal, then print ``C pid i``.

A line is printed (and flushed) only after its call returned, so every line the parent reads
is an acknowledged call.
"""

from __future__ import annotations

import sys
import time

import trio

from actorkit_durable._store import (
    Commit,
    JournalEntry,
    NewProcess,
    NewSignal,
    SQLiteStore,
    make_owner,
)

PROCESSES = 6


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def drive(store: SQLiteStore, pid: str, epoch: int, start: int) -> None:
    index = start
    while True:
        emitted = await store.emit(
            NewSignal("tick", {"p": pid}, str(index).encode(), idempotency_key=f"{pid}:{index}"),
            now=time.time(),
        )
        say(f"E {pid} {index} {emitted.seq}")
        payload = str(index).encode()
        await store.commit(
            Commit(
                pid,
                epoch,
                snapshot=payload,
                waiting_on=f"after {index}",
                journal=[
                    JournalEntry(2 * index, "step", "a", payload, time.time()),
                    JournalEntry(2 * index + 1, "step", "b", payload, time.time()),
                ],
                consume=[emitted.seq],
            ),
            now=time.time(),
        )
        say(f"C {pid} {index}")
        index += 1


async def main(path: str) -> None:
    owner = make_owner()
    async with SQLiteStore(path) as store:
        pids = [f"w{i}" for i in range(PROCESSES)]
        for pid in pids:
            await store.create(
                NewProcess(pid, "process", "/w/:p", {"p": pid}, due_at=None), now=time.time()
            )
        batch = await store.claim(owner, now=time.time(), lease_for=3600.0, ids=pids)
        if len(batch.claimed) != len(pids):
            raise SystemExit(f"claimed only {[c.process.id for c in batch.claimed]}")
        say("READY")
        async with trio.open_nursery() as nursery:
            for loaded in batch.claimed:
                record = loaded.process
                start = 0 if record.snapshot is None else int(record.snapshot) + 1
                if record.journal_length != 2 * start:
                    raise SystemExit(f"{record.id}: journal {record.journal_length}, start {start}")
                nursery.start_soon(drive, store, record.id, record.lease_epoch, start)


if __name__ == "__main__":
    trio.run(main, sys.argv[1])

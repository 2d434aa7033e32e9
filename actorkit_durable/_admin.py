"""Operations on a store's processes that need no definitions: for runtimes and the CLI.

Retrying and cancelling are store writes made under a claim, like a runner's, so they are
fenced against any runtime that holds the process: a runtime finds out at its next write.
Purging counts what it deletes before it deletes it (the store reports processes only).
"""

from __future__ import annotations

import math

import attrs
import trio

from ._codec import Codec
from ._process import KIND, RETRY_MARK
from ._store import FINISHED, Commit, JournalEntry, ProcessRecord, Status, Store

_CODEC = Codec()


async def request_retry(
    store: Store, record: ProcessRecord, *, owner: str, now: float, lease_for: float
) -> bool:
    """Have a FAILED or SUSPENDED process run again by the runtimes that can run it.

    A SUSPENDED one is made due. A FAILED one gets a retry mark in its journal (a step whose
    failure ended it runs again instead of replaying the failure) and becomes SUSPENDED and
    due. False if it is in neither status, or another runtime holds it now."""
    if record.kind != KIND:
        return False
    if record.status is Status.SUSPENDED:
        return bool(await store.wake([record.id], now=now))
    if record.status is not Status.FAILED:
        return False
    batch = await store.claim(owner, now=now, lease_for=lease_for, ids=[record.id])
    if not batch.claimed:
        return False
    loaded = batch.claimed[0]
    process = loaded.process
    if process.status is not Status.FAILED:  # changed meanwhile
        await store.release(owner, [record.id])
        return False
    # the mark names the error that ended the process: a step failure with that error (and
    # not one the handler caught before failing otherwise) runs again
    payload = _CODEC.encode({"error": process.error}, what="retry mark")
    mark = JournalEntry(process.journal_length, RETRY_MARK, RETRY_MARK, payload, now)
    await store.commit(
        Commit(
            record.id, process.lease_epoch, status=Status.SUSPENDED, error=None,
            last_error=process.error, last_error_at=now, waiting_on="a runtime (retried)",
            waits=[], timers=[], due_at=now, journal=[mark], release=True,
        ),
        now=now,
    )  # fmt: skip
    return True


async def request_cancel(
    store: Store, process_id: str, *, owner: str, now: float, lease_for: float
) -> ProcessRecord | None:
    """Cancel the process unless it is finished. While another runtime runs it, the process is
    marked (``Store.request_cancel``): that runtime cancels its run and records CANCELLED.
    Returns the process as it ends up, or None if there is no such process."""
    asked = False
    while True:
        seen = store.version
        record = await store.get(process_id)
        if record is None or record.status.finished:
            return record
        batch = await store.claim(owner, now=now, lease_for=lease_for, ids=[process_id])
        if batch.claimed:
            loaded = batch.claimed[0]
            if loaded.process.status.finished:
                await store.release(owner, [process_id])
                return loaded.process
            result = await store.commit(
                Commit(process_id, loaded.process.lease_epoch, status=Status.CANCELLED,
                       waiting_on=None, due_at=None),
                now=now,
            )  # fmt: skip
            return result.process
        # held by a runtime running it: mark it, so that runtime cancels its run (at once,
        # or when it next writes or claims it), then wait for it to let go
        if not asked:
            asked = True
            marked = await store.request_cancel(process_id, now=now)
            if marked is None or marked.status.finished:
                return marked
            continue
        with trio.move_on_after(0.5 if math.isfinite(lease_for) else math.inf):
            await store.wait_for_change(seen)


@attrs.frozen
class PurgeCounts:
    """What ``purge_finished`` deleted (or, in a dry run, would delete)."""

    processes: int
    journal_entries: int | None
    """Journal rows of those processes; None if the processes purged were not the ones
    counted first (another client finished or purged some meanwhile)."""


async def purge_finished(store: Store, *, before: float, dry_run: bool = False) -> PurgeCounts:
    """Delete the processes finished before ``before`` with their journals, and the signals
    created before it that no inbox holds (``Store.purge``), counting what goes first."""
    counted: list[ProcessRecord] = []
    after: str | None = None
    while True:
        page = await store.query(status=FINISHED, after=after, limit=500)
        counted += [record for record in page if record.updated_at < before]
        if len(page) < 500:
            break
        after = page[-1].id
    entries = sum(record.journal_length for record in counted)
    if dry_run:
        return PurgeCounts(len(counted), entries)
    purged = await store.purge(finished_before=before)
    return PurgeCounts(purged, entries if purged == len(counted) else None)

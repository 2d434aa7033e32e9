"""The store conformance suite: every store passes it (memory, SQLite; PostgreSQL later).

Each test takes the ``store`` fixture (an open store) and, where it needs a second client of the
same storage (another runtime, another process, the CLI), ``backend.make()``. To add a store,
add a ``Backend`` to ``BACKENDS``: ``threads=True`` if separate store objects may run in other
threads (each with its own trio run), which turns on the multi-threaded races.

Time is always passed in (``now``): the stores never read a clock for process data.
"""

from __future__ import annotations

import functools
import sqlite3
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import attrs
import pytest
import trio
from hypothesis import event, given, settings
from hypothesis import strategies as st

from actorkit_durable._store import (
    ANY_SIGNAL,
    NEW_SIGNAL,
    Commit,
    JournalEntry,
    LeaseLost,
    MemoryStore,
    NewProcess,
    NewSignal,
    ProcessRecord,
    SchemaVersionError,
    SQLiteStore,
    Status,
    Store,
    StoreClosed,
    StoreError,
    Timer,
    make_owner,
)
from actorkit_durable._store._lease import HOSTNAME
from actorkit_durable._store._sqlite_schema import MIGRATIONS, SCHEMA_VERSION

TIMEOUT = 10.0
"""Wall-clock seconds any one test may take before it is called hung."""


@attrs.frozen
class Backend:
    name: str
    make: Callable[[], Store]
    """A new client of the same storage (for the memory store: the same object)."""
    threads: bool
    """Separate clients may run in other threads, each in its own trio run."""
    set_schema_version: Callable[[int], None] | None = None
    """Overwrite the stored schema version (for stores that have one)."""


def memory_backend(tmp_path: Path) -> Backend:
    store = MemoryStore()
    return Backend("memory", lambda: store, threads=False)


def sqlite_backend(tmp_path: Path) -> Backend:
    path = tmp_path / "store.db"

    def set_schema_version(version: int) -> None:
        connection = sqlite3.connect(path)
        try:
            with connection:
                connection.execute("UPDATE schema_version SET version = ?", (version,))
        finally:
            connection.close()

    return Backend(
        "sqlite", lambda: SQLiteStore(path), threads=True, set_schema_version=set_schema_version
    )


BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "memory": memory_backend,
    "sqlite": sqlite_backend,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](tmp_path)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    with trio.fail_after(TIMEOUT):
        async with backend.make() as opened:
            yield opened


# -- helpers ------------------------------------------------------------------------------------

OWNER = make_owner()
OTHER = make_owner()  # another live owner (this process, another runtime)


def new(pid: str, *, due_at: float | None = 0.0, **params: str) -> NewProcess:
    return NewProcess(
        id=pid, kind="process", path="/test", params=params or {"id": pid}, due_at=due_at
    )


def entry(seq: int, name: str = "step", at: float = 0.0) -> JournalEntry:
    return JournalEntry(seq=seq, kind="step", name=name, payload=f"{name}:{seq}".encode(), at=at)


async def leased(store: Store, pid: str, *, now: float = 0.0, **params: str) -> int:
    """Create ``pid`` leased to OWNER; return its epoch."""
    process = NewProcess(pid, "process", "/test", params or {"id": pid}, due_at=0.0)
    record, created = await store.create(process, now=now, owner=OWNER, lease_for=1000.0)
    assert created
    return record.lease_epoch


def park(pid: str, epoch: int, *names: str) -> Commit:
    """A runner suspending ``pid`` to wait for signals ``names``."""
    return Commit(
        pid,
        epoch,
        status=Status.SUSPENDED,
        waits=names,
        waiting_on=",".join(names),
        due_at=None,
        release=True,
    )


def run_in_threads(count: int, body: Callable[[int], Awaitable[None]]) -> Callable[[], None]:
    """A sync function running ``body(i)`` in ``count`` threads, each in its own trio run."""

    def run() -> None:
        errors: list[BaseException] = []

        def target(index: int) -> None:
            try:
                trio.run(body, index)
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    return run


# -- processes ------------------------------------------------------------------------------------


async def test_create_get_load(store: Store) -> None:
    record, created = await store.create(
        NewProcess("a/1", "process", "/a/:x", {"x": "1"}, input=b"in", due_at=5.0), now=3.0
    )
    assert created
    assert (record.id, record.kind, record.path, record.params) == (
        "a/1",
        "process",
        "/a/:x",
        {"x": "1"},
    )
    assert (record.status, record.input, record.due_at, record.lease_owner) == (
        Status.PENDING,
        b"in",
        5.0,
        None,
    )
    assert (record.lease_epoch, record.journal_length, record.created_at) == (0, 0, 3.0)
    again, created = await store.create(
        NewProcess("a/1", "other", "/other", {"x": "2"}, due_at=None), now=9.0
    )
    assert not created
    assert again == record
    assert await store.get("a/1") == record
    assert await store.get("nope") is None
    assert await store.load("nope") is None
    loaded = await store.load("a/1")
    assert loaded is not None
    assert loaded.process == record
    assert (loaded.journal, loaded.inbox, loaded.waits, loaded.timers) == ((), (), (), ())


async def test_create_committed_creates_and_commits_in_one_operation(store: Store) -> None:
    first = Commit(
        "p", 1, status=Status.COMPLETED, result=b"r", journal=[entry(0), entry(1)],
        emit=[NewSignal("s", {"id": "q"})],
    )  # fmt: skip
    await store.create(new("q"), now=0.0)
    result = await store.create_committed(new("p"), first, now=1.0, owner=OWNER, lease_for=10.0)
    assert result is not None
    assert (result.process.status, result.process.result) == (Status.COMPLETED, b"r")
    assert (result.process.journal_length, result.process.lease_owner) == (2, None)
    assert [e.reached for e in result.emitted] == [1]
    loaded = await store.load("p")
    assert loaded is not None
    assert [e.seq for e in loaded.journal] == [0, 1]
    # the id exists: nothing happens
    again = Commit("p", 1, status=Status.FAILED, journal=[entry(2)])
    assert (
        await store.create_committed(new("p"), again, now=2.0, owner=OTHER, lease_for=1.0) is None
    )
    record = await store.get("p")
    assert record is not None
    assert (record.status, record.journal_length) == (Status.COMPLETED, 2)
    # a commit the store refuses creates nothing either
    with pytest.raises(StoreError):
        await store.create_committed(
            new("x"), Commit("x", 1, journal=[entry(5)]), now=3.0, owner=OWNER, lease_for=1.0
        )
    assert await store.get("x") is None


async def test_create_with_owner_leases_it(store: Store) -> None:
    record, _ = await store.create(new("p"), now=1.0, owner=OWNER, lease_for=30.0)
    assert (record.lease_owner, record.lease_until, record.lease_epoch) == (OWNER, 31.0, 1)
    batch = await store.claim(OTHER, now=2.0, lease_for=30.0)
    assert batch.claimed == ()


async def test_concurrent_creates_make_one_row(backend: Backend, store: Store) -> None:
    created: list[bool] = []

    async def create(client: Store) -> None:
        record, was_created = await client.create(new("one"), now=1.0)
        assert record.id == "one"
        created.append(was_created)

    async def many(client: Store) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(create, client)

    async def in_thread(index: int) -> None:
        async with backend.make() as client:
            await many(client)

    with trio.fail_after(TIMEOUT):
        await many(store)
        if backend.threads:
            await trio.to_thread.run_sync(run_in_threads(3, in_thread))
    assert created.count(True) == 1
    assert len(created) == (80 if backend.threads else 20)
    assert [r.id for r in await store.query()] == ["one"]


# -- commit ---------------------------------------------------------------------------------------


async def test_commit_applies_fields_and_appends_journal(store: Store) -> None:
    epoch = await leased(store, "p")
    result = await store.commit(
        Commit(
            "p",
            epoch,
            status=Status.RUNNING,
            snapshot=b"snap",
            waiting_on="nothing",
            attempts=2,
            last_error="ValueError: x",
            last_error_at=4.0,
            journal=[entry(0), entry(1)],
        ),
        now=5.0,
    )
    record = result.process
    assert (record.status, record.snapshot, record.waiting_on, record.attempts) == (
        Status.RUNNING,
        b"snap",
        "nothing",
        2,
    )
    assert (record.last_error, record.last_error_at, record.journal_length) == (
        "ValueError: x",
        4.0,
        2,
    )
    assert (record.due_at, record.lease_owner, record.updated_at) == (0.0, OWNER, 5.0)
    # KEEP leaves everything; None clears.
    result = await store.commit(
        Commit("p", epoch, journal=[entry(2)], last_error=None, last_error_at=None), now=6.0
    )
    record = result.process
    assert (record.snapshot, record.attempts, record.journal_length) == (b"snap", 2, 3)
    assert (record.last_error, record.last_error_at) == (None, None)
    loaded = await store.load("p")
    assert loaded is not None
    assert loaded.journal == (entry(0), entry(1), entry(2))
    assert loaded.process == record


async def test_bad_commit_changes_nothing(store: Store) -> None:
    epoch = await leased(store, "p")
    await store.commit(Commit("p", epoch, journal=[entry(0)]), now=1.0)
    before = await store.load("p")
    bad_commits = [
        Commit("p", epoch, snapshot=b"x", journal=[entry(2)]),  # a gap
        Commit("p", epoch, snapshot=b"x", journal=[entry(0)]),  # a rewrite
        Commit("p", epoch, snapshot=b"x", journal=[entry(1)], consume=[12345]),  # not in inbox
        Commit("p", epoch, snapshot=b"x", timers=[Timer("t", 1.0), Timer("t", 2.0)]),
    ]
    for commit in bad_commits:
        with pytest.raises(StoreError):
            await store.commit(commit, now=2.0)
        assert await store.load("p") == before


async def test_fenced_commit_after_takeover_raises_lease_lost(store: Store) -> None:
    epoch = await leased(store, "p")
    signal = await store.emit(NewSignal("s", {"id": "p"}), now=0.5)
    # The lease expires and another owner claims the process.
    batch = await store.claim(OTHER, now=2000.0, lease_for=10.0, ids=["p"])
    assert [c.process.lease_epoch for c in batch.claimed] == [epoch + 1]
    before = await store.load("p")
    stale = Commit(
        "p",
        epoch,
        status=Status.COMPLETED,
        result=b"r",
        journal=[entry(0)],
        consume=[signal.seq],
        emit=[NewSignal("x", {})],
    )
    with pytest.raises(LeaseLost, match="epoch"):
        await store.commit(stale, now=2001.0)
    assert await store.load("p") == before
    with pytest.raises(LeaseLost):
        await store.commit(Commit("missing", 1), now=2001.0)
    # The new owner's epoch works.
    await store.commit(attrs.evolve(stale, epoch=epoch + 1, emit=()), now=2002.0)


async def test_commit_emits_in_its_transaction(store: Store) -> None:
    epoch = await leased(store, "a", order="1")
    await leased(store, "b", order="1")
    result = await store.commit(
        Commit("a", epoch, journal=[entry(0)], emit=[NewSignal("s", {"order": "1"}, b"d", "k")]),
        now=1.0,
    )
    assert [(e.reached, e.delivered_to) for e in result.emitted] == [(2, ("a", "b"))]
    # A replayed emit with the same idempotency key delivers nothing new.
    again = await store.commit(
        Commit("a", epoch, journal=[entry(1)], emit=[NewSignal("s", {"order": "1"}, b"d", "k")]),
        now=2.0,
    )
    assert [(e.duplicate, e.reached, e.seq) for e in again.emitted] == [
        (True, 2, result.emitted[0].seq)
    ]
    loaded = await store.load("b")
    assert loaded is not None
    assert [s.payload for s in loaded.inbox] == [b"d"]


async def test_finishing_clears_waits_timers_inbox_and_lease(store: Store) -> None:
    epoch = await leased(store, "p")
    await store.emit(NewSignal("other", {"id": "p"}), now=1.0)
    await store.commit(
        Commit("p", epoch, waits=["s"], timers=[Timer("t", 50.0)], due_at=None), now=1.0
    )
    result = await store.commit(
        Commit("p", epoch, status=Status.COMPLETED, result=b"done"), now=2.0
    )
    assert result.ready == ()
    record = result.process
    assert (record.status, record.result, record.due_at, record.lease_owner) == (
        Status.COMPLETED,
        b"done",
        None,
        None,
    )
    loaded = await store.load("p")
    assert loaded is not None
    assert (loaded.inbox, loaded.waits, loaded.timers) == ((), (), ())
    # A finished process is reached by no signal.
    emitted = await store.emit(NewSignal("s", {"id": "p"}), now=3.0)
    assert emitted.reached == 0


async def test_timers_set_due_at(store: Store) -> None:
    epoch = await leased(store, "p")
    result = await store.commit(
        Commit(
            "p",
            epoch,
            status=Status.SUSPENDED,
            timers=[Timer("late", 90.0), Timer("early", 40.0)],
            due_at=None,
            release=True,
        ),
        now=1.0,
    )
    assert (result.process.due_at, result.process.lease_owner) == (40.0, None)
    loaded = await store.load("p")
    assert loaded is not None
    assert loaded.timers == (Timer("early", 40.0), Timer("late", 90.0))
    assert (await store.claim(OWNER, now=39.0, lease_for=5.0)).claimed == ()
    batch = await store.claim(OWNER, now=40.0, lease_for=5.0)
    assert [c.timers for c in batch.claimed] == [loaded.timers]
    epoch = batch.claimed[0].process.lease_epoch
    # Replacing the timers moves due_at; an explicit due_at earlier than them wins.
    result = await store.commit(Commit("p", epoch, timers=[], due_at=60.0), now=41.0)
    assert result.process.due_at == 60.0
    result = await store.commit(Commit("p", epoch, timers=[Timer("x", 55.0)]), now=42.0)
    assert result.process.due_at == 55.0


# -- signals --------------------------------------------------------------------------------------


async def test_routing_on_two_params(store: Store) -> None:
    await store.create(new("o1c1", order="1", customer="c1"), now=0.0)
    await store.create(new("o1c2", order="1", customer="c2"), now=0.0)
    await store.create(new("o2c1", order="2", customer="c1"), now=0.0)
    await store.create(new("other", shop="s"), now=0.0)

    async def reached(**params: str) -> tuple[str, ...]:
        result = await store.emit(NewSignal("sig", params), now=1.0)
        assert result.reached == len(result.delivered_to)
        return result.delivered_to

    assert await reached(order="1", customer="c1") == ("o1c1",)
    assert await reached(order="1") == ("o1c1", "o1c2")
    assert await reached(customer="c1") == ("o1c1", "o2c1")
    assert await reached(order="1", customer="c3") == ()
    assert await reached(order="1", nope="x") == ()
    assert await reached() == ("o1c1", "o1c2", "o2c1", "other")


async def test_signal_reaching_nothing_is_not_kept(store: Store) -> None:
    result = await store.emit(NewSignal("s", {"id": "later"}, b"early"), now=1.0)
    assert (result.reached, result.delivered_to, result.woken) == (0, (), ())
    epoch = await leased(store, "later", now=2.0)
    parked = await store.commit(park("later", epoch, "s"), now=3.0)
    assert parked.ready == ()
    loaded = await store.load("later")
    assert loaded is not None
    assert loaded.inbox == ()


async def test_inbox_is_consumed_in_emit_order(store: Store) -> None:
    epoch = await leased(store, "p")
    seqs = []
    for index, name in enumerate(["s", "t", "s", "s"]):
        result = await store.emit(NewSignal(name, {"id": "p"}, str(index).encode()), now=1.0)
        seqs.append(result.seq)
    assert seqs == sorted(seqs)
    received = []
    for seq in range(3):
        parked = await store.commit(
            attrs.evolve(park("p", epoch, "s"), journal=[entry(seq)]), now=2.0
        )
        assert parked.ready, "a signal in the inbox was not returned by park"
        first = parked.ready[0]
        received.append(first.payload)
        # Park kept the lease because a signal was ready; consume it.
        assert parked.process.lease_owner == OWNER
        await store.commit(Commit("p", epoch, consume=[first.seq]), now=3.0)
    assert received == [b"0", b"2", b"3"]
    parked = await store.commit(park("p", epoch, "s"), now=4.0)
    assert parked.ready == ()
    parked = await store.commit(park("p", epoch, "t", "s"), now=4.0)
    assert [s.payload for s in parked.ready] == [b"1"]
    parked = await store.commit(park("p", epoch, ANY_SIGNAL), now=4.0)
    assert [s.payload for s in parked.ready] == [b"1"]


async def test_idempotency_keys(store: Store) -> None:
    await store.create(new("a", order="1"), now=0.0)
    first = await store.emit(NewSignal("s", {"order": "1"}, b"1", idempotency_key="k"), now=1.0)
    assert (first.reached, first.duplicate) == (1, False)
    await store.create(new("b", order="1"), now=2.0)
    again = await store.emit(NewSignal("s", {"order": "1"}, b"2", idempotency_key="k"), now=3.0)
    assert (again.seq, again.reached, again.duplicate) == (first.seq, 1, True)
    assert (again.delivered_to, again.woken) == ((), ())
    for pid, expected in (("a", [b"1"]), ("b", [])):
        loaded = await store.load(pid)
        assert loaded is not None
        assert [s.payload for s in loaded.inbox] == expected
    other = await store.emit(NewSignal("s", {"order": "1"}, b"3", idempotency_key="k2"), now=4.0)
    assert (other.reached, other.duplicate) == (2, False)


async def test_park_after_emit_returns_the_signal(store: Store) -> None:
    epoch = await leased(store, "p")
    emitted = await store.emit(NewSignal("s", {"id": "p"}, b"d"), now=1.0)
    assert (emitted.delivered_to, emitted.woken) == (("p",), ())
    parked = await store.commit(park("p", epoch, "s"), now=2.0)
    assert [s.seq for s in parked.ready] == [emitted.seq]
    # Due now and still leased: the runner goes on instead of waiting.
    assert (parked.process.due_at, parked.process.lease_owner) == (2.0, OWNER)


async def test_emit_after_park_wakes_the_process(store: Store) -> None:
    epoch = await leased(store, "p")
    parked = await store.commit(park("p", epoch, "s"), now=1.0)
    assert (parked.ready, parked.process.due_at, parked.process.lease_owner) == ((), None, None)
    assert (await store.claim(OTHER, now=2.0, lease_for=5.0)).claimed == ()
    other = await store.emit(NewSignal("t", {"id": "p"}), now=2.0)
    assert (other.delivered_to, other.woken) == (("p",), ())
    emitted = await store.emit(NewSignal("s", {"id": "p"}, b"d"), now=3.0)
    assert emitted.woken == ("p",)
    record = await store.get("p")
    assert record is not None
    assert record.due_at == 3.0
    batch = await store.claim(OTHER, now=3.0, lease_for=5.0)
    assert [c.process.id for c in batch.claimed] == ["p"]
    assert [s.name for s in batch.claimed[0].inbox] == ["t", "s"]


async def test_new_signal_wait_ignores_the_inbox_and_wakes_on_the_next(store: Store) -> None:
    epoch = await leased(store, "p")
    old = await store.emit(NewSignal("s", {"id": "p"}, b"old"), now=1.0)
    parked = await store.commit(park("p", epoch, NEW_SIGNAL), now=2.0)
    # the signal already in the inbox does not count: the lease goes, nothing is due
    assert (parked.ready, parked.process.due_at, parked.process.lease_owner) == ((), None, None)
    emitted = await store.emit(NewSignal("t", {"id": "p"}, b"new"), now=3.0)
    assert emitted.woken == ("p",)
    batch = await store.claim(OTHER, now=3.0, lease_for=5.0)
    assert [c.process.id for c in batch.claimed] == ["p"]
    assert [s.seq for s in batch.claimed[0].inbox] == [old.seq, emitted.seq]


async def test_emit_takes_the_woken_processes_it_is_asked_to(store: Store) -> None:
    epochs = {pid: await leased(store, pid, order="1") for pid in ("p", "q", "r")}
    for pid, name in (("p", "s"), ("q", "s"), ("r", "t")):
        await store.commit(park(pid, epochs[pid], name), now=1.0)
    emitted = await store.emit(
        NewSignal("s", {"order": "1"}, b"d"), now=2.0, take=["p", "r"], owner=OTHER,
        lease_for=5.0,
    )  # fmt: skip
    assert (emitted.delivered_to, emitted.woken) == (("p", "q", "r"), ("p", "q"))
    # p: woken and asked for, so claimed for OTHER with its inbox; r was not woken
    assert [t.process.id for t in emitted.taken] == ["p"]
    (taken,) = emitted.taken
    assert (taken.process.lease_owner, taken.process.lease_epoch) == (OTHER, epochs["p"] + 1)
    assert [s.seq for s in taken.inbox] == [emitted.seq]
    # q is due and free for any runner; p is not claimable while OTHER holds it
    batch = await store.claim(OWNER, now=2.0, lease_for=5.0)
    assert [c.process.id for c in batch.claimed] == ["q"]


async def test_request_cancel_marks_an_unfinished_process(store: Store) -> None:
    epoch = await leased(store, "p")
    await leased(store, "q")
    seen = store.work_version
    record = await store.request_cancel("p", now=1.0)
    assert record is not None
    assert record.cancel_requested
    assert store.work_version > seen  # the runner holding it must look
    found = await store.query(cancel_requested=True)
    assert [r.id for r in found] == ["p"]
    assert [r.id for r in await store.query(cancel_requested=False)] == ["q"]
    # the mark survives the holder's commits; a finished process is not marked
    result = await store.commit(Commit("p", epoch, journal=[entry(0)]), now=2.0)
    assert result.process.cancel_requested
    await store.commit(Commit("p", epoch, status=Status.CANCELLED), now=3.0)
    await store.create(new("done", due_at=None), now=0.0)
    claimed = (await store.claim(OWNER, now=0.0, lease_for=5.0, ids=["done"])).claimed[0]
    done = Commit("done", claimed.process.lease_epoch, status=Status.COMPLETED)
    await store.commit(done, now=1.0)
    finished = await store.request_cancel("done", now=4.0)
    assert finished is not None
    assert not finished.cancel_requested
    assert await store.request_cancel("nope", now=4.0) is None


async def test_work_version_grows_only_for_claimable_work(store: Store) -> None:
    def versions() -> tuple[int, int]:
        return store.version, store.work_version

    def grew(before: tuple[int, int]) -> tuple[bool, bool]:
        return store.version > before[0], store.work_version > before[1]

    seen = versions()
    epoch = await leased(store, "p", order="1")  # leased to its runner: nothing to claim
    assert grew(seen) == (True, False)
    seen = versions()
    await store.create(new("q", due_at=1.0, order="1"), now=1.0)  # due and free
    assert grew(seen) == (True, True)
    await store.claim(OWNER, now=1.0, lease_for=5.0, ids=["q"])
    seen = versions()
    parked = await store.commit(park("p", epoch, "s"), now=2.0)  # waits: not due
    assert grew(seen) == (True, False)
    seen = versions()
    emitted = await store.emit(
        NewSignal("s", {"order": "1"}), now=3.0, take=["p"], owner=OWNER, lease_for=5.0
    )
    assert [t.process.id for t in emitted.taken] == ["p"]  # taken at once: no work
    assert grew(seen) == (True, False)
    seen = versions()
    epoch = emitted.taken[0].process.lease_epoch
    await store.commit(Commit("p", epoch, status=Status.COMPLETED), now=4.0)  # finished
    assert grew(seen) == (True, False)
    seen = versions()
    await store.release(OWNER, ["q"])  # q is due and now free
    assert grew(seen) == (True, True)
    assert parked.process.due_at is None


async def test_emit_racing_park_never_loses_a_wakeup(backend: Backend, store: Store) -> None:
    rounds = 30
    epochs = {}
    for index in range(rounds):
        epochs[index] = await leased(store, f"w{index}", k=str(index))
    ready: dict[int, bool] = {}
    woken: dict[int, bool] = {}

    async def do_park(client: Store, index: int) -> None:
        parked = await client.commit(park(f"w{index}", epochs[index], "s"), now=5.0)
        ready[index] = bool(parked.ready)

    async def do_emit(client: Store, index: int) -> None:
        emitted = await client.emit(NewSignal("s", {"k": str(index)}), now=5.0)
        assert emitted.delivered_to == (f"w{index}",)
        woken[index] = emitted.woken == (f"w{index}",)

    with trio.fail_after(TIMEOUT):
        if backend.threads:
            barrier = threading.Barrier(2)

            async def side(which: int) -> None:
                async with backend.make() as client:
                    for index in range(rounds):
                        await trio.to_thread.run_sync(barrier.wait)
                        await (do_park if which == 0 else do_emit)(client, index)

            await trio.to_thread.run_sync(run_in_threads(2, side))
        else:
            for index in range(rounds):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(do_park, store, index)
                    nursery.start_soon(do_emit, store, index)
    for index in range(rounds):
        assert ready[index] != woken[index], f"round {index}: ready={ready[index]}"
        record = await store.get(f"w{index}")
        assert record is not None
        assert record.due_at == 5.0
        # Either the parker kept its lease to go on, or the process is free to be claimed.
        assert record.lease_owner == (OWNER if ready[index] else None)


# -- claims and leases ----------------------------------------------------------------------------


async def test_claim_takes_due_work_in_order(store: Store) -> None:
    for pid, due in (("c", 3.0), ("a", 1.0), ("b", 2.0), ("later", 50.0), ("never", None)):
        await store.create(new(pid, due_at=due), now=0.0)
    batch = await store.claim(OWNER, now=10.0, lease_for=5.0, limit=2)
    assert [c.process.id for c in batch.claimed] == ["a", "b"]
    assert [(c.process.lease_owner, c.process.lease_until) for c in batch.claimed] == [
        (OWNER, 15.0)
    ] * 2
    assert [c.process.lease_epoch for c in batch.claimed] == [1, 1]
    assert batch.next_due_at == 3.0  # "c" is due and unclaimed
    batch = await store.claim(OWNER, now=10.0, lease_for=5.0)
    assert [c.process.id for c in batch.claimed] == ["c"]
    assert batch.next_due_at == 50.0  # own leases do not count
    other = await store.claim(OTHER, now=10.0, lease_for=5.0)
    assert other.claimed == ()
    assert other.next_due_at == 15.0  # when OWNER's leases end


async def test_claim_takes_only_the_paths_it_is_given(store: Store) -> None:
    await store.create(NewProcess("a", "process", "/a", {"id": "a"}, due_at=1.0), now=0.0)
    await store.create(NewProcess("b", "process", "/b", {"id": "b"}, due_at=2.0), now=0.0)
    await store.create(NewProcess("c", "process", "/b", {"id": "c"}, due_at=9.0), now=0.0)
    assert (await store.claim(OWNER, now=5.0, lease_for=10.0, paths=[])).claimed == ()
    batch = await store.claim(OWNER, now=5.0, lease_for=10.0, paths=["/b"])
    assert [c.process.id for c in batch.claimed] == ["b"]
    assert batch.next_due_at == 9.0  # "a" (due at 1.0) is not one of the runner's paths
    batch = await store.claim(OTHER, now=5.0, lease_for=10.0)
    assert [c.process.id for c in batch.claimed] == ["a"]


async def test_live_lease_is_not_claimed_expired_is(store: Store) -> None:
    await store.create(new("p"), now=0.0)
    batch = await store.claim(OWNER, now=10.0, lease_for=5.0)
    assert len(batch.claimed) == 1
    assert (await store.claim(OTHER, now=14.0, lease_for=5.0)).claimed == ()
    assert (await store.claim(OTHER, now=15.0, lease_for=5.0, ids=["p"])).claimed == ()
    batch = await store.claim(OTHER, now=15.5, lease_for=5.0)
    assert [(c.process.lease_owner, c.process.lease_epoch) for c in batch.claimed] == [(OTHER, 2)]


async def test_dead_owners_lease_is_void_at_once(store: Store) -> None:
    result = await trio.run_process(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_stdout=True
    )
    dead_pid = int(result.stdout)
    dead = f"{HOSTNAME}:{dead_pid}:deadbeef"
    remote = f"elsewhere.example:{dead_pid}:cafe"
    await store.create(new("p"), now=0.0, owner=dead, lease_for=1000.0)
    await store.create(new("q"), now=0.0, owner=remote, lease_for=1000.0)
    batch = await store.claim(OWNER, now=1.0, lease_for=5.0)
    assert [c.process.id for c in batch.claimed] == ["p"]
    assert batch.next_due_at == 1000.0  # q's owner is on another host: trusted until expiry
    assert (await store.claim(OTHER, now=2.0, lease_for=5.0, ids=["q"])).claimed == ()


async def test_claim_by_ids(store: Store) -> None:
    await store.create(new("idle", due_at=None), now=0.0)
    await store.create(new("held"), now=0.0, owner=OTHER, lease_for=100.0)
    epoch = await leased(store, "done")
    await store.commit(Commit("done", epoch, status=Status.FAILED, error="E: x"), now=1.0)
    batch = await store.claim(OWNER, now=2.0, lease_for=5.0, ids=["idle", "held", "done", "nope"])
    assert [c.process.id for c in batch.claimed] == ["done", "idle"]


async def test_renew_and_release(store: Store) -> None:
    for pid in ("a", "b"):
        await store.create(new(pid), now=0.0)
    await store.create(new("c"), now=0.0, owner=OTHER, lease_for=100.0)
    await store.claim(OWNER, now=1.0, lease_for=5.0)
    assert await store.renew(OWNER, now=4.0, lease_for=5.0) == {"a", "b"}
    assert (await store.claim(OTHER, now=7.0, lease_for=5.0)).claimed == ()
    assert await store.release(OWNER, ["a", "c"]) == 1
    batch = await store.claim(OTHER, now=7.0, lease_for=5.0)
    assert [c.process.id for c in batch.claimed] == ["a"]
    assert await store.release(OWNER) == 1
    assert await store.renew(OWNER, now=8.0, lease_for=5.0) == frozenset()
    record = await store.get("b")
    assert record is not None
    assert (record.lease_owner, record.lease_until, record.lease_epoch) == (None, None, 1)


async def test_wake(store: Store) -> None:
    await store.create(new("idle", due_at=None), now=0.0)
    await store.create(new("soon", due_at=1.0), now=0.0)
    epoch = await leased(store, "done")
    await store.commit(Commit("done", epoch, status=Status.COMPLETED), now=0.0)
    assert await store.wake(["idle", "soon", "done", "nope"], now=5.0) == ("idle", "soon")
    records = {r.id: r.due_at for r in await store.query()}
    assert records == {"idle": 5.0, "soon": 1.0, "done": None}


# -- queries and housekeeping ---------------------------------------------------------------------


async def test_query_filters_and_pages(store: Store) -> None:
    for index in range(5):
        await store.create(
            NewProcess(f"p{index}", "process", f"/path{index % 2}", {"i": str(index)}), now=0.0
        )
    await store.create(NewProcess("actor", "actor", "/path0", {}), now=0.0)
    epoch = await leased(store, "z")
    await store.commit(Commit("z", epoch, status=Status.SUSPENDED), now=1.0)
    assert [r.id for r in await store.query(kind="process", path="/path0")] == ["p0", "p2", "p4"]
    assert [r.id for r in await store.query(status=Status.SUSPENDED)] == ["z"]
    assert [r.id for r in await store.query(status={Status.SUSPENDED, Status.PENDING})] == [
        "actor",
        "p0",
        "p1",
        "p2",
        "p3",
        "p4",
        "z",
    ]
    page = await store.query(limit=3)
    assert [r.id for r in page] == ["actor", "p0", "p1"]
    page = await store.query(limit=3, after=page[-1].id)
    assert [r.id for r in page] == ["p2", "p3", "p4"]


async def test_query_finds_an_owners_processes_made_due(store: Store) -> None:
    for pid in ("a", "b"):
        epoch = await leased(store, pid, key=pid)
        # resident and waiting: leased, not due
        await store.commit(Commit(pid, epoch, waits=["s"], due_at=None), now=1.0)
    await store.create(new("c", key="a"), now=1.0)  # due, but not leased to OWNER
    assert await store.query(owner=OWNER, due_by=5.0) == ()
    await store.emit(NewSignal("s", {"key": "b"}), now=2.0)  # another client's signal
    assert [r.id for r in await store.query(owner=OWNER, due_by=5.0)] == ["b"]
    assert await store.query(owner=OWNER, due_by=1.5) == ()
    assert [r.id for r in await store.query(owner=OWNER)] == ["a", "b"]


async def test_purge_drops_old_finished_processes(store: Store) -> None:
    for pid, finished_at in (("old", 10.0), ("new", 30.0)):
        epoch = await leased(store, pid, topic="t")
        await store.commit(
            Commit(pid, epoch, status=Status.COMPLETED, journal=[entry(0)]), now=finished_at
        )
    await leased(store, "running", topic="t")
    await store.emit(NewSignal("s", {"topic": "x"}, idempotency_key="early"), now=5.0)
    kept = await store.emit(NewSignal("s", {"topic": "t"}, idempotency_key="inbox"), now=5.0)
    assert await store.purge(finished_before=20.0) == 1
    assert {r.id for r in await store.query()} == {"new", "running"}
    assert await store.load("old") is None
    # The key of a signal still in an inbox is kept; an old delivered one is forgotten.
    repeat = await store.emit(NewSignal("s", {"topic": "t"}, idempotency_key="inbox"), now=40.0)
    assert (repeat.duplicate, repeat.seq) == (True, kept.seq)
    fresh = await store.emit(NewSignal("s", {"topic": "t"}, idempotency_key="early"), now=40.0)
    assert (fresh.duplicate, fresh.delivered_to) == (False, ("running",))
    # The purged id is free again.
    _, created = await store.create(new("old"), now=41.0)
    assert created


# -- atomicity, batching, lifecycle ---------------------------------------------------------------


async def test_a_failing_call_among_concurrent_ones_fails_alone(store: Store) -> None:
    epochs = {pid: await leased(store, pid) for pid in [f"p{i}" for i in range(10)]}
    outcomes: dict[str, str] = {}

    async def commit(pid: str) -> None:
        epoch = epochs[pid] + (1 if pid == "p4" else 0)
        try:
            await store.commit(Commit(pid, epoch, snapshot=b"new", journal=[entry(0)]), now=1.0)
        except LeaseLost:
            outcomes[pid] = "lost"
        else:
            outcomes[pid] = "ok"

    async with trio.open_nursery() as nursery:
        for pid in epochs:
            nursery.start_soon(commit, pid)
    assert outcomes == {pid: "lost" if pid == "p4" else "ok" for pid in epochs}
    for pid in epochs:
        record = await store.get(pid)
        assert record is not None
        assert (record.snapshot, record.journal_length) == (
            (None, 0) if pid == "p4" else (b"new", 1)
        )


async def test_data_survives_reopening(backend: Backend, store: Store) -> None:
    epoch = await leased(store, "p")
    await store.commit(Commit("p", epoch, snapshot=b"s", journal=[entry(0)]), now=1.0)
    await store.emit(NewSignal("s", {"id": "p"}, b"d", "key"), now=2.0)
    before = await store.load("p")
    async with backend.make() as other:
        assert await other.load("p") == before
        repeat = await other.emit(NewSignal("s", {"id": "p"}, b"d", "key"), now=3.0)
        assert repeat.duplicate


async def test_wait_for_change_sees_other_clients(backend: Backend, store: Store) -> None:
    seen = store.version
    async with backend.make() as other:
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(functools.partial(other.create, new("p"), now=0.0))
                assert await store.wait_for_change(seen) > seen
    seen = store.version
    # A claim changes nothing another claimer waits for.
    await store.claim(OWNER, now=1.0, lease_for=5.0)
    with trio.move_on_after(0.1):
        await store.wait_for_change(seen)
        pytest.fail("a claim woke wait_for_change")
    assert store.statistics().version == store.version


async def test_wait_for_change_wakes_on_a_delivered_signal(store: Store) -> None:
    epoch = await leased(store, "p")
    await store.commit(park("p", epoch, "s"), now=1.0)
    seen = store.version
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:

            async def waiter() -> None:
                assert await store.wait_for_change(seen) > seen

            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            await store.emit(NewSignal("s", {"id": "p"}), now=2.0)


async def test_closed_store_refuses_calls(backend: Backend) -> None:
    store = backend.make()
    with pytest.raises(StoreClosed):
        await store.get("p")
    async with store:
        async with store:  # re-entrant
            await store.get("p")
        await store.get("p")
    with pytest.raises(StoreClosed):
        await store.create(new("p"), now=0.0)


async def test_a_call_cancelled_before_it_starts_does_nothing(store: Store) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.create(new("p"), now=0.0)
    assert scope.cancelled_caught
    assert await store.get("p") is None


SCHEMA_BACKENDS = ["sqlite"]
"""Stores that keep a schema version (the memory store has none)."""


@pytest.mark.parametrize("name", SCHEMA_BACKENDS)
async def test_newer_schema_is_rejected(name: str, tmp_path: Path) -> None:
    backend = BACKENDS[name](tmp_path)
    async with backend.make():
        pass
    assert backend.set_schema_version is not None
    backend.set_schema_version(999)
    with pytest.raises(SchemaVersionError) as caught:
        async with backend.make():
            pass
    message = str(caught.value)
    assert "999" in message
    assert "upgrade actorkit" in message.lower()


async def test_statistics_count_operations(store: Store) -> None:
    before = store.statistics()
    await store.create(new("p"), now=0.0)
    await store.get("p")
    after = store.statistics()
    assert after.operations == before.operations + 1
    assert after.transactions >= before.transactions + 1
    assert after.largest_batch >= 1
    assert after.mean_batch >= 1.0


# -- store-specific -------------------------------------------------------------------------------


async def test_memory_store_waits_without_polling_under_autojump(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with MemoryStore() as store:
        seen = store.version
        start = trio.current_time()
        with trio.move_on_after(3 * 86400.0):
            await store.wait_for_change(seen)
        assert trio.current_time() - start == 3 * 86400.0
        async with trio.open_nursery() as nursery:

            async def later() -> None:
                await trio.sleep(86400.0)
                await store.create(new("p"), now=trio.current_time())

            nursery.start_soon(later)
            assert await store.wait_for_change(seen) == seen + 1
        assert trio.current_time() - start == 4 * 86400.0


async def until(predicate: Callable[[], bool]) -> None:
    """Wait for a condition that another thread makes true (nothing to wait on in trio)."""
    while not predicate():  # noqa: ASYNC110
        await trio.sleep(0.001)


async def test_sqlite_group_commit_batches_queued_calls(tmp_path: Path) -> None:
    """Calls queued while the writer waits commit in one transaction, each in a savepoint: the
    one that fails rolls back alone."""
    path = tmp_path / "store.db"
    async with SQLiteStore(path) as store:
        epochs = {pid: await leased(store, pid) for pid in [f"p{i}" for i in range(10)]}
        writer = store._writer  # white-box: to see what is queued
        assert writer is not None
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")  # hold the write lock: the writer must wait
            outcomes: dict[str, str] = {}

            async def commit(pid: str) -> None:
                epoch = epochs[pid] + (1 if pid == "p4" else 0)
                try:
                    await store.commit(Commit(pid, epoch, journal=[entry(0)]), now=1.0)
                except LeaseLost:
                    outcomes[pid] = "lost"
                else:
                    outcomes[pid] = "ok"

            with trio.fail_after(TIMEOUT):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(functools.partial(store.renew, OWNER, now=1.0, lease_for=5))
                    await trio.testing.wait_all_tasks_blocked()  # the renew is queued
                    await until(writer._queue.empty)  # the writer took it, and waits for the lock
                    for pid in epochs:
                        nursery.start_soon(commit, pid)
                    await trio.testing.wait_all_tasks_blocked()
                    assert writer._queue.qsize() == len(epochs)
                    before = store.statistics()
                    blocker.execute("ROLLBACK")
        finally:
            blocker.close()
        after = store.statistics()
    assert outcomes == {pid: "lost" if pid == "p4" else "ok" for pid in epochs}
    assert after.transactions == before.transactions + 2  # the renew, then the ten commits
    assert after.largest_batch == len(epochs)
    async with SQLiteStore(path) as store:
        lengths = {pid: (await store.get(pid)).journal_length for pid in epochs}  # type: ignore[union-attr]
    assert lengths == {pid: 0 if pid == "p4" else 1 for pid in epochs}


async def test_sqlite_concurrent_opens_of_a_new_file_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"

    async def open_and_create(index: int) -> None:
        async with SQLiteStore(path) as store:
            await store.create(new(f"p{index}"), now=0.0)

    with trio.fail_after(TIMEOUT):
        await trio.to_thread.run_sync(run_in_threads(4, open_and_create))
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("SELECT version FROM schema_version").fetchall() == [
            (SCHEMA_VERSION,)
        ]
        assert connection.execute("SELECT count(*) FROM process").fetchone() == (4,)
    finally:
        connection.close()


async def test_sqlite_file_of_schema_1_is_migrated_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    connection = sqlite3.connect(path)
    try:
        connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        connection.execute("INSERT INTO schema_version (version) VALUES (1)")
        for statement in MIGRATIONS[0]:
            connection.execute(statement)
        connection.execute(
            "INSERT INTO process (id, kind, path, params, status, created_at, updated_at) "
            "VALUES ('p', 'process', '/test', '{\"id\":\"p\"}', 'suspended', 1.0, 1.0)"
        )
        connection.commit()
    finally:
        connection.close()
    async with SQLiteStore(path) as store:
        record = await store.get("p")
        assert record is not None
        assert (record.status, record.cancel_requested) == (Status.SUSPENDED, False)
        marked = await store.request_cancel("p", now=2.0)
        assert marked is not None
        assert marked.cancel_requested


async def test_sqlite_settings(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "a.db") as store:
        assert store.synchronous == "FULL"
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteStore(tmp_path / "b.db", synchronous="OFF")  # type: ignore[arg-type]
    async with SQLiteStore(tmp_path / "b.db", synchronous="NORMAL") as store:
        await store.create(new("p"), now=0.0)
    connection = sqlite3.connect(tmp_path / "b.db")
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        connection.close()


async def test_sqlite_errors_are_store_errors(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match=r"dir\.db") as caught:
        async with SQLiteStore(tmp_path / "dir.db"):
            pass
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"junk\.db"):
        async with SQLiteStore(tmp_path / "junk.db"):
            pass


async def test_a_signal_a_commit_emits_may_reach_its_own_process(store: Store) -> None:
    epoch = await leased(store, "p", order="1")
    result = await store.commit(
        attrs.evolve(park("p", epoch, "s"), emit=[NewSignal("s", {"order": "1"}, b"me")]),
        now=1.0,
    )
    assert [s.payload for s in result.ready] == [b"me"]
    assert (result.process.due_at, result.process.lease_owner) == (1.0, OWNER)
    assert result.emitted[0].woken == ("p",)
    assert await store.get("p") == result.process
    # A process finishing in the commit is no longer reached by what it emits.
    done = await store.commit(
        Commit("p", epoch, status=Status.COMPLETED, emit=[NewSignal("s", {"order": "1"})]),
        now=2.0,
    )
    assert (done.ready, done.emitted[0].reached) == ((), 0)


# -- differential: random programs give the same results on every store ----------------------------

PIDS = ["a", "b", "c"]
PARAMS = [{"x": "1"}, {"x": "1", "y": "2"}, {"x": "2"}, {}]
OWNERS = [OWNER, OTHER]

operations = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(PIDS), st.integers(0, 2), st.booleans()),
    st.tuples(
        st.just("emit"),
        st.sampled_from(["s", "t"]),
        st.integers(0, 3),
        st.sampled_from(
            [
                None,
                "k1",
                "k2",
            ]
        ),
    ),
    st.tuples(st.just("claim"), st.integers(0, 1), st.integers(0, 3), st.booleans()),
    st.tuples(
        st.just("commit"),
        st.sampled_from(PIDS),
        st.sampled_from([0, 0, 0, -1]),
        st.sampled_from(["step", "park", "consume", "finish", "bad", "emit", "timer"]),
    ),
    st.tuples(st.just("renew"), st.integers(0, 1)),
    st.tuples(st.just("release"), st.integers(0, 1), st.booleans()),
    st.tuples(st.just("wake"), st.sampled_from(PIDS)),
    st.tuples(st.just("purge"), st.floats(0.0, 30.0)),
    st.tuples(st.just("tick"), st.sampled_from([0.0, 0.5, 3.0, 20.0])),
)


def commit_for(
    kind: str, record: ProcessRecord | None, inbox: tuple[int, ...], now: float
) -> Commit:
    pid = "missing" if record is None else record.id
    epoch = 0 if record is None else record.lease_epoch
    length = 0 if record is None else record.journal_length
    step = [entry(length, at=now)]
    match kind:
        case "step":
            return Commit(pid, epoch, snapshot=str(length).encode(), journal=step)
        case "park":
            return attrs.evolve(park(pid, epoch, "s"), journal=step)
        case "consume":
            return Commit(pid, epoch, journal=step, consume=inbox[:1] or (999,))
        case "finish":
            return Commit(pid, epoch, status=Status.COMPLETED, result=b"r", journal=step)
        case "bad":
            return Commit(pid, epoch, snapshot=b"bad", journal=[entry(length + 1)])
        case "emit":
            return Commit(pid, epoch, journal=step, emit=[NewSignal("t", {"x": "1"}, b"e")])
        case _:
            return Commit(pid, epoch, status=Status.SUSPENDED, timers=[Timer("t", now + 5.0)])


async def run_program(stores: list[Store], program: list[tuple[object, ...]]) -> int:
    """Run ``program`` on every store, checking they agree; return how many calls succeeded."""
    now = 1.0
    model = stores[0]
    succeeded = 0

    async def on_all(method: str, *args: object, **kwargs: object) -> None:
        nonlocal succeeded
        results: list[object] = []
        for store in stores:
            try:
                results.append(await getattr(store, method)(*args, **kwargs))
            except StoreError as error:
                results.append(type(error))
        assert results[1:] == results[:1] * (len(stores) - 1), (method, args, kwargs)
        succeeded += not isinstance(results[0], type)

    for operation in program:
        match operation:
            case ("create", str(pid), int(params), bool(due)):
                due_at = now if due else None
                process = NewProcess(pid, "process", "/t", PARAMS[params], b"in", due_at=due_at)
                await on_all("create", process, now=now)
            case ("emit", str(name), int(params), key):
                assert key is None or isinstance(key, str)
                await on_all("emit", NewSignal(name, PARAMS[params], b"p", key), now=now)
            case ("claim", int(owner), int(limit), bool(by_id)):
                ids = PIDS[:limit] if by_id else None
                await on_all("claim", OWNERS[owner], now=now, lease_for=10.0, limit=limit, ids=ids)
            case ("commit", str(pid), int(offset), str(kind)):
                loaded = await model.load(pid)
                record = None if loaded is None else loaded.process
                if record is not None:
                    record = attrs.evolve(record, lease_epoch=record.lease_epoch + offset)
                inbox = () if loaded is None else tuple(s.seq for s in loaded.inbox)
                await on_all("commit", commit_for(kind, record, inbox, now), now=now)
            case ("renew", int(owner)):
                await on_all("renew", OWNERS[owner], now=now, lease_for=10.0)
            case ("release", int(owner), bool(some)):
                await on_all("release", OWNERS[owner], PIDS[:2] if some else None)
            case ("wake", str(pid)):
                await on_all("wake", [pid], now=now)
            case ("purge", float(before)):
                await on_all("purge", finished_before=before)
            case ("tick", float(delta)):
                now += delta
            case _:
                raise AssertionError(f"unmatched operation {operation}")
    for pid in PIDS:
        await on_all("load", pid)
    await on_all("query")
    return succeeded


@settings(max_examples=60, deadline=None)
@given(program=st.lists(operations, max_size=30))
def test_stores_agree_on_random_programs(program: list[tuple[object, ...]]) -> None:
    async def main() -> int:
        with tempfile.TemporaryDirectory() as directory:
            async with MemoryStore() as memory, SQLiteStore(Path(directory) / "s.db") as sqlite:
                return await run_program([memory, sqlite], program)

    succeeded = trio.run(main)
    event(f"successful calls: {min(succeeded // 10 * 10, 40)}+")

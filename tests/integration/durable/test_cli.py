"""The command line (``python -m actorkit_durable``), run as a subprocess against a SQLite file
that a runtime in this test process holds open and keeps running.

The app is ``_cli_shop.py``: this process runs its processes; the CLI imports it only to build
signal data (``--app _cli_shop:app``), and otherwise shows what it does not know by type name
and fields. Independent commands run concurrently, to keep the file fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
import trio

import actorkit_durable as dur
from actorkit_durable import _cli
from actorkit_durable._store import NewProcess

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE))

import _cli_shop as shop  # noqa: E402

APP = "_cli_shop:app"
TIMEOUT = 20.0


@attrs.frozen
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error(self) -> str:
        """The one line a failed command prints."""
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        assert "Traceback" not in self.err
        return lines[0]


def cli_env(store: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ACTORKIT_STORE", None)
    if store is not None:
        env["ACTORKIT_STORE"] = store
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
    return env


async def cli(*args: str, store: str | None = None, cwd: Path | None = None) -> Ran:
    """Run ``python -m actorkit_durable ARGS`` with ``$ACTORKIT_STORE`` set to ``store``."""
    with trio.fail_after(TIMEOUT):
        done = await trio.run_process(
            [sys.executable, "-m", "actorkit_durable", *args],
            capture_stdout=True, capture_stderr=True, check=False, env=cli_env(store), cwd=cwd,
        )  # fmt: skip
    return Ran(done.returncode, done.stdout.decode(), done.stderr.decode())


async def together(*calls: Callable[[], Awaitable[Ran]]) -> list[Ran]:
    """Run the calls concurrently; their results in order."""
    results: list[Ran | None] = [None] * len(calls)

    async def one(index: int) -> None:
        results[index] = await calls[index]()

    async with trio.open_nursery() as nursery:
        for index in range(len(calls)):
            nursery.start_soon(one, index)
    return [r for r in results if r is not None]


async def until(
    store: dur.Store, process_id: str, check: Callable[[Any], bool], *, seconds: float = 10.0
) -> Any:
    """Wait (bounded) until the stored process satisfies ``check``; return its record."""
    with trio.fail_after(seconds):
        while True:
            seen = store.version
            record = await store.get(process_id)
            if record is not None and check(record):
                return record
            # a write by another process shows in the version at the store's next poll
            with trio.move_on_after(0.2):
                await store.wait_for_change(seen)


def status_is(status: dur.Status) -> Callable[[Any], bool]:
    return lambda record: record.status is status


@attrs.frozen
class Shop:
    rt: dur.Runtime
    url: str
    db: Path


@pytest.fixture
async def held(tmp_path: Path) -> AsyncIterator[Shop]:
    """A runtime running the shop app on a fresh SQLite file, open for the whole test."""
    shop.FLAKY["fail"] = True
    shop.STOCK["in"] = False
    db = tmp_path / "shop.db"
    url = f"sqlite:///{db}"
    async with dur.open_runtime(url, app=shop.app) as rt:
        yield Shop(rt, url, db)


async def populate(s: Shop) -> None:
    """o-1 waits for payment, o-2 was paid and waits for shipping, f1 failed, s1 is stuck
    (a recoverable error), w1 completed; the account a-1 holds 5."""
    rt = s.rt
    await rt.start(shop.fulfillment, order="o-1")
    await rt.start(shop.fulfillment, order="o-2")
    await rt.emit(shop.ShopSignals.paid, order="o-2", data=shop.Payment("tx-2", 7))
    flaky = await rt.start(shop.flaky, job="f1")
    await rt.start(shop.stock, job="s1")
    waiter = await rt.start(shop.waiter, job="w1")
    await rt.emit(shop.ShopSignals.go, job="w1")
    account = await rt.actor(shop.account, account="a-1")
    with trio.fail_after(10):
        assert await account.ask(lambda reply: shop.Deposit(5, reply)) == 5
        assert await waiter.wait() == "went w1"
        with pytest.raises(dur.ProcessFailed):
            await flaky.wait()
    await until(rt.store, "job/s1/stock", lambda r: r.last_error is not None)
    await until(rt.store, "order/o-1/fulfillment", status_is(dur.Status.SUSPENDED))
    await until(rt.store, "order/o-2/fulfillment", lambda r: r.journal_length == 2)


# -- list and show ---------------------------------------------------------------------------


async def test_list_and_show_while_a_runtime_holds_the_store(held: Shop) -> None:
    await populate(held)
    run = partial(cli, store=held.url)
    (
        table, listed, by_status, by_comma, by_template, by_glob, by_id_template, stuck,
        limited, actors, show_o2, show_o2_json, show_f1, show_account, show_w1,
    ) = await together(
        partial(run, "list"),
        partial(run, "list", "--json"),
        partial(run, "list", "--status", "failed", "--status", "completed", "--json"),
        partial(run, "list", "--status", "FAILED,completed", "--json"),
        partial(run, "list", "--path", "/order/:order/fulfillment", "--json"),
        partial(run, "list", "--path", "job/*", "--json"),
        partial(run, "list", "--path", "/job/:job/stock", "--json"),
        partial(run, "list", "--stuck"),
        partial(run, "list", "--limit", "2"),
        partial(run, "list", "--kind", "actor", "--json"),
        partial(run, "show", "order/o-2/fulfillment"),
        partial(run, "show", "order/o-2/fulfillment", "--json"),
        partial(run, "show", "/job/f1/flaky"),
        partial(run, "show", "account/a-1"),
        partial(cli, "--store", held.url, "show", "job/w1/waiter", "--json"),
    )  # fmt: skip
    for ran in (table, listed, by_status, stuck, limited, show_o2, show_o2_json, show_w1):
        assert (ran.code, ran.err) == (0, ""), ran

    lines = table.out.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "UPDATED", "(UTC)", "WAITING", "ON", "/", "ERROR"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert list(rows) == [
        "job/f1/flaky", "job/s1/stock", "job/w1/waiter", "order/o-1/fulfillment",
        "order/o-2/fulfillment",
    ]  # fmt: skip
    assert "failed: ValueError: the ledger is down for f1" in rows["job/f1/flaky"]
    assert "error: RecoverableError: no stock for s1 yet" in rows["job/s1/stock"]
    assert "signal /order/:order/payment/received" in rows["order/o-1/fulfillment"]
    assert rows["order/o-2/fulfillment"].split()[1] == "suspended"

    statuses = {item["id"]: item["status"] for item in listed.json()}
    assert statuses == {
        "job/f1/flaky": "failed", "job/s1/stock": "suspended", "job/w1/waiter": "completed",
        "order/o-1/fulfillment": "suspended", "order/o-2/fulfillment": "suspended",
    }  # fmt: skip
    first = listed.json()[0]
    assert first["params"] == {"job": "f1"}
    assert datetime.fromisoformat(first["updated_at"]).tzinfo is not None

    def ids(ran: Ran) -> list[str]:
        return [item["id"] for item in ran.json()]

    assert ids(by_status) == ids(by_comma) == ["job/f1/flaky", "job/w1/waiter"]
    assert ids(by_template) == ["order/o-1/fulfillment", "order/o-2/fulfillment"]
    assert ids(by_glob) == ["job/f1/flaky", "job/s1/stock", "job/w1/waiter"]
    assert ids(by_id_template) == ["job/s1/stock"]
    assert [line.split()[0] for line in stuck.out.splitlines()] == ["ID", "job/s1/stock"]
    assert "RecoverableError: no stock for s1 yet" in stuck.out
    assert len(limited.out.splitlines()) == 4  # header, two rows, the note
    assert "raise --limit" in limited.out
    assert [(a["id"], a["kind"]) for a in actors.json()] == [("account/a-1", "actor")]

    # the CLI does not know Payment (no --app): its data shows by type name and fields
    assert "status      suspended" in show_o2.out
    assert "waiting on  signal /order/:order/shipped" in show_o2.out
    assert "journal (2 entries)" in show_o2.out
    timeline = show_o2.out.split("journal (2 entries)")[1].splitlines()[1:]
    assert timeline[0].split()[:3] == ["SEQ", "TIME", "(UTC)"]
    assert timeline[1].split()[0] == "0"
    assert "signal  /order/:order/payment/received" in timeline[1]
    assert "order=o-2 data=Payment(tx_id='tx-2', amount=7)" in timeline[1]
    assert "step    charge" in timeline[2]
    assert "-> 'charged o-2 7'" in timeline[2]
    shown = show_o2_json.json()
    assert shown["status"] == "suspended"
    assert shown["waits"] == ["/order/:order/shipped"]
    assert [(e["seq"], e["kind"], e["name"]) for e in shown["journal"]] == [
        (0, "signal", "/order/:order/payment/received"), (1, "step", "charge"),
    ]  # fmt: skip
    assert shown["journal"][0]["payload"]["d"] == {
        "$type": "_cli_shop:Payment", "tx_id": "tx-2", "amount": 7,
    }  # fmt: skip
    assert shown["journal"][1]["payload"] == {"v": "charged o-2 7"}
    assert datetime.fromisoformat(shown["journal"][1]["at"]).tzinfo is not None

    assert "error       ValueError: the ledger is down for f1" in show_f1.out
    assert "failed: ValueError: the ledger is down for f1" in show_f1.out.split("journal")[1]
    assert "state       Balance(amount=5)" in show_account.out
    assert show_w1.json()["result"] == "went w1"
    assert show_w1.json()["status"] == "completed"


# -- signal ----------------------------------------------------------------------------------


async def test_signal_builds_the_data_and_the_runtime_completes_the_process(held: Shop) -> None:
    rt, store = held.rt, held.rt.store
    handle = await rt.start(shop.fulfillment, order="o-1")
    await until(store, "order/o-1/fulfillment", status_is(dur.Status.SUSPENDED))
    paid = [
        "signal", "/order/o-1/payment/received", "--app", APP,
        "--data", '{"tx_id": "tx-1", "amount": 12}', "--idempotency-key", "pay-o-1",
    ]  # fmt: skip
    first = await cli(*paid, store=held.url)
    assert first.code == 0, first
    assert first.out == (
        "sent /order/o-1/payment/received (signal /order/:order/payment/received): "
        "reached 1 process or actor\n"
    )
    await until(store, "order/o-1/fulfillment", lambda r: r.waiting_on is not None and
                "shipped" in r.waiting_on)  # fmt: skip
    again, nobody = await together(
        partial(cli, *paid, store=held.url),  # the same key: nothing new, the first count
        partial(cli, "signal", "job/nobody/go", "--app", APP, "--store", held.url),
    )
    assert "reached 1 process or actor" in again.out
    assert "reached 0 processes or actors" in nobody.out
    loaded = await store.load("order/o-1/fulfillment")
    assert loaded is not None
    assert loaded.inbox == ()
    assert [e.kind for e in loaded.journal] == ["signal", "step"]  # paid once

    shipment = {"carrier": "ups", "address": {"street": "1 Main St", "city": "Oslo"},
                "speed": "express", "items": ["book"]}  # fmt: skip
    shipped = await cli(
        "signal", "/order/o-1/shipped", "--data", json.dumps(shipment), "--app", APP,
        store=held.url,
    )  # fmt: skip
    assert shipped.code == 0, shipped
    with trio.fail_after(10):
        receipt = await handle.wait()
    address = shop.Address("1 Main St", "Oslo")
    assert receipt == shop.Receipt(
        "o-1", 12, shop.Shipment("ups", address, shop.Speed.EXPRESS, ["book"])
    )


# -- cancel and retry ------------------------------------------------------------------------


async def test_cancel(held: Shop) -> None:
    rt, store = held.rt, held.rt.store
    waiting = await rt.start(shop.waiter, job="w2")
    done = await rt.start(shop.waiter, job="w3")
    stalled = await rt.start(shop.stall, job="st")  # inside a step that never returns
    await rt.emit(shop.ShopSignals.go, job="w3")
    await rt.actor(shop.account, account="a-1")
    with trio.fail_after(10):
        assert await done.wait() == "went w3"
    await until(store, "job/w2/waiter", status_is(dur.Status.SUSPENDED))
    assert (await stalled.state()).status is dur.Status.RUNNING

    cancelled = await cli("cancel", "job/w2/waiter", store=held.url)
    assert (cancelled.code, cancelled.out) == (0, "cancelled job/w2/waiter (it was suspended)\n")
    with trio.fail_after(10), pytest.raises(dur.ProcessCancelled):
        await waiting.wait()
    again, finished, actor, unknown, running = await together(
        partial(cli, "cancel", "job/w2/waiter", store=held.url),
        partial(cli, "cancel", "job/w3/waiter", store=held.url),
        partial(cli, "cancel", "account/a-1", store=held.url),
        partial(cli, "cancel", "job/nope/waiter", store=held.url),
        partial(cli, "cancel", "job/st/stall", "--wait", "20", store=held.url),
    )
    assert (again.code, again.out) == (0, "job/w2/waiter is cancelled already\n")
    assert finished.code == 1
    assert "job/w3/waiter is completed: it cannot be cancelled" in finished.error
    assert actor.code == 1
    assert "account/a-1 is a persistent actor, not a process" in actor.error
    assert unknown.code == 1
    assert "no process has the id 'job/nope/waiter'" in unknown.error
    # a step that never returns: the CLI marks it, and the runtime holding it cancels it
    assert (running.code, running.out) == (0, "cancelled job/st/stall (it was running)\n")
    with trio.fail_after(10), pytest.raises(dur.ProcessCancelled):
        await stalled.wait()
    assert (await store.get("job/w3/waiter")).status is dur.Status.COMPLETED  # type: ignore[union-attr]


async def test_retry_runs_failed_and_stuck_processes_again(held: Shop) -> None:
    rt, store = held.rt, held.rt.store
    flaky = await rt.start(shop.flaky, job="f1")
    stuck = await rt.start(shop.stock, job="s1")
    done = await rt.start(shop.waiter, job="w1")
    await rt.emit(shop.ShopSignals.go, job="w1")
    with trio.fail_after(10):
        with pytest.raises(dur.ProcessFailed):
            await flaky.wait()
        await done.wait()
    await until(store, "job/s1/stock", lambda r: r.last_error is not None)

    shop.FLAKY["fail"] = False  # the ledger is back, the stock came in
    shop.STOCK["in"] = True
    failed, suspended, completed, unknown = await together(
        partial(cli, "retry", "job/f1/flaky", store=held.url),
        partial(cli, "retry", "/job/s1/stock", store=held.url),
        partial(cli, "retry", "job/w1/waiter", store=held.url),
        partial(cli, "retry", "job/nope/flaky", store=held.url),
    )
    assert failed.code == 0, failed
    assert failed.out.startswith(
        "retrying job/f1/flaky (it was failed: ValueError: the ledger is down for f1)"
    )
    assert suspended.code == 0, suspended
    assert "it was suspended: RecoverableError: no stock for s1 yet" in suspended.out
    with trio.fail_after(10):
        assert await flaky.wait() == "booked f1"
        assert await stuck.wait() == "picked s1"
    assert completed.code == 1
    assert "job/w1/waiter is completed: only failed and suspended" in completed.error
    assert unknown.code == 1
    assert "no process has the id 'job/nope/flaky'" in unknown.error


# -- purge -----------------------------------------------------------------------------------


async def test_purge_removes_finished_processes(held: Shop) -> None:
    await populate(held)
    store = held.rt.store
    loaded = await store.load("job/w1/waiter")
    assert loaded is not None
    entries = loaded.process.journal_length + 1  # w1's, and f1's one step
    recent, dry = await together(
        partial(cli, "purge", "--older-than", "1h", store=held.url),
        partial(cli, "purge", "--older-than", "0s", "--dry-run", store=held.url),
    )
    assert recent.out.startswith("purged 0 finished processes (0 journal entries) last updated")
    assert dry.out.startswith(f"would purge 2 finished processes ({entries} journal entries)")
    assert await store.get("job/w1/waiter") is not None

    purged = await cli("purge", "--older-than", "0s", store=held.url)
    assert purged.code == 0, purged
    assert purged.out.startswith(f"purged 2 finished processes ({entries} journal entries)")
    assert await store.get("job/w1/waiter") is None
    assert await store.get("job/f1/flaky") is None
    for unfinished in ("job/s1/stock", "order/o-1/fulfillment", "order/o-2/fulfillment"):
        assert await store.get(unfinished) is not None
    gone = await cli("show", "job/w1/waiter", store=held.url)
    assert gone.code == 1
    assert "no process or actor has the id 'job/w1/waiter'" in gone.error


# -- worker ----------------------------------------------------------------------------------


class Lines:
    """The lines a subprocess prints, read as they come."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = b""
        self.seen: list[str] = []

    async def until(self, text: str) -> str:
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                self.seen.append(line.decode())
                if text in self.seen[-1]:
                    return self.seen[-1]
            chunk = await self.stream.receive_some(4096)
            if not chunk:
                raise AssertionError(f"the output ended without {text!r}: {self.seen}")
            self.buffer += chunk


async def run_worker(db: Path, stop: signal.Signals) -> None:
    url = f"sqlite:///{db}"
    argv = [sys.executable, "-m", "actorkit_durable", "worker", "--app", APP, "--events"]
    worker = await trio.lowlevel.open_process(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(url)
    )
    assert worker.stdout is not None
    assert worker.stderr is not None
    output = Lines(worker.stdout)
    try:
        with trio.fail_after(TIMEOUT):
            ready = await output.until("worker ready")
            assert ready.startswith(f"worker ready: {APP} (5 processes, 1 actor) on {db}")
            async with dur.SQLiteStore(db) as store:
                now = time.time()
                for job, kind in [("a", "waiter"), ("b", "stall")]:
                    path = f"/job/:job/{kind}"
                    new = NewProcess(f"job/{job}/{kind}", "process", path, {"job": job}, due_at=now)
                    await store.create(new, now=now)
                await until(store, "job/a/waiter", status_is(dur.Status.SUSPENDED))
                await until(store, "job/b/stall", lambda r: r.lease_owner is not None)
                sent = await cli("signal", "/job/a/go", "--app", APP, store=url)
                assert "reached 1 process or actor" in sent.out, sent
                await until(store, "job/a/waiter", status_is(dur.Status.COMPLETED))
                await output.until("job/a/waiter completed")
                worker.send_signal(stop)
                await output.until("worker stopped")
                code = await worker.wait()
                assert code == 0, (await worker.stderr.receive_some(1 << 16)).decode()
                assert f"worker stopping ({stop.name}): releasing its work" in output.seen
                stalled = await store.get("job/b/stall")
                assert stalled is not None
                assert not stalled.status.finished
                assert stalled.lease_owner is None  # released: another worker takes it at once
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()


async def test_worker_runs_the_app_until_sigterm_or_sigint(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_worker, tmp_path / "term.db", signal.SIGTERM)
        nursery.start_soon(run_worker, tmp_path / "int.db", signal.SIGINT)


# -- errors ----------------------------------------------------------------------------------


async def test_bad_inputs_are_one_line_and_a_non_zero_exit(held: Shop, tmp_path: Path) -> None:
    await held.rt.start(shop.waiter, job="w1")
    url = held.url
    missing = tmp_path / "missing.db"
    cases: list[tuple[tuple[str, ...], str | None, int, str]] = [
        (("list", "--store", "bogus://x"), url, 2, "bad store URL 'bogus://x'"),
        (("list", "--store", "memory://"), None, 2, "a memory store lives inside one program"),
        (("list",), None, 2, "no store: pass --store URL"),
        (("list",), f"sqlite:///{missing}", 1, f"the file '{missing}' does not exist"),
        (("show", "order/nope"), url, 1, "no process or actor has the id 'order/nope'"),
        (("signal", "/order/o-1/payment/received", "--app", APP, "--data", "{tx_id: 1}"), url,
         2, "--data is not valid JSON: Expecting property name"),
        (("signal", "/order/o-1/payment/received", "--app", APP, "--data", '{"tx_id": "t"}'),
         url, 2, "--data does not fit Payment: data.amount is missing"),
        (("signal", "/order/o-1/payment/received", "--app", APP,
          "--data", '{"tx_id": "t", "amount": "12"}'), url,
         2, 'data.amount must be an integer, got "12"'),
        (("signal", "/order/o-1/shipped", "--app", APP,
          "--data", '{"carrier": "x", "address": {"street": "s"}}'), url,
         2, "data.address.city is missing"),
        (("signal", "/order/o-1/payment/received", "--app", APP), url,
         2, "carries Payment (tx_id, amount); pass --data JSON"),
        (("signal", "/order/o-1/refund", "--app", APP, "--data", "{}"), url,
         2, "no signal of --app _cli_shop:app matches /order/o-1/refund; its signals are: "),
        (("signal", "/order/:order/shipped", "--app", APP), url, 2, "is a template"),
        (("signal", "/job/j/go", "--app", "no_such_module:app"), url,
         2, "--app no_such_module:app: no module named 'no_such_module'"),
        (("signal", "/job/j/go", "--app", "_cli_shop:nothing"), url,
         2, "module _cli_shop has no attribute 'nothing'"),
        (("worker", "--app", "_cli_shop:Payment"), url, 2, "is a type, not a dur.App"),
        (("purge", "--older-than", "30 days"), url, 2, "expected a duration such as 30d"),
        (("list", "--status", "sleeping"), url, 2, "--status 'sleeping' is not a status"),
        (("frobnicate",), url, 2, "invalid choice: 'frobnicate'"),
    ]  # fmt: skip
    results = await together(
        *[partial(cli, *args, store=store, cwd=tmp_path) for args, store, _, _ in cases]
    )
    for (args, _, code, expected), ran in zip(cases, results, strict=True):
        assert ran.code == code, (args, ran)
        assert ran.out == "", (args, ran)
        assert expected in ran.error, (args, ran.error)
        assert ran.error.startswith("python -m actorkit_durable: error: "), ran.error
    assert not missing.exists()  # a read command does not create the store
    assert (await held.rt.store.get("job/w1/waiter")) is not None  # and the store is fine


# -- demo and entry points (in process) -----------------------------------------------------


def test_demo_delegates_to_the_demo_module(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        calls.append(argv)
        return 3

    fake = ModuleType("actorkit_durable._demo")
    fake.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "actorkit_durable._demo", fake)
    assert _cli.main(["--store", "sqlite:///x.db", "demo", "--orders", "5", "--help"]) == 3
    assert calls == [["--orders", "5", "--help"]]

    monkeypatch.setitem(sys.modules, "actorkit_durable._demo", None)  # as if it were missing
    assert _cli.main(["demo"]) == 1
    assert "the demo is not part of this installation" in capsys.readouterr().err


def test_the_console_script_is_the_cli() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["actorkit-durable"] == "actorkit_durable._cli:main"

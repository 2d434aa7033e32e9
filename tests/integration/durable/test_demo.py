"""The demo, run twice on one SQLite file with a Ctrl-C (SIGINT) in the first run.

The first run is interrupted once a few orders are delivered: it must exit cleanly (status
130, no traceback). The second run must resume the orders in progress and finish them all.
Together the two runs must complete every order exactly once: in the store every process is
COMPLETED, and the charge step's side-effect log (one fsynced line per successful charge)
holds exactly one charge per delivered order and none for an order that timed out.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import trio

import actorkit_durable as dur
from actorkit_durable._demo._shop import FULFILLMENT, OrderSignals, Outcome

ORDERS = 40
SPEED = "6"  # the whole demo in about 3 s
DELIVERED = re.compile(rb"order \d+  delivered ")


class Lines:
    """The lines a subprocess writes to a stream, read as they come."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = b""
        self.lines: list[bytes] = []
        self.eof = False

    async def more(self) -> None:
        chunk = await self.stream.receive_some(1 << 16)
        if not chunk:
            self.eof = True
            if self.buffer:
                self.lines.append(self.buffer)
            return
        *complete, self.buffer = (self.buffer + chunk).split(b"\n")
        self.lines += complete

    async def until_eof(self) -> str:
        while not self.eof:
            await self.more()
        return b"\n".join(self.lines).decode()


def demo_argv(db: Path, log: Path, *more: str) -> list[str]:
    return [
        sys.executable, "-W", "error", "-m", "actorkit_durable", "demo", "--db", os.fspath(db),
        "--speed", SPEED, "--charges-log", os.fspath(log), *more,
    ]  # fmt: skip


async def run_to_the_end(argv: list[str]) -> tuple[int, str, str]:
    result = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def run_and_interrupt(argv: list[str], delivered: int) -> tuple[int, str, str]:
    """Send SIGINT once ``delivered`` orders are delivered; the exit status and output."""
    process = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stderr is not None
    out = Lines(process.stdout)
    try:
        while sum(bool(DELIVERED.search(line)) for line in out.lines) < delivered:
            assert not out.eof, "the demo ended before it was interrupted"
            await out.more()
        process.send_signal(signal.SIGINT)
        stdout = await out.until_eof()
        stderr = await Lines(process.stderr).until_eof()
        return await process.wait(), stdout, stderr
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def count(output: str, label: str) -> int:
    found = re.search(rf"^  {label}:\s+(\d+)", output, re.MULTILINE)
    assert found is not None, f"no {label!r} in the summary:\n{output}"
    return int(found[1])


async def stored_outcomes(db: Path) -> dict[str, Outcome]:
    outcomes = {}
    async with dur.open_runtime(f"sqlite:///{db}", signals=[OrderSignals]) as rt:
        async for state in rt.query(path=FULFILLMENT):
            assert state.status is dur.Status.COMPLETED, state
            outcomes[state.params["order"]] = state.result
    return outcomes


async def test_demo_interrupted_then_resumed_completes_every_order_once(tmp_path: Path) -> None:
    db, log = tmp_path / "demo.db", tmp_path / "charges.log"
    with trio.fail_after(30):
        code, first, errors = await run_and_interrupt(demo_argv(db, log, "--seed", "7"), 3)
    assert code == 130, f"{first}\n{errors}"
    assert errors == ""
    assert "Stopped by Ctrl-C: the runtime closed cleanly" in first
    in_progress = count(first, "in progress")
    assert in_progress + count(first, "not placed yet") > 0  # stopped before the end

    with trio.fail_after(30):
        code, second, errors = await run_to_the_end(demo_argv(db, log))  # the file keeps the seed
    assert code == 0, f"{second}\n{errors}"
    assert errors == ""
    assert "(40 orders, seed 7, run 2)" in second
    assert count(second, "resumed from a previous run") == in_progress > 0
    assert count(second, "in progress") == count(second, "not placed yet") == 0
    delivered = count(second, "delivered")
    assert delivered + count(second, "payment timed out") == ORDERS

    outcomes = await stored_outcomes(db)
    assert len(outcomes) == ORDERS
    paid = {order for order, outcome in outcomes.items() if outcome.status == "delivered"}
    assert len(paid) == delivered
    charges = [line.split() for line in log.read_text().splitlines()]
    assert Counter(order for order, *_ in charges) == Counter(paid)  # one charge each
    assert {outcomes[order].receipt for order, *_ in charges} == {r for *_, r in charges}
    in_runs = [count(output, "cards charged in this run") for output in (first, second)]
    assert sum(in_runs) == len(charges)

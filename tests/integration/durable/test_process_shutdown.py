"""Ctrl-C in a program embedding a durable runtime shuts it down without losing anything.

A worker (``_shutdown_worker.py``) runs processes on a SQLite file until each is inside its
second step, then gets SIGINT. It must exit promptly (KeyboardInterrupt, no hang, no task
left behind). A runtime in this process then takes the processes over at once: step ``a``,
whose result was written before step ``b`` began, does not run again; step ``b``, which was
interrupted, runs again (steps run at least once); a signal then completes every process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import trio

import actorkit_durable as dur

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _shutdown_worker as worker  # noqa: E402

COUNT = 8


async def test_sigint_shuts_down_and_a_new_runtime_resumes(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    log = tmp_path / "steps.log"
    log.touch()
    argv = [sys.executable, str(HERE / "_shutdown_worker.py"), str(db), str(log), str(COUNT)]
    process = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        with trio.fail_after(30):
            line = b""
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(100)
                assert chunk, "the worker exited before it was ready"
                line += chunk
            assert line == b"ready\n"
            process.send_signal(signal.SIGINT)
            code = await process.wait()
            stderr = await process.stderr.receive_some(1 << 16)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code != 0
    assert b"KeyboardInterrupt" in stderr, stderr.decode()[-2000:]
    ran = Counter(log.read_text().split("\n"))
    assert all(ran[f"a job/j{i}"] == 1 and ran[f"b job/j{i}"] == 1 for i in range(COUNT))

    store = dur.SQLiteStore(os.fspath(db))
    async with store:
        for index in range(COUNT):
            loaded = await store.load(f"job/j{index}")
            assert loaded is not None
            assert loaded.process.status is dur.Status.RUNNING
            # step a's result was written before step b began; nothing else was recorded
            assert [(e.kind, e.name) for e in loaded.journal] == [("step", "step_a")]
            assert loaded.process.lease_owner is None  # released on the way out

    worker.LOG["path"] = os.fspath(log)
    worker.SLOW["b"] = False
    waiting: set[str] = set()
    all_waiting = trio.Event()

    def on_event(event: object) -> None:
        if isinstance(event, dur.ProcessEvent) and event.status == "suspended":
            waiting.add(event.process_id)
            if len(waiting) == COUNT:
                all_waiting.set()

    with trio.fail_after(30):
        async with dur.open_runtime(
            f"sqlite:///{db}", processes=[worker.job], signals=[worker.Go], on_event=on_event
        ) as rt:
            await all_waiting.wait()  # each re-ran step b and waits for its signal
            for index in range(COUNT):
                assert await rt.emit(worker.Go.go, job=f"j{index}") == 1
            results = [await rt.handle(f"job/j{i}").wait() for i in range(COUNT)]
    assert results == [[f"a:job/j{i}", f"b:job/j{i}", f"j{i}"] for i in range(COUNT)]
    ran = Counter(log.read_text().split("\n"))
    assert all(ran[f"a job/j{i}"] == 1 and ran[f"b job/j{i}"] == 2 for i in range(COUNT))

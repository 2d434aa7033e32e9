"""Subprocess for test_process_shutdown.py: durable processes interrupted by Ctrl-C.

Usage: ``python _shutdown_worker.py DB_PATH LOG_PATH COUNT``. It starts ``COUNT`` processes
``job/j{i}`` on the SQLite file. Each runs step ``a`` (quick), then step ``b``, which logs
that it began and then blocks for an hour, so every process is mid-step when the parent sends
SIGINT; the worker prints ``ready`` once every ``b`` has begun. Steps append ``step pid`` to
the log (``O_APPEND``, fsynced), so the parent can count how often each one ran.

The parent reuses ``job`` and ``Go`` with ``SLOW`` cleared to finish the processes itself.
"""

from __future__ import annotations

import os
import sys

import trio

import actorkit_durable as dur

SLOW = {"b": True}
LOG: dict[str, str] = {}


class InB:
    """Set once ``remaining`` steps b have begun (worker only)."""

    def __init__(self, remaining: int) -> None:
        self.event = trio.Event()
        self.remaining = remaining


IN_B: list[InB] = []


class Go(dur.Signals):
    go = dur.signal("/job/:job/go")


def log(line: str) -> None:
    fd = os.open(LOG["path"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


async def step_a(pid: str) -> str:
    log(f"a {pid}")
    return f"a:{pid}"


async def step_b(pid: str) -> str:
    log(f"b {pid}")
    if SLOW["b"]:
        in_b = IN_B[0]
        in_b.remaining -= 1
        if in_b.remaining == 0:
            in_b.event.set()
        await trio.sleep(3600)
    return f"b:{pid}"


@dur.process("/job/:job")
async def job(ctx: dur.Context, job: str) -> list[object]:
    a = await ctx.step(step_a, ctx.id)
    b = await ctx.step(step_b, ctx.id)
    received = await ctx.signal(Go.go)
    return [a, b, received.params["job"]]


async def main(db: str, count: int) -> None:
    IN_B[:] = [InB(count)]
    async with dur.open_runtime(f"sqlite:///{db}", processes=[job], signals=[Go]) as rt:
        for index in range(count):
            await rt.start(job, job=f"j{index}")
        await IN_B[0].event.wait()
        print("ready", flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    LOG["path"] = sys.argv[2]
    trio.run(main, os.path.abspath(sys.argv[1]), int(sys.argv[3]))

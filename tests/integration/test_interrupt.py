"""KeyboardInterrupt: actors stop gracefully, in order, and no task is left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import trio
import trio.testing

import actorkit as ak


class TaskCounter(trio.abc.Instrument):
    def __init__(self) -> None:
        self.live: set[trio.lowlevel.Task] = set()
        self.spawned = 0

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned += 1
        self.live.add(task)

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.live.discard(task)


def test_keyboard_interrupt_in_body_stops_every_actor_and_leaves_no_task() -> None:
    stopped: list[tuple[str, object]] = []
    counter = TaskCounter()

    async def forever(state: str, msg: object, tools: ak.Tools) -> None:
        if msg == "block":
            await trio.sleep_forever()

    def on_stop(state: str, reason: object) -> None:
        stopped.append((state, reason))

    async def main() -> None:
        async with ak.open_actor_system() as system:
            for i in range(6):
                ref = await system.spawn(
                    ak.Behavior(name="a", handle=forever, init=lambda c: c, on_stop=on_stop),
                    f"actor-{i}",
                    shutdown=0.5,
                )
                ref.send_nowait("block" if i % 2 else "park")
            await trio.testing.wait_all_tasks_blocked()
            assert system.statistics().tasks == 6
            raise KeyboardInterrupt

    with pytest.RaisesGroup(KeyboardInterrupt, flatten_subgroups=True):
        trio.run(main, instruments=[counter])
    assert counter.spawned > 6
    assert counter.live == set()
    assert stopped == [(f"actor-{i}", "shutdown") for i in reversed(range(6))]


def test_sigint_to_a_running_program_shuts_down_gracefully(tmp_path: Any) -> None:
    program = tmp_path / "prog.py"
    program.write_text(
        textwrap.dedent(
            """
            import sys, trio
            import actorkit as ak

            async def handle(state, msg, tools):
                if msg == "spin":
                    while True:  # a busy handler, checkpointing
                        await trio.sleep(0.01)

            def on_stop(state, reason):
                print(f"on_stop {state} {reason}", flush=True)

            async def main():
                async with ak.open_actor_system() as system:
                    for i in range(3):
                        ref = await system.spawn(
                            ak.Behavior(name="w", handle=handle, init=lambda c: c,
                                        on_stop=on_stop),
                            f"w{i}", shutdown=0.2)
                        ref.send_nowait("spin")
                    print("ready", flush=True)
                    await trio.sleep_forever()

            trio.run(main)
            """
        )
    )
    process = subprocess.Popen(
        [sys.executable, str(program)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert out.splitlines() == ["on_stop w2 shutdown", "on_stop w1 shutdown", "on_stop w0 shutdown"]
    assert "KeyboardInterrupt" in err
    assert process.returncode != 0

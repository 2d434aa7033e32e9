"""examples/chat_server.py with real TCP clients: in-process, and as a program sent SIGINT."""

from __future__ import annotations

import functools
import importlib.util
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
import trio

import actorkit as ak

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "chat_server.py"
WAIT = 5.0
"""Seconds a client waits for an expected line before the test fails."""


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chat_server", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


chat = load_example()


class Client:
    """A chat client on a real TCP connection that reads line by line."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""
        self.seen: list[str] = []

    @classmethod
    async def connect(cls, port: int) -> Client:
        client = cls(await trio.open_tcp_stream("127.0.0.1", port))
        await client.expect(r"\* welcome, guest-\d+! commands: .*")
        return client

    async def send(self, text: str) -> None:
        await self.stream.send_all(text.encode() + b"\n")

    async def readline(self) -> str | None:
        """The next line, or None once the server closed the connection."""
        while b"\n" not in self.buffer:
            data = await self.stream.receive_some()
            if not data:
                return None
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        self.seen.append(line.decode())
        return self.seen[-1]

    async def expect(self, pattern: str) -> str:
        """Read lines until one matches ``pattern`` (a regular expression) in full."""
        with trio.move_on_after(WAIT):
            while (line := await self.readline()) is not None:
                if re.fullmatch(pattern, line):
                    return line
            raise AssertionError(f"closed before a line matching {pattern!r}: {self.seen}")
        raise AssertionError(f"no line matching {pattern!r} within {WAIT} s: {self.seen}")

    async def expect_closed(self) -> str | None:
        """Read until the server closes the connection, then close ours; the last line."""
        last = None
        with trio.fail_after(WAIT):
            while (line := await self.readline()) is not None:
                last = line
        await self.stream.aclose()
        return last


async def test_chat_survives_a_crashed_room_and_stops_in_order() -> None:
    events: list[ak.Event] = []
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        serve = functools.partial(chat.serve, 0, stop=stop, on_event=events.append)
        port = await nursery.start(serve)

        alice = await Client.connect(port)
        await alice.send("/nick alice")
        await alice.expect(r"\* guest-1 is now alice")
        bob = await Client.connect(port)
        await bob.expect(r"\* guest-1 is now alice")  # replayed from the room's history
        await bob.send("/nick bob")
        await alice.expect(r"\* guest-2 is now bob")
        await alice.send("hello")
        await bob.expect("alice: hello")
        await alice.expect("alice: hello")  # every line goes to everyone, the sender too

        await alice.send("/crash")  # the room raises; its supervisor restarts it
        await alice.expect(r"\* the room restarted \(history lost\)")
        await bob.expect(r"\* the room restarted \(history lost\)")
        await bob.send("still here")
        await alice.expect("bob: still here")
        room_events = [e for e in events if e.actor_id == "room-3"]
        failed = [e for e in room_events if isinstance(e, ak.Failed)]
        assert [(e.error_type, e.error) for e in failed] == [
            ("RuntimeError", "alice crashed the room")
        ]
        assert [type(e) for e in room_events if isinstance(e, ak.Restarted)] == [ak.Restarted]

        carol = await Client.connect(port)
        await alice.send("/quit")
        assert await alice.expect_closed() == "* bye"
        await bob.expect(r"\* alice left")
        await carol.expect(r"\* alice left")
        await carol.send("hi bob")
        await bob.expect("guest-3: hi bob")

        stop.set()
    # serve() returned: every actor stopped, newest first, and said goodbye first
    for client in (bob, carol):
        assert await client.expect_closed() == "* the server is shutting down"
    stopped = [(e.actor_id, e.reason) for e in events if isinstance(e, ak.Stopped)]
    assert stopped == [
        ("connection-4", "quit"),
        ("room-3", "shutdown"),
        ("connection-6", "shutdown"),
        ("connection-5", "shutdown"),
        ("connections-2", "shutdown"),
        ("chat-1", "shutdown"),
    ]


def test_the_program_serves_until_sigint() -> None:
    process = subprocess.Popen(
        [sys.executable, "-W", "error", str(EXAMPLE), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        listening = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", first)
        assert listening, first
        port = int(listening[1])

        async def chat_then_interrupt() -> None:
            ann = await Client.connect(port)
            await ann.send("/nick ann")
            await ann.send("hi")
            await ann.expect("ann: hi")
            process.send_signal(signal.SIGINT)
            assert await ann.expect_closed() == "* the server is shutting down"

        trio.run(chat_then_interrupt)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    lines = out.splitlines()
    assert "shutting down (SIGINT)" in lines
    assert lines[lines.index("shutting down (SIGINT)") :] == [
        "shutting down (SIGINT)",
        "room-3 stopped (shutdown)",
        "connection-4 stopped (shutdown)",
        "connections-2 stopped (shutdown)",
        "chat-1 stopped (shutdown)",
        "server stopped",
    ]


def test_cancelling_serve_stops_every_actor(tmp_path: Path) -> None:
    program = tmp_path / "cancel.py"
    program.write_text(
        textwrap.dedent(
            f"""
            import sys
            import trio
            import actorkit as ak
            sys.path.insert(0, {str(EXAMPLE.parent)!r})
            import chat_server

            async def main():
                stopped = []
                def on_event(event):
                    if isinstance(event, ak.Stopped):
                        stopped.append((event.actor_id, event.reason))
                with trio.move_on_after(0.5):
                    await chat_server.serve(0, on_event=on_event)
                print(stopped)

            trio.run(main)
            """
        )
    )
    try:
        result = subprocess.run(
            [sys.executable, str(program)], capture_output=True, text=True, timeout=10
        )
    except subprocess.TimeoutExpired:
        pytest.fail("cancelling serve() did not return")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(
        [("room-3", "shutdown"), ("connections-2", "shutdown"), ("chat-1", "shutdown")]
    )

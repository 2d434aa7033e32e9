"""A TCP chat server whose connections and chat room are actors in a supervision tree.

    python examples/chat_server.py --port 0     # prints "listening on 127.0.0.1:PORT"
    nc 127.0.0.1 PORT                           # in a few other terminals

Every line a client types is said to everyone as "NAME: text". Commands: /nick NAME,
/quit, and /crash, which makes the room actor raise: its supervisor restarts it and the chat
goes on. Ctrl-C stops the server gracefully. The tree (docs/cookbook/chat_server.md):

    chat          ONE_FOR_ONE supervisor: 3 restarts within 10 s, backoff 0.1 s .. 2 s
    +-- connections   ONE_FOR_ONE supervisor of one TEMPORARY actor per connection
    +-- room          PERMANENT actor: the members and the recent history
"""

from __future__ import annotations

import argparse
import functools
import itertools
import signal
import sys
from collections.abc import Callable, Iterator

import attrs
import trio

import actorkit as ak

HOST = "127.0.0.1"
HISTORY = 10
"""Lines the room replays to a newcomer."""
MAX_LINE = 4096
"""Bytes; a longer line is cut into pieces."""
HELP = "commands: /nick NAME, /quit, /crash"


# -- messages -------------------------------------------------------------------------------


@attrs.frozen
class Line:  # to a connection: a line its client typed
    text: str


@attrs.frozen
class Deliver:  # to a connection: a line to write to its client
    text: str


@attrs.frozen
class Join:  # to the room: a new member, to be sent the recent history
    member: ak.ActorRef[Line | Deliver]


@attrs.frozen
class Say:  # to the room: a line for every member
    text: str


@attrs.frozen
class Crash:  # to the room: raise (the /crash command)
    by: str


# -- the room: a PERMANENT actor --------------------------------------------------------------


@attrs.frozen
class Room:
    connections: ak.Supervisor
    members: tuple[ak.ActorRef[Line | Deliver], ...] = ()
    history: tuple[str, ...] = ()


def tell(members: tuple[ak.ActorRef[Line | Deliver], ...], text: str) -> None:
    for member in members:
        member.send_nowait(Deliver(text))


def room_init(connections: ak.Supervisor) -> Room:
    # Runs at start (no connections yet) and again after every crash, with fresh state: the
    # members are rebuilt from the supervisor that owns the connections; the history is lost.
    members = tuple(ref for ref in connections.children() if isinstance(ref, ak.ActorRef))
    tell(members, "* the room restarted (history lost)")
    return Room(connections, members)


def room_handle(room: Room, msg: Join | Say | Crash, tools: ak.Tools) -> Room | None:
    match msg:
        case Join(member):
            for line in room.history:
                member.send_nowait(Deliver(line))
            if member not in room.members:  # room_init may have found it already
                return attrs.evolve(room, members=(*room.members, member))
        case Say(text):
            members = tuple(m for m in room.members if m.status is ak.Status.RUNNING)
            tell(members, text)
            return attrs.evolve(room, members=members, history=(*room.history, text)[-HISTORY:])
        case Crash(by):
            raise RuntimeError(f"{by} crashed the room")
    return None


room_behavior = ak.Behavior(name="room", init=room_init, handle=room_handle)


# -- a connection: a TEMPORARY actor that owns the writing side of its stream ---------------


@attrs.frozen
class Connection:
    stream: trio.abc.Stream
    room: ak.ActorRef[Join | Say | Crash]
    nick: str


async def write(stream: trio.abc.SendStream, text: str) -> bool:
    """Send one line; False if the client is gone."""
    try:
        await stream.send_all(text.encode() + b"\n")
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return False
    return True


async def connection_handle(
    conn: Connection, msg: Line | Deliver, tools: ak.Tools
) -> Connection | None:
    if isinstance(msg, Deliver):
        if not await write(conn.stream, msg.text):
            tools.stop("disconnected")
        return None
    command, _, argument = msg.text.strip().partition(" ")
    match command:
        case "":
            pass
        case "/nick" if argument.strip():
            nick = argument.strip()
            await conn.room.send(Say(f"* {conn.nick} is now {nick}"))
            return attrs.evolve(conn, nick=nick)
        case "/quit":
            await write(conn.stream, "* bye")
            tools.stop("quit")
        case "/crash":
            await conn.room.send(Crash(conn.nick))
        case _ if command.startswith("/"):
            await write(conn.stream, f"* unknown command {command}; {HELP}")
        case _:
            await conn.room.send(Say(f"{conn.nick}: {msg.text.strip()}"))
    return None


async def connection_on_stop(conn: Connection, reason: object) -> None:
    if reason == "shutdown":
        await write(conn.stream, "* the server is shutting down")
    else:
        if reason not in ("quit", "disconnected"):  # this actor or its supervisor failed
            await write(conn.stream, "* closing this connection")
        conn.room.send_nowait(Say(f"* {conn.nick} left"))
    await conn.stream.aclose()  # this also ends the task reading from the stream


connection = ak.Behavior(
    name="connection",
    init=lambda ctx: ctx,
    handle=connection_handle,
    on_stop=connection_on_stop,
)


# -- the server -------------------------------------------------------------------------------


async def read_lines(stream: trio.abc.ReceiveStream, conn: ak.ActorRef[Line | Deliver]) -> None:
    """Send each line the client types to its actor, until either of them is gone."""
    buffer = b""
    while True:
        try:
            data = await stream.receive_some(MAX_LINE)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        if not data:
            return  # the client closed its side
        *lines, buffer = (buffer + data).split(b"\n")
        if len(buffer) >= MAX_LINE:
            lines.append(buffer)
            buffer = b""
        for line in lines:
            if not await conn.send(Line(line.decode(errors="replace"))):
                return  # the actor stopped (/quit, or it failed)


async def handle_client(
    connections: ak.Supervisor,
    room: ak.ActorRef[Join | Say | Crash],
    guests: Iterator[int],
    stream: trio.SocketStream,
) -> None:
    nick = f"guest-{next(guests)}"
    try:
        conn = await connections.spawn(
            connection, Connection(stream, room, nick), restart=ak.Restart.TEMPORARY, shutdown=1.0
        )
    except ak.SystemClosed:  # the server is stopping
        await stream.aclose()
        return
    conn.send_nowait(Deliver(f"* welcome, {nick}! {HELP}"))
    room.send_nowait(Join(conn))
    await read_lines(stream, conn)
    await conn.stop("disconnected")


async def serve(
    port: int,
    *,
    stop: trio.Event | None = None,
    on_event: Callable[[ak.Event], object] | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the chat on 127.0.0.1:port (0: any free port) until ``stop`` is set.

    Reports the bound port through ``task_status``. Once ``stop`` is set, the server stops
    accepting and reading, then every actor stops in order and this returns. If the room
    fails more than 3 times within 10 seconds, the root supervisor gives up and this raises
    an ExceptionGroup holding ``actorkit.SupervisorGaveUp``.
    """
    stop = trio.Event() if stop is None else stop
    # The reading tasks outlive the actor system: at shutdown each connection actor says
    # goodbye and closes its stream, which ends its reading task.
    async with trio.open_nursery() as readers, ak.open_actor_system(on_event=on_event) as system:
        chat = await system.supervisor(
            "chat",
            budget=ak.RestartBudget(max_restarts=3, within=10.0),
            backoff=ak.Backoff(initial=0.1, max=2.0),
        )
        connections = await chat.supervisor("connections")
        room = await chat.spawn(room_behavior, connections)
        listeners = await trio.open_tcp_listeners(port, host=HOST)
        bound: int = listeners[0].socket.getsockname()[1]
        handler = functools.partial(handle_client, connections, room, itertools.count(1))
        async with trio.open_nursery() as accepting:
            await accepting.start(
                functools.partial(trio.serve_listeners, handler, listeners, handler_nursery=readers)
            )
            task_status.started(bound)
            await stop.wait()
            accepting.cancel_scope.cancel()  # stop accepting; the connections stay open
        # leaving open_actor_system stops the room, then every connection, newest first


def print_event(event: ak.Event) -> None:
    match event:
        case ak.Failed(actor_id=who, error_type=error_type, error=error):
            print(f"{who} failed: {error_type}: {error}", flush=True)
        case ak.Restarting(actor_id=who, delay=delay, attempt=attempt):
            print(f"{who} restarting in {delay:g} s (attempt {attempt})", flush=True)
        case ak.Restarted(actor_id=who):
            print(f"{who} restarted", flush=True)
        case ak.Stopped(actor_id=who, reason=reason):
            print(f"{who} stopped ({reason})", flush=True)


async def main(port: int) -> None:
    stop = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            server = functools.partial(serve, port, stop=stop, on_event=print_event)
            bound = await nursery.start(server)
            print(f"listening on {HOST}:{bound}", flush=True)
            async for signum in signals:
                print(f"shutting down ({signal.Signals(signum).name})", flush=True)
                stop.set()
                break
    print("server stopped", flush=True)


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=7777, help="TCP port; 0 picks a free one")
    args = parser.parse_args(argv)
    gave_up = False
    try:
        trio.run(main, args.port)
    except* ak.SupervisorGaveUp:  # the room failed too often; the events said why
        gave_up = True
    if gave_up:
        print("the chat server gave up", file=sys.stderr)
    return 1 if gave_up else 0


if __name__ == "__main__":
    sys.exit(cli())

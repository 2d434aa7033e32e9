"""The command line: ``python -m actorkit_durable`` (also installed as ``actorkit-durable``).

Inspect and operate on a store, also while runtimes hold it open: ``list``, ``show``,
``signal``, ``cancel``, ``retry``, ``purge``; run a ``worker``; run the ``demo``. The store
comes from ``--store URL`` or ``$ACTORKIT_STORE``. Commands that do not run a worker never run
processes: ``signal`` emits through a runtime that holds no definitions but the signals, and
such a runtime claims nothing.

Errors are one line on stderr, never a traceback: exit status 2 for a wrong command line or
wrong data (a bad URL, bad JSON, data that does not fit the signal's class, an unknown signal
path, an ``--app`` that cannot be loaded), 1 for anything else (a missing store file, an
unknown id, a store error). ``docs/cli.md`` is the reference.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import re
import signal as signals
import sys
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, NoReturn
from urllib.parse import urlsplit

import trio

from . import _cli_render as render
from ._admin import purge_finished, request_cancel, request_retry
from ._cli_input import (
    BadInput,
    CommandError,
    app_for_worker,
    app_signals,
    match_signal,
    signal_data,
)
from ._exceptions import DurableError
from ._persistent import KIND as ACTOR_KIND
from ._process import KIND as PROCESS_KIND
from ._process import ProcessEvent
from ._runtime import open_runtime
from ._store import ProcessRecord, SQLiteStore, Status, Store, make_owner, store_from_url
from ._store._url import ENV_VAR

LEASE_FOR = 30.0
"""How long a cancel or retry holds the process it writes (it lets go at once after)."""

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status (0 ok, 1 failure, 2 bad command line)."""
    args = list(sys.argv[1:] if argv is None else argv)
    prog = _prog()
    demo = _demo_args(args)
    if demo is not None:
        return _run_demo(demo, prog)
    parser = _parser(prog)
    try:
        options = parser.parse_args(args)
    except _UsageError as exc:
        return _fail(prog, str(exc), 2)
    try:
        status: int = trio.run(options.run, options)
    except BaseException as exc:
        leaf = _leaf(exc)
        if isinstance(leaf, KeyboardInterrupt):
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130
        if isinstance(leaf, BrokenPipeError):  # `... | head`: the reader has gone
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        if isinstance(leaf, CommandError):
            return _fail(prog, str(leaf), leaf.exit_status)
        if not isinstance(leaf, Exception) or getattr(options, "traceback", False):
            raise
        if isinstance(leaf, DurableError):
            return _fail(prog, str(leaf), 1)
        return _fail(prog, f"unexpected {type(leaf).__name__}: {leaf} (--traceback shows it)", 1)
    return status


def _prog() -> str:
    launched = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "python -m actorkit_durable" if launched in ("__main__.py", "-m", "") else launched


def _fail(prog: str, message: str, status: int) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return status


def _leaf(exc: BaseException) -> BaseException:
    """The one exception inside nested one-exception groups (trio nurseries wrap errors)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


# -- the parser ---------------------------------------------------------------------------------


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """Reports a usage error as one line (with the way to help) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see {self.prog} --help)")


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Inspect and operate on the durable processes of an actorkit_durable store.",
        epilog=f"The store is --store URL or ${ENV_VAR}: sqlite:///relative/path.db (three "
        "slashes: relative to the working directory) or sqlite:////absolute/path.db (four). "
        "Exit status: 0 done, 1 failed, 2 bad command line or data. Reference: docs/cli.md.",
    )
    _common(parser)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, run: Callable[[Any], Awaitable[int]], text: str) -> _Parser:
        sub: _Parser = commands.add_parser(name, help=text, description=text)
        _common(sub)
        sub.set_defaults(run=run)
        return sub

    listed = command("list", _list, "List processes (by id), with filters.")
    listed.add_argument(
        "--status", action="append", default=[], metavar="STATUS",
        help="only these statuses (repeat it, or a comma list): "
        + ", ".join(s.value for s in Status),
    )  # fmt: skip
    listed.add_argument(
        "--path", metavar="PATTERN",
        help="a path template (/order/:order/fulfillment) or a glob on ids ('order/*')",
    )  # fmt: skip
    listed.add_argument(
        "--stuck", action="store_true", help="only suspended processes with a last error"
    )
    listed.add_argument(
        "--kind", choices=("process", "actor", "all"), default="process",
        help="durable processes (the default), persistent actors, or both",
    )  # fmt: skip
    listed.add_argument(
        "--limit", type=_count, default=100, help="show at most this many (default 100; 0: all)"
    )
    listed.add_argument("--json", action="store_true", help="a JSON array")

    shown = command("show", _show, "Show one process: state, waits, errors, journal.")
    shown.add_argument("id", metavar="ID", help="e.g. order/o-1/fulfillment")
    shown.add_argument("--json", action="store_true", help="a JSON object")

    sent = command("signal", _signal, "Emit a signal declared by an app.")
    sent.add_argument("path", metavar="PATH", help="a concrete path: /order/o-1/payment/received")
    sent.add_argument("--data", metavar="JSON", help="the signal's data as a JSON object")
    sent.add_argument("--app", required=True, metavar="MODULE:ATTR", help="declares the signal")
    sent.add_argument("--idempotency-key", metavar="KEY", help="a repeat delivers nothing new")

    cancelled = command("cancel", _cancel, "Cancel a process (it never runs again).")
    cancelled.add_argument("id", metavar="ID")
    cancelled.add_argument(
        "--wait", type=_seconds, default=60.0, metavar="SECONDS",
        help="how long to wait for a runtime running it to let go (default 60)",
    )  # fmt: skip

    retried = command("retry", _retry, "Run a failed or suspended process again.")
    retried.add_argument("id", metavar="ID")

    purged = command("purge", _purge, "Delete finished processes, their journals, old signals.")
    purged.add_argument(
        "--older-than", required=True, type=_duration, metavar="DURATION",
        help="finished (last updated) this long ago: 30d, 12h, 90m, 45s, 1h30m",
    )  # fmt: skip
    purged.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    worker = command("worker", _worker, "Run a runtime with an app until SIGTERM or SIGINT.")
    worker.add_argument("--app", required=True, metavar="MODULE:ATTR", help="a dur.App")
    worker.add_argument("--events", action="store_true", help="print each process transition")

    commands.add_parser("demo", help="Run the demo (options: demo --help).")
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    # on the main parser and on each command, so that either place works; SUPPRESS keeps a
    # command's parser from overwriting what the main one read
    hidden = argparse.SUPPRESS
    parser.add_argument("--store", default=hidden, metavar="URL", help=f"default: ${ENV_VAR}")
    parser.add_argument("--traceback", action="store_true", default=hidden, help=hidden)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a count (0 for all), got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also NaN
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
    return seconds


def _duration(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w``, or a sum such as ``1h30m``, in seconds."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 30d, 12h, 90m, 45s or 1h30m, got {text!r}"
        )
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def _statuses(values: list[str]) -> set[Status]:
    chosen: set[Status] = set()
    for value in values:
        for name in filter(None, (part.strip().lower() for part in value.split(","))):
            try:
                chosen.add(Status(name))
            except ValueError:
                known = ", ".join(s.value for s in Status)
                raise BadInput(f"--status {name!r} is not a status; use {known}") from None
    return chosen


# -- the demo -----------------------------------------------------------------------------------


def _demo_args(args: list[str]) -> list[str] | None:
    """The demo's own arguments when the command is ``demo`` (it parses them itself)."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--store":
            index += 2
        elif arg.startswith("--store=") or arg == "--traceback":
            index += 1
        else:
            return args[index + 1 :] if arg == "demo" else None
    return None


def _run_demo(argv: list[str], prog: str) -> int:
    name = f"{__package__}._demo"
    try:
        demo = importlib.import_module(name)  # only now: it is not part of every command
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return _fail(prog, f"the demo is not part of this installation (no module {name})", 1)
    run = getattr(demo, "main", None)
    if not callable(run):
        return _fail(prog, "the demo is broken: actorkit_durable._demo has no main(argv)", 1)
    try:
        status = run(argv)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return status if isinstance(status, int) else 0


# -- the store ----------------------------------------------------------------------------------


def _store(options: argparse.Namespace, *, must_exist: bool = True) -> Store:
    url = getattr(options, "store", None) or os.environ.get(ENV_VAR) or None
    if url is None:
        raise BadInput(f"no store: pass --store URL (e.g. sqlite:///app.db) or set ${ENV_VAR}")
    if urlsplit(url).scheme.lower() == "memory":
        raise BadInput(
            f"--store {url}: a memory store lives inside one program, so a command would only "
            "see a new empty one; pass the sqlite:/// URL of the store your runtime uses"
        )
    try:
        store = store_from_url(url)
    except (ValueError, NotImplementedError) as exc:
        raise BadInput(str(exc)) from None
    if must_exist and isinstance(store, SQLiteStore) and not store.path.exists():
        raise CommandError(
            f"no store at {url}: the file {str(store.path)!r} does not exist (a runtime or "
            "`worker` creates it; check the path and the working directory)"
        )
    return store


def _out(lines: Sequence[str]) -> None:
    print("\n".join(lines), flush=True)


def _json(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False), flush=True)


# -- the commands -------------------------------------------------------------------------------


async def _list(options: argparse.Namespace) -> int:
    statuses = _statuses(options.status)
    if options.stuck:
        if statuses and Status.SUSPENDED not in statuses:
            raise BadInput("--stuck lists suspended processes; it contradicts --status")
        statuses = {Status.SUSPENDED}
    matches, prefix = _path_matcher(options.path)
    kind = {"process": PROCESS_KIND, "actor": ACTOR_KIND, "all": None}[options.kind]
    limit = options.limit or math.inf
    found: list[ProcessRecord] = []
    more = False
    async with (
        _store(options) as store,
        contextlib.aclosing(_query(store, statuses, kind, prefix)) as records,
    ):
        async for record in records:
            if matches(record.id) and (not options.stuck or record.last_error is not None):
                if len(found) >= limit:
                    more = True
                    break
                found.append(record)
    if options.json:
        _json([render.record_json(record) for record in found])
    elif found:
        _out(render.listing(found))
        if more:
            _out([f"(more: showing the first {len(found)}; raise --limit, 0 for all)"])
    else:
        _out(["no processes match" if options.kind != "actor" else "no actors match"])
    return 0


async def _query(
    store: Store, statuses: set[Status], kind: str | None, prefix: str
) -> AsyncGenerator[ProcessRecord, None]:
    """The store's processes in id order, from the first id that may start with ``prefix``
    to the last that does."""
    after = prefix[:-1] or None  # ids starting with the prefix come after this one
    while True:
        page = await store.query(status=statuses or None, kind=kind, after=after, limit=200)
        for record in page:
            if prefix and record.id > prefix and not record.id.startswith(prefix):
                return
            yield record
        if len(page) < 200:
            return
        after = page[-1].id


def _path_matcher(pattern: str | None) -> tuple[Callable[[str], bool], str]:
    """A test on ids for ``--path``, and the literal prefix every match starts with.

    ``:name`` segments match one segment of an id (a path template); ``*`` matches anything,
    ``?`` one character; a leading "/" is dropped (ids have none)."""
    if pattern is None:
        return (lambda _: True), ""
    parts: list[str] = []
    for index, segment in enumerate(pattern.removeprefix("/").split("/")):
        if index:
            parts.append("/")
        if segment.startswith(":") and len(segment) > 1:
            parts.append("[^/]+")
        else:
            parts += [".*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in segment]
    compiled = re.compile("".join(parts) + r"\Z", re.DOTALL)
    prefix = re.split(r"[*?]|(?:^|(?<=/)):", pattern.removeprefix("/"), maxsplit=1)[0]
    return (lambda process_id: compiled.match(process_id) is not None), prefix


async def _show(options: argparse.Namespace) -> int:
    process_id = options.id.lstrip("/")
    async with _store(options) as store:
        loaded = await store.load(process_id)
    if loaded is None:
        raise CommandError(
            f"no process or actor has the id {process_id!r} in this store (`list` shows them)"
        )
    if options.json:
        _json(render.show_json(loaded))
    else:
        _out(render.show_text(loaded))
    return 0


async def _signal(options: argparse.Namespace) -> int:
    declared = app_signals(options.app)
    signal, params = match_signal(declared, options.path, options.app)
    data = signal_data(signal, options.data)
    store = _store(options)
    async with store, open_runtime(store, signals=declared) as runtime:
        try:
            reached = await runtime.emit(
                signal, data=data, idempotency_key=options.idempotency_key, **params
            )
        except (TypeError, ValueError) as exc:  # the data does not encode, a param is bad
            raise BadInput(f"cannot send {options.path}: {exc}") from None
    concrete = "/" + "/".join(
        params[part[1:]] if part.startswith(":") else part for part in signal.template.segments
    )
    what = "process or actor" if reached == 1 else "processes or actors"
    _out([f"sent {concrete} (signal {signal.path}): reached {reached} {what}"])
    return 0


async def _process(store: Store, process_id: str, action: str) -> ProcessRecord:
    record = await store.get(process_id)
    if record is None:
        raise CommandError(f"no process has the id {process_id!r} in this store")
    if record.kind != PROCESS_KIND:
        raise CommandError(f"{process_id} is a persistent {record.kind}, not a process: {action}")
    return record


async def _cancel(options: argparse.Namespace) -> int:
    process_id = options.id.lstrip("/")
    async with _store(options) as store:
        before = await _process(store, process_id, "only processes can be cancelled")
        if before.status.finished:
            if before.status is Status.CANCELLED:
                _out([f"{process_id} is cancelled already"])
                return 0
            raise CommandError(f"{process_id} is {before.status.value}: it cannot be cancelled")
        owner = make_owner()
        after = None
        with trio.move_on_after(options.wait) as waited:
            after = await request_cancel(
                store, process_id, owner=owner, now=time.time(), lease_for=LEASE_FOR
            )
        if waited.cancelled_caught:
            with trio.CancelScope(shield=True):
                await store.release(owner)  # in case the time ran out between claim and commit
            holder = await store.get(process_id)
            running = f" in {holder.lease_owner}" if holder and holder.lease_owner else ""
            raise CommandError(
                f"{process_id} is still running{running} after {options.wait:g} s; it is marked "
                "for cancellation, which that runtime carries out when it next looks at the "
                "store (`show` tells when)"
            )
    if after is None:
        raise CommandError(f"{process_id} was deleted meanwhile")
    if after.status is not Status.CANCELLED:
        raise CommandError(f"{process_id} {after.status.value} before it could be cancelled")
    _out([f"cancelled {process_id} (it was {before.status.value})"])
    return 0


async def _retry(options: argparse.Namespace) -> int:
    process_id = options.id.lstrip("/")
    async with _store(options) as store:
        record = await _process(store, process_id, "only processes can be retried")
        if record.status not in (Status.FAILED, Status.SUSPENDED):
            raise CommandError(
                f"{process_id} is {record.status.value}: only failed and suspended processes "
                "can be retried"
            )
        done = await request_retry(
            store, record, owner=make_owner(), now=time.time(), lease_for=LEASE_FOR
        )
    if not done:
        raise CommandError(f"{process_id} changed meanwhile (a runtime holds it); try again")
    why = record.error if record.status is Status.FAILED else record.last_error
    was = f"{record.status.value}" + (f": {why}" if why else "")
    _out([f"retrying {process_id} (it was {was}): a runtime that can run it runs it again"])
    return 0


async def _purge(options: argparse.Namespace) -> int:
    before = time.time() - options.older_than
    async with _store(options) as store:
        counts = await purge_finished(store, before=before, dry_run=options.dry_run)
    entries = ""
    if counts.journal_entries is not None:
        entries = f" ({counts.journal_entries} journal entries)"
    verb = "would purge" if options.dry_run else "purged"
    signals_too = "" if options.dry_run else ", and the consumed signals created before then"
    _out([
        f"{verb} {_counted(counts.processes, 'finished process')}"
        f"{entries} last updated before {render.when(before)}{signals_too}"
    ])  # fmt: skip
    return 0


async def _worker(options: argparse.Namespace) -> int:
    app = app_for_worker(options.app)
    store = _store(options, must_exist=False)

    def on_event(event: object) -> None:
        if isinstance(event, ProcessEvent):
            detail = f" ({event.detail})" if event.detail else ""
            _out([f"{render.when_exactly(event.at)} {event.process_id} {event.status}{detail}"])

    async with open_runtime(store, app=app, on_event=on_event if options.events else None):
        with trio.open_signal_receiver(signals.SIGTERM, signals.SIGINT) as received:
            kinds = _counted(len(app.processes), "process") + ", "
            kinds += _counted(len(app.actors), "actor")
            where = f"{_describe(store)}; pid {os.getpid()}"
            _out([f"worker ready: {options.app} ({kinds}) on {where}"])
            async for number in received:
                _out([f"worker stopping ({signals.Signals(number).name}): releasing its work"])
                break
    _out(["worker stopped"])
    return 0


def _counted(count: int, noun: str) -> str:
    plural = noun if count == 1 else noun + ("es" if noun.endswith("s") else "s")
    return f"{count} {plural}"


def _describe(store: Store) -> str:
    return str(store.path) if isinstance(store, SQLiteStore) else type(store).__name__

"""A run of the demo: its options, the runtime around the simulation, Ctrl-C, the summary."""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

import attrs
import trio

import actorkit_durable as dur

from ._shop import Begin, Ledger, LedgerRef, OrderSignals, SaveClock, app, ledger, use_shop
from ._view import Report, View, summary
from ._world import FINISHED, Board, Clock, SimulatedShop, World, make_plan, place_orders

PROG = "python -m actorkit_durable demo"
DEFAULT_DB = "actorkit-demo.db"
DEFAULT_ORDERS = 40
INTERRUPTED = 130
"""The exit status after Ctrl-C (128 + SIGINT, as shells report it)."""


@attrs.frozen
class Options:
    db: str
    url: str
    orders: int | None  # None: the file's demo, or DEFAULT_ORDERS in a new file
    seed: int | None
    speed: float
    reset: bool
    live: bool
    charges_log: str | None


def parse(argv: list[str], *, isatty: bool) -> Options:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Order fulfilment with durable processes on a SQLite file. Stop it with "
        "Ctrl-C and run it again: every order resumes where it stopped.",
    )
    add = parser.add_argument
    add("--db", default=DEFAULT_DB, help=f"the SQLite file (default {DEFAULT_DB})")
    add("--orders", type=int, help=f"the orders of a new demo (default {DEFAULT_ORDERS})")
    add("--seed", type=int, help="the seed of a new demo's orders (default: random)")
    add("--speed", type=float, default=1.0, help="a speed factor (default 1: about 20 s)")
    add("--fast", action="store_const", const=10.0, dest="speed", help="the same as --speed 10")
    add("--reset", action="store_true", help="delete the file first, to start a new demo")
    add("--plain", action="store_true", help="one line per event, even on a terminal")
    add("--charges-log", metavar="PATH", help="append each card charge to PATH (fsynced)")
    args = parser.parse_args(argv)
    if args.orders is not None and not 1 <= args.orders <= 10_000:
        parser.error("--orders must be between 1 and 10000")
    if not (math.isfinite(args.speed) and args.speed > 0):
        parser.error("--speed must be a number > 0")
    url = f"sqlite:///{os.path.abspath(args.db)}"
    live = isatty and not args.plain
    return Options(
        args.db, url, args.orders, args.seed, args.speed, args.reset, live, args.charges_log
    )


async def begin(options: Options, wall_now: Callable[[], float]) -> Ledger:
    """The file's demo (a new one in a new file), with this run counted."""
    seed = random.Random().randrange(1, 10_000) if options.seed is None else options.seed
    orders = DEFAULT_ORDERS if options.orders is None else options.orders
    async with dur.open_runtime(options.url, actors=[ledger]) as rt:  # it runs no processes
        try:
            ref = await rt.actor(ledger, demo="orders")
        except dur.ActorElsewhere:
            raise AlreadyRunning(
                f"another demo is running on {options.db}: stop it, or pass another --db"
            ) from None
        return await ref.ask(lambda reply: Begin(orders, seed, wall_now(), reply))


class AlreadyRunning(dur.DurableError):
    """Another program runs a demo on the same file."""


async def run_demo(
    options: Options, view: View, stop: trio.CancelScope, wall_now: Callable[[], float]
) -> Report:
    state = await begin(options, wall_now)
    asked = (options.orders or state.orders, options.seed or state.seed)
    if state.runs > 1 and asked != (state.orders, state.seed):
        view.print(f"{options.db} holds a demo of {state.orders} orders (seed {state.seed}):")
        view.print("going on with it; --reset starts a new one.")
    plan = make_plan(state.orders, state.seed)
    view.title = f"actorkit durable demo: {state.orders} orders, run {state.runs}"
    if not view.live:
        view.print(f"{view.title}, on {options.db} (seed {state.seed}); Ctrl-C stops it")
    board = Board(plan, view.line)
    clock = view.clock = Clock(state.elapsed)
    shop = SimulatedShop(
        plan, seed=state.seed, speed=options.speed, clock=clock, board=board,
        charges_log=options.charges_log,
    )  # fmt: skip
    # durable time goes on from where the last run stopped: timers keep what they had left
    start_time = datetime.fromtimestamp(state.epoch + state.elapsed, UTC)
    with use_shop(shop):
        async with dur.open_runtime(
            options.url, app=app, start_time=start_time, on_event=board.on_event
        ) as rt:
            ref = await rt.actor(ledger, demo="orders")
            await board.load(rt)
            before = Counter(phase for phase in board.phases.values() if phase in FINISHED)
            resumed = board.in_progress()
            world = await _simulate(rt, ref, board, clock, view, options, stop)
            with trio.CancelScope(shield=True):
                await ref.ask(lambda reply: SaveClock(clock.now(), reply))
    run_time, demo_time = clock.run_time(), clock.now()
    # the summary tells what the store holds now that the runtime has closed
    stored = Board(plan, view.line)
    async with dur.open_runtime(options.url, signals=[OrderSignals]) as rt:  # runs nothing
        await stored.load(rt)
    return Report(
        options.db, state, stored.counts(), before, resumed, run_time, demo_time,
        board.card_errors, world.retried, shop.charged, stop.cancelled_caught,
    )  # fmt: skip


async def _simulate(
    rt: dur.Runtime, ref: LedgerRef, board: Board, clock: Clock, view: View, options: Options,
    stop: trio.CancelScope,
) -> World:  # fmt: skip
    """Until every order is finished, or ``stop`` is cancelled (Ctrl-C)."""
    if board.in_progress():
        view.line(f"resumed {board.in_progress()} orders in progress from the previous run")
    with stop:
        async with trio.open_nursery() as nursery:
            world = World(rt, board, clock, options.speed, nursery)
            board.on_phase = world.on_phase
            for order, phase in list(board.phases.items()):
                world.on_phase(order, phase)
            nursery.start_soon(board.follow, rt)
            nursery.start_soon(place_orders, rt, list(board.plan.values()), clock, options.speed)
            nursery.start_soon(view.run, board)
            nursery.start_soon(_save_clock, ref, clock)
            await board.done.wait()
            nursery.cancel_scope.cancel()
    return world


async def _save_clock(ref: LedgerRef, clock: Clock) -> None:
    """Every half second, so that a run killed without warning loses little demo time."""
    while True:
        await trio.sleep(0.5)
        await ref.ask(lambda reply: SaveClock(clock.now(), reply))


async def _watch_sigint(stop: trio.CancelScope, view: View) -> None:
    """Ctrl-C cancels ``stop``: the simulation stops and the runtime closes normally."""
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        async for _ in signals:
            if not stop.cancel_called:
                stop.cancel()
                if not view.live:
                    view.print("Ctrl-C: stopping (the runtime writes what it has and closes)")


async def amain(options: Options, out: TextIO, wall_now: Callable[[], float]) -> int:
    view = View(out, live=options.live)
    stop = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_sigint, stop, view)
        report = await run_demo(options, view, stop, wall_now)
        nursery.cancel_scope.cancel()
    view.print()
    for line in summary(report):
        view.print(line)
    return INTERRUPTED if report.interrupted else 0


def main(argv: list[str]) -> int:
    """``python -m actorkit_durable demo [options]``; the exit status (130 after Ctrl-C)."""
    options = parse(argv, isatty=sys.stdout.isatty())
    try:
        if options.reset:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(options.db + suffix):
                    os.remove(options.db + suffix)
        return trio.run(amain, options, sys.stdout, time.time)
    except BaseException as error:
        leaves = _leaves(error)
        if all(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
            print("\nInterrupted; run the same command again to resume.", file=sys.stderr)
            return INTERRUPTED
        if all(isinstance(leaf, dur.DurableError | OSError) for leaf in leaves):
            print(f"{PROG}: error: {leaves[0]}", file=sys.stderr)
            return 1
        raise


def _leaves(error: BaseException) -> list[BaseException]:
    """The exceptions in ``error``, out of the exception groups that trio's nurseries make."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]

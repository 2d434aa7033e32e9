"""What the demo shows: a live view redrawn in place on a terminal (one line per event
otherwise), and the summary at the end."""

from __future__ import annotations

import math
import shutil
from collections import Counter, deque
from typing import TextIO

import attrs
import trio

from ._shop import Ledger
from ._world import FINISHED, Board, Clock, Phase

BAR = 30
PROGRESS = 36


class View:
    """On a terminal (``live``), the counts by phase, a progress bar and the latest events,
    redrawn five times a second; otherwise each event is a line, with a status every 2 s."""

    def __init__(self, out: TextIO, *, live: bool) -> None:
        self.out = out
        self.live = live
        self.title = "actorkit durable demo"
        self.clock: Clock | None = None
        self.recent: deque[str] = deque(maxlen=8)
        self.height = 0
        self.full, self.empty = "█", "░"
        try:
            (self.full + self.empty).encode(out.encoding or "ascii")
        except (LookupError, UnicodeEncodeError):
            self.full, self.empty = "#", "."

    def line(self, text: str) -> None:
        stamped = f"{self._stamp()}  {text}"
        if self.live:
            self.recent.append(stamped)
        else:
            self.print(stamped)

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    async def run(self, board: Board) -> None:
        """Until cancelled (a live view is drawn a last time then)."""
        if not self.live:
            while True:
                await trio.sleep(2.0)
                self.line(_status(board))
        self.out.write("\x1b[?25l")  # no cursor blinking over the redraws
        try:
            while True:
                self.draw(board)
                await trio.sleep(0.2)
        finally:
            self.draw(board, last=True)
            self.out.write("\x1b[?25h")
            self.out.flush()

    def draw(self, board: Board, *, last: bool = False) -> None:
        lines = self._frame(board, last)
        width = shutil.get_terminal_size().columns - 1
        up = f"\x1b[{self.height}F" if self.height else ""
        # each line clears its rest; the end clears below (the ^C a terminal echoes, say)
        self.out.write(up + "".join(f"{line[:width]}\x1b[K\n" for line in lines) + "\x1b[J")
        self.out.flush()
        self.height = len(lines)

    def _frame(self, board: Board, last: bool) -> list[str]:
        total = len(board.plan)
        counts = board.counts()
        lines = [f" {self.title}   {self._stamp().strip()}", ""]
        for phase in Phase:
            if phase is not Phase.FAILED or counts[phase]:
                bar = self.full * math.ceil(counts[phase] * BAR / total)
                lines.append(f"   {phase.value:<24}{counts[phase]:>5}  {bar}")
        lines.append(f"   {'not placed yet':<24}{total - len(board.phases):>5}")
        done = board.finished()
        filled = round(PROGRESS * done / total)
        bar = self.full * filled + self.empty * (PROGRESS - filled)
        lines += ["", f"   {bar}  {done}/{total} finished", ""]
        lines += [f"  {text}" for text in self.recent]
        if not last:
            lines += ["", " Ctrl-C stops it; running it again resumes every order."]
        return [line.rstrip() for line in lines]

    def _stamp(self) -> str:
        return f"{0.0 if self.clock is None else self.clock.now():7.2f}s"


def _status(board: Board) -> str:
    counts = board.counts()
    phases = ", ".join(f"{counts[p]} {p.value}" for p in Phase if counts[p])
    return f"status: {board.finished()}/{len(board.plan)} finished; {phases}"


@attrs.frozen
class Report:
    """What a run did, for its summary."""

    db: str
    ledger: Ledger
    counts: Counter[Phase]
    finished_before: Counter[Phase]
    resumed: int
    run_time: float
    demo_time: float
    card_errors: int
    retried: int
    charged: int
    interrupted: bool


def summary(report: Report) -> list[str]:
    state = report.ledger
    lines = [
        f"Summary of {report.db} ({state.orders} orders, seed {state.seed}, run {state.runs}):"
    ]
    for phase in (Phase.DELIVERED, Phase.TIMED_OUT, Phase.FAILED):
        count = report.counts[phase]
        if count or phase is not Phase.FAILED:
            this_run = count - report.finished_before[phase]
            lines.append(_row(phase.value, count, f"({this_run} in this run)"))
    placed = sum(report.counts.values())
    in_progress = placed - sum(report.counts[p] for p in FINISHED)
    lines += [
        _row("in progress", in_progress),
        _row("not placed yet", state.orders - placed),
        _row("resumed from a previous run", report.resumed, "(in progress when this run began)"),
        _row("card errors (suspended)", report.card_errors),
        _row("retries by the operator", report.retried),
        _row("cards charged in this run", report.charged),
        f"  elapsed: {report.run_time:.1f} s in this run, {report.demo_time:.1f} s of demo time "
        "in all runs",
    ]
    if report.interrupted:
        lines += [
            "",
            f"Stopped by Ctrl-C: the runtime closed cleanly; the {in_progress} orders in "
            f"progress are saved in {report.db}.",
            "Run the same command again: every order resumes where it stopped.",
        ]
    elif report.resumed == 0 and sum(report.finished_before.values()) == state.orders:
        lines += ["", "Every order had finished in an earlier run; --reset starts a new demo."]
    return lines


def _row(label: str, count: int, note: str = "") -> str:
    return f"  {label + ':':<30}{count:>5}  {note}".rstrip()

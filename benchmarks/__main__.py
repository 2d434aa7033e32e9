"""Run the benchmarks: ``python -m benchmarks [--only W1,W3] [--quick] [--json PATH]``.

Everything runs in one ``trio.run`` with trio's real clock. For each selected workload both
sides are warmed up once with a tenth-size run, then baseline and actorkit runs alternate
``--repeat`` times (default 5, or 2 with ``--quick``; a workload may cap its own count, as D3
does); the table shows the best value of each metric (see ``_report``). The settings header
and the table go to stdout, followed by the JSON document (also written to ``--json PATH``);
progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import attrs
import trio

import actorkit as ak
from actorkit._actor import BATCH
from actorkit._system import MAX_PARKED

from . import ASK_TIMEOUT, MAX_INBOX, OVERFLOW, durable_actors, durable_processes
from ._report import Result, Workload, json_document, measure, render_header, render_table
from .asks import sequential_asks
from .lifecycle import spawn_stop
from .messaging import one_way, ping_pong
from .supervision import restarts

WARMUP_DIVISOR = 10


@attrs.frozen
class Sizes:
    messages: int
    asks: int
    pairs: int
    rounds: int
    actors: int
    failures: int
    repetitions: int
    durable: durable_actors.DurableSizes
    processes: durable_processes.ProcessSizes


FULL = Sizes(
    messages=200_000, asks=50_000, pairs=100, rounds=2_000, actors=10_000, failures=10_000,
    repetitions=5, durable=durable_actors.FULL, processes=durable_processes.FULL,
)  # fmt: skip
QUICK = Sizes(
    messages=20_000, asks=5_000, pairs=20, rounds=200, actors=1_000, failures=1_000,
    repetitions=2, durable=durable_actors.QUICK, processes=durable_processes.QUICK,
)  # fmt: skip


def build_workloads(sizes: Sizes) -> list[Workload]:
    def small(size: int) -> int:
        return max(1, size // WARMUP_DIVISOR)

    return [
        one_way(sizes.messages, small(sizes.messages)),
        sequential_asks(sizes.asks, small(sizes.asks)),
        ping_pong(sizes.pairs, sizes.rounds, small(sizes.rounds)),
        spawn_stop(sizes.actors, small(sizes.actors)),
        restarts(sizes.failures, small(sizes.failures)),
        *durable_actors.durable_actor_workloads(sizes.durable, WARMUP_DIVISOR),
        *durable_processes.durable_process_workloads(sizes.processes, WARMUP_DIVISOR),
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="actorkit against a raw-trio baseline, measured in the same run.",
    )
    parser.add_argument("--only", help="comma-separated workloads to run, e.g. W1,W3")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the JSON here")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeat", type=int, metavar="N", help="measured repetitions per side")
    return parser.parse_args(argv)


def select(workloads: list[Workload], only: str | None) -> list[Workload]:
    if only is None:
        return workloads
    wanted = {key.strip().upper() for key in only.split(",") if key.strip()}
    known = {workload.key for workload in workloads}
    if unknown := wanted - known:
        raise SystemExit(
            f"--only: unknown workload(s) {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(sorted(known))}"
        )
    return [workload for workload in workloads if workload.key in wanted]


def settings(quick: bool, repetitions: int, chosen: list[Workload]) -> dict[str, object]:
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "trio": trio.__version__,
        "actorkit": f"{ak.__version__} ({_source()})",
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "mode": "quick" if quick else "full",
        "sizes": {w.key: _sizes(w) for w in chosen},
        "overflow": f"Overflow.{OVERFLOW.name}",
        "max_inbox": MAX_INBOX,
        "batch (actorkit._actor.BATCH)": BATCH,
        "max_parked (actorkit._system.MAX_PARKED)": MAX_PARKED,
        "ask_timeout_s": ASK_TIMEOUT,
        "warmup": f"one run per side at 1/{WARMUP_DIVISOR} size",
        "repetitions": repetitions,
        "statistic": "best of the repetitions per metric (max rate, min latency/memory), "
        "runs interleaved baseline, actorkit, ...",
        **durable_actors.settings(chosen),
        **durable_processes.settings(chosen),
    }


def _source() -> str:
    """Where the measured actorkit came from: its path and, in a git checkout, the commit."""
    package = Path(ak.__file__).parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(package), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return str(package)
    dirty = " + uncommitted changes" if git("status", "--porcelain", "--", ".") else ""
    return f"{package}, git {commit}{dirty}"


def _sizes(workload: Workload) -> str:
    return ", ".join(f"{name} {size:,}" for name, size in workload.sizes.items())


async def run_all(workloads: list[Workload], repetitions: int) -> list[Result]:
    results = []
    for workload in workloads:
        print(f"{workload.key}: {workload.title}", file=sys.stderr)
        results.append(await measure(workload, repetitions))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    repetitions = args.repeat if args.repeat is not None else sizes.repetitions
    if repetitions < 1:
        raise SystemExit("--repeat must be at least 1")
    chosen = select(build_workloads(sizes), args.only)
    results = trio.run(run_all, chosen, repetitions)
    header = settings(args.quick, repetitions, chosen)
    document = json.dumps(json_document(header, results), indent=2)
    print(render_header(header), render_table(results), document, sep="\n\n")
    if args.json is not None:
        args.json.write_text(document + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

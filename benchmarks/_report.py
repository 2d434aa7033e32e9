"""Shared plumbing: workload records, interleaved measurement, the table and the JSON document.

A ``Workload`` pairs an actorkit run with a raw-trio baseline run of the same job; each run
returns a ``Sample`` (its numbers, keyed by ``Metric.key``). ``measure`` warms each side up
once with a small run, then alternates baseline and actorkit runs ``repetitions`` times (with
``gc.collect()`` before each), so the slow phases of a shared, noisy machine hit both sides
alike. A metric is summarised by its best value over the repetitions (the highest rate, the
lowest latency or memory): the least disturbed run is the closest to what the code itself
costs. Medians and every sample are kept in the JSON document.

Every ratio is actorkit / raw trio of the metric itself, so its direction follows the metric:
for rates > 1 means actorkit is faster; for latencies and memory < 1 means actorkit is better.
"""

from __future__ import annotations

import enum
import gc
import math
import operator
import statistics
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, TypeAlias

import attrs

Sample: TypeAlias = Mapping[str, float]
"""One run's numbers, keyed by ``Metric.key``."""

Run: TypeAlias = Callable[[], Awaitable[Sample]]
"""One side of a workload, sized and ready to run inside ``trio.run``."""

Side: TypeAlias = Literal["actorkit", "baseline"]


def expect(condition: bool, failure: str) -> None:
    """Check a workload's result; unlike ``assert`` it also runs under ``python -O``."""
    if not condition:
        raise AssertionError(failure)


class Better(enum.Enum):
    """Which way a metric improves."""

    HIGHER = "higher"
    LOWER = "lower"


@attrs.frozen
class Metric:
    key: str
    label: str
    unit: str
    better: Better
    decimals: int = 0

    def best(self, values: Sequence[float]) -> float:
        return max(values) if self.better is Better.HIGHER else min(values)

    def format(self, value: float) -> str:
        return f"{value:,.{self.decimals}f}"

    @property
    def ratio_meaning(self) -> str:
        sign = ">" if self.better is Better.HIGHER else "<"
        return f"actorkit / raw trio; {sign} 1 means actorkit is better"


_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
}


@attrs.frozen
class Bound:
    """A condition on the ratio (``subject="ratio"``) or on actorkit's own best value."""

    subject: str = attrs.field(validator=attrs.validators.in_(("ratio", "actorkit")))
    comparison: str = attrs.field(validator=attrs.validators.in_(tuple(_COMPARISONS)))
    limit: float

    def holds(self, ratio: float, actorkit: float) -> bool:
        value = ratio if self.subject == "ratio" else actorkit
        return _COMPARISONS[self.comparison](value, self.limit)

    def __str__(self) -> str:
        return f"{self.subject} {self.comparison} {self.limit:g}"


@attrs.frozen
class Target:
    """What a metric must reach (``required``) and what we would like it to reach (``aim``)."""

    metric: str
    required: Bound
    aim: Bound | None = None


@attrs.frozen
class Workload:
    key: str
    title: str
    sizes: Mapping[str, int]
    metrics: tuple[Metric, ...]
    targets: tuple[Target, ...]
    actorkit: Run
    baseline: Run
    warmup_actorkit: Run
    warmup_baseline: Run
    max_repetitions: int | None = None
    """At most this many measured repetitions (a long run whose samples are a distribution)."""


@attrs.frozen
class Result:
    workload: Workload
    actorkit: tuple[Sample, ...]
    baseline: tuple[Sample, ...]

    def values(self, side: Side, metric: Metric) -> list[float]:
        samples = self.actorkit if side == "actorkit" else self.baseline
        return [sample[metric.key] for sample in samples]

    def best(self, side: Side, metric: Metric) -> float:
        return metric.best(self.values(side, metric))

    def ratio(self, metric: Metric) -> float:
        baseline = self.best("baseline", metric)
        return self.best("actorkit", metric) / baseline if baseline else math.inf

    def verdict(self, target: Target) -> tuple[bool, bool | None]:
        """(required target met, aim met or None without an aim)."""
        metric = next(m for m in self.workload.metrics if m.key == target.metric)
        ratio, actorkit = self.ratio(metric), self.best("actorkit", metric)
        aim = None if target.aim is None else target.aim.holds(ratio, actorkit)
        return target.required.holds(ratio, actorkit), aim


# -- measuring ---------------------------------------------------------------------------------


async def measure(workload: Workload, repetitions: int) -> Result:
    """Warm both sides up, then run baseline, actorkit, baseline, ... ``repetitions`` times
    (or ``workload.max_repetitions`` if that is fewer)."""
    if workload.max_repetitions is not None:
        repetitions = min(repetitions, workload.max_repetitions)
    await _fresh(workload.warmup_baseline)
    await _fresh(workload.warmup_actorkit)
    actorkit: list[Sample] = []
    baseline: list[Sample] = []
    for repetition in range(1, repetitions + 1):
        print(f"  {workload.key} repetition {repetition}/{repetitions}", file=sys.stderr)
        baseline.append(await _fresh(workload.baseline))
        actorkit.append(await _fresh(workload.actorkit))
    return Result(workload, tuple(actorkit), tuple(baseline))


async def _fresh(run: Run) -> Sample:
    gc.collect()
    return await run()


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile of already sorted values (``fraction`` 0.5 is the median)."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


# -- the table ---------------------------------------------------------------------------------

COLUMNS = ("workload", "actorkit", "raw trio", "ratio", "target")


def render_header(settings: Mapping[str, object]) -> str:
    width = max(len(name) for name in settings)
    lines = ["actorkit benchmarks"] + [
        f"  {name:<{width}}  {_setting(value)}" for name, value in settings.items()
    ]
    return "\n".join(lines)


def _setting(value: object) -> str:
    if isinstance(value, Mapping):
        return "; ".join(f"{key}: {_setting(inner)}" for key, inner in value.items())
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def render_table(results: Sequence[Result]) -> str:
    rows = [COLUMNS] + [row for result in results for row in _rows(result)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [_line(row, widths) for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    lines.append(
        "ratio = actorkit / raw trio of each metric: for rates > 1 means actorkit is faster; "
        "for latency and memory < 1 means actorkit is better."
    )
    return "\n".join(lines)


def _line(row: Sequence[str], widths: Sequence[int]) -> str:
    cells = [row[0].ljust(widths[0])]
    cells += [cell.rjust(width) for cell, width in zip(row[1:4], widths[1:4], strict=True)]
    cells.append(row[4])
    return " | ".join(cells).rstrip()


def _rows(result: Result) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for metric in result.workload.metrics:
        targets = [t for t in result.workload.targets if t.metric == metric.key]
        rows.append(
            (
                f"{result.workload.key} {metric.label} ({metric.unit})",
                metric.format(result.best("actorkit", metric)),
                metric.format(result.best("baseline", metric)),
                f"{result.ratio(metric):.2f}",
                "; ".join(_describe_target(result, target) for target in targets) or "-",
            )
        )
    return rows


def _describe_target(result: Result, target: Target) -> str:
    passed, aim_met = result.verdict(target)
    text = f"{target.required} {'PASS' if passed else 'FAIL'}"
    if target.aim is not None:
        text += f" (aim {target.aim}: {'met' if aim_met else 'not met'})"
    return text


# -- the JSON document -------------------------------------------------------------------------


def json_document(settings: Mapping[str, object], results: Sequence[Result]) -> dict[str, Any]:
    workloads = [_workload_json(result) for result in results]
    passed = all(target["passed"] for w in workloads for target in w["targets"])
    return {"settings": dict(settings), "workloads": workloads, "all_targets_passed": passed}


def _workload_json(result: Result) -> dict[str, Any]:
    workload = result.workload
    return {
        "key": workload.key,
        "title": workload.title,
        "sizes": dict(workload.sizes),
        "metrics": [_metric_json(result, metric) for metric in workload.metrics],
        "targets": [_target_json(result, target) for target in workload.targets],
    }


def _metric_json(result: Result, metric: Metric) -> dict[str, Any]:
    return {
        "key": metric.key,
        "label": metric.label,
        "unit": metric.unit,
        "better": metric.better.value,
        "actorkit": _side_json(result, "actorkit", metric),
        "raw_trio": _side_json(result, "baseline", metric),
        "ratio": result.ratio(metric),
        "ratio_meaning": metric.ratio_meaning,
    }


def _side_json(result: Result, side: Side, metric: Metric) -> dict[str, Any]:
    values = result.values(side, metric)
    return {"best": metric.best(values), "median": statistics.median(values), "samples": values}


def _target_json(result: Result, target: Target) -> dict[str, Any]:
    passed, aim_met = result.verdict(target)
    return {
        "metric": target.metric,
        "required": str(target.required),
        "passed": passed,
        "aim": None if target.aim is None else str(target.aim),
        "aim_met": aim_met,
    }

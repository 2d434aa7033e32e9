"""The restart policy against obviously-correct models.

The budget model keeps every restart stamp forever and counts the ones in ``[now - within,
now]`` by brute force; ``record_restart`` keeps only a pruned tuple and must agree with it at
every step. Backoff delays are checked against the api.md formula, written out in the test.
"""

from __future__ import annotations

import itertools

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from actorkit._budget import (
    Backoff,
    RestartBudget,
    backoff_delay,
    needs_draw,
    next_attempt,
    record_restart,
    restarts_in_window,
)

# --- strategies ----------------------------------------------------------------------------


@st.composite
def budgets(draw: st.DrawFn) -> RestartBudget:
    within = draw(
        st.one_of(
            st.integers(1, 40).map(lambda quarters: quarters / 4),  # exact boundaries likely
            st.floats(min_value=1e-6, max_value=1e3),
        )
    )
    return RestartBudget(max_restarts=draw(st.integers(0, 6)), within=within)


@st.composite
def restart_times(draw: st.DrawFn, budget: RestartBudget) -> list[float]:
    """Non-decreasing trio times; gaps often 0, exactly `within`, or on a 1/4 grid."""
    start = draw(st.one_of(st.just(0.0), st.floats(min_value=0, max_value=1e6)))
    gap = st.one_of(
        st.just(0.0),
        st.just(budget.within),
        st.integers(0, 20).map(lambda quarters: quarters / 4),
        st.floats(min_value=0, max_value=3 * budget.within),
    )
    gaps = draw(st.lists(gap, max_size=30))
    # Adding a non-negative float never decreases a float, so the sums are non-decreasing.
    return list(itertools.accumulate(gaps, initial=start))


@st.composite
def backoffs(draw: st.DrawFn) -> Backoff:
    initial = draw(
        st.one_of(
            st.just(0.0),
            st.floats(min_value=0, max_value=100),
            st.floats(min_value=0, allow_infinity=False),
        )
    )
    maximum = draw(
        st.one_of(
            st.just(initial),
            st.floats(min_value=initial, max_value=max(initial, 1e3)),
            st.floats(min_value=initial, allow_infinity=False),
        )
    )
    return Backoff(
        initial=initial,
        max=maximum,
        factor=draw(
            st.one_of(
                st.just(1.0),
                st.floats(min_value=1, max_value=1 + 1e-9),  # creeps up: many steps to max
                st.floats(min_value=1, max_value=10),
                st.floats(min_value=1, allow_infinity=False),
            )
        ),
        jitter=draw(st.one_of(st.just(0.0), st.just(1.0), st.floats(min_value=0, max_value=1))),
        reset_after=draw(st.none() | st.floats(min_value=1e-3, max_value=1e3)),
    )


attempts = st.one_of(st.integers(1, 64), st.integers(1, 5000), st.integers(1, 10**400))
draws = st.floats(min_value=-1, max_value=1)


def formula(backoff: Backoff, attempt: int, u: float) -> float | None:
    """api.md, literally; None where `factor ** (attempt - 1)` overflows a float."""
    try:
        base = min(backoff.max, backoff.initial * backoff.factor ** (attempt - 1))
    except OverflowError:
        return None
    return min(backoff.max, max(0.0, base * (1 + backoff.jitter * u)))


# --- the budget ----------------------------------------------------------------------------


class Model:
    """Every stamp ever recorded; the window counted by brute force."""

    def __init__(self, budget: RestartBudget) -> None:
        self.budget = budget
        self.stamps: list[float] = []

    def in_window(self, now: float) -> list[float]:
        return [s for s in self.stamps if now - self.budget.within <= s <= now]

    def restart(self, now: float) -> bool:
        self.stamps.append(now)
        return len(self.in_window(now)) > self.budget.max_restarts


@settings(deadline=None)
@given(st.data())
def test_record_restart_agrees_with_the_model_at_every_step(data: st.DataObject) -> None:
    budget = data.draw(budgets())
    model = Model(budget)
    stamps: tuple[float, ...] = ()
    for now in data.draw(restart_times(budget)):
        decision = record_restart(stamps, now, budget)
        assert decision.exceeded == model.restart(now)
        # Exact, not just a bound: the kept stamps are precisely the window's stamps.
        assert list(decision.stamps) == model.in_window(now)
        assert restarts_in_window(decision.stamps, now, budget) == len(decision.stamps)
        stamps = decision.stamps


@settings(deadline=None)
@given(st.data())
def test_pruned_stamps_never_matter_again(data: st.DataObject) -> None:
    budget = data.draw(budgets())
    times = data.draw(restart_times(budget))
    stamps: tuple[float, ...] = ()
    for now in times:
        stamps = record_restart(stamps, now, budget).stamps
    later = times[-1] + data.draw(st.floats(min_value=0, max_value=3 * budget.within))
    assert restarts_in_window(stamps, later, budget) == restarts_in_window(
        tuple(times), later, budget
    )


@settings(deadline=None)
@given(st.data())
def test_a_supervisor_that_gives_up_at_once_keeps_at_most_max_restarts_plus_one(
    data: st.DataObject,
) -> None:
    budget = data.draw(budgets())
    stamps: tuple[float, ...] = ()
    for now in data.draw(restart_times(budget)):
        decision = record_restart(stamps, now, budget)
        assert len(decision.stamps) <= budget.max_restarts + 1
        assert decision.exceeded == (len(decision.stamps) == budget.max_restarts + 1)
        if decision.exceeded:
            break
        stamps = decision.stamps


# --- backoff -------------------------------------------------------------------------------


@settings(deadline=None)
@given(backoffs(), attempts, draws)
def test_delay_is_within_zero_and_max(backoff: Backoff, attempt: int, u: float) -> None:
    assert 0.0 <= backoff_delay(backoff, attempt, u) <= backoff.max


@settings(deadline=None)
@given(backoffs(), st.integers(1, 5000), draws)
def test_delay_equals_the_formula_wherever_the_formula_is_defined(
    backoff: Backoff, attempt: int, u: float
) -> None:
    expected = formula(backoff, attempt, u if needs_draw(backoff) else 0.0)
    if expected is not None:
        assert backoff_delay(backoff, attempt, u) == expected


@settings(deadline=None)
@given(backoffs(), attempts, st.integers(0, 64), draws)
def test_without_jitter_delays_never_decrease(
    backoff: Backoff, attempt: int, step: int, u: float
) -> None:
    steady = attrs.evolve(backoff, jitter=0.0)
    assert not needs_draw(steady)
    assert backoff_delay(steady, attempt, u) <= backoff_delay(steady, attempt + step, u)


@settings(deadline=None)
@given(backoffs(), attempts, draws)
def test_a_zero_draw_gives_the_base_and_the_delay_grows_with_the_draw(
    backoff: Backoff, attempt: int, u: float
) -> None:
    base = backoff_delay(attrs.evolve(backoff, jitter=0.0), attempt, 0.0)
    assert backoff_delay(backoff, attempt, 0.0) == base
    assert needs_draw(backoff) == (backoff.jitter > 0)
    low, high = sorted([0.0, u])
    assert backoff_delay(backoff, attempt, low) <= backoff_delay(backoff, attempt, high)


@settings(deadline=None)
@given(backoffs(), st.integers(1, 5000))
def test_huge_attempts_reach_max_once_base_does(backoff: Backoff, attempt: int) -> None:
    steady = attrs.evolve(backoff, jitter=0.0)
    if backoff_delay(steady, attempt, 0.0) == backoff.max:
        assert backoff_delay(steady, attempt + 10**400, 0.0) == backoff.max


# --- consecutive attempts ------------------------------------------------------------------


@settings(deadline=None)
@given(
    st.one_of(st.none(), backoffs()),
    budgets(),
    # How long each incarnation ran before failing, and how long each restart waited, in
    # eighths of a second so that every time below is exact in binary floating point.
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 400)), min_size=1, max_size=30),
)
def test_attempt_counts_the_restarts_since_the_last_stable_run(
    backoff: Backoff | None, budget: RestartBudget, runs: list[tuple[int, int]]
) -> None:
    stable = budget.within if backoff is None else backoff.effective_reset_after
    ran = [eighths / 8 for eighths, _ in runs]
    attempt, started, last_restart_at = 0, 0.0, None
    for index, (run_for, (_, wait)) in enumerate(zip(ran, runs, strict=True)):
        failed_at = started + run_for
        attempt = next_attempt(attempt, last_restart_at, failed_at, backoff, budget=budget)
        # Brute force: the burst began at the latest failure that ended a stable run (the
        # first failure always begins one); n is this failure's position in the burst.
        burst_start = max(i for i in range(index + 1) if i == 0 or ran[i] >= stable)
        assert attempt == index - burst_start + 1
        started = last_restart_at = failed_at + wait / 8

"""Boundaries of the restart policy: budget window, backoff sequence, jitter clamp, resets."""

from __future__ import annotations

import attrs
import pytest

from actorkit._budget import (
    Backoff,
    BudgetDecision,
    RestartBudget,
    backoff_delay,
    needs_draw,
    next_attempt,
    record_restart,
    restarts_in_window,
)

# Times below are multiples of 1/4 so that `now - within` is exact in binary floating point.


def record_all(times: list[float], budget: RestartBudget) -> list[BudgetDecision]:
    stamps: tuple[float, ...] = ()
    decisions = []
    for now in times:
        decision = record_restart(stamps, now, budget)
        decisions.append(decision)
        stamps = decision.stamps
    return decisions


# --- RestartBudget -------------------------------------------------------------------------


def test_budget_defaults_match_api() -> None:
    assert RestartBudget() == RestartBudget(max_restarts=3, within=5.0)


def test_budget_within_int_is_stored_as_float() -> None:
    within = RestartBudget(within=10).within
    assert within == 10.0
    assert type(within) is float


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"within": -1}, ValueError, "RestartBudget(within=-1) must be > 0 seconds"),
        ({"within": 0}, ValueError, "RestartBudget(within=0) must be > 0 seconds"),
        ({"within": float("inf")}, ValueError, "RestartBudget(within=inf) must be a finite"),
        ({"within": float("nan")}, ValueError, "RestartBudget(within=nan) must be a finite"),
        ({"within": "5"}, TypeError, "RestartBudget(within=...) must be a number"),
        ({"max_restarts": -1}, ValueError, "RestartBudget(max_restarts=-1) must be >= 0"),
        ({"max_restarts": 2.0}, TypeError, "RestartBudget(max_restarts=...) must be an int"),
        ({"max_restarts": True}, TypeError, "RestartBudget(max_restarts=...) must be an int"),
    ],
)
def test_budget_validation_names_the_argument_and_the_fix(
    kwargs: dict[str, object], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as info:
        RestartBudget(**kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert fragment in message
    assert "e.g." in message


def test_budget_is_frozen_and_evolve_revalidates() -> None:
    budget = RestartBudget()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        budget.within = 1.0  # type: ignore[misc]
    assert attrs.evolve(budget, within=2).within == 2.0
    with pytest.raises(ValueError, match="within"):
        attrs.evolve(budget, within=-2.0)


# --- the sliding window --------------------------------------------------------------------


def test_exactly_max_restarts_in_window_is_not_exceeded_and_one_more_is() -> None:
    decisions = record_all([0.0, 1.0, 2.0, 3.0], RestartBudget(max_restarts=3, within=5.0))
    assert [d.exceeded for d in decisions] == [False, False, False, True]
    assert decisions[-1].stamps == (0.0, 1.0, 2.0, 3.0)


def test_max_restarts_zero_gives_up_at_the_first_failure() -> None:
    decision = record_restart((), 7.0, RestartBudget(max_restarts=0, within=5.0))
    assert decision == BudgetDecision(stamps=(7.0,), exceeded=True)


def test_stamp_exactly_at_now_minus_within_is_inside() -> None:
    budget = RestartBudget(max_restarts=3, within=5.0)
    decision = record_restart((0.0, 1.0, 2.0), 5.0, budget)
    assert decision.stamps == (0.0, 1.0, 2.0, 5.0)
    assert decision.exceeded
    assert restarts_in_window((0.0, 1.0, 2.0, 5.0), 5.0, budget) == 4


def test_stamp_just_older_than_the_window_is_dropped() -> None:
    budget = RestartBudget(max_restarts=3, within=5.0)
    decision = record_restart((0.0, 1.0, 2.0), 5.25, budget)
    assert decision.stamps == (1.0, 2.0, 5.25)
    assert not decision.exceeded


def test_pruning_drops_every_stamp_older_than_the_window() -> None:
    budget = RestartBudget(max_restarts=2, within=1.5)
    decisions = record_all([0.0, 0.5, 1.0, 10.0, 10.25, 11.75], budget)
    assert [d.stamps for d in decisions] == [
        (0.0,),
        (0.0, 0.5),
        (0.0, 0.5, 1.0),
        (10.0,),
        (10.0, 10.25),
        (10.25, 11.75),
    ]
    assert [d.exceeded for d in decisions] == [False, False, True, False, False, False]


def test_slow_failures_never_exceed_the_budget() -> None:
    budget = RestartBudget(max_restarts=1, within=2.0)
    decisions = record_all([2.25 * i for i in range(50)], budget)
    assert not any(d.exceeded for d in decisions)
    assert all(len(d.stamps) == 1 for d in decisions)


def test_equal_stamps_all_count() -> None:
    decisions = record_all([3.0, 3.0, 3.0], RestartBudget(max_restarts=2, within=0.25))
    assert decisions[-1] == BudgetDecision(stamps=(3.0, 3.0, 3.0), exceeded=True)


def test_restarts_in_window_counts_only_the_closed_window() -> None:
    budget = RestartBudget(max_restarts=3, within=2.0)
    stamps = (0.0, 0.75, 1.0, 2.5, 3.0)
    assert restarts_in_window(stamps, 3.0, budget) == 3  # 1.0, 2.5, 3.0
    assert restarts_in_window(stamps, 2.5, budget) == 3  # 0.75 ... 2.5 (3.0 is later)
    assert restarts_in_window((), 2.5, budget) == 0


def test_record_restart_rejects_a_clock_going_backwards() -> None:
    with pytest.raises(ValueError, match="never goes backwards"):
        record_restart((4.0,), 3.0, RestartBudget())


# --- Backoff values ------------------------------------------------------------------------


def test_backoff_defaults_and_effective_reset_after() -> None:
    backoff = Backoff(initial=1, max=30)
    assert backoff == Backoff(initial=1.0, max=30.0, factor=2.0, jitter=0.0, reset_after=None)
    assert backoff.effective_reset_after == 30.0
    assert attrs.evolve(backoff, reset_after=90).effective_reset_after == 90.0


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"initial": -1.0, "max": 1.0}, ValueError, "Backoff(initial=-1.0) must be >= 0"),
        ({"initial": 2.0, "max": 1.0}, ValueError, "Backoff(max=1.0) must be >= initial (2.0)"),
        ({"initial": 1.0, "max": float("inf")}, ValueError, "Backoff(max=inf) must be a finite"),
        ({"initial": 1.0, "max": 2.0, "factor": 0.5}, ValueError, "Backoff(factor=0.5) must"),
        ({"initial": 1.0, "max": 2.0, "jitter": -0.1}, ValueError, "Backoff(jitter=-0.1) must"),
        ({"initial": 1.0, "max": 2.0, "jitter": 1.5}, ValueError, "Backoff(jitter=1.5) must"),
        ({"initial": 1.0, "max": 2.0, "reset_after": 0}, ValueError, "Backoff(reset_after=0)"),
        ({"initial": None, "max": 2.0}, TypeError, "Backoff(initial=...) must be a number"),
    ],
)
def test_backoff_validation_names_the_argument_and_the_fix(
    kwargs: dict[str, object], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as info:
        Backoff(**kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert fragment in message
    assert "e.g." in message


# --- delays --------------------------------------------------------------------------------


def test_backoff_sequence_doubles_then_stays_at_max() -> None:
    backoff = Backoff(initial=1.0, max=30.0, factor=2.0)
    assert [backoff_delay(backoff, n, 0.0) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_no_backoff_means_an_immediate_restart() -> None:
    assert backoff_delay(None, 1, 0.0) == 0.0
    assert backoff_delay(None, 50, 0.0) == 0.0
    assert not needs_draw(None)


def test_factor_one_keeps_the_delay_constant() -> None:
    backoff = Backoff(initial=0.5, max=10.0, factor=1.0)
    assert {backoff_delay(backoff, n, 0.0) for n in (1, 2, 100, 10**400)} == {0.5}


def test_huge_attempts_do_not_overflow() -> None:
    assert backoff_delay(Backoff(initial=1.0, max=30.0), 10**6, 0.0) == 30.0
    assert backoff_delay(Backoff(initial=1.0, max=30.0), 10**400, 0.0) == 30.0
    # max / initial beyond float range: factor**(n-1) overflows before base reaches max.
    tiny_to_huge = Backoff(initial=1e-300, max=1e300, factor=10.0)
    assert backoff_delay(tiny_to_huge, 401, 0.0) == pytest.approx(1e100)
    assert backoff_delay(tiny_to_huge, 601, 0.0) == 1e300
    assert backoff_delay(tiny_to_huge, 10**400, 0.0) == 1e300


def test_jitter_spreads_the_base_by_a_fraction() -> None:
    backoff = Backoff(initial=4.0, max=30.0, jitter=0.5)
    assert needs_draw(backoff)
    assert backoff_delay(backoff, 1, 0.0) == 4.0
    assert backoff_delay(backoff, 1, 1.0) == 6.0
    assert backoff_delay(backoff, 1, -1.0) == 2.0
    assert backoff_delay(backoff, 1, 0.5) == 5.0


def test_jitter_is_clamped_at_zero_and_at_max() -> None:
    backoff = Backoff(initial=1.0, max=30.0, jitter=1.0)
    assert backoff_delay(backoff, 1, -1.0) == 0.0
    assert backoff_delay(backoff, 6, 1.0) == 30.0  # base 30, +100% clamped
    assert backoff_delay(backoff, 5, 1.0) == 30.0  # base 16 -> 32 clamped
    assert backoff_delay(backoff, 5, 0.75) == 28.0


def test_without_jitter_the_draw_is_ignored_and_not_needed() -> None:
    backoff = Backoff(initial=1.0, max=30.0)
    assert not needs_draw(backoff)
    assert backoff_delay(backoff, 3, 1.0) == backoff_delay(backoff, 3, 0.0) == 4.0


@pytest.mark.parametrize(
    ("attempt", "error"), [(0, ValueError), (-1, ValueError), (1.0, TypeError)]
)
def test_backoff_delay_rejects_bad_attempts(attempt: int, error: type[Exception]) -> None:
    with pytest.raises(error, match="attempt="):
        backoff_delay(Backoff(initial=1.0, max=2.0), attempt, 0.0)


@pytest.mark.parametrize("u", [1.5, -1.01, float("nan")])
def test_backoff_delay_rejects_a_draw_outside_minus_one_one(u: float) -> None:
    with pytest.raises(ValueError, match=r"rng\.uniform\(-1, 1\)"):
        backoff_delay(Backoff(initial=1.0, max=2.0, jitter=0.5), 1, u)


# --- consecutive attempts and their reset --------------------------------------------------

BUDGET = RestartBudget(max_restarts=3, within=5.0)
BACKOFF = Backoff(initial=1.0, max=30.0)


def test_first_restart_is_attempt_one() -> None:
    assert next_attempt(0, None, 12.0, BACKOFF, budget=BUDGET) == 1
    assert next_attempt(0, None, 12.0, None, budget=BUDGET) == 1


def test_failing_soon_after_a_restart_counts_up() -> None:
    assert next_attempt(1, 10.0, 10.0, BACKOFF, budget=BUDGET) == 2
    assert next_attempt(4, 10.0, 39.75, BACKOFF, budget=BUDGET) == 5


def test_running_reset_after_seconds_resets_to_one() -> None:
    # Default reset_after is max (30 s): a run of exactly 30 s counts as stable.
    assert next_attempt(4, 10.0, 40.0, BACKOFF, budget=BUDGET) == 1
    explicit = attrs.evolve(BACKOFF, reset_after=2.0)
    assert next_attempt(4, 10.0, 11.75, explicit, budget=BUDGET) == 5
    assert next_attempt(4, 10.0, 12.0, explicit, budget=BUDGET) == 1


def test_without_backoff_the_budget_window_is_the_stable_period() -> None:
    assert next_attempt(2, 10.0, 14.75, None, budget=BUDGET) == 3
    assert next_attempt(2, 10.0, 15.0, None, budget=BUDGET) == 1


def test_next_attempt_rejects_inconsistent_input() -> None:
    with pytest.raises(ValueError, match="never goes backwards"):
        next_attempt(1, 10.0, 9.0, BACKOFF, budget=BUDGET)
    with pytest.raises(ValueError, match="previous_attempt=-1"):
        next_attempt(-1, None, 9.0, BACKOFF, budget=BUDGET)


def test_a_supervisor_walk_through() -> None:
    """A child that fails at once three times, then runs 30 s, then fails again."""
    backoff = Backoff(initial=1.0, max=30.0, reset_after=30.0)
    budget = RestartBudget(max_restarts=3, within=5.0)
    attempt, started = 0, 0.0
    stamps: tuple[float, ...] = ()
    delays: list[float] = []
    attempts: list[int] = []
    for run_for in [0.0, 0.0, 0.0, 30.0]:
        now = started + run_for  # the child fails
        attempt = next_attempt(attempt, started if attempt else None, now, backoff, budget=budget)
        decision = record_restart(stamps, now, budget)
        assert not decision.exceeded
        stamps = decision.stamps
        delay = backoff_delay(backoff, attempt, 0.0)
        attempts.append(attempt)
        delays.append(delay)
        started = now + delay  # the new incarnation starts after the delay
    assert attempts == [1, 2, 3, 1]
    assert delays == [1.0, 2.0, 4.0, 1.0]
    assert stamps == (37.0,)

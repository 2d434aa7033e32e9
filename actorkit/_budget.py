"""Restart policy: how many restarts a supervisor tolerates, and how long it waits before each.

Pure functions of (restart stamps, now, policy) and frozen values; no clock, no randomness, no
trio. The supervisor reads ``trio.current_time()`` and draws from the system's ``random.Random``,
then asks this module what to do, so the policy can be property-tested against a model.

**Budget** (OTP's intensity within a period, on float seconds). Every restart is stamped with
the trio time it was decided. With ``RestartBudget(max_restarts, within)`` the supervisor gives
up when::

    count(s in stamps if s >= now - within) > max_restarts      # window [now - within, now]

A stamp exactly at ``now - within`` is still inside. ``max_restarts=3`` tolerates 3 restarts in
the window and gives up at the 4th; ``max_restarts=0`` gives up at the first failure.

**Backoff** (what OTP lacks). Before consecutive restart ``n`` (n = 1, 2, ...)::

    base  = min(max, initial * factor ** (n - 1))
    delay = clamp(base * (1 + jitter * u), 0, max)        u drawn uniformly from [-1, 1]

Without a ``Backoff`` the delay is 0 (immediate restart, as in OTP). ``n`` goes back to 1 once
the child has run ``reset_after`` seconds (default ``max``) without failing; see
``next_attempt`` for the rule without a backoff.
"""

from __future__ import annotations

import bisect
import math

import attrs


def _finite(owner: str, argument: str, value: object, example: str) -> float:
    """``value`` (an int or float) as a finite float, or an error naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{owner}({argument}=...) must be a number, got {value!r} of type "
            f"{type(value).__name__}; pass e.g. {argument}={example}"
        )
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(
            f"{owner}({argument}={value!r}) must be a finite number; pass e.g. {argument}={example}"
        )
    return number


@attrs.frozen
class RestartBudget:
    """Give up when more than ``max_restarts`` restarts fall within ``within`` seconds.

    The window is ``[now - within, now]`` on the trio clock, both ends included.
    """

    max_restarts: int = 3
    within: float = 5.0

    def __attrs_post_init__(self) -> None:
        max_restarts: object = self.max_restarts
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int):
            raise TypeError(
                f"RestartBudget(max_restarts=...) must be an int, got {max_restarts!r} of type "
                f"{type(max_restarts).__name__}; pass e.g. max_restarts=3"
            )
        if max_restarts < 0:
            raise ValueError(
                f"RestartBudget(max_restarts={max_restarts}) must be >= 0; pass how many "
                "restarts the window tolerates, e.g. max_restarts=3 (0 gives up at the first "
                "failure)"
            )
        within = _finite("RestartBudget", "within", self.within, "5.0")
        if within <= 0:
            raise ValueError(
                f"RestartBudget(within={self.within!r}) must be > 0 seconds; pass the length "
                "of the sliding window, e.g. within=5.0"
            )
        object.__setattr__(self, "within", within)


@attrs.frozen
class BudgetDecision:
    """The outcome of one restart: the stamps still in the window, and whether to give up.

    ``stamps`` holds the new restart's stamp and every earlier one inside the window, oldest
    first; pass it back to the next ``record_restart``. ``exceeded`` means the supervisor gives
    up instead of restarting.
    """

    stamps: tuple[float, ...]
    exceeded: bool


def _check_now(stamps: tuple[float, ...], now: float) -> None:
    if stamps and now < stamps[-1]:
        raise ValueError(
            f"now={now!r} is earlier than the last restart stamp {stamps[-1]!r}; the trio "
            "clock never goes backwards: pass trio.current_time() and the stamps of the "
            "previous BudgetDecision"
        )


def restarts_in_window(stamps: tuple[float, ...], now: float, budget: RestartBudget) -> int:
    """How many of ``stamps`` (oldest first) fall in ``[now - budget.within, now]``."""
    cutoff = now - budget.within
    return sum(1 for stamp in stamps if cutoff <= stamp <= now)


def record_restart(stamps: tuple[float, ...], now: float, budget: RestartBudget) -> BudgetDecision:
    """Stamp a restart at ``now`` and decide whether the budget is exceeded.

    ``stamps`` are the previous decision's stamps (``()`` at first), oldest first, none later
    than ``now``. Stamps older than ``now - budget.within`` are dropped; one exactly at it is
    kept. ``exceeded`` is true when the kept stamps, the new one included, number more than
    ``budget.max_restarts``. A supervisor stops at the first exceeded decision, so at most
    ``max_restarts + 1`` stamps are ever kept.
    """
    _check_now(stamps, now)
    cutoff = now - budget.within
    # Stamps are non-decreasing, so the ones still in the window are a suffix.
    kept = (*stamps[bisect.bisect_left(stamps, cutoff) :], float(now))
    return BudgetDecision(stamps=kept, exceeded=len(kept) > budget.max_restarts)


@attrs.frozen
class Backoff:
    """Exponential backoff with clamped jitter before each consecutive restart.

    Before consecutive restart ``n`` the delay is ``base = min(max, initial * factor**(n-1))``
    spread by ``jitter`` (a fraction of ``base``) and clamped to ``[0, max]``. ``n`` goes back
    to 1 after the child has run ``effective_reset_after`` seconds without failing:
    ``reset_after``, or ``max`` when it is None.
    """

    initial: float
    max: float
    factor: float = 2.0
    jitter: float = 0.0
    reset_after: float | None = None

    def __attrs_post_init__(self) -> None:
        initial = _finite("Backoff", "initial", self.initial, "0.1")
        if initial < 0:
            raise ValueError(
                f"Backoff(initial={self.initial!r}) must be >= 0 seconds; pass the delay "
                "before the first restart, e.g. initial=0.1"
            )
        maximum = _finite("Backoff", "max", self.max, "30.0")
        if maximum < initial:
            raise ValueError(
                f"Backoff(max={self.max!r}) must be >= initial ({self.initial!r}); pass the "
                "longest delay, e.g. max=30.0"
            )
        factor = _finite("Backoff", "factor", self.factor, "2.0")
        if factor < 1:
            raise ValueError(
                f"Backoff(factor={self.factor!r}) must be >= 1; pass the growth per restart, "
                "e.g. factor=2.0 (1.0 keeps the delay constant)"
            )
        jitter = _finite("Backoff", "jitter", self.jitter, "0.1")
        if not 0 <= jitter <= 1:
            raise ValueError(
                f"Backoff(jitter={self.jitter!r}) must be between 0 and 1; pass the spread as "
                "a fraction of the delay, e.g. jitter=0.1 for +/-10%"
            )
        reset_after = None
        if self.reset_after is not None:
            reset_after = _finite("Backoff", "reset_after", self.reset_after, "60.0")
            if reset_after <= 0:
                raise ValueError(
                    f"Backoff(reset_after={self.reset_after!r}) must be > 0 seconds; pass how "
                    "long a child must run without failing to start again from initial, "
                    "e.g. reset_after=60.0, or None for max"
                )
        for name, value in [
            ("initial", initial),
            ("max", maximum),
            ("factor", factor),
            ("jitter", jitter),
            ("reset_after", reset_after),
        ]:
            object.__setattr__(self, name, value)

    @property
    def effective_reset_after(self) -> float:
        """Seconds of running without failure after which ``n`` goes back to 1.

        ``reset_after``, or ``max`` when it is None (so with ``max=0`` every restart is a first
        restart; its delay is 0 either way).
        """
        return self.max if self.reset_after is None else self.reset_after


def needs_draw(backoff: Backoff | None) -> bool:
    """Whether ``backoff_delay`` uses its ``u``: true exactly when there is jitter.

    The caller draws ``u = rng.uniform(-1, 1)`` from the system's ``random.Random`` exactly
    once per restart when this is true, and not at all when it is false (passing ``u=0.0``).
    The number of draws then depends only on the policy and the failures, so a seeded run
    replays the same delays and every later random choice stays the same.
    """
    return backoff is not None and backoff.jitter > 0


def _check_count(argument: str, value: int, least: int, fix: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{argument}={value!r} must be an int >= {least}, not {type(value).__name__}; {fix}"
        )
    if value < least:
        raise ValueError(f"{argument}={value!r} must be >= {least}; {fix}")


def _base_delay(backoff: Backoff, attempt: int) -> float:
    """``min(max, initial * factor**(attempt-1))``, without OverflowError for any attempt."""
    initial, maximum, factor = backoff.initial, backoff.max, backoff.factor
    if initial == 0 or factor == 1:
        return initial  # initial <= max
    exponent = attempt - 1
    try:
        growth = factor**exponent
    except OverflowError:
        # factor**exponent is beyond float range (or exponent beyond float itself): decide in
        # log space. Comparing an int with a float is exact, so no further overflow.
        log_factor = math.log(factor)
        log_limit = (math.log(maximum) - math.log(initial)) / log_factor
        if exponent >= log_limit:
            return maximum
        # Reached only when max / initial is itself beyond float range.
        return min(maximum, math.exp(math.log(initial) + exponent * log_factor))
    # initial * growth may round to inf; min() then gives max.
    return min(maximum, initial * growth)


def backoff_delay(backoff: Backoff | None, attempt: int, u: float) -> float:
    """Seconds to wait before consecutive restart ``attempt`` (1, 2, ...).

    ``clamp(base * (1 + jitter * u), 0, max)`` with ``base = min(max, initial *
    factor**(attempt-1))``; 0 without a backoff. ``u`` is the caller's draw in ``[-1, 1]``
    (see ``needs_draw``); it is ignored when there is no jitter, and ``u=0`` gives ``base``.
    """
    _check_count("attempt", attempt, 1, "pass the consecutive restart number from next_attempt")
    if not -1 <= u <= 1:
        raise ValueError(
            f"u={u!r} must be in [-1, 1]; draw it with rng.uniform(-1, 1) from the system's "
            "random.Random"
        )
    if backoff is None:
        return 0.0
    base = _base_delay(backoff, attempt)
    if backoff.jitter == 0:
        return base
    return min(backoff.max, max(0.0, base * (1 + backoff.jitter * u)))


def next_attempt(
    previous_attempt: int,
    last_restart_at: float | None,
    failed_at: float,
    backoff: Backoff | None,
    *,
    budget: RestartBudget,
) -> int:
    """The consecutive restart number ``n`` for a failure seen at ``failed_at``.

    ``previous_attempt`` is the ``n`` of the child's last restart (0 if it never restarted);
    ``last_restart_at`` is the trio time its current incarnation started running, after any
    backoff delay (None if it never restarted). The result is 1 when the child ran at least
    the stable period without failing (``failed_at - last_restart_at >= stable``), and
    ``previous_attempt + 1`` otherwise.

    The stable period is ``backoff.effective_reset_after`` (api.md). Without a backoff there is
    no delay to grow and ``n`` only labels events (``Restarting.attempt``); it then resets
    after ``budget.within`` seconds of running, by when every earlier restart stamp has reached
    the edge of the budget's window. So ``n`` always counts the restarts of the current burst
    of failures, the burst the budget judges, rather than growing for the life of the child
    (that total is the supervisor's ``restart_count``) or staying at 1 (which would say
    nothing).
    """
    _check_count(
        "previous_attempt", previous_attempt, 0, "pass the n of the last restart, 0 at first"
    )
    if previous_attempt == 0 or last_restart_at is None:
        return 1
    if failed_at < last_restart_at:
        raise ValueError(
            f"failed_at={failed_at!r} is earlier than last_restart_at={last_restart_at!r}; "
            "the trio clock never goes backwards: pass trio.current_time() for both"
        )
    stable = budget.within if backoff is None else backoff.effective_reset_after
    if failed_at - last_restart_at >= stable:
        return 1
    return previous_attempt + 1

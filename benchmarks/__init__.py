"""Benchmarks: actorkit against a minimal raw-trio baseline, measured in the same run.

Run them with ``python -m benchmarks`` (``--help`` for the options). Each workload family has
its own module (``messaging``: W1 one-way sends and W3 ping-pong; ``asks``: W2 sequential
asks; ``lifecycle``: W4 spawning, stopping and the memory of idle actors; ``restarts``: W5
supervised restarts; ``durable_actors``: PA1-PA3 persistent actors on SQLite, against the
raw SQLite single-row commit rate of the same disk; ``durable_processes``: D1-D5 durable
processes on SQLite: steps/s, emit-to-wake latency, durable sleeps, recovery after SIGKILL);
``_report`` holds the shared timing, table and JSON code. These are scripts, never timed
tests: they report ratios, and the machine they run on decides the absolute numbers.

The mailbox settings below apply to every actorkit actor the benchmarks spawn; the raw-trio
baselines use memory channels with the same bound.
"""

from __future__ import annotations

import actorkit as ak

MAX_INBOX = 1024
"""``Behavior(max_inbox=)`` of every benchmark actor, and the baselines' channel buffer."""

OVERFLOW = ak.Overflow.BLOCK
"""``Behavior(overflow=)``: senders fall back to ``await ref.send`` when ``send_nowait`` fails."""

ASK_TIMEOUT = 5.0
"""``ref.ask(..., timeout=)`` used wherever a benchmark asks."""

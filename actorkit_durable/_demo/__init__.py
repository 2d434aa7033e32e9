"""The demo: order fulfilment on a SQLite file (``python -m actorkit_durable demo``).

Each order is a durable process, ``/order/:order/fulfillment`` (``_shop.py``, the part a real
shop would deploy): it reserves stock (a step), races a payment signal against a payment
timeout (a durable timer), charges the card (a step whose gateway is sometimes down:
``GatewayDown``, a ``dur.RecoverableError``, leaves the order suspended with its
``last_error`` until it is retried), waits for the shipping signal and completes.

Around the processes, the same program simulates the world (``_world.py``): a shop that places
orders, customers who pay (some never do: their orders time out), couriers who ship, and an
operator who retries orders suspended by a card error. Payments and shipments are emitted with
idempotency keys, so a run that repeats one does not deliver it twice. ``_view.py`` draws the
progress; ``_run.py`` ties them together. Everything goes through the public API.

Ctrl-C closes the runtime cleanly; running the demo again resumes every order where it stopped.
The demo's own bookkeeping (its orders, seed and clock) is a persistent actor in the same file,
and durable time goes on from where the previous run stopped (``open_runtime(start_time=)``),
so an order that waited 2 s for its payment before a Ctrl-C has the rest of its timeout after.

    python -m actorkit_durable demo                  # about 20 s, on ./actorkit-demo.db
    python -m actorkit_durable demo --speed 5        # five times faster
    python -m actorkit_durable demo --reset          # start over with new orders
"""

from ._run import main as main
from ._shop import app as app

__all__ = ["app", "main"]

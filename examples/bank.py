"""A bank of account actors: concurrent transfers, rejected overdrafts, and a final audit.

Every account is an actor that owns its balance. Tellers are actors too: a teller handles one
transfer at a time by asking the source account to withdraw and then the target account to
deposit. The account holders are plain trio tasks that ask tellers for transfers to each
other, all at once; an auditor actor asks every account for its balance on a timer. At the
end the program checks that no money was created or lost.

    python examples/bank.py              # the real clock: takes about a second
    python examples/bank.py --seed 7     # a virtual clock: the same output on every run
"""

from __future__ import annotations

import argparse
import functools
from collections import Counter

import attrs
import trio

import actorkit as ak
import actorkit.testing

HOLDERS = ("alice", "bob", "carol", "dave", "erin")
OPENING_BALANCE = 100
TELLERS = 2
CLEARING_TIME = 0.03
"""Seconds a transfer's money spends between the two accounts."""
AUDIT_EVERY = 0.25
"""Seconds between two balance snapshots taken by the auditor."""


@attrs.frozen
class Log:
    """Prints a line stamped with the seconds since the bank opened."""

    start: float

    def __call__(self, text: str) -> None:
        print(f"{trio.current_time() - self.start:6.3f}  {text}")


# -- accounts -----------------------------------------------------------------------------


@attrs.frozen
class Withdraw:
    amount: int
    reply: ak.Reply[bool]
    """True if withdrawn, False if the balance was too low (nothing is withdrawn then)."""


@attrs.frozen
class Deposit:
    amount: int
    reply: ak.Reply[int]
    """The new balance."""


@attrs.frozen
class GetBalance:
    reply: ak.Reply[int]


AccountMsg = Withdraw | Deposit | GetBalance
Account = ak.ActorRef[AccountMsg]


def handle_account(balance: int, msg: AccountMsg, tools: ak.Tools) -> int | None:
    """The state is the balance; returning None keeps it."""
    match msg:
        case Withdraw(amount=amount, reply=reply):
            if amount > balance:
                reply(False)
                return None
            reply(True)
            return balance - amount
        case Deposit(amount=amount, reply=reply):
            reply(balance + amount)
            return balance + amount
        case GetBalance(reply=reply):
            reply(balance)
            return None


def open_account(opening_balance: int) -> int:
    return opening_balance


account = ak.Behavior(name="account", init=open_account, handle=handle_account)


# -- tellers ------------------------------------------------------------------------------


@attrs.frozen
class Transfer:
    source: Account
    target: Account
    amount: int
    reply: ak.Reply[bool]
    """True if the money moved, False if the source had too little."""


@attrs.frozen
class TellerStats:
    done: int = 0
    rejected: int = 0
    moved: int = 0


@attrs.frozen
class GetStats:
    reply: ak.Reply[TellerStats]


TellerMsg = Transfer | GetStats


async def handle_teller(stats: TellerStats, msg: TellerMsg, tools: ak.Tools) -> TellerStats | None:
    match msg:
        case Transfer(source=source, target=target, amount=amount, reply=reply):
            # Withdraw first: the money is then never in two accounts at once.
            withdrawn: bool = await source.ask(lambda r: Withdraw(amount, r))
            if not withdrawn:
                reply(False)
                return attrs.evolve(stats, rejected=stats.rejected + 1)
            # While this handler waits, the teller's next transfers wait in its mailbox.
            await trio.sleep(CLEARING_TIME)
            await target.ask(lambda r: Deposit(amount, r))
            reply(True)
            return attrs.evolve(stats, done=stats.done + 1, moved=stats.moved + amount)
        case GetStats(reply=reply):
            reply(stats)
            return None


teller = ak.Behavior(name="teller", init=lambda ctx: TellerStats(), handle=handle_teller)


# -- the auditor --------------------------------------------------------------------------


@attrs.frozen
class Tick:
    pass


@attrs.frozen
class AuditorState:
    accounts: tuple[Account, ...]
    log: Log
    snapshots: int = 0


def start_auditor(ctx: tuple[tuple[Account, ...], Log]) -> AuditorState:
    accounts, log = ctx
    return AuditorState(accounts, log)


async def handle_auditor(state: AuditorState, msg: Tick, tools: ak.Tools) -> AuditorState:
    balances = [await ref.ask(GetBalance) for ref in state.accounts]
    shown = "  ".join(f"{ref.name} {b:3}" for ref, b in zip(state.accounts, balances, strict=True))
    # Transfers go on while the accounts answer, so this sum misses the money in flight
    # between two accounts; only the final audit, with every transfer finished, is exact.
    state.log(f"[auditor] {shown}  sum {sum(balances)}")
    # One pending tick at most: a timer with the same key replaces the previous one.
    tools.schedule(AUDIT_EVERY, Tick(), key="tick")
    return attrs.evolve(state, snapshots=state.snapshots + 1)


def stop_auditor(state: AuditorState, reason: object) -> None:
    state.log(f"[auditor] stopped ({reason}) after {state.snapshots} snapshots")


auditor = ak.Behavior(
    name="auditor", init=start_auditor, handle=handle_auditor, on_stop=stop_auditor
)


# -- account holders ----------------------------------------------------------------------


@attrs.define
class Tally:
    """What the account holders saw; the tasks share one (trio runs one task at a time)."""

    requested: int = 0
    done: int = 0
    rejected: int = 0


async def holder(
    me: Account,
    accounts: list[Account],
    tellers: list[ak.ActorRef[TellerMsg]],
    transfers: int,
    system: ak.ActorSystem,
    tally: Tally,
    log: Log,
) -> None:
    """Pay `transfers` random amounts to random other holders, one after the other."""
    rng = system.rng  # every random choice comes from the system's seeded generator
    others = [ref for ref in accounts if ref is not me]
    for _ in range(transfers):
        await trio.sleep(rng.uniform(0.02, 0.18))
        target = rng.choice(others)
        amount = rng.randrange(10, 100, 10)
        clerk = rng.choice(tellers)
        moved: bool = await clerk.ask(functools.partial(Transfer, me, target, amount))
        outcome = "done" if moved else "REJECTED: insufficient funds"
        log(f"{me.name:>5} pays {target.name:<5} {amount:3}  ({clerk.name}) {outcome}")
        tally.requested += 1
        if moved:
            tally.done += 1
        else:
            tally.rejected += 1


# -- the program --------------------------------------------------------------------------


@attrs.frozen
class Report:
    balances: dict[str, int]
    tellers: tuple[TellerStats, ...]
    tally: Tally
    events: Counter[str]


async def main(transfers: int) -> Report:
    log = Log(start=trio.current_time())
    events: Counter[str] = Counter()

    def count(event: ak.Event) -> None:
        events[type(event).__name__] += 1

    async with ak.open_actor_system(on_event=count) as system:
        accounts = [await system.spawn(account, ctx=OPENING_BALANCE, name=name) for name in HOLDERS]
        tellers = [await system.spawn(teller, name=f"teller-{n}") for n in range(1, TELLERS + 1)]
        watcher = await system.spawn(auditor, ctx=(tuple(accounts), log))
        log(f"bank open: {len(accounts)} accounts of {OPENING_BALANCE} each, {TELLERS} tellers")
        await watcher.send(Tick())

        tally = Tally()
        async with trio.open_nursery() as nursery:
            for me in accounts:
                nursery.start_soon(holder, me, accounts, tellers, transfers, system, tally, log)

        await watcher.stop()  # no snapshot may run during the final audit
        balances = {ref.name: await ref.ask(GetBalance) for ref in accounts}
        stats = tuple([await ref.ask(GetStats) for ref in tellers])
        log("all transfers finished; closing the bank")
    return Report(balances, stats, tally, events)


def audit(report: Report) -> None:
    """Print the summary and check that the books balance."""
    total = sum(report.balances.values())
    expected = OPENING_BALANCE * len(HOLDERS)
    done = sum(s.done for s in report.tellers)
    rejected = sum(s.rejected for s in report.tellers)
    tally = report.tally
    print()
    print("balances:  " + "  ".join(f"{name} {b}" for name, b in report.balances.items()))
    print(f"transfers: {tally.requested} requested, {done} done, {rejected} rejected")
    print(f"moved:     {sum(s.moved for s in report.tellers)}")
    counts = ", ".join(f"{name} {n}" for name, n in report.events.items())
    print(f"events:    {counts}; dead letters {report.events['DeadLetter']}")

    assert total == expected, f"total {total} != {expected}: money was created or lost"
    assert min(report.balances.values()) >= 0, "an account was overdrawn"
    assert (done, rejected) == (tally.done, tally.rejected), "tellers and holders disagree"
    assert done + rejected == tally.requested, "a transfer went unanswered"
    print(f"audit passed: total {total} == opening total {expected}, money conserved")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--seed",
        type=int,
        help="run on a virtual clock with this seed: the same output on every run",
    )
    parser.add_argument(
        "--transfers", type=int, default=8, help="transfers per account holder (default 8)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    program = functools.partial(main, args.transfers)
    if args.seed is None:
        report = trio.run(program)
    else:
        report = actorkit.testing.run(program, seed=args.seed).value
    audit(report)

"""The examples run as programs and check themselves: here they run in real subprocesses."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BANK = ROOT / "examples" / "bank.py"
HOLDERS = 5
OPENING_BALANCE = 100


def run_bank(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-W", "error", str(BANK), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (
        f"examples/bank.py {' '.join(args)} exited with {result.returncode}:\n"
        f"{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def check_books(output: str) -> None:
    """The program's own audit passed, and its printed numbers agree with it."""
    assert "audit passed" in output
    assert "money conserved" in output
    balances = re.search(r"^balances:\s+(.*)$", output, re.MULTILINE)
    assert balances is not None, output
    amounts = [int(amount) for amount in re.findall(r"\b\w+ (-?\d+)", balances[1])]
    assert len(amounts) == HOLDERS
    assert sum(amounts) == HOLDERS * OPENING_BALANCE
    assert min(amounts) >= 0

    transfers = re.search(r"^transfers: (\d+) requested, (\d+) done, (\d+) rejected$", output, re.M)
    assert transfers is not None, output
    requested, done, rejected = map(int, transfers.groups())
    assert requested == done + rejected > 0
    lines = re.findall(r" pays \w+ +\d+ +\(teller-\d\) (done|REJECTED)", output)
    assert len(lines) == requested
    assert lines.count("done") == done


def test_bank_runs_on_the_real_clock() -> None:
    check_books(run_bank())


def test_bank_with_a_seed_is_reproducible() -> None:
    first = run_bank("--seed", "7", "--transfers", "20")
    check_books(first)
    assert "REJECTED" in first  # the run exercises insufficient funds too
    assert first == run_bank("--seed", "7", "--transfers", "20")

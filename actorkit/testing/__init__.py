"""Deterministic testing: run a program under a mock clock with one seed for everything."""

from ._run import RunResult as RunResult
from ._run import run as run

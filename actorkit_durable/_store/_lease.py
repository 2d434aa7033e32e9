"""Lease owners: who holds a process, and whether that holder still exists.

An owner is ``"{hostname}:{pid}:{uuid}"``. A lease whose owner is a process of this host that
no longer exists is void at once (a restart after a crash need not wait for the lease to
expire); an owner on another host is trusted until its ``lease_until``.
"""

from __future__ import annotations

import os
import socket
import uuid

HOSTNAME = socket.gethostname()


def make_owner() -> str:
    """A fresh owner string for this process (one per runtime)."""
    return f"{HOSTNAME}:{os.getpid()}:{uuid.uuid4().hex}"


def owner_is_dead(owner: str) -> bool:
    """True if ``owner`` names a process of this host that no longer exists.

    A pid reused by an unrelated process reads as alive: the lease then lasts until it expires,
    which is safe. Malformed owners and other hosts read as alive.
    """
    host_and_pid = owner.rpartition(":")[0]  # drop the uuid
    host, _, pid_text = host_and_pid.rpartition(":")
    if host != HOSTNAME or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it exists, under another user
        return False
    return False


def lease_is_live(owner: str | None, until: float | None, now: float) -> bool:
    """Whether a lease still excludes other claimers at ``now``."""
    if owner is None or until is None or until < now:
        return False
    return not owner_is_dead(owner)

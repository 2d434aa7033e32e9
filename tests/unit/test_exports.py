"""The public surface, pinned: a change here is a change to the API contract."""

from __future__ import annotations

import actorkit
import actorkit.testing

ACTORKIT = {
    "ActorFailed", "ActorRef", "ActorStopped", "ActorSystem", "ActorkitError", "AskTimeout",
    "Behavior", "DeadLetter", "Down", "Event", "Failed", "GaveUp", "MailboxFull",
    "MailboxOverflow", "Monitor", "NameTaken", "Overflow", "Reply", "ReplyAlreadySent",
    "RestartDeclined", "Restarted", "Restarting", "SelfAskError", "Spawned", "Started",
    "Status", "Stopped", "Stopping", "SupervisorGaveUp", "SystemClosed", "SystemStatistics",
    "Tools", "UNCHANGED", "UserEvent", "open_actor_system",
    "Backoff", "ChildSpec", "LinkedFailure", "Restart", "RestartBudget", "Strategy",
    "Supervisor", "SupervisorSpec",
}  # fmt: skip


def public(module: object) -> set[str]:
    return {name for name in vars(module) if not name.startswith("_")} - {
        "annotations", "testing",
    }  # fmt: skip


def test_actorkit_public_names() -> None:
    assert public(actorkit) == ACTORKIT


def test_testing_public_names() -> None:
    assert public(actorkit.testing) == {"RunResult", "run"}


def test_error_tree() -> None:
    for name in ACTORKIT:
        obj = getattr(actorkit, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, actorkit.ActorkitError), name
    assert issubclass(actorkit.AskTimeout, TimeoutError)
    assert issubclass(actorkit.ActorFailed, actorkit.ActorStopped)
    assert not issubclass(actorkit.SelfAskError, TimeoutError)


def test_events_share_seq_at_actor_id() -> None:
    for name in ACTORKIT:
        obj = getattr(actorkit, name)
        if isinstance(obj, type) and issubclass(obj, actorkit.Event):
            fields = obj.__attrs_attrs__
            assert [f.name for f in fields][:3] == ["seq", "at", "actor_id"], name


DURABLE = {
    "ActorElsewhere", "App", "Codec", "Context", "Delay", "DurableError", "LeaseLost",
    "MemoryStore", "NondeterminismError", "PersistentActor", "PersistentRef", "ProcessCancelled",
    "ProcessDef", "ProcessEvent", "ProcessFailed", "ProcessHandle", "ProcessNotFound",
    "ProcessState", "RaceResult", "RecoverableError", "Retry", "Runtime", "RuntimeStatistics",
    "SQLiteStore", "SchemaVersionError", "SignalDef", "SignalReceived", "Signals",
    "SnapshotDecodeError", "Status", "StepFailed", "Store", "StoreClosed", "StoreError", "delay",
    "open_runtime", "open_store", "persistent_actor", "process", "record", "signal",
}  # fmt: skip


def test_durable_public_names() -> None:
    import actorkit_durable

    assert set(actorkit_durable.__all__) == DURABLE
    assert public(actorkit_durable) - {"__version__"} == DURABLE


def test_durable_error_tree() -> None:
    import actorkit_durable as dur

    for name in DURABLE:
        obj = getattr(dur, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and name != "RecoverableError":
            assert issubclass(obj, dur.DurableError), name
    # users raise RecoverableError (and subclass it): it is not one of the library's own errors
    assert not issubclass(dur.RecoverableError, dur.DurableError)
    assert issubclass(dur.NondeterminismError, dur.RecoverableError)
    assert issubclass(dur.ProcessNotFound, LookupError)
    assert issubclass(dur.DurableError, actorkit.ActorkitError)
    assert issubclass(dur.SnapshotDecodeError, ValueError)
    assert issubclass(dur.StoreClosed, RuntimeError)

"""actorkit_durable: persistent actors and durable processes that outlive the program.

Durable processes (``@dur.process``): one async function per business process that waits
for signals, races them against durable timers and calls recorded steps, rebuilt by replaying
its journal after a crash or a deploy. Persistent actors (``dur.persistent_actor``) that
snapshot their state after every message. Underneath: the codec every stored value goes
through (msgpack; attrs classes by a stable type name, pinned with ``@dur.record("name.v1")``;
never pickle) and the stores (``"memory://"`` and ``"sqlite:///app.db"``) with their
claim/lease protocol.
"""

from ._codec import Codec as Codec
from ._context import Context as Context
from ._definitions import App as App
from ._exceptions import DurableError as DurableError
from ._exceptions import NondeterminismError as NondeterminismError
from ._exceptions import ProcessCancelled as ProcessCancelled
from ._exceptions import ProcessFailed as ProcessFailed
from ._exceptions import ProcessNotFound as ProcessNotFound
from ._exceptions import RecoverableError as RecoverableError
from ._exceptions import SnapshotDecodeError as SnapshotDecodeError
from ._persistent import ActorElsewhere as ActorElsewhere
from ._persistent import PersistentActor as PersistentActor
from ._persistent import PersistentRef as PersistentRef
from ._persistent import persistent_actor as persistent_actor
from ._process import Delay as Delay
from ._process import ProcessDef as ProcessDef
from ._process import ProcessEvent as ProcessEvent
from ._process import ProcessHandle as ProcessHandle
from ._process import ProcessState as ProcessState
from ._process import RaceResult as RaceResult
from ._process import Retry as Retry
from ._process import StepFailed as StepFailed
from ._process import delay as delay
from ._process import process as process
from ._records import record as record
from ._runtime import Runtime as Runtime
from ._runtime import RuntimeStatistics as RuntimeStatistics
from ._runtime import open_runtime as open_runtime
from ._signals import SignalDef as SignalDef
from ._signals import SignalReceived as SignalReceived
from ._signals import Signals as Signals
from ._signals import signal as signal
from ._store import LeaseLost as LeaseLost
from ._store import MemoryStore as MemoryStore
from ._store import SchemaVersionError as SchemaVersionError
from ._store import SQLiteStore as SQLiteStore
from ._store import Status as Status
from ._store import Store as Store
from ._store import StoreClosed as StoreClosed
from ._store import StoreError as StoreError
from ._store import open_store as open_store

__version__ = "0.1.0"

__all__ = [
    "ActorElsewhere",
    "App",
    "Codec",
    "Context",
    "Delay",
    "DurableError",
    "LeaseLost",
    "MemoryStore",
    "NondeterminismError",
    "PersistentActor",
    "PersistentRef",
    "ProcessCancelled",
    "ProcessDef",
    "ProcessEvent",
    "ProcessFailed",
    "ProcessHandle",
    "ProcessNotFound",
    "ProcessState",
    "RaceResult",
    "RecoverableError",
    "Retry",
    "Runtime",
    "RuntimeStatistics",
    "SQLiteStore",
    "SchemaVersionError",
    "SignalDef",
    "SignalReceived",
    "Signals",
    "SnapshotDecodeError",
    "Status",
    "Store",
    "StoreClosed",
    "StepFailed",
    "StoreError",
    "delay",
    "open_runtime",
    "open_store",
    "persistent_actor",
    "process",
    "record",
    "signal",
]

"""actorkit_durable: persistent actors and durable processes that outlive the program.

This release has the foundation: the codec every stored value goes through (msgpack; attrs
classes by a stable type name, pinned with ``@dur.record("name.v1")``; never pickle), the
stores (``"memory://"`` and ``"sqlite:///app.db"``) with their claim/lease protocol, durable
signals, and persistent actors that snapshot their state after every message. Durable
processes (``@dur.process``) come next (see CHANGELOG.md).
"""

from ._codec import Codec as Codec
from ._exceptions import DurableError as DurableError
from ._exceptions import SnapshotDecodeError as SnapshotDecodeError
from ._persistent import ActorElsewhere as ActorElsewhere
from ._persistent import PersistentActor as PersistentActor
from ._persistent import PersistentRef as PersistentRef
from ._persistent import persistent_actor as persistent_actor
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
    "Codec",
    "DurableError",
    "LeaseLost",
    "MemoryStore",
    "PersistentActor",
    "PersistentRef",
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
    "StoreError",
    "open_runtime",
    "open_store",
    "persistent_actor",
    "record",
    "signal",
]

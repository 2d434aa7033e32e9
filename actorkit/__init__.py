"""actorkit: Erlang-style actors and supervision trees for trio programs."""

from ._actor import ActorRef as ActorRef
from ._actor import Down as Down
from ._actor import Monitor as Monitor
from ._actor import Status as Status
from ._actor import Tools as Tools
from ._behavior import UNCHANGED as UNCHANGED
from ._behavior import Behavior as Behavior
from ._behavior import Overflow as Overflow
from ._budget import Backoff as Backoff
from ._budget import RestartBudget as RestartBudget
from ._events import DeadLetter as DeadLetter
from ._events import Event as Event
from ._events import Failed as Failed
from ._events import GaveUp as GaveUp
from ._events import MailboxOverflow as MailboxOverflow
from ._events import RestartDeclined as RestartDeclined
from ._events import Restarted as Restarted
from ._events import Restarting as Restarting
from ._events import Spawned as Spawned
from ._events import Started as Started
from ._events import Stopped as Stopped
from ._events import Stopping as Stopping
from ._events import UserEvent as UserEvent
from ._exceptions import ActorFailed as ActorFailed
from ._exceptions import ActorkitError as ActorkitError
from ._exceptions import ActorStopped as ActorStopped
from ._exceptions import AskTimeout as AskTimeout
from ._exceptions import LinkedFailure as LinkedFailure
from ._exceptions import MailboxFull as MailboxFull
from ._exceptions import NameTaken as NameTaken
from ._exceptions import ReplyAlreadySent as ReplyAlreadySent
from ._exceptions import SelfAskError as SelfAskError
from ._exceptions import SupervisorGaveUp as SupervisorGaveUp
from ._exceptions import SystemClosed as SystemClosed
from ._reply import Reply as Reply
from ._supervisor import ChildSpec as ChildSpec
from ._supervisor import Restart as Restart
from ._supervisor import Strategy as Strategy
from ._supervisor import Supervisor as Supervisor
from ._supervisor import SupervisorSpec as SupervisorSpec
from ._system import ActorSystem as ActorSystem
from ._system import SystemStatistics as SystemStatistics
from ._system import open_actor_system as open_actor_system

__version__ = "0.1.0"

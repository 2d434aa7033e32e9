"""Signals: durable, path-addressed messages routed to processes and persistent actors.

A signal is declared with ``dur.signal(path, data=Class)``, usually as an attribute of a
``dur.Signals`` subclass. Its path parameters are its routing identity: a signal reaches every
unfinished process and persistent actor whose own params include all of the signal's params
with equal values.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

import attrs

from ._paths import PathTemplate

D = TypeVar("D")


class SignalDef(Generic[D]):
    """A declared signal: its path template and the class of its data (or None)."""

    __slots__ = ("template", "data", "name")

    def __init__(self, template: PathTemplate, data: type[D] | None) -> None:
        self.template = template
        self.data = data
        self.name = template.text
        """Where it was declared (``OrderSignals.paid``), else its path."""

    @property
    def path(self) -> str:
        return self.template.text

    @property
    def params(self) -> tuple[str, ...]:
        return self.template.params

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = f"{owner.__qualname__}.{name}"

    def __repr__(self) -> str:
        data = "" if self.data is None else f", data={self.data.__qualname__}"
        return f"<signal {self.name} {self.path!r}{data}>"

    def check_data(self, data: object) -> None:
        """TypeError naming the signal and its class when ``data`` does not fit."""
        if self.data is None:
            if data is not None:
                raise TypeError(
                    f"signal {self.name} ({self.path!r}) is declared without data, got "
                    f"data={type(data).__name__}; declare it with dur.signal(path, data=Class)"
                )
            return
        if not isinstance(data, self.data):
            raise TypeError(
                f"signal {self.name} ({self.path!r}) carries {self.data.__qualname__}, got "
                f"data={data!r}; pass data={self.data.__qualname__}(...)"
            )


@overload
def signal(path: str) -> SignalDef[None]: ...


@overload
def signal(path: str, *, data: type[D]) -> SignalDef[D]: ...


def signal(path: str, *, data: type[Any] | None = None) -> SignalDef[Any]:
    """Declare a signal addressed by ``path`` (e.g. ``"/order/:order/payment/received"``).

    ``data`` is the class its payload must be an instance of (an attrs class, or any type the
    codec encodes); without it the signal carries no data.
    """
    template = PathTemplate.parse(path, what="dur.signal")
    if data is not None and not isinstance(data, type):
        raise TypeError(
            f"dur.signal({path!r}, data={data!r}): data must be a class, e.g. an attrs class"
        )
    return SignalDef(template, data)


class Signals:
    """Base class grouping signal declarations; pass the class to ``open_runtime(signals=)``."""

    __signals__: tuple[SignalDef[Any], ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found = [v for v in vars(cls).values() if isinstance(v, SignalDef)]
        cls.__signals__ = (*cls.__signals__, *found)


def signals_of(item: object) -> tuple[SignalDef[Any], ...]:
    """The signals of one ``signals=`` entry: a ``Signals`` subclass or a ``SignalDef``."""
    if isinstance(item, SignalDef):
        return (item,)
    if isinstance(item, type) and issubclass(item, Signals):
        return item.__signals__
    raise TypeError(
        f"signals= entry {item!r} is neither a dur.Signals subclass nor a dur.signal(...); "
        "declare signals as attributes of a class deriving from dur.Signals"
    )


@attrs.frozen
class SignalReceived(Generic[D]):
    """A signal delivered to a persistent actor, as a message to its handler."""

    signal: SignalDef[D]
    data: D
    params: dict[str, str]
    seq: int = attrs.field(default=0, repr=False)
    """Emit order in the store."""

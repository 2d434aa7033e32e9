"""What the command line reads from its user: ``--app``, signal paths and ``--data`` JSON.

Every problem is a ``BadInput`` whose message names the thing to fix (the module, the path,
the field), which the command line prints as one line with exit status 2.
"""

from __future__ import annotations

import enum
import importlib
import json
import os
import sys
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from ._definitions import App
from ._paths import PathTemplate
from ._process import describe_error
from ._signals import SignalDef, Signals, signals_of


class CommandError(Exception):
    """A command failed; its message is the one line the user sees (exit status 1)."""

    exit_status = 1


class BadInput(CommandError):
    """The command line or its data is wrong (exit status 2)."""

    exit_status = 2


# -- --app ------------------------------------------------------------------------------------


def load_app(spec: str) -> object:
    """The object ``module:attribute`` names (``attribute`` defaults to ``app``), importing the
    module from the working directory or ``PYTHONPATH``."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or spec.count(":") > 1:
        raise BadInput(f"--app {spec!r}: expected module:attribute, e.g. shop.workflows:app")
    attribute = attribute or "app"
    if os.getcwd() not in sys.path and "" not in sys.path:  # as `python -m` would have it
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
        if missing is not None and (module_name + ".").startswith(missing + "."):
            raise BadInput(
                f"--app {spec}: no module named {missing!r}; run from the directory that "
                "holds it, or add that directory to PYTHONPATH"
            ) from None
        raise BadInput(
            f"--app {spec}: importing {module_name} failed: {describe_error(exc)}"
        ) from None
    found: object = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise BadInput(
                f"--app {spec}: module {module_name} has no attribute {attribute!r}"
            ) from None
    return found


def app_for_worker(spec: str) -> App:
    found = load_app(spec)
    if not isinstance(found, App):
        raise BadInput(
            f"--app {spec} is a {type(found).__name__}, not a dur.App; bundle the definitions "
            "as app = dur.App(processes=[...], signals=[...], actors=[...])"
        )
    return found


def app_signals(spec: str) -> tuple[SignalDef[Any], ...]:
    """The signals declared by what ``--app`` names: a ``dur.App``, a ``dur.Signals`` class,
    one signal, or any object with a ``signals`` attribute listing those."""
    found = load_app(spec)
    items: Iterable[object]
    if isinstance(found, SignalDef) or (isinstance(found, type) and issubclass(found, Signals)):
        items = [found]
    elif isinstance(found, App):
        items = found.signals
    else:
        items = getattr(found, "signals", None) or ()
        if not isinstance(items, Iterable) or isinstance(items, str | bytes):
            items = ()
    signals: list[SignalDef[Any]] = []
    try:
        for item in items:
            signals += signals_of(item)
    except TypeError as exc:
        raise BadInput(f"--app {spec}: {exc}") from None
    if not signals:
        raise BadInput(
            f"--app {spec} ({type(found).__name__}) declares no signals: name a dur.App, a "
            "dur.Signals class, or an object with a signals attribute"
        )
    return tuple(signals)


# -- signal paths -----------------------------------------------------------------------------


def match_signal(
    signals: Sequence[SignalDef[Any]], path: str, spec: str
) -> tuple[SignalDef[Any], dict[str, str]]:
    """The declared signal whose template matches the concrete ``path``, with the values of
    its params. The template with the most literal segments wins (``/order/vip/paid`` over
    ``/order/:order/paid``)."""
    text = path if path.startswith("/") else "/" + path
    segments = text[1:].split("/")
    for segment in segments:
        if segment.startswith(":"):
            raise BadInput(
                f"signal path {path!r} is a template: replace {segment} by a value, e.g. "
                f"{text.replace(segment, 'o-1')}"
            )
    found: list[tuple[int, SignalDef[Any], dict[str, str]]] = []
    for signal in {s.path: s for s in signals}.values():
        params = _fill(signal.template, segments)
        if params is not None:
            literal = len(signal.template.segments) - len(signal.params)
            found.append((literal, signal, params))
    if not found:
        known = ", ".join(sorted({s.path for s in signals}))
        raise BadInput(f"no signal of --app {spec} matches {text}; its signals are: {known}")
    best = max(literal for literal, _, _ in found)
    winners = [(s, p) for literal, s, p in found if literal == best]
    if len(winners) > 1:
        paths = " and ".join(s.path for s, _ in winners)
        raise BadInput(f"{text} matches several signals of --app {spec}: {paths}")
    return winners[0]


def _fill(template: PathTemplate, segments: list[str]) -> dict[str, str] | None:
    if len(template.segments) != len(segments):
        return None
    params: dict[str, str] = {}
    for pattern, segment in zip(template.segments, segments, strict=True):
        if pattern.startswith(":"):
            if not segment:
                return None
            params[pattern[1:]] = segment
        elif pattern != segment:
            return None
    return params


# -- --data -----------------------------------------------------------------------------------


def signal_data(signal: SignalDef[Any], text: str | None) -> object:
    """The signal's data built from the JSON ``text`` (None when it carries none)."""
    cls = signal.data
    if cls is None:
        if text is not None and json_value(text) is not None:
            raise BadInput(f"signal {signal.path} carries no data; leave --data out")
        return None
    if text is None:
        raise BadInput(f"signal {signal.path} carries {_describe(cls)}; pass --data JSON")
    return build(cls, json_value(text), "data", cls)


def json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"--data is not valid JSON: {exc}") from None


def _describe(cls: type) -> str:
    if attrs.has(cls):
        fields = ", ".join(_key(f) for f in attrs.fields(cls) if f.init)
        return f"{cls.__qualname__} ({fields})"
    return cls.__qualname__


def _key(field: attrs.Attribute[Any]) -> str:
    return field.alias or field.name


def _misfit(top: type, where: str, expected: str, value: object) -> BadInput:
    shown = json.dumps(value)
    if len(shown) > 60:
        shown = shown[:59] + "…"
    return BadInput(
        f"--data does not fit {top.__qualname__}: {where} must be {expected}, got {shown}"
    )


def build(tp: Any, value: Any, where: str, top: type) -> Any:
    """The value of type ``tp`` for the JSON ``value`` at ``where`` (e.g. ``data.address``);
    ``BadInput`` naming the field when it does not fit."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return _union(typing.get_args(tp), value, where, top)
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        choices = " or ".join(json.dumps(a) for a in typing.get_args(tp))
        raise _misfit(top, where, choices, value)
    if origin is not None:
        return _generic(origin, typing.get_args(tp), value, where, top)
    if tp is None or tp is type(None):
        if value is None:
            return None
        raise _misfit(top, where, "null", value)
    if not isinstance(tp, type):
        return value  # an annotation this cannot check: the class's own checks apply
    if attrs.has(tp):
        return _record(tp, value, where, top)
    if issubclass(tp, enum.Enum):
        return _enum(tp, value, where, top)
    return _plain(tp, value, where, top)


def _union(arms: tuple[Any, ...], value: Any, where: str, top: type) -> Any:
    if value is None and type(None) in arms:
        return None
    for arm in arms:
        if arm is type(None):
            continue
        try:
            return build(arm, value, where, top)
        except BadInput:
            continue
    names = " | ".join(getattr(a, "__name__", str(a)) for a in arms)
    raise _misfit(top, where, f"one of {names}", value)


def _generic(origin: Any, args: tuple[Any, ...], value: Any, where: str, top: type) -> Any:
    if origin in (list, tuple, set, frozenset) or origin is Sequence:
        if not isinstance(value, list):
            raise _misfit(top, where, "an array", value)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise _misfit(top, where, f"an array of {len(args)} items", value)
            return tuple(
                build(a, v, f"{where}[{i}]", top)
                for i, (a, v) in enumerate(zip(args, value, strict=True))
            )
        item = args[0] if args else Any
        items = [build(item, v, f"{where}[{i}]", top) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise _misfit(top, where, "an object", value)
        key_type, item = (*args, Any, Any)[:2]
        return {
            build(key_type, _json_key(key_type, k), f"{where} key {k!r}", top): build(
                item, v, f"{where}[{k!r}]", top
            )
            for k, v in value.items()
        }
    return value


def _json_key(key_type: Any, key: str) -> Any:
    """JSON keys are strings: an int-keyed dict takes "1" as 1."""
    if key_type is int:
        try:
            return int(key)
        except ValueError:
            return key
    return key


def _record(cls: type, value: Any, where: str, top: type) -> Any:
    if not isinstance(value, dict):
        raise _misfit(top, where, f"an object with the fields of {_describe(cls)}", value)
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # annotations naming what cannot be resolved here: check less
        hints = {}
    fields = [f for f in attrs.fields(cls) if f.init]
    by_key = {_key(f): f for f in fields} | {f.name: f for f in fields}
    unknown = [k for k in value if k not in by_key]
    if unknown:
        names = ", ".join(_key(f) for f in fields)
        raise BadInput(
            f"--data does not fit {top.__qualname__}: {where} has no field {unknown[0]!r}; "
            f"{cls.__qualname__} has {names}"
        )
    kwargs: dict[str, Any] = {}
    for field in fields:
        key = _key(field)
        raw = value[key] if key in value else value.get(field.name, attrs.NOTHING)
        if raw is attrs.NOTHING:
            if field.default is attrs.NOTHING:
                raise BadInput(
                    f"--data does not fit {top.__qualname__}: {where}.{key} is missing "
                    f"({cls.__qualname__} needs it)"
                )
            continue
        kwargs[key] = build(hints.get(field.name, Any), raw, f"{where}.{key}", top)
    try:
        return cls(**kwargs)
    except Exception as exc:
        raise BadInput(
            f"--data does not fit {top.__qualname__}: {cls.__qualname__} rejected {where}: "
            f"{describe_error(exc)}"
        ) from None


def _enum(cls: type[enum.Enum], value: Any, where: str, top: type) -> Any:
    for member in cls:
        if member.value == value and type(member.value) is type(value):
            return member
    if isinstance(value, str) and value in cls.__members__:
        return cls.__members__[value]
    choices = ", ".join(json.dumps(m.value) if _is_json(m.value) else m.name for m in cls)
    raise _misfit(top, where, f"a {cls.__qualname__} ({choices})", value)


def _is_json(value: object) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _plain(tp: type, value: Any, where: str, top: type) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _misfit(top, where, "true or false", value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _misfit(top, where, "an integer", value)
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _misfit(top, where, "a number", value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _misfit(top, where, "a string", value)
    if tp is bytes:
        if isinstance(value, str):
            return value.encode()
        raise _misfit(top, where, "a string (stored as UTF-8 bytes)", value)
    if tp is datetime:
        return _datetime(value, where, top)
    if tp in (list, tuple, dict, set, frozenset):
        return _generic(tp, (), value, where, top)
    if isinstance(value, tp):
        return value
    raise _misfit(top, where, f"a {tp.__qualname__}", value)


def _datetime(value: Any, where: str, top: type) -> datetime:
    expected = "an ISO 8601 time with a timezone, e.g. 2026-01-05T12:00:00Z"
    if not isinstance(value, str):
        raise _misfit(top, where, expected, value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _misfit(top, where, expected, value) from None
    if parsed.utcoffset() is None:
        raise _misfit(top, where, expected, value)
    return parsed

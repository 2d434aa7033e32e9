"""Path templates: ``"/order/:order/fulfillment"`` names a family of processes or actors.

A template is a "/"-separated path whose ``:name`` segments are parameters. Filling them in
gives an id: the path without its leading "/" and with each ``:param`` replaced by its value,
e.g. ``"order/order-123/fulfillment"``. Values are non-empty strings without "/".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import attrs

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_LITERAL = re.compile(r"[A-Za-z0-9_.~-]+\Z")


@attrs.frozen
class PathTemplate:
    """A parsed path template."""

    text: str
    segments: tuple[str, ...]
    params: tuple[str, ...]
    """The parameter names, in path order."""

    @classmethod
    def parse(cls, text: object, *, what: str) -> PathTemplate:
        """Parse ``text``; ValueError naming ``what`` (e.g. ``"dur.process"``) and the fix."""
        if not isinstance(text, str):
            raise TypeError(f"{what}({text!r}): the path must be a str like '/order/:order'")
        if not text.startswith("/") or text == "/" or text.endswith("/"):
            raise ValueError(
                f"{what}({text!r}): a path starts with '/' and names at least one segment, "
                "without a trailing '/', e.g. '/order/:order/fulfillment'"
            )
        segments = tuple(text[1:].split("/"))
        params: list[str] = []
        for segment in segments:
            if segment.startswith(":"):
                name = segment[1:]
                if not _NAME.match(name):
                    raise ValueError(
                        f"{what}({text!r}): parameter {segment!r} must be ':' and a Python "
                        "identifier, e.g. ':order'"
                    )
                if name in params:
                    raise ValueError(f"{what}({text!r}): parameter :{name} appears twice")
                params.append(name)
            elif not _LITERAL.match(segment):
                raise ValueError(
                    f"{what}({text!r}): segment {segment!r} must be non-empty and use only "
                    "letters, digits and _ . ~ -"
                )
        return cls(text, segments, tuple(params))

    def fill(self, values: Mapping[str, object], *, what: str) -> tuple[str, dict[str, str]]:
        """The id for ``values`` and the params as stored; errors name the params to fix."""
        missing = [p for p in self.params if p not in values]
        if missing:
            raise ValueError(
                f"{what} for {self.text!r} is missing {_names(missing)}; pass "
                + ", ".join(f"{p}=..." for p in missing)
            )
        unknown = sorted(set(values) - set(self.params))
        if unknown:
            expected = _names(self.params) if self.params else "no parameters"
            raise TypeError(
                f"{what} for {self.text!r} got unexpected {_names(unknown)}; "
                f"the path takes {expected}"
            )
        params: dict[str, str] = {}
        for name in self.params:
            value = values[name]
            if not isinstance(value, str) or not value or "/" in value:
                raise ValueError(
                    f"{what} for {self.text!r}: parameter {name}={value!r} must be a non-empty "
                    "str without '/'"
                )
            params[name] = value
        parts = [params[s[1:]] if s.startswith(":") else s for s in self.segments]
        return "/".join(parts), params


def _names(names: Iterable[str]) -> str:
    items = list(names)
    label = "parameter" if len(items) == 1 else "parameters"
    return f"{label} " + ", ".join(str(n) for n in items)

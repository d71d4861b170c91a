"""Value types shared by many kinds: durations as Istio writes them, and their rules."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> timedelta:
    """Parse a Go/CEL duration (`1h30m`, `1.5s`, `250ms`), the form Istio's CRDs accept.

    Raises ValueError with the reason for anything else (no unit, negative, garbage).
    """
    value = text.strip()
    if not value:
        raise ValueError("duration is empty")
    if value.startswith("-"):
        raise ValueError(f"duration {text!r} is negative")
    value = value.lstrip("+")
    if value == "0":
        return timedelta(0)
    pos = 0
    total_ns = 0.0
    for match in _PART.finditer(value):
        if match.start() != pos:
            break
        total_ns += float(match.group(1)) * _UNITS_NS[match.group(2)]
        pos = match.end()
    if pos != len(value) or pos == 0:
        raise ValueError(
            f"invalid duration {text!r}: use a number and a unit, e.g. 250ms, 1.5s, 1m"
        )
    return timedelta(microseconds=round(total_ns / 1000))


def format_duration(value: timedelta) -> str:
    """The shortest exact rendering: `250ms`, `1.5s`, `90s`."""
    micros = value // timedelta(microseconds=1)
    if micros % 1_000_000 == 0:
        return f"{micros // 1_000_000}s"
    if micros % 1000 == 0:
        return f"{micros // 1000}ms"
    return f"{micros}us"


def _to_timedelta(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"duration {value!r} needs a unit, e.g. {value}s")
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_to_timedelta),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A duration field with no lower bound of its own (rules decide: see `duration_problem`)."""


def duration_problem(value: timedelta) -> str | None:
    """Istio's ValidateDuration: at least 1 ms and whole milliseconds; None when fine."""
    if value < timedelta(milliseconds=1):
        return "duration must be greater than 1ms"
    if value % timedelta(milliseconds=1):
        return "only durations to ms precision are supported"
    return None

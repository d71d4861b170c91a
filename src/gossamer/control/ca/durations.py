"""Go-style durations (`90s`, `2m`, `1h30m`, `500ms`), as Istio's flags take them.

Flags such as `--workload-cert-ttl` and `--overlap` accept them; a bad value raises ValueError
with a message saying what is accepted, for the caller to show next to the flag's name.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS: dict[str, timedelta] = {
    "ns": timedelta(microseconds=0.001),
    "us": timedelta(microseconds=1),
    "µs": timedelta(microseconds=1),
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> timedelta:
    """`2m` → 2 minutes. A sequence of decimal numbers with units (ns, us, ms, s, m, h), as Go's
    `time.ParseDuration`; no sign (a TTL or an overlap is never negative). `0` alone is zero."""
    value = text.strip()
    if value == "0":
        return timedelta(0)
    position, total = 0, timedelta(0)
    for match in _PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not value or position != len(value):
        raise ValueError(f"{text!r} is not a duration (use e.g. 90s, 2m, 24h, 1h30m)")
    return total


def format_duration(value: timedelta) -> str:
    """The shortest Go-style spelling of whole seconds: 86400 s → `24h`, 90 s → `1m30s`."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts)

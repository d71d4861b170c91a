"""Debouncer: when to push after a burst of config changes (pure; the caller owns the clock)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Debouncer:
    """Fire `quiet` seconds after the last change, but never later than `max_delay` after the
    first change of a burst (Istio's PILOT_DEBOUNCE_AFTER / PILOT_DEBOUNCE_MAX).

    Rules: 1. `note(now, revision)` records a change. 2. `wait(now)` is None when nothing is
    pending, else the seconds to wait before firing (0 = fire now). 3. `fire()` ends the burst
    and returns the latest revision noted; changes noted after it start a new burst.
    """

    quiet: float
    max_delay: float
    first_at: float | None = None
    last_at: float = 0.0
    revision: int = 0
    changes: int = 0

    def __post_init__(self) -> None:
        if self.quiet < 0 or self.max_delay < self.quiet:
            raise ValueError(f"need 0 <= debounce <= max_delay, got {self.quiet}, {self.max_delay}")

    def note(self, now: float, revision: int) -> None:
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.revision = max(self.revision, revision)
        self.changes += 1

    def wait(self, now: float) -> float | None:
        if self.first_at is None:
            return None
        due = min(self.last_at + self.quiet, self.first_at + self.max_delay)
        return max(0.0, due - now)

    def fire(self) -> int:
        if self.first_at is None:
            raise RuntimeError("Debouncer.fire() with nothing pending")
        self.first_at = None
        self.changes = 0
        return self.revision

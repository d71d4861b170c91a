"""Root rotation as data: two phases, two steps, and the persisted state of the self-signed roots.

Theory of operation:
1. STEADY: one root signs leaves and is the whole trust bundle.
2. BEGIN (STEADY → OVERLAP): a new root is made; it signs every new leaf; the bundle holds the
   old and the new root until `overlap_until`, so leaves from either still verify.
3. FINISH (OVERLAP → STEADY): the old root leaves the bundle and its files are deleted, so a
   leaf it signed no longer verifies. Refused before `overlap_until` unless forced: the overlap
   must outlast the longest leaf TTL so every workload has renewed under the new root.
A step the table does not list for the current phase is a RotationError, never a no-op.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any

from gossamer.control.ca.errors import RotationError


class Phase(Enum):
    STEADY = "steady"
    OVERLAP = "overlap"


class Step(Enum):
    BEGIN = "begin"
    FINISH = "finish"


TRANSITIONS: dict[tuple[Phase, Step], Phase] = {
    (Phase.STEADY, Step.BEGIN): Phase.OVERLAP,
    (Phase.OVERLAP, Step.FINISH): Phase.STEADY,
}


def next_phase(phase: Phase, step: Step) -> Phase:
    try:
        return TRANSITIONS[(phase, step)]
    except KeyError:
        raise RotationError(f"cannot {step.value} a root rotation in phase {phase.value}") from None


@dataclass(frozen=True, slots=True)
class RootsState:
    """Which root signs, which roots are trusted (serials in hex), and the overlap deadline."""

    phase: Phase
    signing: str
    trusted: tuple[str, ...]
    overlap_until: datetime | None = None

    def begin(self, new_serial: str, overlap_until: datetime) -> RootsState:
        return RootsState(
            phase=next_phase(self.phase, Step.BEGIN),
            signing=new_serial,
            trusted=(*self.trusted, new_serial),
            overlap_until=overlap_until,
        )

    def finish(self, now: datetime, force: bool = False) -> RootsState:
        phase = next_phase(self.phase, Step.FINISH)
        if not force and self.overlap_until is not None and now < self.overlap_until:
            raise RotationError(
                f"the overlap runs until {self.overlap_until.isoformat()}; finishing now "
                "would strand leaves signed by the old root (force to override)"
            )
        return replace(self, phase=phase, trusted=(self.signing,), overlap_until=None)

    def dropped_by_finish(self) -> tuple[str, ...]:
        return tuple(s for s in self.trusted if s != self.signing)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "phase": self.phase.value,
            "signing": self.signing,
            "trusted": list(self.trusted),
            "overlap_until": self.overlap_until.isoformat() if self.overlap_until else None,
        }
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RootsState:
        """Raise ValueError (or KeyError/TypeError) on a malformed state file."""
        data = json.loads(text)
        until = data.get("overlap_until")
        state = cls(
            phase=Phase(data["phase"]),
            signing=str(data["signing"]),
            trusted=tuple(str(s) for s in data["trusted"]),
            overlap_until=datetime.fromisoformat(until) if until else None,
        )
        if state.signing not in state.trusted:
            raise ValueError("the signing root is not among the trusted roots")
        return state

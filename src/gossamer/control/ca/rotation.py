"""Root rotation as data: three phases, three steps, and the persisted state of the self-signed
roots.

Theory of operation:
1. STEADY: one root signs leaves and is the whole trust bundle.
2. BEGIN (STEADY → TRUSTING): a new root is made and added to the bundle; the old root still
   signs. This phase lets the new bundle reach every workload before any leaf needs it.
3. PROMOTE (TRUSTING → OVERLAP): the new root signs every new leaf; the bundle keeps both
   roots until `overlap_until` (now + overlap), so leaves from either still verify.
   `begin_root_rotation(..., promote=True)` does BEGIN and PROMOTE in one commit.
4. FINISH (OVERLAP → STEADY): the old root leaves the bundle and its files are deleted, so a
   leaf it signed no longer verifies. Refused before `overlap_until` unless forced: the overlap
   must outlast the longest leaf TTL so every workload has renewed under the new root.
A step the table does not list for the current phase is a RotationError, never a no-op.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from gossamer.control.ca.errors import RotationError


class Phase(Enum):
    STEADY = "steady"
    TRUSTING = "trusting"
    OVERLAP = "overlap"


class Step(Enum):
    BEGIN = "begin"
    PROMOTE = "promote"
    FINISH = "finish"


TRANSITIONS: dict[tuple[Phase, Step], Phase] = {
    (Phase.STEADY, Step.BEGIN): Phase.TRUSTING,
    (Phase.TRUSTING, Step.PROMOTE): Phase.OVERLAP,
    (Phase.OVERLAP, Step.FINISH): Phase.STEADY,
}


def next_phase(phase: Phase, step: Step) -> Phase:
    try:
        return TRANSITIONS[(phase, step)]
    except KeyError:
        raise RotationError(f"cannot {step.value} a root rotation in phase {phase.value}") from None


@dataclass(frozen=True, slots=True)
class RootsState:
    """Which root signs, which roots are trusted (serials in hex, oldest first), the overlap
    asked for at BEGIN, and its deadline once PROMOTE has set it."""

    phase: Phase
    signing: str
    trusted: tuple[str, ...]
    overlap: timedelta = timedelta(0)
    overlap_until: datetime | None = None

    def begin(self, new_serial: str, overlap: timedelta) -> RootsState:
        return RootsState(
            phase=next_phase(self.phase, Step.BEGIN),
            signing=self.signing,
            trusted=(*self.trusted, new_serial),
            overlap=overlap,
        )

    def promote(self, now: datetime) -> RootsState:
        return replace(
            self,
            phase=next_phase(self.phase, Step.PROMOTE),
            signing=self.trusted[-1],
            overlap_until=now + self.overlap,
        )

    def finish(self, now: datetime, force: bool = False) -> RootsState:
        phase = next_phase(self.phase, Step.FINISH)
        if not force and self.overlap_until is not None and now < self.overlap_until:
            raise RotationError(
                f"the overlap runs until {self.overlap_until.isoformat()}; finishing now "
                "would strand leaves signed by the old root (force to override)"
            )
        return RootsState(phase=phase, signing=self.signing, trusted=(self.signing,))

    def dropped_by_finish(self) -> tuple[str, ...]:
        return tuple(s for s in self.trusted if s != self.signing)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "phase": self.phase.value,
            "signing": self.signing,
            "trusted": list(self.trusted),
            "overlap_seconds": self.overlap.total_seconds(),
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
            overlap=timedelta(seconds=float(data.get("overlap_seconds", 0))),
            overlap_until=datetime.fromisoformat(until) if until else None,
        )
        if state.signing not in state.trusted:
            raise ValueError("the signing root is not among the trusted roots")
        return state

"""The CA a running control plane signs with, and root rotation on it.

`LiveCa` holds the current `Authority` (with the operator's workload TTL) and re-opens it from
its directory after every rotation step, so the next CSR is signed by the state just committed;
whoever serves with it (the 15012 certificate service, its own server certificate) subscribes
and is told of each change. Rotation itself stays in `cadir`/`selfsigned` (files, lock, phases).

`finish_overlaps` ends a rotation's overlap when its deadline passes: by then every leaf the old
root signed has expired (the overlap outlasts the workload TTL), so the old root leaves the
bundle without an operator having to remember `finish`. A plane started after the deadline
finishes at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gossamer.control.ca import selfsigned
from gossamer.control.ca.authority import DEFAULT_TTL, MAX_TTL, Authority
from gossamer.control.ca.cadir import (
    begin_root_rotation,
    finish_root_rotation,
    open_ca,
    promote_root_rotation,
)
from gossamer.control.ca.durations import format_duration
from gossamer.control.ca.errors import CaError, RotationError
from gossamer.control.ca.rotation import Phase, Step
from gossamer.waits import set_within

log = logging.getLogger("gossamer.ca")
PLUGGED_PHASE = "plug-in"
OVERLAP_CHECK = 60.0  # seconds between looks at the rotation state when no step wakes us


def checked_workload_ttl(ttl: timedelta) -> timedelta:
    """The workload certificate TTL an operator may choose: positive and within the CA's max."""
    if ttl <= timedelta(0):
        raise ValueError(f"must be positive, got {format_duration(ttl)}")
    if ttl > MAX_TTL:
        raise ValueError(
            f"{format_duration(ttl)} exceeds the CA's maximum {format_duration(MAX_TTL)}"
        )
    return ttl


class LiveCa:
    """The running CA; `rotate` applies one step and re-opens it, then tells subscribers."""

    def __init__(self, ca_dir: Path, authority: Authority, workload_ttl: timedelta) -> None:
        self.ca_dir = ca_dir
        self.workload_ttl = workload_ttl
        self._authority = dataclasses.replace(authority, default_ttl=workload_ttl)
        self._subscribers: list[Callable[[Authority], None]] = []
        self._lock = asyncio.Lock()
        self._stepped = asyncio.Event()  # wakes `finish_overlaps` after every step

    @classmethod
    def open(cls, ca_dir: Path, workload_ttl: timedelta = DEFAULT_TTL) -> LiveCa:
        """Open (or create) the CA in `ca_dir`; CaError names any unusable file."""
        return cls(ca_dir, open_ca(ca_dir), checked_workload_ttl(workload_ttl))

    @property
    def authority(self) -> Authority:
        return self._authority

    def subscribe(self, callback: Callable[[Authority], None]) -> None:
        """`callback(authority)` after every change (in the event loop's thread)."""
        self._subscribers.append(callback)

    async def rotate(
        self, step: Step, overlap: timedelta | None = None, force: bool = False
    ) -> dict[str, Any]:
        """Apply one root rotation step; the new state signs from the next CSR on.

        BEGIN takes the overlap (default: twice the workload TTL) and refuses one shorter than
        the workload TTL unless forced (leaves signed by the old root would outlive it).
        Raises RotationError for a plug-in CA or a step the current phase does not allow.
        """
        if self._authority.plugged:
            raise RotationError(
                "this control plane uses a plug-in CA (cacerts): its roots are rotated by its "
                "operator: put old and new roots in root-cert.pem, then the new intermediate"
            )
        if step is Step.BEGIN:
            overlap = 2 * self.workload_ttl if overlap is None else overlap
            if overlap < self.workload_ttl and not force:
                raise RotationError(
                    f"an overlap of {format_duration(overlap)} is shorter than the workload "
                    f"certificate TTL {format_duration(self.workload_ttl)}: leaves of the old "
                    "root would outlive it (use a longer overlap, or force)"
                )
        async with self._lock:
            dropped = await asyncio.to_thread(self._apply, step, overlap, force)
            authority = await asyncio.to_thread(open_ca, self.ca_dir)
            self._authority = dataclasses.replace(authority, default_ttl=self.workload_ttl)
        self._stepped.set()
        for callback in self._subscribers:
            callback(self._authority)
        status = self.status()
        log.warning(
            "root rotation: %s done; phase %s, signing %s, trusted %s%s",
            step.value, status["phase"], status["signing"],
            ",".join(r["serial"] for r in status["roots"]),
            f", dropped {','.join(dropped)}" if dropped else "",
        )  # fmt: skip
        return {**status, "step": step.value, "dropped": list(dropped)}

    def _apply(self, step: Step, overlap: timedelta | None, force: bool) -> tuple[str, ...]:
        if step is Step.BEGIN:
            assert overlap is not None
            begin_root_rotation(self.ca_dir, overlap, trust_domain=self._authority.trust_domain)
        elif step is Step.PROMOTE:
            promote_root_rotation(self.ca_dir)
        else:
            return finish_root_rotation(self.ca_dir, force=force)
        return ()

    def overlap_deadline(self) -> datetime | None:
        """When the current overlap ends (None outside one, and for a plug-in CA)."""
        if self._authority.plugged:
            return None
        state = selfsigned.load_state(self.ca_dir)
        if state is None or state.phase is not Phase.OVERLAP:
            return None
        return state.overlap_until

    async def finish_overlaps(self, check_every: float = OVERLAP_CHECK) -> None:
        """Until cancelled: finish each rotation's overlap as soon as its deadline passes.

        Sleeps until the deadline, woken early by any step (a `promote` starts one, a manual
        `finish` ends it) and at most `check_every`. A failure is logged and tried again later.
        """
        while True:
            self._stepped.clear()
            try:
                due = self.overlap_deadline()
                if due is not None and datetime.now(UTC) >= due:
                    log.warning("root rotation: the overlap ended at %s; finishing it", due)
                    await self.rotate(Step.FINISH)
                    continue
            except CaError as exc:  # a damaged state file, or a step that raced ours
                log.error("root rotation: cannot finish the overlap: %s", exc)
                due = None
            wait = check_every
            if due is not None:
                wait = min(wait, (due - datetime.now(UTC)).total_seconds())
            await set_within(self._stepped, max(wait, 0.01))

    def status(self, now: datetime | None = None) -> dict[str, Any]:
        """Phase, signing root, every trusted root (serial, subject, validity), the overlap."""
        now = datetime.now(UTC) if now is None else now
        authority = self._authority
        phase, overlap_until = PLUGGED_PHASE, None
        if not authority.plugged:
            try:
                state = selfsigned.load_state(self.ca_dir)
            except CaError:
                state = None
            if state is not None:
                phase = state.phase.value
                overlap_until = state.overlap_until.isoformat() if state.overlap_until else None
        signing = f"{authority.cert.serial_number:x}"
        roots = [
            {
                "serial": f"{root.serial_number:x}",
                "subject": root.subject.rfc4514_string(),
                "notBefore": root.not_valid_before_utc.isoformat(),
                "notAfter": root.not_valid_after_utc.isoformat(),
                "expiresInSeconds": int((root.not_valid_after_utc - now).total_seconds()),
                "signing": root.serial_number == authority.cert.serial_number,
            }
            for root in authority.bundle.roots
        ]
        return {
            "phase": phase,
            "plugged": authority.plugged,
            "signing": signing,
            "roots": roots,
            "overlapUntil": overlap_until,
            "workloadCertTtlSeconds": int(self.workload_ttl.total_seconds()),
            "trustBundle": authority.bundle.pem().decode(),
        }

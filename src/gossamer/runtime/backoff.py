"""Restart back-off for crashed apps, as a kubelet's CrashLoopBackOff but sized for one machine:
0.5 s doubling to 30 s, forgotten once the app has stayed up for 10 s."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RestartBackoff:
    initial: float = 0.5
    maximum: float = 30.0
    reset_after: float = 10.0
    _next: float = 0.0
    restarts: int = 0

    def after_exit(self, uptime: float) -> float:
        """Seconds to wait before restarting an app that ran for `uptime` seconds."""
        if uptime >= self.reset_after:
            self._next = 0.0
        self._next = self.initial if self._next == 0.0 else min(self._next * 2, self.maximum)
        self.restarts += 1
        return self._next

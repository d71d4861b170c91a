"""Restart back-off: 0.5 s doubling to 30 s, forgotten after 10 s of uptime."""

from __future__ import annotations

from gossamer.runtime.backoff import RestartBackoff


def test_quick_crashes_double_the_wait_up_to_thirty_seconds() -> None:
    backoff = RestartBackoff()
    waits = [backoff.after_exit(uptime=0.1) for _ in range(9)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff.restarts == 9


def test_ten_seconds_up_resets_the_wait_but_not_the_restart_count() -> None:
    backoff = RestartBackoff()
    for _ in range(4):
        backoff.after_exit(uptime=1.0)
    assert backoff.after_exit(uptime=9.9) == 8.0
    assert backoff.after_exit(uptime=10.0) == 0.5
    assert backoff.after_exit(uptime=0.0) == 1.0
    assert backoff.restarts == 7

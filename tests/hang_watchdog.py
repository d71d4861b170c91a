"""A pytest plugin that ends the run, with every thread's stack, when one test hangs.

pytest-timeout (300 s) fails a test by raising from SIGALRM. That cannot end a thread stuck in C,
an exception an asyncio callback swallows, nor a teardown that hangs after the alarm fired (the
event loop's close waiting on a task that ignores cancellation, say). This watchdog can: when a
test's setup, call and teardown together pass the limit, faulthandler's own thread prints every
thread's stack to the real stderr and exits, so a hang costs minutes and names its place instead
of running into CI's deadline. pytest's faulthandler plugin must be off (`-p no:faulthandler`): it
cancels any such timer as soon as a test fails, which is exactly when a teardown may hang.
"""

from __future__ import annotations

import faulthandler
import os
from collections.abc import Generator

import pytest

HANG_LIMIT = float(os.environ.get("GOSSAMER_TEST_HANG_LIMIT", "420"))  # seconds per test
_REAL_STDERR = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    """Keep a descriptor of stderr as it is outside pytest's capture (suspended while plugins
    configure; it is resumed only around collection and each test): the stacks go there."""
    config.stash[_REAL_STDERR] = os.dup(2)
    faulthandler.enable(file=config.stash[_REAL_STDERR])  # crash stacks, as the plugin did


def pytest_unconfigure(config: pytest.Config) -> None:
    faulthandler.disable()
    os.close(config.stash[_REAL_STDERR])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    stderr = item.config.stash[_REAL_STDERR]
    faulthandler.dump_traceback_later(HANG_LIMIT, exit=True, file=stderr)
    try:
        return (yield)
    finally:
        faulthandler.cancel_dump_traceback_later()

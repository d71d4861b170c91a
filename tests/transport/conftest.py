"""Fixtures of the transport tests: each TLS scenario on both loops, and a throwaway mesh CA."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.transport.certs import TestCA
from tests.transport.loops import LOOPS, Run


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Iterator[Run]:
    """Runs a coroutine on a fresh asyncio or uvloop loop (the sidecar runs uvloop)."""
    with asyncio.Runner(loop_factory=LOOPS[request.param]) as runner:
        yield runner.run


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA.create()

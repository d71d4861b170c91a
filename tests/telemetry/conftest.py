"""Telemetry tests run on uvloop, the loop the sidecar runs on (its transports differ)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest
import uvloop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """pytest-asyncio's hook (this directory only): every test here gets a uvloop loop."""
    return {"uvloop": uvloop.new_event_loop}

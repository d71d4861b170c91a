"""Upstream TLS tests run on uvloop, the loop the sidecar runs on (its SSL transports differ
from asyncio's), most with certificates from one mesh CA (`ca`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import uvloop

from tests.proxy.upstream.tls.world import MeshCa


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """pytest-asyncio's hook (this directory only): every test here gets a uvloop loop."""
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture
def ca(tmp_path: Path) -> MeshCa:
    """A fresh mesh CA in the test's tmp_path."""
    return MeshCa.open(tmp_path)

"""XdsClient against the real `gossamer controlplane` process: kill -9, restart, resync."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.e2e.harness import ControlPlane
from tests.polling import until
from tests.proxy.config.meshes import REVIEWS_V1, REVIEWS_V2, SERVICES
from tests.proxy.xds.clients import (
    NODE_ID,
    REVIEWS,
    Running,
    cluster_for,
    start_client,
    stop_client,
)


@pytest.mark.e2e
async def test_real_control_plane_kill_and_restart(tmp_path: Path) -> None:
    cp = ControlPlane(tmp_path / "home", debounce_ms=20, log_level="warning")
    await asyncio.to_thread(cp.start)
    running: Running | None = None
    try:
        await asyncio.to_thread(cp.apply, SERVICES + "---\n" + REVIEWS_V1)
        running = await start_client(cp.xds_port)
        first = await running.published.until(lambda c: c.complete, within=30)
        assert cluster_for(first, b"reviews") == f"outbound|9080|v1|{REVIEWS}"
        view = await asyncio.to_thread(cp.wait_synced, NODE_ID)
        assert view["types"]["lds"]["status"] == "SYNCED"

        await asyncio.to_thread(cp.kill)
        await until(lambda: not running.client.status().connected)
        assert running.published.last is first  # still serving the last config
        await asyncio.to_thread(cp.start)
        await asyncio.to_thread(cp.wait_synced, NODE_ID)
        revision = await asyncio.to_thread(cp.apply, REVIEWS_V2)
        v2 = f"outbound|9080|v2|{REVIEWS}"
        await running.published.until(lambda c: cluster_for(c, b"reviews") == v2, within=30)
        # Only RDS changed: the other types are not resent, so only RDS is at the new revision.
        await asyncio.to_thread(cp.wait_synced, NODE_ID, ("rds",), revision=revision)
    finally:
        if running is not None:
            await stop_client(running)
        await asyncio.to_thread(cp.stop)

"""End to end: a real grpcio proxyless client (child process) routed by our ADS server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gossamer.control.xds import AdsServer, SyncState
from gossamer.waits import bounded
from tests.control.xds.xds_backends import start_backend
from tests.control.xds.xds_world import HOST, StaticSource, world
from tests.polling import until

pytestmark = pytest.mark.e2e
CLIENT = Path(__file__).with_name("xds_proxyless_client.py")
NODE_ID = "proxyless~127.0.0.1~e2e-client.default~default.svc.cluster.local"
SVC_PORT = 8080


class Child:
    """The proxyless client process; every command answers one JSON line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def ask(self, command: str, within: float = 60.0) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        line = await bounded(self.proc.stdout.readline(), within)
        if not line:
            raise AssertionError(f"client exited ({command!r})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def close(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await bounded(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def rds_synced_at(server: AdsServer, revision: int) -> bool:
    for view in server.connections():
        rds = view.types.get("rds")
        if view.node_id == NODE_ID and rds is not None:
            return rds.status is SyncState.SYNCED and rds.sent_revision == revision
    return False


@pytest.fixture
async def backends() -> AsyncIterator[dict[str, int]]:
    servers = [await start_backend(n) for n in ("a", "b")]
    yield {"a": servers[0][1], "b": servers[1][1]}
    for server, _ in servers:
        await server.stop(None)


async def test_weighted_split_and_live_shift(backends: dict[str, int], tmp_path: Path) -> None:
    source = StaticSource(world(backends, {"a": 50, "b": 50}, svc_port=SVC_PORT, revision=1))
    server = AdsServer(source, debounce=0.02)
    port = await server.start()
    bootstrap = tmp_path / "bootstrap.json"
    bootstrap.write_text(
        json.dumps(
            {
                "xds_servers": [
                    {
                        "server_uri": f"127.0.0.1:{port}",
                        "channel_creds": [{"type": "insecure"}],
                        "server_features": ["xds_v3"],
                    }
                ],
                "node": {"id": NODE_ID, "cluster": "e2e-client", "metadata": {"GENERATOR": "grpc"}},
            }
        )
    )
    # A clean environment: the child's gRPC sees only its bootstrap (no preexec_fn: xds-notes).
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GRPC_XDS_BOOTSTRAP": str(bootstrap)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CLIENT),
        f"xds:///{HOST}:{SVC_PORT}",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    child = Child(proc)
    try:
        first = await child.ask("call 200")
        assert first["errors"] == 0, first
        assert first["counts"].get("a", 0) >= 50 and first["counts"].get("b", 0) >= 50, first
        [view] = server.connections()
        assert view.kind == "proxyless" and view.node_id == NODE_ID
        assert {s: view.status(s) for s in ("lds", "rds", "cds", "eds")} == dict.fromkeys(
            ("lds", "rds", "cds", "eds"), SyncState.SYNCED
        )

        # Shift everything to b: only RDS changes, and the client ACKs it.
        source.current = world(backends, {"a": 0, "b": 100}, svc_port=SVC_PORT, revision=2)
        server.notify(2)
        await until(lambda: rds_synced_at(server, 2), 10)
        # An ACK can precede the switch by a few ms: wait for a streak, then count.
        assert (await child.ask("until b 20"))["ok"]
        shifted = await child.ask("call 100")
        assert shifted == {"counts": {"b": 100}, "errors": 0}

        # Restart the control plane on the same port with the 50/50 split: the client resyncs.
        await server.stop(None)
        source.current = world(backends, {"a": 50, "b": 50}, svc_port=SVC_PORT, revision=3)
        server = AdsServer(source, debounce=0.02)
        assert await server.start(port=port) == port
        await until(lambda: rds_synced_at(server, 3), 30)
        back = await child.ask("until a 3")
        assert back["ok"] and back["errors"] == 0, back
    finally:
        await child.close()
        await server.stop(None)

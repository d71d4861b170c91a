"""`gossamer agent`'s life: certificate → SDS → Envoy, and the way out.

The identity agent (proxy/identity_agent.py, shared with the Python sidecar) fetches and renews
the certificate; each new one goes to the SDS server, which pushes it on every open stream.
Envoy starts at once (its TLS listeners and clusters warm until SDS has the first certificate).
SIGTERM or SIGINT drain Envoy and the agent exits with Envoy's code; if Envoy dies by itself,
the agent exits with its code too, so the pod restarts the sidecar.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from gossamer.agent.envoy_child import EnvoyChild
from gossamer.agent.sds_server import SdsServer
from gossamer.identity.spiffe import SpiffeId
from gossamer.proxy.app_health import add_app_health_routes
from gossamer.proxy.identity_agent import IdentityAgent
from gossamer.runtime.probes import Probe

log = logging.getLogger("gossamer.agent")
DEFAULT_DRAIN_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class AgentOptions:
    ca_address: str
    credential_file: Path
    root_cert_file: Path
    identity: SpiffeId
    sds_socket: Path
    envoy_argv: Sequence[str]
    admin_port: int = 15000  # Envoy's admin (127.0.0.1), for the graceful drain
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    node_id: str | None = None  # Envoy's xDS node id: the CA records what it issued to it
    # Istio's rewritten app probes (proxy/app_health.py), served on status_port as pilot-agent's
    # 15020; status_port None: not served.
    app_probers: Mapping[str, Probe] = field(default_factory=dict)
    status_port: int | None = None


async def run_agent(options: AgentOptions) -> int:
    """Serve SDS, run Envoy until it exits or we are told to stop; Envoy's exit code."""
    sds = SdsServer(options.sds_socket)
    certificates = IdentityAgent(
        options.ca_address,
        options.credential_file,
        options.root_cert_file,
        options.identity,
        on_material=sds.update,
        node_id=options.node_id,
    )
    envoy = EnvoyChild(options.envoy_argv, options.admin_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await sds.start()
    status = await _serve_status(options)
    renewing = asyncio.create_task(certificates.run(), name="certificates")
    try:
        await envoy.start()
        exited = asyncio.create_task(envoy.wait(), name="envoy")
        stopping = asyncio.create_task(stop.wait(), name="stop")
        await asyncio.wait((exited, stopping), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if exited.done():
            code = exited.result()
            log.error("Envoy exited with %d; the agent exits too", code)
        else:
            log.info("stop requested: draining Envoy")
            code = await envoy.drain_and_stop(options.drain_seconds)
            log.info("Envoy exited with %d", code)
        return code
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        await sds.stop()
        if status is not None:
            await status.cleanup()


async def _serve_status(options: AgentOptions) -> web.AppRunner | None:
    """pilot-agent's status port: the rewritten app probes (Envoy does not bind it)."""
    if options.status_port is None:
        return None
    app = web.Application()
    add_app_health_routes(app, options.app_probers)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", options.status_port, reuse_address=True).start()
    return runner

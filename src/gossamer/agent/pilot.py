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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gossamer.agent.envoy_child import EnvoyChild
from gossamer.agent.sds_server import SdsServer
from gossamer.identity.spiffe import SpiffeId
from gossamer.proxy.identity_agent import IdentityAgent

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

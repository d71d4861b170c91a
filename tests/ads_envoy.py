"""A real Envoy (sidecar or router) of a real control plane over ADS, for end-to-end tests.

`start_ads_envoy(stack, workdir, ...)` builds the bootstrap the runtime would (node id and Istio
metadata, ADS at the given address, admin on port 0), starts Envoy and registers its stop on
`stack` (only the PID it started); `ready(envoy, cp, node, revision)` waits until Envoy is LIVE
and has ACKed the control plane's config at `revision`, naming both logs if not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from gossamer.runtime.envoy import EnvoyProcess
from gossamer.runtime.envoy_bootstrap import bootstrap
from tests.e2e.harness import ControlPlane
from tests.static_envoy import ENVOY


def start_ads_envoy(
    stack: ExitStack,
    workdir: Path,
    *,
    node: str,
    cluster: str,
    metadata: Mapping[str, Any],
    xds_host: str,
    xds_port: int,
    concurrency: int = 1,
    static_clusters: Sequence[Mapping[str, Any]] = (),
) -> EnvoyProcess:
    """A started Envoy (not yet ready) whose listeners and clusters all come over ADS, plus
    `static_clusters` (an SDS server, say)."""
    assert ENVOY is not None, "mark the test with tests.static_envoy.NEEDS_ENVOY"
    config = bootstrap(
        node,
        cluster=cluster,
        metadata=metadata,
        xds_host=xds_host,
        xds_port=xds_port,
        admin_port=0,
    )
    config["static_resources"]["clusters"].extend(dict(c) for c in static_clusters)
    envoy = EnvoyProcess(config, workdir, binary=ENVOY, concurrency=concurrency, log_level="info")
    stack.callback(envoy.stop)
    envoy.start()
    return envoy


def diagnostics(envoy: EnvoyProcess, cp: ControlPlane) -> str:
    """Both logs' tails, for a failure message."""
    return f"--- envoy log ---\n{envoy.log_tail()}\n--- control plane log ---\n{cp.log_tail()}"


def ready(envoy: EnvoyProcess, cp: ControlPlane, node: str, revision: int) -> None:
    """Envoy LIVE and in sync with the control plane at `revision`; AssertionError otherwise."""
    try:
        envoy.wait_ready(60)
        cp.wait_synced(node, revision=revision, within=30)
    except (AssertionError, TimeoutError) as e:
        raise AssertionError(f"{e}\n{diagnostics(envoy, cp)}") from None

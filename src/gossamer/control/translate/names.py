"""Istio's names for xDS resources: clusters, listeners, route configurations, virtual hosts."""

from __future__ import annotations

PASSTHROUGH = "PassthroughCluster"
BLACKHOLE = "BlackHoleCluster"
INBOUND_PASSTHROUGH = "InboundPassthroughCluster"
VIRTUAL_OUTBOUND = "virtualOutbound"
VIRTUAL_INBOUND = "virtualInbound"
OUTBOUND_CAPTURE_PORT = 15001
INBOUND_CAPTURE_PORT = 15006
ALLOW_ANY_VHOST = "allow_any"
BLOCK_ALL_VHOST = "block_all"


def outbound_cluster(port: int, host: str, subset: str = "") -> str:
    """`outbound|9080|v2|reviews.default.svc.cluster.local` (subset empty: the whole service)."""
    return f"outbound|{port}|{subset}|{host}"


def inbound_cluster(port: int) -> str:
    """`inbound|9080||`: the local application behind this sidecar."""
    return f"inbound|{port}||"


def parse_outbound(name: str) -> tuple[int, str, str] | None:
    """(port, subset, host) of an outbound cluster name; None for any other name."""
    parts = name.split("|")
    if len(parts) != 4 or parts[0] != "outbound" or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2], parts[3]


def api_listener(host: str, port: int) -> str:
    """What a proxyless client with target `xds:///host:port` asks for (port included)."""
    return f"{host}:{port}"


def socket_listener(address: str, port: int) -> str:
    """`0.0.0.0_9080`, `10.0.0.7_3306`, `127.0.0.1_9080`."""
    return f"{address}_{port}"


def sidecar_route(port: int) -> str:
    """The outbound HTTP route configuration of a sidecar for one port: `9080`."""
    return str(port)


def gateway_route(port: int) -> str:
    """The route configuration of a gateway's HTTP server port: `http.8080`."""
    return f"http.{port}"


def vhost(host: str, port: int) -> str:
    return f"{host}:{port}"

"""The xDS v3 type URLs and their short names: the vocabulary both planes speak.

Shared by the control plane (control/xds) and the sidecar (proxy/), which never import each
other; like the protos themselves, this is the contract between them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

_PREFIX = "type.googleapis.com/"
LISTENER = _PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = _PREFIX + "envoy.config.route.v3.RouteConfiguration"
CLUSTER = _PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET = _PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"

SHORT_NAMES: Mapping[str, str] = MappingProxyType(
    {LISTENER: "lds", ROUTE: "rds", CLUSTER: "cds", ENDPOINT: "eds", SECRET: "sds"}
)


def short_name(type_url: str) -> str:
    """ "lds" for the Listener type URL and so on; unknown types give their message name."""
    return SHORT_NAMES.get(type_url) or type_url.rsplit("/", 1)[-1]

"""ADS server (state of the world) and the Snapshot seam the translator plugs into."""

from gossamer.control.xds.node import Locality, ProxyNode
from gossamer.control.xds.resources import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    PUSH_ORDER,
    ROUTE,
    SECRET,
    SHORT_NAMES,
    Selection,
    Snapshot,
    SnapshotSource,
    XdsResource,
    short_name,
)
from gossamer.control.xds.server import AdsServer
from gossamer.control.xds.status import ProxyStatusView, TypeStatusView
from gossamer.control.xds.stream import Nack, SyncState

__all__ = [
    "CLUSTER",
    "ENDPOINT",
    "LISTENER",
    "PUSH_ORDER",
    "ROUTE",
    "SECRET",
    "SHORT_NAMES",
    "AdsServer",
    "Locality",
    "Nack",
    "ProxyNode",
    "ProxyStatusView",
    "Selection",
    "Snapshot",
    "SnapshotSource",
    "SyncState",
    "TypeStatusView",
    "XdsResource",
    "short_name",
]

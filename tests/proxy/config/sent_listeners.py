"""Listeners built with the control plane's own builders, and edits of their
HttpConnectionManager that tests use to make them wrong in one known way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from gossamer.control.translate import listeners as translate


def rds_listener(name: str = "l", port: int = 9080) -> Any:
    """A bound HTTP listener on 127.0.0.1 taking routes "9080" over RDS."""
    return translate.socket_listener(
        name, "127.0.0.1", port, [translate.rds_filter("9080")], bind=True
    )


def with_hcm_edit(listener: Any, edit: Callable[[Any], None]) -> Any:
    """`listener` with `edit` applied to its first filter's HttpConnectionManager."""
    hcm = hcm_pb2.HttpConnectionManager()
    listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    edit(hcm)
    listener.filter_chains[0].filters[0].typed_config.Pack(hcm)
    return listener


def router_first(hcm: Any) -> None:
    hcm.http_filters.reverse()


def no_router(hcm: Any) -> None:
    del hcm.http_filters[-1]

"""The mTLS wiring contract's shapes as docs/security.md spells them, written out by hand: the
expected side of translator tests, and the references hand-built Envoy configs use."""

from __future__ import annotations

from typing import Any


def sds_reference(name: str) -> dict[str, Any]:
    """An SDS secret reference (`default` or `ROOTCA`) fetched over the `sds-grpc` cluster."""
    return {
        "name": name,
        "sds_config": {
            "api_config_source": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "sds-grpc"}}],
                "set_node_on_first_message_only": True,
            },
            "initial_fetch_timeout": "0s",
            "resource_api_version": "V3",
        },
    }

"""The inbound cluster: delivery to the proxy's own IP from source 127.0.0.6 (Istio >= 1.10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from google.protobuf import json_format

from gossamer.control.translate import clusters
from gossamer.control.world import ServicePort
from gossamer.runtime import envoy as rt
from gossamer.runtime import envoy_bootstrap
from gossamer.runtime.pods.interception import INBOUND_PASSTHROUGH_SOURCE
from tests.control.translate.worlds import node, pod, simulate, world

MESH = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: tcp-db, port: 5432}]
"""
WEB = (pod("web-1", "10.0.0.5", {"app": "web"}),)


def inbound_of(proxy_ip: str, **metadata: str) -> dict[str, cluster_pb2.Cluster]:
    sim = simulate(world(MESH, workloads=WEB), node(ip=proxy_ip, labels={"app": "web"}, **metadata))
    return {name: c for name, c in sim.clusters.items() if name.startswith("inbound|")}


def endpoint_and_source(cluster: cluster_pb2.Cluster) -> tuple[str, int, str]:
    [group] = cluster.load_assignment.endpoints
    [lb] = group.lb_endpoints
    address = lb.endpoint.address.socket_address
    return address.address, address.port_value, cluster.upstream_bind_config.source_address.address


def test_inbound_goes_to_the_proxy_ip_from_127_0_0_6() -> None:
    found = inbound_of("10.0.0.5")
    assert endpoint_and_source(found["inbound|80||"]) == ("10.0.0.5", 8080, "127.0.0.6")
    assert endpoint_and_source(found["inbound|5432||"]) == ("10.0.0.5", 5432, "127.0.0.6")
    assert found["inbound|80||"].upstream_bind_config.source_address.port_value == 0


def test_instance_ips_metadata_names_the_proxy_ip() -> None:
    found = inbound_of("10.0.0.5", INSTANCE_IPS="10.0.0.77,10.0.0.78")
    assert endpoint_and_source(found["inbound|80||"]) == ("10.0.0.77", 8080, "127.0.0.6")


def test_unknown_proxy_ip_falls_back_to_loopback() -> None:
    cluster = clusters.inbound(80, 8080, ServicePort(number=80, name="http", protocol="HTTP"))
    assert endpoint_and_source(cluster) == ("127.0.0.1", 8080, "127.0.0.6")


def test_ipv6_proxy_binds_the_ipv6_passthrough_source() -> None:
    port = ServicePort(number=80, name="http", protocol="HTTP")
    assert endpoint_and_source(clusters.inbound(80, 8080, port, "fd00::5")) == (
        "fd00::5",
        8080,
        "::6",
    )


def test_the_interception_rules_exempt_the_same_source() -> None:
    assert INBOUND_PASSTHROUGH_SOURCE == clusters.INBOUND_SOURCE


@pytest.mark.envoy
def test_envoy_accepts_the_inbound_cluster(tmp_path: Path) -> None:
    try:
        binary = rt.envoy_binary()
    except rt.EnvoyNotFound as exc:
        pytest.skip(f"Envoy binary not available: {exc}")
    config = envoy_bootstrap.bootstrap(
        envoy_bootstrap.node_id("sidecar", "10.0.0.5", "web-1", "default"),
        cluster="web.default",
        metadata=envoy_bootstrap.node_metadata(namespace="default", labels={"app": "web"}),
        xds_host="127.0.0.1",
        xds_port=15010,
        admin_port=0,
    )
    static = [
        json_format.MessageToDict(c) for c in inbound_of("10.0.0.5").values()
    ]  # protobuf JSON, as Envoy reads it
    config["static_resources"]["clusters"] = [*config["static_resources"]["clusters"], *static]
    rt.validate(config, tmp_path, binary=binary)


def test_explicit_mode_pod_registered_at_15006_gets_its_app_port() -> None:
    """An explicit-mode pod registers its sidecar's 15006 (peers dial it); its own inbound
    cluster still reaches the app on the Service's target port, never the sidecar itself."""
    explicit = (pod("web-1", "127.231.0.3", {"app": "web"}, ports={"http": 15006}),)
    sim = simulate(world(MESH, workloads=explicit), node(ip="127.231.0.3"))
    inbound = sim.clusters["inbound|80||"]
    assert endpoint_and_source(inbound) == ("127.231.0.3", 8080, "127.0.0.6")
    client = simulate(world(MESH, workloads=explicit), node(ip="127.231.0.2"))
    assert client.cluster("outbound|80||web.default.svc.cluster.local").endpoints == [
        ("127.231.0.3", 15006, "", 1)
    ]

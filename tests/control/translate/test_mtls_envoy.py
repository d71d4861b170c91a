"""The translator's mTLS resources in a real Envoy: `envoy --mode validate` accepts a full sidecar
set, and two Envoys (client: our outbound cluster; server: our inbound chains) speak mesh mTLS
with certificates from the real CA, delivered through file-based SDS in place of the agent.

The server's listener is moved to a free loopback port (its app chain's destination port with
it, as capture_port_relay does for ADS); everything else is what the translator emitted.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from gossamer.control.ca import Authority, SpiffeId, key_pem, make_csr, new_key, open_ca
from gossamer.control.registry import Workload
from gossamer.control.translate.sidecar import sidecar_resources
from gossamer.runtime import envoy as rt
from gossamer.runtime import envoy_bootstrap
from tests.control.translate.app_server import serve_app
from tests.control.translate.worlds import fqdn, pod, world
from tests.control.translate.worlds import meshed_node as node
from tests.ports import free_port
from tests.static_envoy import NEEDS_ENVOY

pytestmark = NEEDS_ENVOY

REVIEWS = SpiffeId("default", "reviews")
PRODUCTPAGE = SpiffeId("default", "productpage")
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "envoy.extensions.filters.http.router.v3.Router"
CLUSTER = f"outbound|9080||{fqdn('reviews')}"
LOOPBACK = "127.0.0.1"
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def mesh(app_port: int) -> str:
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: reviews, namespace: default}}
spec:
  selector: {{app: reviews}}
  ports: [{{name: http, port: 9080, targetPort: {app_port}}}]
"""


STRICT = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: default}
spec: {mtls: {mode: STRICT}}
"""


def reviews_pod(app_port: int, *, sidecar: bool = True) -> Workload:
    """`sidecar`: registered with Istio's `security.istio.io/tlsMode: istio` (its sidecar holds
    a certificate), so clients use mTLS under auto mTLS."""
    labels = {"app": "reviews", "security.istio.io/tlsMode": "istio"} if sidecar else {}
    return replace(
        pod("reviews-0", LOOPBACK, labels or {"app": "reviews"}, ports={"http": app_port}),
        service_account="reviews",
        has_sidecar=sidecar,
    )


def as_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def of_type(resources: list[Message], kind: type[Message]) -> dict[str, Any]:
    return {r.name: r for r in resources if isinstance(r, kind)}  # type: ignore[attr-defined]


# --- SDS from files --------------------------------------------------------------------------


def write_secrets(directory: Path, authority: Authority, identity: SpiffeId) -> dict[str, Path]:
    """`default` and `ROOTCA` as one-resource SDS files, as the agent would serve them."""
    directory.mkdir(parents=True, exist_ok=True)
    key = new_key()
    issued = authority.sign(make_csr(key, identity), identity)
    secrets = {
        "default": {
            "tls_certificate": {
                "certificate_chain": {"inline_bytes": _b64(issued.chain_pem())},
                "private_key": {"inline_bytes": _b64(key_pem(key))},
            }
        },
        "ROOTCA": {
            "validation_context": {"trusted_ca": {"inline_bytes": _b64(issued.bundle_pem())}}
        },
    }
    paths = {}
    for name, body in secrets.items():
        path = directory / f"{name}.json"
        path.write_text(json.dumps({"resources": [{"@type": SECRET, "name": name, **body}]}))
        paths[name] = path
    return paths


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def from_files(config: Any, files: Mapping[str, Path]) -> Any:
    """Every SDS secret config in `config` (JSON dicts) now reads its secret from `files`."""
    if isinstance(config, list):
        return [from_files(item, files) for item in config]
    if not isinstance(config, dict):
        return config
    out = {k: from_files(v, files) for k, v in config.items()}
    if "sds_config" in out and out.get("name") in files:
        path = str(files[out["name"]])
        out["sds_config"] = {"path_config_source": {"path": path}, "resource_api_version": "V3"}
    return out


# --- the two Envoys --------------------------------------------------------------------------


def server_config(
    resources: list[Message], app_port: int, listen_port: int, files: Mapping[str, Path]
) -> dict[str, Any]:
    """The translator's virtualInbound and inbound clusters, the listener on a free port."""
    inbound = of_type(resources, listener_pb2.Listener)["virtualInbound"]
    inbound.address.socket_address.address = LOOPBACK
    inbound.address.socket_address.port_value = listen_port
    for chain in inbound.filter_chains:
        if chain.filter_chain_match.destination_port.value == app_port:
            chain.filter_chain_match.destination_port.value = listen_port
    clusters = [
        as_dict(c)
        for name, c in of_type(resources, cluster_pb2.Cluster).items()
        if name.startswith("inbound|") or name == "InboundPassthroughCluster"
    ]
    config: dict[str, Any] = from_files(
        {
            "static_resources": {"listeners": [as_dict(inbound)], "clusters": clusters},
            "admin": {"address": {"socket_address": {"address": LOOPBACK, "port_value": 0}}},
            "node": {"id": "server", "cluster": "reviews.default"},
        },
        files,
    )
    return config


def client_cluster(resources: list[Message], name: str, server_port: int) -> dict[str, Any]:
    """The translator's outbound cluster for reviews, its EDS answer inline and pointed at the
    server Envoy (endpoint metadata kept: it is what auto mTLS matches on)."""
    cluster = cluster_pb2.Cluster()
    cluster.CopyFrom(of_type(resources, cluster_pb2.Cluster)[CLUSTER])
    assignment = next(
        r
        for r in resources
        if isinstance(r, endpoint_pb2.ClusterLoadAssignment) and r.cluster_name == CLUSTER
    )
    cluster.name = name
    cluster.type = cluster_pb2.Cluster.STATIC
    cluster.ClearField("eds_cluster_config")
    cluster.load_assignment.CopyFrom(assignment)
    cluster.load_assignment.cluster_name = name
    for group in cluster.load_assignment.endpoints:
        for lb in group.lb_endpoints:
            lb.endpoint.address.socket_address.port_value = server_port
    return as_dict(cluster)


def client_config(clusters: Mapping[str, dict[str, Any]], files: Mapping[str, Path]) -> Any:
    """An HTTP listener routing by Host to the cluster of that name."""
    hcm = {
        "@type": f"type.googleapis.com/{HCM}",
        "stat_prefix": "client",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": host,
                    "domains": [host],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": host}}],
                }
                for host in clusters
            ]
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": f"type.googleapis.com/{ROUTER}"},
            }
        ],
    }
    listener = {
        "name": "client",
        "address": {"socket_address": {"address": LOOPBACK, "port_value": 0}},
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }
    config = {
        "static_resources": {"listeners": [listener], "clusters": list(clusters.values())},
        "admin": {"address": {"socket_address": {"address": LOOPBACK, "port_value": 0}}},
        "node": {"id": "client", "cluster": "productpage.default"},
    }
    return from_files(config, files)


class _App(BaseHTTPRequestHandler):
    """The workload: answers 200 with the x-forwarded-client-cert it received (or `-`)."""

    def do_GET(self) -> None:
        body = (self.headers.get("x-forwarded-client-cert") or "-").encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def get(port: int, host: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        conn.request("GET", "/", headers={"Host": host})
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


@dataclass
class Pair:
    client: int  # the client Envoy's listener
    permissive: int  # server Envoy, no PeerAuthentication
    strict: int  # server Envoy, namespace STRICT
    other_ca_client: int  # a client Envoy whose certificate comes from another CA


def listener_port(envoy: rt.EnvoyProcess) -> int:
    _, text = envoy.admin_get("/listeners?format=json")
    status = json.loads(text)["listener_statuses"][0]
    return int(status["local_address"]["socket_address"]["port_value"])


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("mtls-envoy")
    authority = open_ca(root / "ca")
    with ExitStack() as stack:
        app_port = serve_app(stack, _App)
        server_files = write_secrets(root / "server-sds", authority, REVIEWS)
        client_files = write_secrets(root / "client-sds", authority, PRODUCTPAGE)
        server_node = node(ip=LOOPBACK, labels={"app": "reviews"})
        ports = {}
        for mode, extra in (("permissive", ()), ("strict", (STRICT,))):
            w = world(mesh(app_port), *extra, workloads=(reviews_pod(app_port),))
            ports[mode] = free_port()
            config = server_config(
                sidecar_resources(w, server_node), app_port, ports[mode], server_files
            )
            envoy = rt.EnvoyProcess(config, root / f"server-{mode}", concurrency=1)
            stack.callback(envoy.stop)
            envoy.start()
            envoy.wait_ready(30)
        meshed = sidecar_resources(
            world(mesh(app_port), workloads=(reviews_pod(app_port),)), node()
        )
        plain = sidecar_resources(
            world(mesh(app_port), workloads=(reviews_pod(app_port, sidecar=False),)), node()
        )
        impostor = replace(reviews_pod(app_port), service_account="ratings")
        wrong_sa = sidecar_resources(world(mesh(app_port), workloads=(impostor,)), node())
        clusters = {
            f"{kind}.{mode}": client_cluster(resources, f"{kind}.{mode}", ports[mode])
            for kind, resources in (("meshed", meshed), ("plain", plain), ("wrong-sa", wrong_sa))
            for mode in ("permissive", "strict")
        }
        client = rt.EnvoyProcess(client_config(clusters, client_files), root / "client")
        stack.callback(client.stop)
        client.start()
        client.wait_ready(30)
        # The same client, its certificate from a CA the servers do not trust.
        other_files = write_secrets(root / "other-sds", open_ca(root / "other-ca"), PRODUCTPAGE)
        other_files = {"default": other_files["default"], "ROOTCA": server_files["ROOTCA"]}
        other = rt.EnvoyProcess(client_config(clusters, other_files), root / "other-client")
        stack.callback(other.stop)
        other.start()
        other.wait_ready(30)
        yield Pair(
            listener_port(client), ports["permissive"], ports["strict"], listener_port(other)
        )


def test_meshed_endpoint_gets_mtls_and_the_app_sees_the_clients_spiffe_id(pair: Pair) -> None:
    for mode in ("permissive", "strict"):
        status, xfcc = get(pair.client, f"meshed.{mode}")
        assert status == 200, (mode, xfcc)
        assert f"URI={PRODUCTPAGE.uri}" in xfcc.split(";"), xfcc
        assert f"By={REVIEWS.uri}" in xfcc.split(";"), xfcc


def test_strict_refuses_a_plaintext_client_and_permissive_accepts_it(pair: Pair) -> None:
    assert get(pair.permissive, "reviews") == (200, "-")
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        get(pair.strict, "reviews")


def test_auto_mtls_falls_back_to_plaintext_for_an_endpoint_without_a_sidecar(pair: Pair) -> None:
    assert get(pair.client, "plain.permissive") == (200, "-")  # plaintext: no client cert
    status, _ = get(pair.client, "plain.strict")
    assert status == 503  # the STRICT server closed the plaintext connection


# --- envoy --mode validate of a full sidecar set ---------------------------------------------

VALIDATED = """
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  selector: {app: ratings}
  ports: [{name: grpc, port: 7070}, {name: tcp-db, port: 3306}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  trafficPolicy:
    portLevelSettings:
    - {port: {number: 7070}, tls: {mode: SIMPLE, caCertificates: CA, sni: ratings.example}}
    - port: {number: 3306}
      tls: {mode: MUTUAL, clientCertificate: CERT, privateKey: KEY, caCertificates: CA}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: reviews, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  mtls: {mode: STRICT}
  portLevelMtls: {'9081': {mode: PERMISSIVE}, '9082': {mode: DISABLE}}
"""
SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}, {name: http-b, port: 9081}, {name: tcp-c, port: 9082}]
"""


def test_a_full_sidecar_set_with_every_tls_mode_passes_envoy_validate(tmp_path: Path) -> None:
    authority = open_ca(tmp_path / "ca")
    key = new_key()
    issued = authority.sign(make_csr(key, REVIEWS), REVIEWS)
    files = {"CA": issued.bundle_pem(), "CERT": issued.chain_pem(), "KEY": key_pem(key)}
    text = VALIDATED
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        text = text.replace(f": {name}", f": {tmp_path / name}")
    pods = (
        replace(
            pod(
                "reviews-0",
                "10.0.0.5",
                {"app": "reviews", "version": "v1", "security.istio.io/tlsMode": "istio"},
            ),
            service_account="reviews",
        ),
        pod("ratings-0", "10.0.0.6", {"app": "ratings"}),
    )
    w = world(SERVICES, text, workloads=pods)
    resources = sidecar_resources(w, node(ip="10.0.0.5", labels={"app": "reviews"}))
    listeners = [as_dict(r) for r in resources if isinstance(r, listener_pb2.Listener)]
    clusters = [as_dict(r) for r in resources if isinstance(r, cluster_pb2.Cluster)]
    tls_clusters = [
        c for c in clusters if "transport_socket" in c or "transport_socket_matches" in c
    ]
    assert len(tls_clusters) >= 5, [c["name"] for c in clusters]
    config = envoy_bootstrap.bootstrap(
        "sidecar~10.0.0.5~reviews-0.default~default.svc.cluster.local",
        cluster="reviews.default",
        metadata={},
        xds_host=LOOPBACK,
        xds_port=free_port(),
        admin_port=0,
    )
    config["static_resources"]["listeners"] = listeners
    config["static_resources"]["clusters"] += [*clusters, _sds_cluster(tmp_path / "sds.sock")]
    rt.validate(config, tmp_path)


def _sds_cluster(path: Path) -> dict[str, Any]:
    """Istio's `sds-grpc`: gRPC to the agent's Unix socket (validate never connects)."""
    return {
        "name": "sds-grpc",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "sds-grpc",
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": {"pipe": {"path": str(path)}}}}]}
            ],
        },
        "typed_extension_protocol_options": {
            HTTP_OPTIONS: {
                "@type": f"type.googleapis.com/{HTTP_OPTIONS}",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
    }


def test_a_server_whose_identity_is_not_the_services_is_refused(pair: Pair) -> None:
    # The endpoints' service account is `ratings`; the server presents `reviews`.
    assert get(pair.client, "wrong-sa.permissive")[0] == 503
    assert get(pair.client, "wrong-sa.strict")[0] == 503


def test_a_client_certificate_from_another_ca_is_refused(pair: Pair) -> None:
    assert get(pair.other_ca_client, "meshed.permissive")[0] == 503
    assert get(pair.other_ca_client, "meshed.strict")[0] == 503
    assert get(pair.other_ca_client, "plain.permissive") == (200, "-")  # plaintext still works

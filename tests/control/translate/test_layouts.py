"""Sidecar and gateway layouts: Istio's listener names, domains, capture modes, VS merging,
Gateway API precedence and GAMMA routes."""

from __future__ import annotations

from tests.control.translate.worlds import cluster, fqdn, node, pod, simulate, world

MESH = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: data}
spec:
  selector: {app: db}
  clusterIP: 10.96.0.20
  ports: [{name: tcp-pg, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: data}
spec:
  selector: {app: api}
  ports: [{name: http, port: 80}]
"""
PODS = (
    pod("web-1", "10.0.0.5", {"app": "web"}),
    pod("db-1", "10.0.1.5", {"app": "db"}, namespace="data"),
)


def test_sidecar_listeners_clusters_and_domains() -> None:
    sim = simulate(world(MESH, workloads=PODS), node("sidecar", ip="10.0.0.5"))
    assert sorted(sim.listeners) == [
        "0.0.0.0_80",
        "10.96.0.20_5432",
        "virtualInbound",
        "virtualOutbound",
    ]
    outbound = sim.listeners["virtualOutbound"]
    assert outbound.use_original_dst.value and outbound.address.socket_address.port_value == 15001
    assert sim.listeners["0.0.0.0_80"].bind_to_port.value is False
    assert {
        "PassthroughCluster",
        "BlackHoleCluster",
        "InboundPassthroughCluster",
        "inbound|80||",
    } <= set(sim.clusters)
    # Inbound goes to the pod's own IP (Istio >= 1.10), not 127.0.0.1.
    assert sim.cluster("inbound|80||").endpoints == [("10.0.0.5", 8080, "", 1)]
    web = next(v for v in sim.routes["80"].virtual_hosts if v.name == f"{fqdn('web')}:80")
    assert set(web.domains) == {
        fqdn("web"),
        f"{fqdn('web')}:80",
        "web",
        "web:80",
        "web.default",
        "web.default:80",
        "10.96.0.10",
        "10.96.0.10:80",
    }
    api = next(v for v in sim.routes["80"].virtual_hosts if v.name.startswith("api."))
    assert "api" not in api.domains and "api.data" in api.domains
    assert sim.call("80", "web:80", "/").cluster == cluster("web", 80)
    assert sim.call("80", "api.data", "/").cluster == cluster("api", 80, namespace="data")
    # ALLOW_ANY: unknown hosts pass through to their original destination.
    assert sim.call("80", "example.com", "/").cluster == "PassthroughCluster"


def test_interception_none_binds_loopback_and_drops_capture_listeners() -> None:
    sim = simulate(world(MESH, workloads=PODS), node("sidecar", INTERCEPTION_MODE="NONE"))
    assert sorted(sim.listeners) == ["127.0.0.1_5432", "127.0.0.1_80"]
    http = sim.listeners["127.0.0.1_80"]
    assert http.address.socket_address.address == "127.0.0.1"
    assert not http.HasField("bind_to_port")  # binds (the default)


def test_tcp_virtual_service_split() -> None:
    vs = """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: data}
spec:
  hosts: [db]
  tcp:
  - route:
    - {destination: {host: db, subset: a}, weight: 9}
    - {destination: {host: db, subset: b}, weight: 1}
"""
    sim = simulate(world(MESH + vs), node("sidecar"))
    from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

    proxy = tcp_proxy_pb2.TcpProxy()
    sim.listeners["10.96.0.20_5432"].filter_chains[0].filters[0].typed_config.Unpack(proxy)
    assert {c.name: c.weight for c in proxy.weighted_clusters.clusters} == {
        cluster("db", 5432, "a", "data"): 9,
        cluster("db", 5432, "b", "data"): 1,
    }


GATEWAY = """
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  selector: {istio: ingress}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: first, namespace: default}
spec:
  hosts: [shop.example.com]
  gateways: [edge/gw]
  http:
  - route: [{destination: {host: web}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: second, namespace: default}
spec:
  hosts: [shop.example.com]
  gateways: [edge/gw]
  http:
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: api.data.svc.cluster.local}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: unbound, namespace: default}
spec:
  hosts: [other.org]
  gateways: [edge/gw]
  http: [{route: [{destination: {host: web}}]}]
"""


def test_gateway_merges_virtual_services_and_moves_catch_alls_last() -> None:
    sim = simulate(
        world(MESH + GATEWAY), node("router", namespace="edge", labels={"istio": "ingress"})
    )
    assert sorted(sim.listeners) == ["0.0.0.0_8080"]
    assert sim.call("http.8080", "shop.example.com", "/api/x").cluster == cluster(
        "api", 80, namespace="data"
    )
    assert sim.call("http.8080", "shop.example.com", "/").cluster == cluster("web", 80)
    assert sim.call("http.8080", "other.org", "/").kind == "404"  # not within the server's hosts


GATEWAY_API = """
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: public, namespace: default}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 8000, protocol: HTTP, hostname: "*.example.com"}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: default}
spec:
  parentRefs: [{name: public}]
  hostnames: [shop.example.com]
  rules:
  - backendRefs: [{name: web, port: 80}]
  - matches:
    - path: {type: PathPrefix, value: /v2}
      headers: [{name: x-beta, value: "1"}]
    backendRefs:
    - {name: web, port: 80, weight: 1}
    - {name: api, namespace: data, port: 80, weight: 3}
  - matches: [{path: {type: Exact, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /new}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules:
  - matches: [{headers: [{name: x-to, value: api}]}]
    backendRefs: [{name: api, namespace: data, port: 80}]
  - backendRefs: [{name: web, port: 80}]
"""


def test_gateway_api_routes_are_most_specific_first() -> None:
    gw = node("router", labels={"gateway.networking.k8s.io/gateway-name": "public"})
    sim = simulate(world(MESH + GATEWAY_API), gw)
    assert sorted(sim.listeners) == ["0.0.0.0_8000"]
    host = "shop.example.com"
    assert sim.call("http.8000", host, "/v2/x", headers={"x-beta": "1"}).shares == {
        cluster("web", 80): 0.25,
        cluster("api", 80, namespace="data"): 0.75,
    }
    assert sim.call("http.8000", host, "/v2x", headers={"x-beta": "1"}).cluster == cluster(
        "web", 80
    )
    old = sim.call("http.8000", host, "/old")
    assert (old.kind, old.status, old.location) == ("redirect", 302, "http://shop.example.com/new")
    assert sim.call("http.8000", "nope.org", "/").kind == "404"


def test_gamma_httproute_applies_to_mesh_clients_of_the_service() -> None:
    for kind, config, authority in (
        ("sidecar", "80", "web"),
        ("proxyless", f"{fqdn('web')}:80", f"{fqdn('web')}:80"),
    ):
        sim = simulate(world(MESH + GATEWAY_API), node(kind))
        assert sim.call(config, authority, "/", headers={"x-to": "api"}).cluster == cluster(
            "api", 80, namespace="data"
        )
        assert sim.call(config, authority, "/").cluster == cluster("web", 80)


def test_proxyless_api_listener_shape() -> None:
    sim = simulate(world(MESH), node("proxyless"))
    name = f"{fqdn('web')}:80"
    assert name in sim.listeners and sim.listeners[name].HasField("api_listener")
    vhost = sim.routes[name].virtual_hosts[0]
    assert name in vhost.domains
    from envoy.extensions.filters.network.http_connection_manager.v3 import (
        http_connection_manager_pb2 as hcm_pb2,
    )

    hcm = hcm_pb2.HttpConnectionManager()
    sim.listeners[name].api_listener.api_listener.Unpack(hcm)
    assert hcm.rds.route_config_name == name and hcm.rds.config_source.HasField("ads")
    assert [f.name for f in hcm.http_filters][-1] == "envoy.filters.http.router"

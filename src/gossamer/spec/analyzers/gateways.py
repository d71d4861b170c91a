"""Gateways: IST0101 gateway not found, IST0132 host not on the gateway, IST0145 conflicts.

1. Each gateway a VirtualService names (`name` is in the VirtualService's namespace, `ns/name`
   elsewhere; `mesh` is reserved) must exist, as an Istio Gateway or a Gateway API Gateway.
2. One of the VirtualService's hosts must match one of the gateway's server hosts visible from the
   VirtualService's namespace (`./h` is the gateway's namespace, `*/h` any); a missing gateway
   has no hosts, so it gets both messages, as in istioctl.
3. Two Istio Gateways conflict (IST0145) when they select the same workloads (same selector, or
   selectors one contained in the other that a Pod satisfies together), on the same port number,
   with a host written identically and the same `bind`. Resources with the same namespace/name
   count once (the last read).
Files-only rule (see `world`): when the files hold no Gateway at all, gateway references are
not checked (istioctl would report each one as missing).
"""

from __future__ import annotations

from collections.abc import Iterator

from gossamer.spec.analyzers.base import Corpus, analyzer
from gossamer.spec.analyzers.workloads import pods
from gossamer.spec.analyzers.world import (
    latest,
    message,
    not_found,
    selector_text,
    selects,
)
from gossamer.spec.base import Resource
from gossamer.spec.findings import Finding
from gossamer.spec.gatewayapi.gateway import Gateway as KubernetesGateway
from gossamer.spec.networking.gateway import Gateway
from gossamer.spec.networking.names import host_matches
from gossamer.spec.networking.virtualservice import MESH, VirtualService


def gateway_key(name: str, namespace: str) -> tuple[str, str]:
    """(namespace, name) of a gateway reference written in `namespace`."""
    ns, slash, bare = name.partition("/")
    return (ns, bare) if slash else (namespace, name)


def _server_hosts(gateway: Gateway) -> list[str]:
    """Server hosts with `./` made the gateway's namespace and `*/` dropped (Istio's
    sanitizeServerHostNamespace)."""
    hosts: list[str] = []
    for server in gateway.spec.servers:
        for host in server.hosts:
            ns, slash, name = host.partition("/")
            if not slash:
                hosts.append(host)
            elif ns == ".":
                hosts.append(f"{gateway.namespace}/{name}")
            elif ns == "*":
                hosts.append(name)
            else:
                hosts.append(host)
    return hosts


def _visible(hosts: list[str], namespace: str) -> list[str]:
    out = []
    for host in hosts:
        ns, slash, name = host.partition("/")
        if not slash:
            out.append(host)
        elif ns in (namespace, "*"):
            out.append(name)
    return out


@analyzer
def virtualservice_gateways(corpus: Corpus) -> Iterator[tuple[Resource, Finding]]:
    """IST0101 and IST0132 for each gateway a VirtualService names."""
    istio = {(g.namespace, g.name): g for g in corpus.of(Gateway)}
    kube = {(g.namespace, g.name): g for g in corpus.of(KubernetesGateway)}
    if not istio and not kube:
        return  # files-only: no gateway was given, so none can be looked up (see `world`)
    for vs in corpus.of(VirtualService):
        for index, name in enumerate(vs.spec.gateways):
            if name == MESH:
                continue
            at = ("spec", "gateways", index)
            key = gateway_key(name, vs.namespace)
            hosts: list[str] = []
            if key in istio:
                hosts = _visible(_server_hosts(istio[key]), vs.namespace)
            elif key in kube:
                listeners = kube[key].spec.listeners
                if any(not listener.hostname for listener in listeners):
                    continue  # a listener without hostname takes every host
                hosts = [str(listener.hostname) for listener in listeners]
            else:
                yield vs, not_found(at, "gateway", name)
            if not any(host_matches(g, h) for g in hosts for h in vs.spec.hosts):
                listed = " ".join(vs.spec.hosts)
                yield (
                    vs,
                    message(
                        "IST0132",
                        at,
                        f"one or more host [{listed}] defined in VirtualService "
                        f"{vs.namespace}/{vs.name} not found in Gateway {key[0]}/{key[1]}.",
                    ),
                )


@analyzer
def conflicting_gateways(corpus: Corpus) -> Iterator[tuple[Resource, Finding]]:
    """IST0145 for each server of a Gateway that another Gateway also serves."""
    gateways = latest(corpus, Gateway)
    workloads = pods(corpus)

    def same_workloads(a: Gateway, b: Gateway) -> bool:
        sa, sb = selector_text(a.spec.selector), selector_text(b.spec.selector)
        if sa == sb:
            return True
        if sa not in sb and sb not in sa:
            return False
        return any(
            selects(a.spec.selector, p.labels) and selects(b.spec.selector, p.labels)
            for p in workloads
        )

    for gw in gateways:
        others = [o for o in gateways if o is not gw and same_workloads(gw, o)]
        for index, server in enumerate(gw.spec.servers):
            conflicting = sorted(
                f"{o.namespace}/{o.name}"
                for o in others
                if any(
                    s.port.number == server.port.number
                    and s.bind == server.bind
                    and set(s.hosts) & set(server.hosts)
                    for s in o.spec.servers
                )
            )
            if conflicting:
                yield (
                    gw,
                    message(
                        "IST0145",
                        ("spec", "servers", index),
                        f"Conflict with gateways {','.join(conflicting)} (workload selector "
                        f"{selector_text(gw.spec.selector)}, port {server.port.number}, "
                        f"hosts {','.join(server.hosts)}).",
                    ),
                )

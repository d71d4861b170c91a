"""IST0109: several mesh VirtualServices claim the same host where they are visible.

As Istio's ConflictingMeshGatewayHostsAnalyzer: each host of a VirtualService bound to `mesh`
(no `gateways`, or `mesh` listed) is keyed by (visibility scope, FQDN), the scope being `*`
unless `exportTo` narrows it. VirtualServices sharing a key conflict; one exported to a
namespace also conflicts with those exported everywhere whose host matches its host (wildcards
included). Resources with the same namespace/name count once (the last read).
"""

from __future__ import annotations

from collections.abc import Iterator

from gossamer.spec.analyzers.base import Corpus, analyzer
from gossamer.spec.analyzers.world import latest, message, to_fqdn
from gossamer.spec.base import Resource
from gossamer.spec.findings import Finding
from gossamer.spec.networking.names import host_matches
from gossamer.spec.networking.virtualservice import VirtualService


def _scopes(vs: VirtualService) -> list[str]:
    export = vs.spec.export_to
    if not export or "*" in export:
        return ["*"]
    return sorted({vs.namespace if e == "." else e for e in export})


@analyzer
def conflicting_mesh_hosts(corpus: Corpus) -> Iterator[tuple[Resource, Finding]]:
    """IST0109 on each VirtualService of a conflicting group (once per VirtualService)."""
    claims: dict[tuple[str, str], list[VirtualService]] = {}
    for vs in latest(corpus, VirtualService):
        if not vs.spec.applies_to_mesh:
            continue
        for scope in _scopes(vs):
            for host in vs.spec.hosts:
                claims.setdefault((scope, to_fqdn(vs.namespace, host)), []).append(vs)
    reported: set[tuple[str, str]] = set()
    for (scope, fqdn), group in sorted(claims.items()):
        members = list(group)
        if scope != "*":
            for (other_scope, other), more in sorted(claims.items()):
                if other_scope == "*" and host_matches(fqdn, other):
                    members.extend(more)
        if len(members) < 2:
            continue
        names = ",".join(sorted(f"{v.namespace}/{v.name}" for v in members))
        for vs in members:
            if (vs.namespace, vs.name) in reported:
                continue
            reported.add((vs.namespace, vs.name))
            yield (
                vs,
                message(
                    "IST0109",
                    ("metadata", "name"),
                    f"The VirtualServices {names} associated with mesh gateway define the same "
                    f"host {scope}/{fqdn} which can lead to undefined behavior. This can be fixed "
                    "by merging the conflicting VirtualServices into a single resource.",
                ),
            )

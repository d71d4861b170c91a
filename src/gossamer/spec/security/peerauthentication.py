"""security.istio.io PeerAuthentication: which mTLS mode a workload's server side accepts (§6)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Literal, get_args

from pydantic import Field

from gossamer.spec.base import Loc, Resource, SpecModel, problem, warning
from gossamer.spec.findings import Finding, format_path
from gossamer.spec.kinds import served
from gossamer.spec.security.authorizationpolicy import (
    ROOT_NAMESPACE,
    Scope,
    ScopeLevel,
    supported_values,
)
from gossamer.spec.selectors import WorkloadSelector

MtlsModeName = Literal["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]
MtlsMode = Annotated[MtlsModeName, supported_values(*get_args(MtlsModeName))]
_INTEGER = re.compile(r"[+-]?[0-9]+")


class MutualTls(SpecModel):
    """`mode`: UNSET inherits from the broader policy; nothing anywhere means PERMISSIVE."""

    mode: MtlsMode = "UNSET"


class PeerAuthenticationSpec(SpecModel):
    """`selector` narrows to workloads; `portLevelMtls` keys are container (target) ports."""

    selector: WorkloadSelector | None = None
    mtls: MutualTls | None = None
    port_level_mtls: dict[str, MutualTls] | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.selector is not None and not self.selector.match_labels:
            yield warning((*at, "selector"), "workload selector specified without labels")
        if self.selector is not None and "" in self.selector.match_labels:
            yield problem((*at, "selector", "matchLabels"), "key must not be empty")
        if self.port_level_mtls is None:
            return
        where = (*at, "portLevelMtls")
        if not self.port_level_mtls:
            yield problem(where, f"{format_path(where)} in body should have at least 1 properties")
            return
        if self.selector is None or not self.selector.match_labels:
            yield problem(where, "portLevelMtls requires selector")
        for key in self.port_level_mtls:
            # The CRD's CEL rule converts each key with int(): a non-number fails the conversion.
            if not _INTEGER.fullmatch(key):
                yield problem((*where, key), "type conversion error from 'string' to 'int'")
            elif not 0 < int(key) <= 65535:
                yield problem((*where, key), "port must be between 1-65535")

    def port_modes(self) -> dict[int, str]:
        """`portLevelMtls` as {port: mode}; only meaningful for a valid spec."""
        return {int(k): v.mode for k, v in (self.port_level_mtls or {}).items()}


@served("security.istio.io", ("v1", "v1beta1"), "peerauthentications", "pa")
class PeerAuthentication(Resource):
    """Server-side mTLS policy: mesh (root namespace), namespace, or workload level."""

    spec: PeerAuthenticationSpec = Field(default_factory=PeerAuthenticationSpec)

    def rules(self, at: Loc) -> Iterator[Finding]:
        selector = self.spec.selector
        if self.namespace == ROOT_NAMESPACE and selector is not None and selector.match_labels:
            yield warning(
                (*at, "spec", "selector"),
                f"a PeerAuthentication with a selector in the root namespace ({ROOT_NAMESPACE}) "
                "is ignored by Istio: move it to the workloads' namespace",
            )

    @property
    def mode(self) -> str:
        """The policy's own mode for the workload as a whole (UNSET if not given)."""
        return self.spec.mtls.mode if self.spec.mtls else "UNSET"

    def scope(self, root_namespace: str = ROOT_NAMESPACE) -> Scope | None:
        """Mesh, namespace or workload scope; None when Istio ignores the policy entirely
        (a policy with a selector in the root namespace, §6)."""
        selector = self.spec.selector
        in_root = self.namespace == root_namespace
        if selector is not None and selector.match_labels:
            if in_root:
                return None
            return Scope(ScopeLevel.WORKLOAD, self.namespace, selector)
        if in_root:
            return Scope(ScopeLevel.MESH, None)
        return Scope(ScopeLevel.NAMESPACE, self.namespace)

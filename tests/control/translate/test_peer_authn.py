"""PeerAuthentication resolution (istio-semantics §6): which mode a workload's server accepts."""

from __future__ import annotations

from gossamer.control.translate.peer_authn import peer_mode
from tests.control.translate.worlds import world

REVIEWS = {"app": "reviews", "version": "v1"}


def pa(name: str, namespace: str, body: str) -> str:
    return f"""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: {name}, namespace: {namespace}}}
spec: {body}
"""


def mode(*texts: str, namespace: str = "default", port: int | None = 9080) -> str:
    return peer_mode(world(*texts), namespace, REVIEWS, port)


def test_nothing_configured_is_permissive() -> None:
    assert mode() == "PERMISSIVE"


def test_mesh_policy_applies_to_every_namespace() -> None:
    mesh = pa("default", "istio-system", "{mtls: {mode: STRICT}}")
    assert mode(mesh) == "STRICT"
    assert mode(mesh, namespace="other") == "STRICT"


def test_namespace_policy_overrides_mesh_only_in_its_namespace() -> None:
    mesh = pa("default", "istio-system", "{mtls: {mode: STRICT}}")
    ns = pa("default", "default", "{mtls: {mode: DISABLE}}")
    assert mode(mesh, ns) == "DISABLE"
    assert mode(mesh, ns, namespace="other") == "STRICT"


def test_workload_policy_overrides_namespace_for_selected_workloads_only() -> None:
    ns = pa("default", "default", "{mtls: {mode: STRICT}}")
    reviews = pa("r", "default", "{selector: {matchLabels: {app: reviews}}, mtls: {mode: DISABLE}}")
    ratings = pa("x", "default", "{selector: {matchLabels: {app: ratings}}, mtls: {mode: DISABLE}}")
    assert mode(ns, reviews) == "DISABLE"
    assert mode(ns, ratings) == "STRICT"


def test_workload_policy_in_another_namespace_does_not_apply() -> None:
    other = pa("r", "other", "{selector: {matchLabels: {app: reviews}}, mtls: {mode: STRICT}}")
    assert mode(other) == "PERMISSIVE"


def test_selector_policy_in_the_root_namespace_is_ignored() -> None:
    root = pa(
        "r", "istio-system", "{selector: {matchLabels: {app: reviews}}, mtls: {mode: STRICT}}"
    )
    assert mode(root) == "PERMISSIVE"
    assert peer_mode(world(root), "istio-system", REVIEWS, 9080) == "PERMISSIVE"


def test_unset_inherits_from_the_broader_level() -> None:
    mesh = pa("default", "istio-system", "{mtls: {mode: STRICT}}")
    ns = pa("default", "default", "{mtls: {mode: UNSET}}")
    workload = pa("r", "default", "{selector: {matchLabels: {app: reviews}}}")
    assert mode(mesh, ns, workload) == "STRICT"


def test_port_level_mode_applies_to_its_target_port_only() -> None:
    workload = pa(
        "r",
        "default",
        "{selector: {matchLabels: {app: reviews}}, mtls: {mode: STRICT},"
        " portLevelMtls: {'8080': {mode: DISABLE}, '9090': {mode: UNSET}}}",
    )
    assert mode(workload, port=8080) == "DISABLE"
    assert mode(workload, port=9080) == "STRICT"
    assert mode(workload, port=9090) == "STRICT"  # UNSET: the workload's effective mode
    assert mode(workload, port=None) == "STRICT"


def test_port_level_unset_inherits_namespace_when_workload_mode_is_unset() -> None:
    ns = pa("default", "default", "{mtls: {mode: DISABLE}}")
    workload = pa(
        "r", "default", "{selector: {matchLabels: {app: reviews}}, portLevelMtls: {'8080': {}}}"
    )
    assert mode(ns, workload, port=8080) == "DISABLE"


def test_oldest_policy_wins_at_one_level() -> None:
    first = pa("a-first", "default", "{mtls: {mode: DISABLE}}")
    second = pa("b-second", "default", "{mtls: {mode: STRICT}}")
    assert mode(first, second) == "DISABLE"
    assert mode(second, first) == "STRICT"
    w1 = pa("w1", "default", "{selector: {matchLabels: {app: reviews}}, mtls: {mode: STRICT}}")
    w2 = pa("w2", "default", "{selector: {matchLabels: {version: v1}}, mtls: {mode: DISABLE}}")
    assert mode(w1, w2) == "STRICT"
    assert mode(w2, w1) == "DISABLE"


def test_port_level_entries_come_from_the_winning_workload_policy_only() -> None:
    w1 = pa("w1", "default", "{selector: {matchLabels: {app: reviews}}, mtls: {mode: STRICT}}")
    w2 = pa(
        "w2",
        "default",
        "{selector: {matchLabels: {version: v1}}, portLevelMtls: {'9080': {mode: DISABLE}}}",
    )
    assert mode(w1, w2) == "STRICT"

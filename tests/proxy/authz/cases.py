"""RBAC configs for the oracle: one per matcher kind and action, plus Istio's real outputs.

Each config is the JSON form of `envoy.extensions.filters.http.rbac.v3.RBAC` (or the network
one); `policy(permission, principal)` and `rbac(action, policies)` keep them short.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.proxy.authz.envoy_oracle import Case, Probe

ANY = {"any": True}


def policy(permission: dict[str, Any] = ANY, principal: dict[str, Any] = ANY) -> dict[str, Any]:
    return {"permissions": [permission], "principals": [principal]}


def rbac(action: str = "ALLOW", **policies: dict[str, Any]) -> dict[str, Any]:
    return {"rules": {"action": action, "policies": policies}}


def header(name: str, **match: Any) -> dict[str, Any]:
    return {"header": {"name": name, **match}}


def path(**match: Any) -> dict[str, Any]:
    return {"url_path": {"path": match}}


def cidr(prefix: str, length: int) -> dict[str, Any]:
    return {"address_prefix": prefix, "prefix_len": length}


def claim(*keys: str, **value: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "filter": "istio_authn",
            "path": [{"key": k} for k in keys],
            "value": value,
        }
    }


JWT_METADATA = {
    "istio_authn": {
        "request.auth.principal": "https://issuer.example/alice",
        "request.auth.claims": {"groups": ["dev", "ops"], "nested": {"level": "gold"}, "n": 3},
    }
}

HEADER_KINDS: dict[str, dict[str, Any]] = {
    "exact": header("x-user", exact_match="alice"),
    "prefix": header("x-user", prefix_match="al"),
    "suffix": header("x-user", suffix_match="ce"),
    "contains": header("x-user", contains_match="lic"),
    "regex": header("x-user", safe_regex_match={"regex": "a.*e"}),
    "present": header("x-user", present_match=True),
    "absent": header("x-user", present_match=False),
    "inverted": header("x-user", exact_match="alice", invert_match=True),
    "inverted-present": header("x-user", present_match=True, invert_match=True),
    "string-ignore-case": header("x-user", string_match={"exact": "ALICE", "ignore_case": True}),
    "string-contains": header("x-user", string_match={"contains": ","}),
    "empty-exact": header("x-user", exact_match=""),
    "missing-as-empty": header(
        "x-user", string_match={"exact": ""}, treat_missing_header_as_empty=True
    ),
    "range": header("x-num", range_match={"start": 10, "end": 100}),
    "method": header(":method", exact_match="POST"),
    "path-header": header(":path", prefix_match="/api/v1/items?"),
    "authority": header(":authority", string_match={"suffix": ":8080"}),
    "host": header("host", string_match={"exact": "example.com", "ignore_case": True}),
    "scheme": header(":scheme", exact_match="http"),
    "request-id": header("x-request-id", present_match=True),
}

PATH_KINDS: dict[str, dict[str, Any]] = {
    "exact": path(exact="/api/v1/items"),
    "prefix": path(prefix="/api/"),
    "ignore-case": path(prefix="/api/", ignore_case=True),
    "suffix": path(suffix="/items"),
    "contains": path(contains="%20"),
    "regex": path(safe_regex={"regex": "/p%20q/.*"}),
    "encoded-slash": path(exact="/p%20q/%2Fx"),
}

CONNECTION_KINDS: dict[str, dict[str, Any]] = {
    "destination-ip-in": {"destination_ip": cidr("127.0.0.0", 8)},
    "destination-ip-out": {"destination_ip": cidr("10.0.0.0", 8)},
    "destination-port-other": {"destination_port": 1},
    "destination-port-range": {"destination_port_range": {"start": 1024, "end": 65536}},
    "sni-empty": {"requested_server_name": {"exact": ""}},
    "sni-named": {"requested_server_name": {"exact": "example.com"}},
}

PRINCIPAL_KINDS = {
    "direct-remote-ip": {"direct_remote_ip": cidr("127.0.0.2", 32)},
    "remote-ip": {"remote_ip": cidr("127.0.0.0", 31)},
    "source-ip": {"source_ip": cidr("127.0.0.3", 32)},
    "not-remote-ip": {"not_id": {"remote_ip": cidr("127.0.0.1", 32)}},
    "header": header("x-role", prefix_match="admin"),
    "url-path": path(prefix="/admin"),
    "authenticated": {"authenticated": {}},
    "and-ids": {
        "and_ids": {
            "ids": [header("x-user", present_match=True), {"remote_ip": cidr("127.0.0.1", 32)}]
        }
    },
    "or-ids": {
        "or_ids": {
            "ids": [
                header("x-role", exact_match="admin-team"),
                {"direct_remote_ip": cidr("127.0.0.3", 32)},
            ]
        }
    },
}

METADATA_KINDS = {
    "list-miss": claim(
        "request.auth.claims", "groups", list_match={"one_of": {"string_match": {"exact": "qa"}}}
    ),
    "number-miss": claim("request.auth.claims", "n", double_match={"exact": 4}),
    "string-on-list": claim("request.auth.claims", "groups", string_match={"exact": "dev"}),
    "path-through-string": claim("request.auth.principal", "x", present_match=True),
    "principal": claim(
        "request.auth.principal", string_match={"prefix": "https://issuer.example/"}
    ),
    "list": claim(
        "request.auth.claims", "groups", list_match={"one_of": {"string_match": {"exact": "ops"}}}
    ),
    "nested": claim("request.auth.claims", "nested", "level", string_match={"exact": "gold"}),
    "number": claim("request.auth.claims", "n", double_match={"range": {"start": 1, "end": 5}}),
    "missing-present": claim("request.auth.claims", "nope", present_match=True),
    "missing-inverted": {
        "metadata": {
            **claim("request.auth.claims", "nope", present_match=True)["metadata"],
            "invert": True,
        }
    },
    "other-namespace": {
        "metadata": {"filter": "elsewhere", "path": [{"key": "k"}], "value": {"null_match": {}}}
    },
}

COMBINED: dict[str, dict[str, Any]] = {
    "and": {"and_rules": {"rules": [path(prefix="/api/"), header(":method", exact_match="GET")]}},
    "or": {"or_rules": {"rules": [path(prefix="/admin"), header("x-user", exact_match="eve")]}},
    "not": {
        "not_rule": {
            "or_rules": {"rules": [path(prefix="/api/"), header(":method", exact_match="HEAD")]}
        }
    },
}


def _kind_cases() -> list[Case]:
    cases: list[Case] = []
    for group, kinds in (
        ("header", HEADER_KINDS),
        ("path", PATH_KINDS),
        ("conn", CONNECTION_KINDS),
        ("combined", COMBINED),
    ):
        for name, permission in kinds.items():
            cases.append(Case(f"{group}-{name}", http_rbac=[rbac(p=policy(permission))]))
    for name, principal in PRINCIPAL_KINDS.items():
        cases.append(Case(f"principal-{name}", http_rbac=[rbac(p=policy(principal=principal))]))
    for name, rule in METADATA_KINDS.items():
        cases.append(
            Case(
                f"metadata-{name}",
                http_rbac=[rbac(p=policy(principal=rule))],
                metadata=JWT_METADATA,
            )
        )
    return cases


def _action_cases() -> list[Case]:
    admin = policy(path(prefix="/admin"))
    alice = policy(principal=header("x-user", exact_match="alice"))
    return [
        Case("action-deny", http_rbac=[rbac("DENY", admin=admin)]),
        Case("action-log", http_rbac=[rbac("LOG", admin=admin)]),
        Case("action-allow-two", http_rbac=[rbac("ALLOW", admin=admin, alice=alice)]),
        Case("no-rules", http_rbac=[{}]),
        Case("empty-rules", http_rbac=[{"rules": {}}]),
        Case("empty-deny", http_rbac=[{"rules": {"action": "DENY"}}]),
        Case("shadow-only", http_rbac=[{"shadow_rules": rbac("ALLOW", alice=alice)["rules"]}]),
        Case(
            "shadow-and-rules",
            http_rbac=[
                {
                    **rbac("DENY", admin=admin),
                    "shadow_rules": rbac("DENY", alice=alice)["rules"],
                    "rules_stat_prefix": "enf_",
                    "shadow_rules_stat_prefix": "dry_",
                }
            ],
        ),
        Case(
            "deny-then-allow",
            http_rbac=[
                rbac("DENY", admin=admin),
                rbac("ALLOW", alice=alice, api=policy(path(prefix="/api/"))),
            ],
        ),
        Case(
            "network-allow-remote",
            network_rbac=[
                {
                    "stat_prefix": "oracle_tcp1.",
                    **rbac("ALLOW", src=policy(principal={"remote_ip": cidr("127.0.0.2", 32)})),
                }
            ],
        ),
        Case(
            "network-deny-no-path",
            network_rbac=[
                {
                    "stat_prefix": "oracle_tcp2.",
                    **rbac("DENY", p=policy({"not_rule": path(prefix="/")})),
                }
            ],
        ),
        Case(
            "network-shadow-undotted-prefix",
            network_rbac=[
                {
                    "stat_prefix": "oracle_tcp3",
                    "shadow_rules_stat_prefix": "dry",
                    "shadow_rules": rbac("ALLOW", p=policy(principal={"any": True}))["rules"],
                    **rbac(
                        "ALLOW", src=policy(principal={"direct_remote_ip": cidr("127.0.0.3", 32)})
                    ),
                }
            ],
        ),
    ]


def istio_cases(corpus: Path) -> list[Case]:
    """The RBAC filters Istio generated in conformance/istio/authz-builder/*-out.yaml."""
    cases = []
    for out in sorted((corpus / "istio" / "authz-builder").glob("*-out.yaml")):
        doc = yaml.safe_load(out.read_text())
        typed = dict(doc["typedConfig"])
        kind = typed.pop("@type")
        name = "istio-" + out.name.removesuffix("-out.yaml")
        if kind.endswith("network.rbac.v3.RBAC"):
            cases.append(Case(name, network_rbac=[typed]))
        else:
            cases.append(Case(name, http_rbac=[typed]))
    return cases


def all_cases(corpus: Path) -> list[Case]:
    return _kind_cases() + _action_cases() + istio_cases(corpus)


PROBES = [
    Probe(),
    Probe("GET", "/api/v1/items?x=1"),
    Probe("POST", "/api/v1/items", host="example.com:8080"),
    Probe("GET", "/API/V1/items", host="EXAMPLE.com"),
    Probe("GET", "/p%20q/%2Fx?y=%41", host="a.b"),
    Probe("DELETE", "/admin/users", host="admin.internal"),
    Probe("HEAD", "/api/v1/items"),
    Probe("GET", "/api/../admin/x"),
    Probe("GET", "//api/v1/items"),
    Probe("GET", "http://other.example/api/v1/items?x=1"),
    Probe("GET", "http://EXAMPLE.com:8080"),
    Probe(headers=[("x-user", "alice")]),
    Probe(headers=[("X-User", "Alice")]),
    Probe(headers=[("x-user", "bob"), ("x-user", "alice")]),
    Probe(headers=[("x-user", "alice,bob")]),
    Probe(headers=[("x-user", "")]),
    Probe(headers=[("x-user", "eve")]),
    Probe("GET", "/admin", headers=[("x-user", "alice")]),
    Probe(headers=[("x-role", "admin-team")]),
    Probe(headers=[("x-num", "42")]),
    Probe(headers=[("x-num", "100")]),
    Probe(headers=[("x-num", " 7 ")]),
    Probe(source="127.0.0.2"),
    Probe(headers=[("x-forwarded-for", "127.0.0.2")]),
    Probe(headers=[("x-forwarded-for", "10.1.1.1, 127.0.0.2")], source="127.0.0.3"),
    Probe(headers=[("x-forwarded-for", "not-an-ip")], source="127.0.0.2"),
    Probe(headers=[("x-forwarded-for", "127.0.0.1"), ("x-forwarded-for", "127.0.0.3")]),
    Probe("PUT", "/items?debug=true", headers=[("x-user", "eve")], source="127.0.0.3"),
    Probe("GET", "/api/v1/items?a=%2F&b", host="example.com", headers=[("x-request-id", "fixed")]),
]

"""Cost of one decision with a 10-policy Istio-style ALLOW config (printed; run with -s).

The bound is loose on purpose (a shared CI machine); the printed figure is what to watch.
"""

from __future__ import annotations

import time
from typing import Any

from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from google.protobuf import json_format

from gossamer.codec.headers import Headers
from gossamer.proxy.authz import AuthzRequest, compile_http_rbac
from tests.proxy.authz.cases import header, path


def istio_policy(i: int) -> dict[str, Any]:
    """Like Istio's output for `from: principals`, `to: hosts, methods, paths`."""
    principal = {"exact": f"spiffe://cluster.local/ns/ns{i}/sa/client"}
    return {
        "permissions": [
            {
                "and_rules": {
                    "rules": [
                        {
                            "or_rules": {
                                "rules": [
                                    header(
                                        ":authority",
                                        string_match={"exact": f"svc{i}", "ignore_case": True},
                                    )
                                ]
                            }
                        },
                        {
                            "or_rules": {
                                "rules": [
                                    header(":method", exact_match="GET"),
                                    header(":method", exact_match="HEAD"),
                                ]
                            }
                        },
                        {
                            "or_rules": {
                                "rules": [path(prefix=f"/api/v{i}/"), path(exact="/healthz")]
                            }
                        },
                    ]
                }
            }
        ],
        "principals": [
            {
                "and_ids": {
                    "ids": [{"or_ids": {"ids": [{"authenticated": {"principal_name": principal}}]}}]
                }
            }
        ],
    }


def test_ns_per_decision_for_ten_policies() -> None:
    config = {
        "rules": {"policies": {f"ns[ns{i}]-policy[p]-rule[0]": istio_policy(i) for i in range(10)}}
    }
    rbac = compile_http_rbac(json_format.ParseDict(config, http_rbac_pb2.RBAC()))
    headers = Headers([(b"user-agent", b"curl/8"), (b"accept", b"*/*"), (b"x-request-id", b"r")])
    last = AuthzRequest(
        method=b"GET",
        target=b"/api/v9/items?page=2",
        authority=b"svc9",
        headers=headers,
        peer_principal=b"spiffe://cluster.local/ns/ns9/sa/client",
    )
    none = AuthzRequest(method=b"POST", target=b"/x", authority=b"other", headers=headers)
    assert rbac.decide(last).allowed and not rbac.decide(none).allowed
    for name, request in (("last policy matches", last), ("no policy matches", none)):
        rounds = 20_000
        decide = rbac.decide
        start = time.perf_counter_ns()
        for _ in range(rounds):
            decide(request)
        per = (time.perf_counter_ns() - start) / rounds
        print(f"\nrbac 10 policies, {name}: {per:.0f} ns/decision")
        assert per < 200_000

"""IST0134: ServiceEntry TCP ports need addresses."""

from __future__ import annotations

from tests.spec.analyzers.support import findings


def entry(ports: str, extra: str = "") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: db, namespace: default}}
spec:
  hosts: [db.example.com]
  ports: {ports}
  resolution: DNS{extra}
"""


def test_tcp_and_unset_protocol_ports_need_addresses() -> None:
    ports = "[{number: 5432, name: pg, protocol: TCP}, {number: 9000, name: x},"
    ports += " {number: 80, name: http, protocol: HTTP}]"
    found = findings(entry(ports), code="IST0134")
    assert [(f.field, f.reason) for f in found] == [
        ("spec.ports[0]", "ServiceEntry addresses are required for this protocol."),
        ("spec.ports[1]", "ServiceEntry addresses are required for this protocol."),
    ]


def test_addresses_given_or_allocated_satisfy_it() -> None:
    ports = "[{number: 5432, name: pg, protocol: TCP}]"
    assert findings(entry(ports, "\n  addresses: [10.1.2.3]"), code="IST0134") == []
    allocated = entry(ports) + "status: {addresses: [{value: 240.240.0.1}]}\n"
    assert findings(allocated, code="IST0134") == []

"""SPIFFE IDs: Istio's `spiffe://<trust domain>/ns/<ns>/sa/<sa>` form, parsed strictly."""

from __future__ import annotations

import pytest

from gossamer.control.ca import InvalidSpiffeId, SpiffeId


def test_formats_istio_form_with_default_trust_domain() -> None:
    identity = SpiffeId("default", "bookinfo-productpage")
    assert str(identity) == "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
    assert identity.uri == str(identity)


def test_parse_round_trips_and_reads_trust_domain() -> None:
    identity = SpiffeId.parse("spiffe://example.org/ns/shop/sa/cart.v2")
    assert identity == SpiffeId("shop", "cart.v2", trust_domain="example.org")
    assert SpiffeId.parse(identity.uri) == identity


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("https://cluster.local/ns/a/sa/b", "not a spiffe://"),
        ("spiffe://cluster.local/ns/a", "path must be"),
        ("spiffe://cluster.local/ns/a/sa/b/extra", "path must be"),
        ("spiffe://cluster.local/sa/b/ns/a", "path must be"),
        ("spiffe://cluster.local/ns/a/sa/b?x=1", "query"),
        ("spiffe://cluster.local:443/ns/a/sa/b", "port"),
        ("spiffe://Cluster.Local/ns/a/sa/b", "trust domain"),
        ("spiffe:///ns/a/sa/b", "trust domain"),
        ("spiffe://cluster.local/ns/A/sa/b", "namespace"),
        ("spiffe://cluster.local/ns/a/sa/", "service account"),
        ("spiffe://cluster.local/ns/a/sa/-b", "service account"),
    ],
)
def test_refuses_anything_but_the_workload_form(uri: str, says: str) -> None:
    with pytest.raises(InvalidSpiffeId, match=says):
        SpiffeId.parse(uri)


def test_constructor_validates_parts() -> None:
    with pytest.raises(InvalidSpiffeId, match="namespace"):
        SpiffeId("has space", "sa")

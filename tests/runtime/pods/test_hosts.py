"""The hosts file a pod sees."""

from __future__ import annotations

import socket

from gossamer.runtime.pods.hosts import hosts_file_text, resolv_conf_text, service_names


def test_service_is_reachable_by_its_three_kubernetes_names() -> None:
    assert service_names("reviews", "default") == [
        "reviews",
        "reviews.default",
        "reviews.default.svc.cluster.local",
    ]


def test_hosts_text_maps_each_service_name_to_its_vip() -> None:
    text = hosts_file_text("productpage-0", "10.231.0.2", {("reviews", "default"): "10.232.0.10"})
    lines = text.splitlines()
    assert "127.0.0.1\tlocalhost" in lines
    assert f"10.231.0.2\tproductpage-0 {socket.gethostname()}" in lines
    assert "10.232.0.10\treviews reviews.default reviews.default.svc.cluster.local" in lines


def test_resolv_conf_searches_the_namespace_and_names_no_unreachable_server() -> None:
    text = resolv_conf_text("shop")
    assert "search shop.svc.cluster.local svc.cluster.local cluster.local" in text
    assert "nameserver" not in text  # the host's resolver is usually on its loopback

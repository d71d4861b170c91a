"""Gossamer's cluster DNS: a VIP per Kubernetes service, in services.json and in every pod's
hosts file (rewritten in place, as `ip netns exec` bind-mounts it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gossamer.runtime import state
from gossamer.runtime.pods.addressing import PodAddressing
from gossamer.runtime.service_directory import ServiceDirectory

ADDRESSING = PodAddressing()


def service(name: str, namespace: str = "default", addresses: list[str] | None = None) -> Any:
    """A service as `/api/v1/registry` lists it."""
    return {
        "hostname": f"{name}.{namespace}.svc.cluster.local",
        "namespace": namespace,
        "source": "kubernetes",
        "addresses": addresses or [],
        "ports": [],
    }


def external() -> Any:
    return {
        "hostname": "api.example.com",
        "namespace": "default",
        "source": "ServiceEntry",
        "addresses": ["192.0.2.7"],
        "ports": [],
    }


def test_each_kubernetes_service_gets_a_vip_written_for_the_cli(tmp_path: Path) -> None:
    directory = ServiceDirectory(ADDRESSING, tmp_path)
    assert directory.update(
        [service("reviews"), service("ratings", addresses=["10.232.9.9"]), external()]
    )
    vips = directory.vips
    assert set(vips) == {("reviews", "default"), ("ratings", "default")}  # not the ServiceEntry
    assert vips[("ratings", "default")] == "10.232.9.9"  # a service's own address is kept
    assert vips[("reviews", "default")].startswith("10.232.")
    rows = state.read_json(tmp_path / state.SERVICES)
    assert sorted(map(tuple, rows)) == sorted((n, ns, vip) for (n, ns), vip in vips.items())


def test_vips_stay_put_as_other_services_come_and_go(tmp_path: Path) -> None:
    directory = ServiceDirectory(ADDRESSING, tmp_path)
    directory.update([service("reviews")])
    reviews = directory.vips[("reviews", "default")]
    assert not directory.update([service("reviews")])  # nothing changed, nothing written
    assert directory.update([service("reviews"), service("details")])
    assert directory.vips[("reviews", "default")] == reviews
    assert directory.update([service("details")])
    assert ("reviews", "default") not in directory.vips


def test_hosts_files_are_rewritten_in_place(tmp_path: Path) -> None:
    etc = tmp_path / "etc-netns"
    folder = etc / ADDRESSING.netns_name("productpage-v1-0")
    folder.mkdir(parents=True)
    hosts = folder / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n")
    inode = hosts.stat().st_ino
    directory = ServiceDirectory(ADDRESSING, tmp_path, etc_root=etc)
    directory.update([service("reviews")])
    pods = [("productpage-v1-0", "10.231.0.5"), ("gone-0", "10.231.0.6")]  # gone-0 has no file
    directory.rewrite_hosts(pods)
    text = hosts.read_text()
    vip = directory.vips[("reviews", "default")]
    assert f"{vip}\treviews reviews.default reviews.default.svc.cluster.local" in text
    assert "10.231.0.5\tproductpage-v1-0" in text
    assert hosts.stat().st_ino == inode  # the bind mount in the pod still sees it
    assert not (etc / ADDRESSING.netns_name("gone-0")).exists()

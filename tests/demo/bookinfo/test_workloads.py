"""The Bookinfo Workloads are valid Gossamer config and describe the six sample deployments."""

from __future__ import annotations

from pathlib import Path

from gossamer.demo.bookinfo import workload_manifests
from gossamer.spec import parse_text
from gossamer.spec.validate import validate_paths
from gossamer.spec.workload import Workload


def test_workloads_validate(tmp_path: Path) -> None:
    path = tmp_path / "workloads.yaml"
    path.write_text(workload_manifests())
    report = validate_paths([path])
    assert report.exit_code == 0, [str(f) for f in report.findings]
    assert len(report.resources) == 6


def test_workloads_run_each_service_version_under_its_own_account() -> None:
    workloads = [p.resource for p in parse_text(workload_manifests())]
    assert all(isinstance(w, Workload) for w in workloads)
    by_name = {w.name: w for w in workloads if isinstance(w, Workload)}
    assert sorted(by_name) == [
        "details-v1",
        "productpage-v1",
        "ratings-v1",
        "reviews-v1",
        "reviews-v2",
        "reviews-v3",
    ]
    v2 = by_name["reviews-v2"]
    assert v2.labels == {"app": "reviews", "version": "v2"}
    assert v2.spec.command == [
        "python",
        "-m",
        "gossamer.demo.bookinfo",
        "reviews",
        "--version",
        "v2",
        "--host",
        "$(POD_IP)",  # the runtime expands it: pods share the host's ports in explicit mode
    ]
    assert v2.spec.service_account == "bookinfo-reviews"
    assert [p.number for p in v2.spec.ports] == [9080]
    assert v2.spec.readiness_probe is not None

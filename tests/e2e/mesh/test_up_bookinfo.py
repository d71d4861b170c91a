"""`gossamer up` for real, as root: Bookinfo in network-namespace pods behind the ingress
gateway, driven with Istio's own task files, once with Gossamer sidecars and once with Envoy.

Tests run in file order against one mesh per dataplane; the last one takes it down and checks
that nothing is left. Statistical checks state their tolerance: with 300 pages and three equally
likely versions each count is 100 ± 8.2 (one standard deviation); ±30 is beyond 3.6 sd.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gossamer.demo.bookinfo.workloads import workload_manifest
from tests.e2e.mesh.bookinfo import (
    Load,
    Mesh,
    admin_json,
    bookinfo_file,
    converge,
    leftovers,
    login,
    process_alive,
    product_page,
    versions,
    wait_for_sidecar,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables"),
        reason="netns pods need root, iproute2 and iptables (CI runs as root)",
    ),
]


@pytest.fixture(scope="module", params=["python", "envoy", "explicit"])
def mesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mesh]:
    if request.param == "envoy":
        from gossamer.runtime.envoy import EnvoyNotFound, envoy_binary

        try:
            envoy_binary()
        except EnvoyNotFound as exc:
            pytest.skip(str(exc))
    home = tmp_path_factory.mktemp(f"home-{request.param}")
    if request.param == "explicit":  # no namespaces, no iptables: HTTP_PROXY on loopback
        mesh = Mesh(home, dataplane="python", extra=("--no-netns",))
    else:
        mesh = Mesh(home, dataplane=request.param)
    assert leftovers() == {k: [] for k in leftovers()}, "another mesh runs on this machine"
    started = mesh.up()
    assert started.returncode == 0, started.stdout + started.stderr
    assert "127.0.0.1:8080/productpage" in started.stdout
    try:
        yield mesh
    finally:
        mesh.down()


def test_product_page_shows_every_reviews_version_evenly(mesh: Mesh) -> None:
    pods = mesh.pods()
    assert {p["name"] for p in pods} == {
        "productpage-v1-0",
        "details-v1-0",
        "ratings-v1-0",
        "reviews-v1-0",
        "reviews-v2-0",
        "reviews-v3-0",
    }
    assert all(p["ready"] and p["sidecar"] == mesh.dataplane for p in pods), pods
    counts = versions(300)
    assert set(counts) == {"v1", "v2", "v3"}, counts
    for version in ("v1", "v2", "v3"):
        assert 70 <= counts[version] <= 130, counts


def test_get_pods_shows_labels_ips_sidecars_and_readiness(mesh: Mesh) -> None:
    result = mesh.cli("get", "pods")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "reviews-v2-0" in line)
    pod = mesh.pod("reviews-v2-0")
    assert pod["labels"] == {"app": "reviews", "version": "v2"}
    assert pod["ip"].startswith("127.231." if mesh.explicit else "10.231.") and pod["ip"] in row
    assert "1/1" in row and "Running" in row and mesh.dataplane in row
    assert "app=reviews,version=v2" in row


def test_each_gossamer_sidecar_holds_its_workloads_certificate(mesh: Mesh) -> None:
    """The runtime gave every sidecar a bootstrap credential; each fetched a certificate for
    its own service account from the control plane (key made in the pod) and shows it."""
    if mesh.dataplane != "python":
        pytest.skip("Envoy sidecars need an SDS agent for their certificates (not built yet)")
    for pod in mesh.pods():
        certs = admin_json(mesh, pod, "/certs")
        (chain,) = [c["cert_chain"][0] for c in certs["certificates"]]
        account = {
            "productpage": "bookinfo-productpage",
            "details": "bookinfo-details",
            "reviews": "bookinfo-reviews",
            "ratings": "bookinfo-ratings",
        }
        expected = f"spiffe://cluster.local/ns/default/sa/{account[pod['labels']['app']]}"
        assert chain["subject_alt_names"] == [{"uri": expected}], pod["name"]
        assert 23 * 3600 < chain["seconds_until_expiration"] <= 24 * 3600


def test_logs_show_a_pods_app_and_sidecar_output(mesh: Mesh) -> None:
    assert product_page().ok
    app = mesh.cli("logs", "productpage-v1-0", "--tail", "200")
    assert app.returncode == 0 and '"GET /productpage" 200' in app.stdout, app.stderr
    sidecar = mesh.cli("logs", "productpage-v1-0", "--sidecar")
    assert sidecar.returncode == 0 and sidecar.stdout, sidecar.stderr
    missing = mesh.cli("logs", "no-such-pod")
    assert missing.returncode == 1 and "no logs for pod default/no-such-pod" in missing.stderr


def test_gossamer_run_calls_services_by_plain_name(mesh: Mesh) -> None:
    fetch = (
        "import json, urllib.request\n"
        "body = urllib.request.urlopen('http://reviews:9080/reviews/0', timeout=10).read()\n"
        "print(json.loads(body)['podname'])\n"
    )
    result = mesh.cli("run", "--name", "curl-reviews", "--", "python", "-c", fetch, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() in {"reviews-v1-0", "reviews-v2-0", "reviews-v3-0"}
    failed = mesh.cli("run", "--", "sh", "-c", "exit 3", timeout=90)
    assert failed.returncode == 3, failed.stdout + failed.stderr
    # the job's pod is gone: deregistered, its sidecar drained, its namespace removed
    registered = [w["name"] for w in mesh.api("/api/v1/registry")["workloads"]]
    assert "curl-reviews" not in registered and "productpage-v1-0" in registered
    assert "gsm-curl-reviews" not in leftovers()["netns"]


def test_a_killed_app_is_restarted_and_gets_no_traffic_while_down(mesh: Mesh) -> None:
    """Kill reviews-v2 until its back-off reaches 4 s, then watch the page while it is down."""
    delay, killed_at = 0.0, 0.0
    while delay < 4.0:
        pid = _wait_for_app(mesh, "reviews-v2-0")
        restarts = mesh.pod("reviews-v2-0")["restarts"]
        os.kill(pid, signal.SIGKILL)  # a process of the mesh this test started
        killed_at = time.monotonic()
        delay = _backoff_seconds(mesh, "reviews-v2-0", restarts)
    time.sleep(max(0.0, killed_at + 1.0 - time.monotonic()))  # unready at once; push lands
    down_pages = []
    while time.monotonic() < killed_at + delay - 0.3:
        down_pages.append(product_page())
    assert len(down_pages) >= 5 and all(p.ok for p in down_pages), down_pages
    assert not [p for p in down_pages if p.version == "v2"], "traffic reached a dead app"
    _wait_for_app(mesh, "reviews-v2-0", ready=True)
    assert mesh.pod("reviews-v2-0")["restarts"] >= 4
    converge({"v1", "v2", "v3"}, within=20)
    assert "v2" in versions(60)


def test_a_workload_can_choose_envoy_in_a_python_mesh(mesh: Mesh, tmp_path: Path) -> None:
    """`spec.dataplane: envoy` on one Workload: its pod comes back with an Envoy sidecar and
    Gossamer and Envoy sidecars serve each other, with no failed page during the swap."""
    if mesh.dataplane != "python" or mesh.explicit:
        pytest.skip("the mixed mesh is checked on the netns mesh with Gossamer sidecars")
    envoy_v2 = tmp_path / "reviews-v2-envoy.yaml"
    envoy_v2.write_text(workload_manifest("reviews", "v2") + "  dataplane: envoy\n")
    with Load(cookie=None) as load:
        mesh.apply(envoy_v2)
        wait_for_sidecar(mesh, "reviews-v2-0", "envoy")
        converge({"v1", "v2", "v3"})
        assert "v2" in versions(60)
        python_v2 = tmp_path / "reviews-v2.yaml"
        python_v2.write_text(workload_manifest("reviews", "v2"))
        mesh.apply(python_v2)
        wait_for_sidecar(mesh, "reviews-v2-0", "python")
    assert load.failures == [], f"{len(load.failures)} of {load.pages} pages failed"


def test_istio_task_files_under_load_lose_no_request(mesh: Mesh) -> None:
    jason = login("jason")
    with Load(cookie=jason) as load:
        mesh.apply(bookinfo_file("virtual-service-all-v1.yaml"))
        converge({"v1"})
        assert versions(50) == {"v1": 50}

        mesh.apply(bookinfo_file("virtual-service-reviews-test-v2.yaml"))
        converge({"v2"}, cookie=jason)
        assert versions(30, jason) == {"v2": 30}
        assert versions(30) == {"v1": 30}

        mesh.apply(bookinfo_file("virtual-service-reviews-50-v3.yaml"))
        converge({"v1", "v3"})
        counts = versions(200)
        # 200 pages at 50/50: each 100 ± 7.1 (1 sd); ±30 is beyond 4 sd.
        assert set(counts) <= {"v1", "v3"} and 70 <= counts["v1"] <= 130, counts

        mesh.apply(bookinfo_file("virtual-service-reviews-v3.yaml"))
        converge({"v3"})
        assert versions(50) == {"v3": 50}
        assert versions(20, jason) == {"v3": 20}
    assert load.pages > 100
    assert load.failures == [], f"{len(load.failures)} of {load.pages} pages failed"
    mesh.delete(bookinfo_file("virtual-service-all-v1.yaml"))
    converge({"v1", "v2", "v3"})


ALLOW_NOTHING = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: default}
spec: {}
"""
PRODUCTPAGE_VIEWER = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: productpage-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  action: ALLOW
  rules: [{to: [{operation: {methods: [GET]}}]}]
"""


def viewer_of(app: str, caller: str) -> str:
    """Istio's task's `<app>-viewer`: GET allowed from the caller's SPIFFE identity only."""
    return f"""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: {app}-viewer, namespace: default}}
spec:
  selector: {{matchLabels: {{app: {app}}}}}
  action: ALLOW
  rules:
  - from: [{{source: {{principals: ["cluster.local/ns/default/sa/bookinfo-{caller}"]}}}}]
    to: [{{operation: {{methods: [GET]}}}}]
"""


def test_authorization_policies_from_istios_task_are_enforced(mesh: Mesh, tmp_path: Path) -> None:
    """Istio's "Authorization for HTTP traffic" task: with allow-nothing in `default` the
    product page is 403 `RBAC: access denied`; letting anyone GET productpage brings the page
    back with reviews denied; letting productpage's identity GET details and reviews, and
    reviews' GET ratings (principals: mTLS identities) brings the whole page back, while any
    other caller (a `gossamer run` pod with its own identity) gets 403 from each of them."""
    nothing, viewer = tmp_path / "allow-nothing.yaml", tmp_path / "productpage-viewer.yaml"
    nothing.write_text(ALLOW_NOTHING)
    viewer.write_text(PRODUCTPAGE_VIEWER)
    mesh.apply(nothing)
    _until(lambda: product_page().status == 403, "the product page is denied")
    status, body = _raw_product_page()
    assert (status, body) == (403, b"RBAC: access denied")
    mesh.apply(viewer)
    _until(lambda: product_page().version == "unavailable", "the page with reviews denied")
    by_identity = tmp_path / "viewers.yaml"
    by_identity.write_text(
        "---".join(
            viewer_of(app, caller)
            for app, caller in (
                ("details", "productpage"),
                ("reviews", "productpage"),
                ("ratings", "reviews"),
            )
        )
    )
    mesh.apply(by_identity)
    converge({"v1", "v2", "v3"}, within=30, streak_of=20)
    pages = [_raw_product_page()[1] for _ in range(15)]
    assert any(b'data-reviews-version="v1"' not in page for page in pages)  # ratings were called
    for page in pages:
        assert b"Error fetching product details" not in page
        assert b"Ratings service is currently unavailable" not in page
    for url in ("http://details:9080/details/0", "http://ratings:9080/ratings/0"):
        fetch = (
            "import urllib.request, urllib.error\n"
            "try:\n"
            f"    urllib.request.urlopen('{url}', timeout=10)\n"
            "    print(200)\n"
            "except urllib.error.HTTPError as e:\n"
            "    print(e.code, e.read().decode())\n"
        )
        other = mesh.cli("run", "--service-account", "sleep", "--", "python", "-c", fetch)
        assert other.stdout.strip() == "403 RBAC: access denied", other.stdout + other.stderr
    mesh.delete(by_identity)
    mesh.delete(viewer)
    mesh.delete(nothing)
    # Envoy answers the first request on a keep-alive connection of a replaced filter chain
    # with the old chain (then closes it): every pooled connection must cycle once.
    converge({"v1", "v2", "v3"}, within=30, streak_of=40)


def _raw_product_page() -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", 8080, timeout=10)
    try:
        conn.request("GET", "/productpage")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _until(check: Callable[[], bool], what: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"never saw: {what}"
        time.sleep(0.1)


def test_a_second_up_says_one_is_running(mesh: Mesh) -> None:
    pid = mesh.runtime()["pid"]  # type: ignore[index]
    again = mesh.cli("up", "--xds-port", "0", "--api-port", "0", timeout=30)
    assert again.returncode == 1
    assert "already running" in again.stderr and str(pid) in again.stderr
    assert product_page().ok


def test_down_leaves_nothing_behind(mesh: Mesh) -> None:
    pids = [p[key] for p in mesh.pods() for key in ("appPid", "sidecarPid") if p[key]]
    runtime_pid = mesh.runtime()["pid"]  # type: ignore[index]
    result = mesh.down()
    assert result.returncode == 0, result.stdout + result.stderr
    assert leftovers() == {k: [] for k in leftovers()}
    assert not [pid for pid in [*pids, runtime_pid] if process_alive(pid)]
    assert product_page().status == 0  # nothing listens on 8080 any more


def _wait_for_app(mesh: Mesh, name: str, ready: bool = False, within: float = 60.0) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pod = mesh.pod(name)
        if pod["appPid"] and (pod["ready"] or not ready):
            return int(pod["appPid"])
        time.sleep(0.1)
    raise AssertionError(f"{name} has no running app after {within}s: {mesh.pod(name)}")


def _backoff_seconds(mesh: Mesh, name: str, restarts: int, within: float = 10.0) -> float:
    """The back-off the runtime announced after the app died (`restarting in Ns`)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pod = mesh.pod(name)
        if pod["restarts"] > restarts:
            return float(pod["message"].rsplit(" ", 1)[1].rstrip("s"))
        time.sleep(0.02)
    raise AssertionError(f"{name} was not restarted: {mesh.pod(name)}")

"""Issue 5's promise in real pods: every connection between sidecars is mutual TLS 1.3 with
SPIFFE identities, PeerAuthentication decides what a server accepts, and certificates (and the
root) rotate under load without a failed request.

One `gossamer up` per dataplane mix, with 2-minute workload certificates:
* python: Gossamer sidecars everywhere;
* envoy: Envoy sidecars (certificates over SDS from the agent beside each Envoy);
* mixed: Gossamer sidecars, but productpage and the echo server run Envoy, so a product page
  crosses Gossamer → Envoy → Gossamer, and `gossamer run` (Gossamer) calls echo (Envoy).

Besides Bookinfo each mesh runs `echo`, a workload that answers with the request headers it
received, so the server side's view of the caller (`x-forwarded-client-cert`) is visible.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gossamer.demo.bookinfo.workloads import workload_manifest
from tests.e2e.mesh.bookinfo import (
    Load,
    Mesh,
    admin_json,
    converge,
    leftovers,
    login,
    product_page,
    wait_for_sidecar,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables"),
        reason="netns pods need root, iproute2 and iptables (CI runs as root)",
    ),
]

BRIDGE = "gossamer0"
TRUST_DOMAIN = "spiffe://cluster.local"
CERT_TTL = "2m"
ECHO_PORT = 8000
# The echo server: every request's headers back as JSON (stdlib only, bound to the pod IP).
ECHO_APP = """
import http.server, json, os
class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((os.environ["POD_IP"], 8000), Echo).serve_forever()
"""


def echo_manifests(dataplane: str | None) -> str:
    workload: dict[str, Any] = {
        "apiVersion": "gossamer.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": "echo", "namespace": "default", "labels": {"app": "echo"}},
        "spec": {
            "command": ["python", "-c", ECHO_APP],
            "ports": [{"containerPort": ECHO_PORT, "name": "http"}],
            "serviceAccount": "echo",
            "readinessProbe": {"tcpSocket": {"port": ECHO_PORT}},
        },
    }
    if dataplane:
        workload["spec"]["dataplane"] = dataplane
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "echo", "namespace": "default"},
        "spec": {"selector": {"app": "echo"}, "ports": [{"name": "http", "port": ECHO_PORT}]},
    }
    return yaml.safe_dump_all([workload, service], sort_keys=False)


@pytest.fixture(scope="module", params=["python", "envoy", "mixed"])
def mesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mesh]:
    if request.param != "python":
        from gossamer.runtime.envoy import EnvoyNotFound, envoy_binary

        try:
            envoy_binary()
        except EnvoyNotFound as exc:
            pytest.skip(str(exc))
    home = tmp_path_factory.mktemp(f"mtls-{request.param}")
    dataplane = "envoy" if request.param == "envoy" else "python"
    mesh = Mesh(home, dataplane=dataplane, extra=("--workload-cert-ttl", CERT_TTL))
    assert leftovers() == {k: [] for k in leftovers()}, "another mesh runs on this machine"
    started = mesh.up()
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        extra = tmp_path_factory.mktemp("manifests")
        echo = extra / "echo.yaml"
        echo.write_text(echo_manifests("envoy" if request.param == "mixed" else None))
        mesh.apply(echo)
        if request.param == "mixed":
            envoy_productpage = extra / "productpage-envoy.yaml"
            envoy_productpage.write_text(
                workload_manifest("productpage", "v1") + "  dataplane: envoy\n"
            )
            mesh.apply(envoy_productpage)
            wait_for_sidecar(mesh, "productpage-v1-0", "envoy")
            wait_for_sidecar(mesh, "echo-0", "envoy")
        else:
            wait_for_sidecar(mesh, "echo-0", dataplane)
        converge({"v1", "v2", "v3"}, within=60)
        yield mesh
    finally:
        mesh.down()


# --- on the wire ----------------------------------------------------------------------------


class Capture:
    """tshark on the pod bridge, for the ports the mesh's services listen on."""

    def __init__(self, path: Path, ports: tuple[int, ...]) -> None:
        self.path = path
        self.ports = ports
        port_filter = " or ".join(f"port {p}" for p in ports)
        self.proc = subprocess.Popen(
            ["tshark", "-i", BRIDGE, "-f", f"tcp and ({port_filter})", "-w", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_started()

    def _wait_started(self) -> None:
        deadline = time.monotonic() + 20
        while not self.path.exists() or self.path.stat().st_size == 0:
            assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
            assert time.monotonic() < deadline, "tshark did not start capturing"
            time.sleep(0.1)

    def stop(self) -> None:
        # dumpcap hands packets over in blocks, each when full or after its read timeout; a
        # stop signal drops the block still open. Wait until the file has been still for a
        # second, so the last packets (the echo call's handshake) are on disk first.
        self._wait_until_still(quiet=1.0, within=10.0)
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _wait_until_still(self, quiet: float, within: float) -> None:
        deadline = time.monotonic() + within
        size, since = self.path.stat().st_size, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < quiet:
            time.sleep(0.1)
            if (now := self.path.stat().st_size) != size:
                size, since = now, time.monotonic()

    def count(self, display_filter: str) -> int:
        # Mesh ports are not TLS's well-known ports: decode them as TLS, even mid-stream.
        decode = [arg for port in self.ports for arg in ("-d", f"tcp.port=={port},tls")]
        result = subprocess.run(
            ["tshark", "-r", str(self.path), *decode, "-Y", display_filter],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return len(result.stdout.splitlines())


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark is installed by `make deps`")
def test_traffic_between_pods_is_tls13_on_the_wire(mesh: Mesh, tmp_path: Path) -> None:
    capture = Capture(tmp_path / "bridge.pcap", (9080, ECHO_PORT))
    try:
        for _ in range(20):
            assert product_page().ok
        assert call_echo(mesh)["x-forwarded-client-cert"]
    finally:
        capture.stop()
    # The pages crossed the bridge (gateway → productpage → details/reviews → ratings) ...
    payloads = capture.count("tcp.len > 0")
    assert payloads > 100
    # ... and not one byte of it was readable HTTP: no request line, no status line, no header.
    for plaintext in ('"GET /"', '"HTTP/1.1 "', '"x-request-id"', '"x-forwarded-client-cert"'):
        assert capture.count(f"tcp.payload contains {plaintext}") == 0, plaintext
    # Every payload is TLS records; the connections opened meanwhile (the echo call's, at
    # least) negotiated TLS 1.3. Pooled connections from before the capture show records only.
    assert capture.count("tls") == payloads  # every segment with data is TLS
    app_data = "tls.record.content_type == 23 || tls.record.opaque_type == 23"
    assert capture.count(app_data) > payloads // 2
    assert capture.count("tls.handshake.type == 1") >= 1  # ClientHello
    tls13 = "tls.handshake.type == 2 && tls.handshake.extensions.supported_version == 0x0304"
    assert capture.count(tls13) >= 1  # ServerHello choosing TLS 1.3


def call_echo(mesh: Mesh, service_account: str = "sleep") -> dict[str, str]:
    """A request from a `gossamer run` pod (its own sidecar and service account) to echo."""
    fetch = (
        "import urllib.request\n"
        f"print(urllib.request.urlopen('http://echo:{ECHO_PORT}/', timeout=10).read().decode())\n"
    )
    result = mesh.cli(
        "run", "--service-account", service_account, "--", "python", "-c", fetch, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    headers: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return headers


def test_the_server_sees_the_callers_identity_and_its_own(mesh: Mesh) -> None:
    xfcc = call_echo(mesh, "sleep")["x-forwarded-client-cert"]
    fields = dict(part.split("=", 1) for part in xfcc.split(";"))
    assert fields["URI"] == f"{TRUST_DOMAIN}/ns/default/sa/sleep", xfcc
    assert fields["By"] == f"{TRUST_DOMAIN}/ns/default/sa/echo", xfcc
    assert len(fields["Hash"]) == 64, xfcc


def istio_requests(pod: dict[str, Any]) -> list[dict[str, str]]:
    """The `istio_requests_total` series a Gossamer sidecar reports on its 15020."""
    from tests.telemetry.prometheus_text import parse

    with urllib.request.urlopen(f"http://{pod['ip']}:15020/stats/prometheus", timeout=10) as r:
        parsed = parse(r.read().decode())
    return [labels for name, labels, _ in parsed.samples if name == "istio_requests_total"]


def test_each_side_reports_the_others_identity(mesh: Mesh) -> None:
    """Istio's standard metrics: the client's sidecar reports the server's SPIFFE id it
    verified (`destination_principal`), the server's reports the client's and that the
    connection was mutual TLS. Gossamer sidecars only (an Envoy needs Istio's stats filter)."""
    productpage, reviews = mesh.pod("productpage-v1-0"), mesh.pod("reviews-v1-0")
    if productpage["sidecar"] != "python" and reviews["sidecar"] != "python":
        pytest.skip("istio_* metrics come from Gossamer sidecars")
    converge({"v1", "v2", "v3"})
    client = f"{TRUST_DOMAIN}/ns/default/sa/bookinfo-productpage"
    server = f"{TRUST_DOMAIN}/ns/default/sa/bookinfo-reviews"
    if productpage["sidecar"] == "python":  # the client side (in the mixed mesh: an Envoy)
        sent = [
            s
            for s in istio_requests(productpage)
            if s["reporter"] == "source" and s["destination_service_name"] == "reviews"
        ]
        assert sent and all(s["destination_principal"] == server for s in sent), sent
        assert all(s["source_principal"] == client for s in sent), sent
    if reviews["sidecar"] == "python":  # the server side
        received = [s for s in istio_requests(reviews) if s["reporter"] == "destination"]
        assert any(
            s["source_principal"] == client and s["connection_security_policy"] == "mutual_tls"
            for s in received
        ), received


# --- PeerAuthentication -----------------------------------------------------------------------


def peer_authentication(mesh: Mesh, tmp_path: Path, mode: str) -> Path:
    path = tmp_path / f"pa-{mode.lower()}.yaml"
    path.write_text(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
        f"metadata: {{name: default, namespace: default}}\nspec: {{mtls: {{mode: {mode}}}}}\n"
    )
    mesh.apply(path)
    return path


def plaintext_get(ip: str) -> int:
    """Status of a plaintext GET from the host (0: the connection was closed without one)."""
    try:
        with socket.create_connection((ip, ECHO_PORT), timeout=5) as sock:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: echo:{ECHO_PORT}\r\n\r\n".encode())
            head = sock.recv(64)
    except OSError:
        return 0
    return int(head.split()[1]) if head.startswith(b"HTTP/1.1 ") else 0


def mtls_get(ip: str, cert: Path, key: Path, roots: Path) -> int:
    """Status of a GET over mTLS as a sidecar would open it (0: refused)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(roots)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["istio-http/1.1", "istio", "http/1.1"])
    try:
        with (
            socket.create_connection((ip, ECHO_PORT), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="echo") as tls,
        ):
            tls.sendall(f"GET / HTTP/1.1\r\nHost: echo:{ECHO_PORT}\r\n\r\n".encode())
            head = tls.recv(64)
    except (OSError, ssl.SSLError):
        return 0
    return int(head.split()[1]) if head.startswith(b"HTTP/1.1 ") else 0


class Certificates:
    """Client certificates for probing a server: from the mesh's own CA (valid and expired) and
    from a stranger's CA. Made with Gossamer's CA code, as root reading the mesh's CA dir."""

    def __init__(self, mesh: Mesh, folder: Path) -> None:
        from gossamer.control.ca.cadir import ca_dir_of, open_ca
        from gossamer.identity.csr import key_pem, make_csr, new_key
        from gossamer.identity.spiffe import SpiffeId

        self.folder = folder
        mesh_ca = open_ca(ca_dir_of(mesh.home))
        self.roots = self._write("roots.pem", mesh_ca.bundle.pem().decode())
        stranger = open_ca(folder / "stranger-ca")
        who = SpiffeId("default", "sleep")
        long_ago = datetime.now(UTC) - timedelta(minutes=10)
        for name, authority, now, ttl in (
            ("valid", mesh_ca, None, timedelta(hours=1)),
            ("expired", mesh_ca, long_ago, timedelta(minutes=2)),  # expired 8 minutes ago
            ("stranger", stranger, None, timedelta(hours=1)),
        ):
            key = new_key()
            issued = authority.sign(make_csr(key, who), who, ttl, now=now)
            self._write(f"{name}.pem", issued.chain_pem().decode())
            self._write(f"{name}.key", key_pem(key).decode())

    def _write(self, name: str, text: str) -> Path:
        path = self.folder / name
        path.write_text(text)
        return path

    def get(self, ip: str, which: str) -> int:
        return mtls_get(ip, self.folder / f"{which}.pem", self.folder / f"{which}.key", self.roots)


def test_strict_refuses_plaintext_strangers_and_expired_certificates(
    mesh: Mesh, tmp_path: Path
) -> None:
    echo_ip = mesh.pod("echo-0")["ip"]
    certs = Certificates(mesh, tmp_path)
    assert plaintext_get(echo_ip) == 200  # PERMISSIVE, the default: plaintext is accepted
    assert certs.get(echo_ip, "valid") == 200  # ... and so is mTLS, on the same port
    strict = peer_authentication(mesh, tmp_path, "STRICT")
    try:
        wait_until(lambda: plaintext_get(echo_ip) == 0, "STRICT to refuse plaintext")
        assert certs.get(echo_ip, "valid") == 200
        # the readiness probe asks the sidecar, which probes the app from inside the pod
        # (Istio's probe rewrite): STRICT does not make a healthy pod unready
        probe = f"http://{echo_ip}:15020/app-health/echo/readyz"
        with urllib.request.urlopen(probe, timeout=5) as response:
            assert response.status == 200
        assert certs.get(echo_ip, "stranger") == 0
        assert certs.get(echo_ip, "expired") == 0
        # the mesh itself keeps working: sidecars speak mTLS to each other
        assert call_echo(mesh)["x-forwarded-client-cert"]
        assert all(product_page().ok for _ in range(10))
        peer_authentication(mesh, tmp_path, "PERMISSIVE")
        wait_until(lambda: plaintext_get(echo_ip) == 200, "PERMISSIVE to accept plaintext")
        assert certs.get(echo_ip, "valid") == 200
    finally:
        mesh.delete(strict)


def wait_until(check: Any, what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


# --- identities -------------------------------------------------------------------------------


def test_a_workload_asking_for_another_identity_is_refused_and_logged(mesh: Mesh) -> None:
    import asyncio

    from gossamer.identity.spiffe import SpiffeId
    from gossamer.proxy.certificates import (
        CertificateRefused,
        CertificateRequest,
        fetch_certificate,
    )

    pod_dir = mesh.home / "pods" / "default.productpage-v1-0"
    described = mesh.runtime()
    assert described
    ca_port = int(described["ca"].rsplit(":", 1)[1])
    request = CertificateRequest(
        f"127.0.0.1:{ca_port}",
        (pod_dir / "credential").read_text().strip(),
        (pod_dir / "root-cert.pem").read_text(),
        SpiffeId("default", "bookinfo-reviews"),  # productpage's credential, reviews' identity
    )
    with pytest.raises(CertificateRefused):
        asyncio.run(fetch_certificate(request))
    logged = (mesh.home / "logs" / "up.log").read_text()
    refusals = [line for line in logged.splitlines() if "certificate refused" in line]
    assert any("bookinfo-reviews" in line for line in refusals), refusals


# --- rotation ---------------------------------------------------------------------------------


def serials(mesh: Mesh) -> dict[str, str]:
    """Each pod's current workload certificate serial, from its sidecar's admin `/certs`."""
    found: dict[str, str] = {}
    for pod in mesh.pods():
        certs = admin_json(mesh, pod, "/certs")
        for entry in certs.get("certificates", []):
            for cert in entry.get("cert_chain", []):
                uris = [san.get("uri", "") for san in cert.get("subject_alt_names", [])]
                if any(u.startswith(TRUST_DOMAIN) for u in uris):
                    found[pod["name"]] = cert["serial_number"]
    return found


@pytest.mark.timeout(900)
def test_three_certificate_rotations_and_a_root_rotation_lose_nothing(mesh: Mesh) -> None:
    """2-minute certificates renew at about half their life: over ~4 minutes of steady load
    every sidecar rotates at least three times, and meanwhile the root rotates (trust the new
    root, sign with it, drop the old one). Not one page fails.

    Run on the Gossamer mesh and the mixed one (whose Envoy sidecars, productpage and echo,
    rotate through their agents and serve Gossamer clients and call Gossamer servers); an
    all-Envoy run would add five minutes and no path the mixed one does not take."""
    if mesh.dataplane == "envoy":
        pytest.skip("covered by the mixed mesh's Envoy sidecars (see the docstring)")
    seen: dict[str, set[str]] = {}

    def record() -> None:
        for pod, serial in serials(mesh).items():
            seen.setdefault(pod, set()).add(serial)

    def ca(*args: str) -> str:
        result = mesh.cli("ca", *args, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def poll(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            record()
            time.sleep(5)

    def rotation() -> dict[str, Any]:
        view: dict[str, Any] = mesh.api("/api/v1/ca")["rotation"]
        return view

    cookie = login("jason")
    with Load(cookie=cookie, max_seconds=480.0) as load:
        record()
        old_root = rotation()["signing"]
        ca("rotate", "begin", "--overlap", "3m")
        # every identity agent fetches the new bundle on its own (every 60 s) ...
        deadline = time.monotonic() + 120
        while rotation()["proxies"]["withoutTheWholeBundle"]:
            assert time.monotonic() < deadline, rotation()
            record()
            time.sleep(5)
        ca("rotate", "promote")  # ... then the new root signs every new leaf
        new_root = rotation()["signing"]
        assert new_root != old_root
        poll(150)  # every 2-minute leaf renews under the new root
        # Nobody runs `finish`: the plane drops the old root when the 3-minute overlap ends.
        deadline = time.monotonic() + 60
        while rotation()["phase"] != "steady":
            assert time.monotonic() < deadline, rotation()
            record()
            time.sleep(5)
        poll(60)
        assert all(product_page(cookie).ok for _ in range(20))
    assert load.failures == [], f"{len(load.failures)} of {load.pages} pages failed"
    assert load.pages > 500
    rotated = {pod: len(s) - 1 for pod, s in seen.items()}
    assert rotated and all(n >= 3 for n in rotated.values()), rotated
    after = rotation()
    assert after["phase"] == "steady" and [r["serial"] for r in after["roots"]] == [new_root]

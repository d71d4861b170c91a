"""Run a real Envoy as a Gossamer data plane: find the binary, build its bootstrap, supervise it.

Theory of operation:

1. `bootstrap()` is pure: it returns the Envoy v3 bootstrap (as JSON-ready dicts) that points
   Envoy's ADS at the control plane through one static cluster, `xds-grpc`, over explicit HTTP/2.
   Listeners and clusters all come over ADS (`lds_config`/`cds_config` = `{ads: {}}`). A
   sidecar's bootstrap adds a static readiness listener (15021) that proxies the admin's `/ready`.
2. `EnvoyProcess` writes that bootstrap into a work directory the caller owns and starts Envoy
   through `LAUNCHER`, a tiny `python -c` program that asks the kernel to SIGKILL it when its
   parent dies (prctl PR_SET_PDEATHSIG) and then `os.execv`s Envoy in place (same PID). Never
   `subprocess(preexec_fn=...)`: in a process that runs gRPC that crashes the child before exec.
3. Each instance gets its own base id (`--use-dynamic-base-id` unless one is given), so several
   Envoys share one machine, and binds its admin on 127.0.0.1 (port 0 = any; the bound address is
   read back from `--admin-address-path`).
4. `stop()` signals only the PID this object started: SIGTERM, then SIGKILL after a grace.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

ENVOY_ENV = "GOSSAMER_ENVOY"
XDS_CLUSTER = "xds-grpc"
SDS_CLUSTER = "sds-grpc"  # Istio's name; the mesh TLS contexts' SDS config sources name it
UNIX_PATH_MAX = 107  # sun_path is 108 bytes with the final NUL
ADMIN_CLUSTER = "gossamer-admin"  # static: the readiness listener's way to the admin's /ready
READINESS_LISTENER = "gossamer-readiness"
READINESS_PATH = "/healthz/ready"
_REPO = Path(__file__).resolve().parents[3]
_BUNDLED = Path(".envoy") / "envoy" / "_bin" / "envoy"
_PR_SET_PDEATHSIG = 1
_HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = "envoy.extensions.filters.http.router.v3.Router"

# argv: [python, -c, LAUNCHER, <expected parent pid>, <binary>, <args>...]. The parent check
# closes the race where the parent died between fork and prctl (the signal would never come).
LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    f"if libc.prctl({_PR_SET_PDEATHSIG}, int(signal.SIGKILL), 0, 0, 0) != 0:\n"
    "    sys.exit('launcher: prctl(PR_SET_PDEATHSIG) failed: errno %d' % ctypes.get_errno())\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit('launcher: parent exited before exec')\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


class EnvoyNotFound(FileNotFoundError):
    """No Envoy binary where we looked; the message says how to install one."""


class EnvoyExited(RuntimeError):
    """Envoy exited while we waited for it; the message carries its exit code and last log lines."""


class InvalidBootstrap(ValueError):
    """`envoy --mode validate` rejected a bootstrap; the message is Envoy's own."""


def envoy_binary() -> Path:
    """$GOSSAMER_ENVOY, else `<repo>/.envoy/envoy/_bin/envoy` (from `make envoy`), else the same
    path under the current directory. Raises EnvoyNotFound naming every place it looked."""
    env = os.environ.get(ENVOY_ENV)
    if env:
        path = Path(env)
        if os.access(path, os.X_OK) and path.is_file():
            return path
        raise EnvoyNotFound(f"${ENVOY_ENV}={env} is not an executable file")
    candidates = [_REPO / _BUNDLED, Path.cwd() / _BUNDLED]
    for path in candidates:
        if os.access(path, os.X_OK) and path.is_file():
            return path
    looked = ", ".join(str(p) for p in dict.fromkeys(candidates))
    raise EnvoyNotFound(
        f"Envoy binary not found (looked at {looked}); run `make envoy` in the Gossamer "
        f"checkout or set ${ENVOY_ENV} to an Envoy 1.40 binary"
    )


def with_parent_death_signal(argv: Sequence[str]) -> list[str]:
    """`argv` wrapped in LAUNCHER: the program is SIGKILLed when the calling process dies.

    The kernel ties the signal to the *thread* that forks the child: start long-lived children
    from a long-lived thread (the main thread), never from a short-lived worker thread.
    """
    if not argv:
        raise ValueError("empty argv")
    return [sys.executable, "-c", LAUNCHER, str(os.getpid()), *argv]


def node_id(kind: str, ip: str, pod: str, namespace: str = "default") -> str:
    """Istio's node id: `sidecar~10.0.0.7~reviews-v1-abc.default~default.svc.cluster.local`."""
    return f"{kind}~{ip}~{pod}.{namespace}~{namespace}.svc.cluster.local"


# The node metadata key saying "this proxy holds a mesh certificate" (its SDS secrets will be
# served); the translator emits mesh TLS only for such proxies (control/translate/peer_authn.py).
IDENTITY_METADATA = "SDS"


def node_metadata(
    *,
    namespace: str = "default",
    labels: Mapping[str, str] | None = None,
    interception_mode: str = "REDIRECT",
    workload_name: str = "",
    pod_name: str = "",
    service_account: str = "default",
    instance_ips: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Istio's node metadata keys (NAMESPACE, LABELS, INTERCEPTION_MODE, ...) as the control
    plane reads them. INTERCEPTION_MODE NONE asks for listeners bound on the service ports
    (no iptables); REDIRECT for the 15001/15006 capture listeners."""
    meta: dict[str, Any] = {
        "NAMESPACE": namespace,
        "LABELS": dict(labels or {}),
        "INTERCEPTION_MODE": interception_mode,
        "SERVICE_ACCOUNT": service_account,
        "CLUSTER_ID": "Kubernetes",
    }
    if workload_name:
        meta["WORKLOAD_NAME"] = workload_name
    if pod_name:
        meta["NAME"] = pod_name
    if instance_ips:
        meta["INSTANCE_IPS"] = ",".join(instance_ips)
    meta.update(extra or {})
    return meta


def _socket_address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def bootstrap(
    node_id: str,
    *,
    cluster: str,
    metadata: Mapping[str, Any],
    xds_host: str,
    xds_port: int,
    admin_port: int,
    admin_host: str = "127.0.0.1",
    locality: Mapping[str, str] | None = None,
    xds_connect_timeout_s: float = 1.0,
    readiness_port: int | None = None,
) -> dict[str, Any]:
    """An Envoy v3 bootstrap that takes all listeners and clusters from ADS at xds_host:xds_port.

    Pure: no I/O. `admin_port` 0 lets Envoy pick (EnvoyProcess reads the bound port back). The
    `xds-grpc` cluster is STATIC for an IP literal, STRICT_DNS for a name, and speaks explicit
    HTTP/2 with keepalive so a dead control plane is noticed. `readiness_port` adds a static
    listener on 0.0.0.0 serving `/healthz/ready` from the admin's `/ready` (see
    `readiness_listener`); it needs a fixed `admin_port`.
    """
    node: dict[str, Any] = {"id": node_id, "cluster": cluster, "metadata": dict(metadata)}
    if locality:
        node["locality"] = dict(locality)
    ads_source = {"ads": {}, "resource_api_version": "V3"}
    xds_cluster = {
        "name": XDS_CLUSTER,
        "type": "STATIC" if _is_ip(xds_host) else "STRICT_DNS",
        "connect_timeout": f"{xds_connect_timeout_s:g}s",
        "load_assignment": {
            "cluster_name": XDS_CLUSTER,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _socket_address(xds_host, xds_port)}}]}
            ],
        },
        "typed_extension_protocol_options": _explicit_http2(
            {"connection_keepalive": {"interval": "30s", "timeout": "10s"}}
        ),
    }
    static: dict[str, Any] = {"clusters": [xds_cluster]}
    if readiness_port is not None:
        if admin_port == 0:
            raise ValueError("readiness_port needs a fixed admin_port (the listener proxies to it)")
        static["clusters"].append(admin_cluster(admin_host, admin_port))
        static["listeners"] = [readiness_listener(readiness_port)]
    return {
        "node": node,
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}],
                "set_node_on_first_message_only": True,
            },
            "lds_config": dict(ads_source),
            "cds_config": dict(ads_source),
        },
        "static_resources": static,
        "admin": {"address": _socket_address(admin_host, admin_port)},
    }


def _explicit_http2(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        _HTTP_PROTOCOL_OPTIONS: {
            "@type": f"type.googleapis.com/{_HTTP_PROTOCOL_OPTIONS}",
            "explicit_http_config": {"http2_protocol_options": dict(options)},
        }
    }


def sds_cluster(socket_path: Path) -> dict[str, Any]:
    """Istio's `sds-grpc` static cluster: gRPC (explicit HTTP/2) to the agent's Unix socket,
    where Envoy fetches the `default` and `ROOTCA` secrets the mesh TLS contexts name."""
    if len(os.fsencode(socket_path)) > UNIX_PATH_MAX:
        raise ValueError(f"SDS socket path {socket_path} is longer than {UNIX_PATH_MAX} bytes")
    endpoint = {"endpoint": {"address": {"pipe": {"path": str(socket_path)}}}}
    return {
        "name": SDS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": SDS_CLUSTER,
            "endpoints": [{"lb_endpoints": [endpoint]}],
        },
        "typed_extension_protocol_options": _explicit_http2({}),
    }


def admin_cluster(admin_host: str, admin_port: int) -> dict[str, Any]:
    """A static cluster to Envoy's own admin listener."""
    return {
        "name": ADMIN_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": ADMIN_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _socket_address(admin_host, admin_port)}}
                    ]
                }
            ],
        },
    }


def readiness_listener(port: int, address: str = "0.0.0.0") -> dict[str, Any]:
    """`GET /healthz/ready` on address:port, answered by the admin's `/ready` (200 only once the
    initial xDS fetch is done), as Istio's pilot-agent serves 15021. The admin itself stays on
    127.0.0.1, so kubelet-style probes from outside the pod see readiness and nothing else."""
    route = {
        "match": {"path": READINESS_PATH},
        "route": {"cluster": ADMIN_CLUSTER, "prefix_rewrite": "/ready", "timeout": "2s"},
    }
    hcm = {
        "@type": f"type.googleapis.com/{_HCM}",
        "stat_prefix": READINESS_LISTENER,
        "route_config": {
            "name": READINESS_LISTENER,
            "virtual_hosts": [{"name": "readiness", "domains": ["*"], "routes": [route]}],
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": f"type.googleapis.com/{_ROUTER}"},
            }
        ],
    }
    return {
        "name": READINESS_LISTENER,
        "address": _socket_address(address, port),
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }


def validate(config: Mapping[str, Any], workdir: Path, *, binary: Path | None = None) -> None:
    """Run `envoy --mode validate` on `config` (written to workdir/validate.json).

    Raises InvalidBootstrap with Envoy's output when it refuses the file; returns quietly if not.
    """
    path = workdir / "validate.json"
    path.write_text(json.dumps(config, indent=2))
    argv = [str(binary or envoy_binary()), "--mode", "validate", "-c", str(path)]
    argv += ["--log-level", "warning", "--use-dynamic-base-id"]
    done = subprocess.run(
        with_parent_death_signal(argv),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise InvalidBootstrap((done.stdout + done.stderr).strip() or f"exit {done.returncode}")


class EnvoyProcess:
    """One Envoy child process, started from a bootstrap and stopped by its own PID only.

    The caller owns `workdir` (bootstrap.json, envoy.log, admin.address, base-id go there) and
    must call `stop()` (or use `with`); if the calling process dies first, the kernel SIGKILLs
    Envoy (see `with_parent_death_signal` for the thread caveat).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        workdir: Path,
        *,
        binary: Path | None = None,
        concurrency: int = 1,
        base_id: int | None = None,
        log_level: str = "warning",
        drain_time_s: int = 5,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.config = dict(config)
        self.workdir = workdir
        self.binary = binary or envoy_binary()
        self.concurrency = concurrency
        self.base_id = base_id
        self.log_level = log_level
        self.drain_time_s = drain_time_s
        self.extra_args = tuple(extra_args)
        self.bootstrap_path = workdir / "bootstrap.json"
        self.log_path = workdir / "envoy.log"
        self.admin_address_path = workdir / "admin.address"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._admin: str | None = None

    def argv(self) -> list[str]:
        """Envoy's own command line (without the launcher)."""
        argv = [str(self.binary), "-c", str(self.bootstrap_path)]
        argv += ["--concurrency", str(self.concurrency), "--log-level", self.log_level]
        argv += ["--admin-address-path", str(self.admin_address_path)]
        argv += ["--drain-time-s", str(self.drain_time_s), "--local-address-ip-version", "v4"]
        if self.base_id is None:
            argv += ["--use-dynamic-base-id", "--base-id-path", str(self.workdir / "base-id")]
        else:
            argv += ["--base-id", str(self.base_id)]
        return argv + list(self.extra_args)

    def start(self) -> None:
        """Write the bootstrap and start Envoy; returns at once (see `wait_ready`)."""
        if self._proc is not None:
            raise RuntimeError(f"{self!r} already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.admin_address_path.unlink(missing_ok=True)
        self.bootstrap_path.write_text(json.dumps(self.config, indent=2))
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            with_parent_death_signal(self.argv()),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C goes to us; we stop Envoy in order
        )

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    @property
    def admin_address(self) -> str:
        """`127.0.0.1:port` of the admin listener; only known once Envoy has bound it."""
        if self._admin is None:
            text = self.admin_address_path.read_text().strip() if self._admin_known() else ""
            if not text:
                raise RuntimeError(f"{self!r}: admin address not known yet (call wait_ready)")
            self._admin = text
        return self._admin

    def _admin_known(self) -> bool:
        return self.admin_address_path.is_file() and bool(self.admin_address_path.read_text())

    def admin_get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        """GET `path` on the admin listener: (status, body). Errors of the socket escape."""
        url = f"http://{self.admin_address}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def server_state(self) -> str:
        """`/server_info` state: INITIALIZING, PRE_INITIALIZING, LIVE or DRAINING."""
        _, body = self.admin_get("/server_info")
        return str(json.loads(body).get("state", ""))

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until admin `/ready` answers 200 (server state LIVE: the first LDS and CDS are
        in). Raises EnvoyExited if Envoy dies, TimeoutError after `timeout`; both name the log."""
        deadline = time.monotonic() + timeout
        last = "admin not bound yet"
        while time.monotonic() < deadline:
            code = self.returncode
            if code is not None:
                raise EnvoyExited(f"Envoy exited with {code} before ready\n{self.log_tail()}")
            if self._admin_known():
                try:
                    status, body = self.admin_get("/ready", timeout=2.0)
                except OSError as e:
                    last = f"admin: {e}"
                else:
                    if status == 200:
                        return
                    last = f"/ready {status} {body.strip()}"
            time.sleep(0.05)
        raise TimeoutError(f"{self!r} not ready after {timeout:g}s ({last})\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines Envoy wrote (stdout and stderr share envoy.log)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the PID we started, SIGKILL it after `grace` seconds; reap it; return its exit
        code (None if never started). Idempotent; never signals any other process."""
        proc = self._proc
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # Popen checks it has not reaped this PID
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(grace)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
        return proc.returncode

    def __enter__(self) -> EnvoyProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        if self._proc is None:
            state = "not started"
        elif self._proc.poll() is None:
            state = "running"
        else:
            state = f"exited {self._proc.returncode}"
        admin = self._admin or "-"
        node = self.config.get("node", {}).get("id", "?")
        return f"<EnvoyProcess pid={self.pid} node={node!r} admin={admin} {state}>"

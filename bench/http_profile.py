"""Where the Gossamer mTLS pair spends its CPU: both sidecars under cProfile, one load, top lists.

Run: `.venv/bin/python bench/http_profile.py [--load keepalive|connections] [--seconds 10]`.
The mesh is the bench's (mesh_config.py): Gossamer A (`bench-client`) and the mTLS Gossamer B,
certificates from the control plane's CA. `keepalive` is the 1000 req/s open-loop load of the
main table (steady-state mTLS); `connections` is wrk through `new-gossamer-mtls` (a new A→B
connection, i.e. a TLS handshake, per request). Each sidecar's profile is written to the work
directory and its top functions (own time and cumulative) are printed. cProfile slows Python
code down, so compare shares between functions, not absolute times with the bench.
"""

from __future__ import annotations

import argparse
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mesh_config import Ports

BENCH = Path(__file__).resolve().parent
if str(BENCH.parent) not in sys.path:
    sys.path.insert(0, str(BENCH.parent))

LOAD_CPU, PROXY_CPU = 0, 1


def profiled(argv: list[str], out: Path) -> list[str]:
    """`argv` (starting with the gossamer console script) run under cProfile into `out`."""
    return [sys.executable, "-m", "cProfile", "-o", str(out), *argv]


def start_pair(
    work: Path, things: list[Any], use_cprofile: bool
) -> tuple[int, Ports, list[Path], list[int]]:
    """Upstream, plane, Gossamer A and mTLS B (under cProfile if asked); (A's port, the mesh's
    ports, profile paths, the sidecars' PIDs)."""
    import http_mesh as mesh
    from http_procs import Launched
    from http_servers import nginx_upstream_conf, start_nginx, wait_serving
    from mesh_config import CLIENT_SERVICE_ACCOUNT, NS, UPSTREAM_IPS, allocate_ports, mesh_yaml
    from mesh_config import hop_service_account as b_account
    from mesh_identity import issue
    from tests.e2e.harness import free_port

    ports = allocate_ports(free_port)
    conf = nginx_upstream_conf(work / "upstream", ports.upstream, UPSTREAM_IPS)
    things.append(start_nginx("upstream", conf, LOAD_CPU))
    cp = mesh.start_controlplane(work / "controlplane", LOAD_CPU)
    things.append(cp)
    cp.apply(mesh_yaml(ports))
    profiles = [work / "a.prof", work / "b.prof"]
    sides = []
    for pod, account, out in (
        (mesh.client_pod(), CLIENT_SERVICE_ACCOUNT, profiles[0]),
        (mesh.hop_pod(ports, "gossamer-mtls"), b_account("gossamer-mtls"), profiles[1]),
    ):
        who = issue(cp, work / "id" / pod.workload, NS, account)
        side_ports = (free_port(), free_port(), free_port(), free_port())
        argv = mesh.gossamer_proxy_argv(cp.xds, pod, who, side_ports)
        argv = profiled(argv, out) if use_cprofile else argv
        proc = Launched(pod.workload, argv, work / f"{pod.workload}.log", PROXY_CPU)
        things.append(proc)
        sides.append(
            mesh.GossamerSidecar(
                proc, pod.ip, side_ports[0], pod.inbound, side_ports[3], side_ports[1]
            )
        )
    for side in sides:
        problem = mesh.wait_gossamer_ready(side, 60)
        if problem:
            raise SystemExit(f"{side.proc.name} not ready: {problem}")
    host = ports.host("hop-gossamer-mtls")
    problem = wait_serving(sides[0].outbound, host, 10)
    if problem:
        raise SystemExit(f"the pair does not serve: {problem}")
    return sides[0].outbound, ports, profiles, [side.proc.pid for side in sides]


def run_load(kind: str, port: int, ports: Ports, seconds: float) -> str:
    from gossamer.runtime.envoy import with_parent_death_signal
    from http_procs import pinned

    if kind == "keepalive":
        argv = [sys.executable, str(BENCH / "http_load.py"), "--port", str(port)]
        argv += ["--host", ports.host("hop-gossamer-mtls"), "--seconds", f"{seconds:g}"]
        done = subprocess.run(
            with_parent_death_signal(pinned(argv, LOAD_CPU)),
            input="go\n",
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    wrk = shutil.which("wrk") or "/usr/bin/wrk"
    argv = [wrk, "-t2", "-c8", f"-d{max(1, round(seconds))}s", "--timeout", "5s"]
    argv += ["-H", f"Host: {ports.host('new-gossamer-mtls')}", f"http://127.0.0.1:{port}/"]
    done = subprocess.run(
        with_parent_death_signal(pinned(argv, LOAD_CPU)),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    return done.stdout


def perf_record(pids: list[int], out: Path) -> subprocess.Popen[bytes]:
    """`perf record` of both sidecars (every thread) until SIGINT."""
    perf = shutil.which("perf") or "/usr/bin/perf"
    argv = [perf, "record", "-q", "-F", "999", "-g", "-o", str(out)]
    argv += ["-p", ",".join(str(p) for p in pids)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def perf_report(data: Path, lines: int) -> None:
    """Shares by library and by symbol (own time): Python, OpenSSL, kernel, uvloop."""
    perf = shutil.which("perf") or "/usr/bin/perf"
    for sort in ("dso", "dso,sym"):
        done = subprocess.run(
            [
                perf,
                "report",
                "-i",
                str(data),
                "--stdio",
                "--no-children",
                "--sort",
                sort,
                "-g",
                "none",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        rows = [x for x in done.stdout.splitlines() if x.strip() and not x.startswith("#")]
        print(f"\n=== perf: by {sort} ===")
        print("\n".join(rows[:lines]))


def top(path: Path, lines: int) -> None:
    for order in ("tottime", "cumulative"):
        print(f"\n=== {path.name}: by {order} ===")
        pstats.Stats(str(path)).strip_dirs().sort_stats(order).print_stats(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", choices=("keepalive", "connections"), default="keepalive")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--lines", type=int, default=30)
    parser.add_argument(
        "--perf", action="store_true", help="`perf record` both sidecars (C level) instead"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("http_profile: took too long"))
    signal.alarm(300)
    import http_mesh as mesh

    work = Path(tempfile.mkdtemp(prefix="gossamer-bench-profile-"))
    things: list[Any] = []
    try:
        port, ports, profiles, pids = start_pair(work, things, not args.perf)
        recorder = perf_record(pids, work / "perf.data") if args.perf else None
        print(run_load(args.load, port, ports, args.seconds))
        if recorder is not None:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(60)
    finally:
        mesh.stop_all(things)  # SIGTERM: the sidecars exit cleanly, cProfile writes
    if args.perf:
        perf_report(work / "perf.data", args.lines)
        profiles = []
    for path in profiles:
        if path.exists():
            top(path, args.lines)
        else:
            print(f"{path}: no profile written (see the logs in {work})")
    print(f"work directory: {work}")


if __name__ == "__main__":
    main()

"""HTTP/1.1 proxies side by side: direct, nginx, HAProxy, Envoy 1.40 and the Gossamer sidecar.

Run: `.venv/bin/python bench/http_proxies.py [--quick]` (as `make bench` does after push.py).
One run on this 2-core machine: the upstream (nginx, fixed 1 KB body) and every load generator
on CPU 0, every proxy on CPU 1. Envoy and Gossamer are configured by our own control plane over
xDS (see http_mesh.py for the mesh). Per repetition each row gets wrk at full speed (single hops)
and open-loop load at a fixed rate (all rows); medians over repetitions, and every difference or
ratio is taken within one repetition. Writes bench/results/http-<date>.md. Every process is
started with PDEATHSIG and stopped by its PID; the whole run stops itself after 15 minutes.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:  # for tests.e2e.harness (the control-plane launcher)
    sys.path.insert(0, str(ROOT))


if TYPE_CHECKING:
    from http_measure import Row
    from http_mesh import Ports
    from tests.e2e.harness import ControlPlane


def settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"reps": 1, "wrk_s": 3.0, "lat_s": 2.0, "warm_s": 1.0, "quiet_s": 10.0}
    return {"reps": 3, "wrk_s": 10.0, "lat_s": 5.0, "warm_s": 1.0, "quiet_s": 30.0}


WRK_CONNECTIONS, WRK_THREADS = 32, 2
RATE, RATE_CONNECTIONS = 1000.0, 16
PROXY_CPU, LOAD_CPU = 1, 0


def build_rows(work: Path, things: list[Any]) -> tuple[list[Row], dict[str, str]]:
    """Start the upstream, every proxy and the mesh (each appended to `things` as soon as it
    runs, for the caller to stop); the rows to measure (a row whose proxy could not be started
    or does not answer carries a status saying why) and notes for the report."""
    import http_mesh as mesh
    from http_measure import Row
    from http_servers import nginx_upstream_conf, start_nginx, wait_serving

    ports = mesh.allocate_ports()
    upstream = nginx_upstream_conf(work / "upstream", ports.upstream)
    things.append(start_nginx("upstream", upstream, LOAD_CPU))
    rows = [Row("direct (no proxy)", ports.upstream, ports.host("bench"), [])]
    rows += _c_proxies(work, things, ports)
    envoy, envoy_pair = Row("Envoy 1.40", 0, "", []), Row("Envoy → Envoy", 0, "", [], True)
    gossamer = Row("Gossamer", 0, "", [])
    gossamer_pair = Row("Gossamer → Gossamer", 0, "", [], True)
    rows[3:3] = [envoy, gossamer]
    rows += [envoy_pair, gossamer_pair]
    cp = mesh.start_controlplane(work / "controlplane", LOAD_CPU)
    things.append(cp)
    cp.apply(mesh.mesh_yaml(ports))
    _envoys(work, things, cp, ports, envoy, envoy_pair)
    _gossamers(work, things, cp, ports, gossamer, gossamer_pair)
    for row in rows:
        if not row.status:
            problem = wait_serving(row.port, row.host, 10)
            row.status = f"no 200 with the 1 KB body: {problem}" if problem else ""
    return rows, {"ports": f"upstream 127.0.0.1:{ports.upstream}; services {ports.services}"}


def _c_proxies(work: Path, things: list[Any], ports: Ports) -> list[Row]:
    """nginx, HAProxy, and two chained nginx (the reference pair)."""
    from http_measure import Row
    from http_servers import nginx_proxy_conf, start_haproxy, start_nginx
    from tests.e2e.harness import free_port

    nginx_port, haproxy_port, pair_a, pair_b = (free_port() for _ in range(4))
    up = ports.upstream
    nginx = start_nginx("nginx", nginx_proxy_conf(work / "nginx", nginx_port, up), PROXY_CPU)
    things.append(nginx)
    haproxy = start_haproxy("haproxy", work / "haproxy", haproxy_port, up, PROXY_CPU)
    things.append(haproxy)
    nginx_b = start_nginx("nginx B", nginx_proxy_conf(work / "nginx-b", pair_b, up), PROXY_CPU)
    things.append(nginx_b)
    nginx_a = start_nginx("nginx A", nginx_proxy_conf(work / "nginx-a", pair_a, pair_b), PROXY_CPU)
    things.append(nginx_a)
    host = ports.host("bench")
    return [
        Row("nginx", nginx_port, host, [nginx]),
        Row("HAProxy", haproxy_port, host, [haproxy]),
        Row("nginx → nginx", pair_a, host, [nginx_a, nginx_b], two_hop=True),
    ]


def _envoys(
    work: Path, things: list[Any], cp: ControlPlane, ports: Ports, single: Row, pair: Row
) -> None:
    """Envoy A (our plane's NONE-mode sidecar) serves both rows; Envoy B is the pair's hop."""
    import http_mesh as mesh

    single.port, single.host = ports.services["bench"], ports.host("bench")
    pair.port, pair.host = ports.services["hop-envoy"], ports.host("hop-envoy")
    try:
        envoy_a = mesh.start_envoy_sidecar(cp, work / "envoy-a", PROXY_CPU)
        things.append(envoy_a)
    except Exception as e:  # the rows say so; the bench goes on
        single.status = pair.status = f"Envoy A failed to start: {e}".splitlines()[0]
        return
    a_pid = envoy_a.pid
    assert a_pid is not None  # started
    single.roots, pair.roots = [a_pid], [a_pid]
    try:
        envoy_b = mesh.start_envoy_inbound(ports, work / "envoy-b", PROXY_CPU)
        things.append(envoy_b)
    except Exception as e:
        pair.status = f"Envoy B failed to start: {e}".splitlines()[0]
        return
    assert envoy_b.pid is not None
    pair.roots = [a_pid, envoy_b.pid]


def _gossamers(
    work: Path, things: list[Any], cp: ControlPlane, ports: Ports, single: Row, pair: Row
) -> None:
    """Gossamer A (`bench-client`) serves both rows; Gossamer B fronts hop-gossamer."""
    import http_mesh as mesh
    from tests.e2e.harness import free_port

    single.host, pair.host = ports.host("bench"), ports.host("hop-gossamer")
    why_not = mesh.gossamer_available()
    if why_not:
        single.status = pair.status = why_not
        return
    side_a = mesh.start_gossamer(
        cp, work / "gossamer-a", PROXY_CPU, app=mesh.CLIENT, workload=mesh.CLIENT,
        ip="127.0.0.1", inbound=free_port(),
    )  # fmt: skip
    things.append(side_a.proc)
    side_b = mesh.start_gossamer(
        cp, work / "gossamer-b", PROXY_CPU, app="hop-gossamer", workload="hop-gossamer-b",
        ip=mesh.GOSSAMER_B_IP, inbound=ports.hop_inbound["gossamer"],
    )  # fmt: skip
    things.append(side_b.proc)
    single.port = pair.port = side_a.outbound
    single.roots, pair.roots = [side_a.proc], [side_a.proc, side_b.proc]
    problem = mesh.wait_gossamer_ready(side_a, 30)
    if problem:
        single.status = pair.status = f"Gossamer A not ready: {problem}"
    problem = mesh.wait_gossamer_ready(side_b, 30)
    if problem and not pair.status:
        pair.status = f"Gossamer B not ready: {problem}"


def measure(rows: list[Row], cfg: dict[str, Any]) -> None:
    from http_measure import idle_rss, run_latency, run_wrk

    live = [r for r in rows if not r.status]
    for row in live:  # idle: configured and probed once, before any load
        if row.roots:
            idle_rss(row)
    for row in live:  # warm every connection pool once; these numbers are dropped
        idle = {k: v for k, v in row.samples.items() if k in ("rss_idle", "processes")}
        run_wrk(row, cfg["warm_s"], WRK_CONNECTIONS, WRK_THREADS)
        row.samples = idle
    for rep in range(cfg["reps"]):
        for row in rows:
            if row.status:
                continue
            print(f"  rep {rep + 1}/{cfg['reps']}: {row.name}", file=sys.stderr, flush=True)
            if not row.two_hop:
                run_wrk(row, cfg["wrk_s"], WRK_CONNECTIONS, WRK_THREADS)
            if not row.status:
                run_latency(row, RATE, cfg["lat_s"], RATE_CONNECTIONS)


def _give_up(signum: int, _frame: object) -> None:
    raise SystemExit(f"http_proxies: stopped by signal {signal.Signals(signum).name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repetition, short loads")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    for signum in (signal.SIGALRM, signal.SIGTERM):  # unwind through the finally: stop all
        signal.signal(signum, _give_up)
    signal.alarm(900)  # the whole bench stops by itself
    cfg = settings(args.quick)
    import http_mesh as mesh
    import http_report as report
    from http_procs import machine_busy_seconds, own_tree_seconds, wait_for_quiet

    work = Path(tempfile.mkdtemp(prefix="gossamer-bench-http-"))
    things: list[Any] = []
    began = time.monotonic()
    try:
        rows, notes = build_rows(work, things)
        quiet = wait_for_quiet(cfg["quiet_s"])
        notes["before"] = f"other processes used {quiet:.0%} of one CPU just before measuring"
        busy, own, t0 = machine_busy_seconds(), own_tree_seconds(), time.monotonic()
        measure(rows, cfg)
        others = machine_busy_seconds() - busy - (own_tree_seconds() - own)
        share = others / max(time.monotonic() - t0, 1e-9) * 100
        notes["other processes"] = (
            f"{others:.1f} CPU-s ({share:.0f}% of one CPU) used by processes outside the bench "
            "during the measurements (this machine is shared: values above a few % mean noise)"
        )
    finally:
        mesh.stop_all(things)
        if args.keep:
            print(f"work directory (logs) kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    text = report.render(rows, cfg, notes, time.monotonic() - began)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    day = datetime.datetime.now(datetime.UTC).date().isoformat()
    suffix = "-quick" if args.quick else ""
    path = args.out / f"http-{day}{suffix}.md"
    path.write_text(text)
    print(f"written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()

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
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:  # for tests.e2e.harness (the control-plane launcher)
    sys.path.insert(0, str(ROOT))


def settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"reps": 1, "wrk_s": 3.0, "lat_s": 2.0, "warm_s": 1.0, "quiet_s": 10.0}
    return {"reps": 3, "wrk_s": 10.0, "lat_s": 5.0, "warm_s": 1.0, "quiet_s": 60.0}


WRK_CONNECTIONS, WRK_THREADS = 32, 2
RATE, RATE_CONNECTIONS = 1000.0, 16
PROXY_CPU, LOAD_CPU = 1, 0


def build_rows(work: Path, things: list[Any]) -> tuple[list[Any], dict[str, str]]:
    """Start the upstream, every proxy and the mesh; the rows to measure (some may carry a
    status saying why they cannot be measured) and notes for the report."""
    import http_mesh as mesh
    from http_measure import Row
    from http_servers import (
        nginx_proxy_conf,
        nginx_upstream_conf,
        start_haproxy,
        start_nginx,
        wait_serving,
    )
    from tests.e2e.harness import free_port

    notes: dict[str, str] = {}
    ports = mesh.allocate_ports()
    upstream = start_nginx("upstream", nginx_upstream_conf(work / "upstream", ports.upstream), 0)
    things.append(upstream)
    nginx_port, haproxy_port, pair_a, pair_b = (free_port() for _ in range(4))
    nginx = start_nginx("nginx", nginx_proxy_conf(work / "nginx", nginx_port, ports.upstream), 1)
    things.append(nginx)
    haproxy = start_haproxy("haproxy", work / "haproxy", haproxy_port, ports.upstream, PROXY_CPU)
    things.append(haproxy)
    nginx_b = start_nginx("nginx B", nginx_proxy_conf(work / "nginx-b", pair_b, ports.upstream), 1)
    things.append(nginx_b)
    nginx_a = start_nginx("nginx A", nginx_proxy_conf(work / "nginx-a", pair_a, pair_b), 1)
    things.append(nginx_a)

    bench_host, envoy_hop, gossamer_hop = (
        ports.host("bench"),
        ports.host("hop-envoy"),
        ports.host("hop-gossamer"),
    )
    rows = [
        Row("direct (no proxy)", ports.upstream, bench_host, []),
        Row("nginx", nginx_port, bench_host, [nginx]),
        Row("HAProxy", haproxy_port, bench_host, [haproxy]),
    ]
    envoy_row = Row("Envoy 1.40", ports.services["bench"], bench_host, [])
    gossamer_row = Row("Gossamer", 0, bench_host, [])
    pair_rows = [
        Row("nginx → nginx", pair_a, bench_host, [nginx_a, nginx_b], two_hop=True),
        Row("Envoy → Envoy", ports.services["hop-envoy"], envoy_hop, [], two_hop=True),
        Row("Gossamer → Gossamer", 0, gossamer_hop, [], two_hop=True),
    ]
    rows += [envoy_row, gossamer_row, *pair_rows]

    cp = mesh.start_controlplane(work / "controlplane", LOAD_CPU)
    things.append(cp)
    cp.apply(mesh.mesh_yaml(ports))
    try:
        envoy_a = mesh.start_envoy_sidecar(cp, work / "envoy-a", PROXY_CPU)
        things.append(envoy_a)
        envoy_b = mesh.start_envoy_inbound(ports, work / "envoy-b", PROXY_CPU)
        things.append(envoy_b)
        assert envoy_a.pid is not None and envoy_b.pid is not None
        envoy_row.roots = [envoy_a.pid]
        pair_rows[1].roots = [envoy_a.pid, envoy_b.pid]
    except Exception as e:  # the row says so; the bench goes on
        envoy_row.status = pair_rows[1].status = f"failed to start: {e}".splitlines()[0]

    why_not = mesh.gossamer_available()
    if why_not:
        gossamer_row.status = pair_rows[2].status = why_not
    else:
        side_a = mesh.start_gossamer(
            cp, work / "gossamer-a", PROXY_CPU, app=mesh.CLIENT, workload=mesh.CLIENT,
            ip="127.0.0.1", inbound=free_port(),
        )  # fmt: skip
        things.append(side_a.proc)
        side_b = mesh.start_gossamer(
            cp, work / "gossamer-b", PROXY_CPU, app="hop-gossamer", workload="hop-gossamer-b",
            ip="127.0.0.2", inbound=ports.hop_inbound["gossamer"],
        )  # fmt: skip
        things.append(side_b.proc)
        gossamer_row.port = pair_rows[2].port = side_a.outbound
        gossamer_row.roots = [side_a.proc]
        pair_rows[2].roots = [side_a.proc, side_b.proc]
        for side, rows_of in ((side_a, [gossamer_row]), (side_b, [pair_rows[2]])):
            problem = mesh.wait_gossamer_ready(side, 30)
            for row in rows_of if not problem else [gossamer_row, pair_rows[2]]:
                row.status = row.status or (f"not ready: {problem}" if problem else "")

    for row in rows:
        if not row.status:
            problem = wait_serving(row.port, row.host, 10)
            row.status = f"no 200 with the 1 KB body: {problem}" if problem else ""
    notes["ports"] = f"upstream 127.0.0.1:{ports.upstream}; services {ports.services}"
    return rows, notes


def measure(rows: list[Any], cfg: dict[str, Any]) -> None:
    from http_measure import idle_rss, run_latency, run_wrk

    live = [r for r in rows if not r.status]
    for row in live:  # idle: configured and probed once, before any load
        if row.roots:
            idle_rss(row)
    for row in live:  # warm every connection pool once; these numbers are dropped
        idle = row.samples.get("rss_idle", [])
        run_wrk(row, cfg["warm_s"], WRK_CONNECTIONS, WRK_THREADS)
        row.samples = {"rss_idle": idle} if idle else {}
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

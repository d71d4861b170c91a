"""HTTP/1.1 proxies side by side: direct, nginx, HAProxy, Envoy 1.40 and the Gossamer sidecar.

Run: `.venv/bin/python bench/http_proxies.py [--quick]` (as `make bench` does after push.py).
One run on this 2-core machine: the upstream (nginx, fixed 1 KB body) and every load generator
on CPU 0, every proxy on CPU 1. Envoy and Gossamer are configured by our own control plane over
xDS and hold mesh certificates from its CA (see mesh_config.py for the mesh, http_rows.py for
the rows). Per repetition each row gets wrk at full speed (single hops) and open-loop load at a
fixed rate (all rows); medians over repetitions, and every difference or ratio is taken within
one repetition. Then each pair once more with a new A→B connection per request (handshake
cost, http_connections.py). Writes bench/results/http-<date>.md. Every process is started with
PDEATHSIG and stopped by its PID; the whole run stops itself after 15 minutes.
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


def settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"reps": 1, "wrk_s": 3.0, "lat_s": 2.0, "warm_s": 1.0, "quiet_s": 10.0, "new_s": 2.0}
    return {"reps": 3, "wrk_s": 10.0, "lat_s": 5.0, "warm_s": 1.0, "quiet_s": 30.0, "new_s": 3.0}


WRK_CONNECTIONS, WRK_THREADS = 32, 2
RATE, RATE_CONNECTIONS = 1000.0, 16


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
    parser.add_argument("--tag", default="", help="results file http-<date>-<tag>.md")
    args = parser.parse_args()
    for signum in (signal.SIGALRM, signal.SIGTERM):  # unwind through the finally: stop all
        signal.signal(signum, _give_up)
    signal.alarm(900)  # the whole bench stops by itself
    cfg = settings(args.quick)
    import http_mesh as mesh
    import http_report as report
    from http_connections import measure_connections, render_connections, session_reuse
    from http_procs import machine_busy_seconds, own_tree_seconds, wait_for_quiet
    from http_rows import build_rows

    work = Path(tempfile.mkdtemp(prefix="gossamer-bench-http-"))
    things: list[Any] = []
    tls_notes: list[str] = []
    began = time.monotonic()
    try:
        bench = build_rows(work, things)
        rows, notes = bench.rows, bench.notes
        quiet = wait_for_quiet(cfg["quiet_s"])
        notes["before"] = f"other processes used {quiet:.0%} of one CPU just before measuring"
        busy, own, t0 = machine_busy_seconds(), own_tree_seconds(), time.monotonic()
        measure(rows, cfg)
        measure_connections(bench.connection_rows, cfg["new_s"], cfg["reps"])
        for who, admin in (("Envoy", bench.envoy_a_admin), ("Gossamer", bench.gossamer_a_admin)):
            if admin:
                tls_notes.append(session_reuse(who, admin, f"new-{who.lower()}-mtls"))
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
    sections = [render_connections(bench.connection_rows, cfg["new_s"], tls_notes)]
    text = report.render(rows, cfg, notes, time.monotonic() - began, sections)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    day = datetime.datetime.now(datetime.UTC).date().isoformat()
    suffix = (f"-{args.tag}" if args.tag else "") + ("-quick" if args.quick else "")
    path = args.out / f"http-{day}{suffix}.md"
    path.write_text(text)
    print(f"written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()

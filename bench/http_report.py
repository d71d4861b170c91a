"""The HTTP bench's markdown: method and versions, one row per proxy, Gossamer's ratios."""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import statistics
import subprocess
from collections.abc import Sequence
from typing import Any

from gossamer.runtime.envoy import envoy_binary
from http_measure import Row

DIRECT = "direct (no proxy)"


def _first_line(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "?"
    lines = [x for x in (done.stdout + done.stderr).splitlines() if x.strip()]
    return lines[0].strip() if lines else "?"


def versions() -> str:
    envoy = _first_line([str(envoy_binary()), "--version"]).split("version:")[-1].strip()
    here = os.path.dirname(__file__)
    git = _first_line(["git", "-C", here, "rev-parse", "--short", "HEAD"])
    dirty = ["git", "-C", here, "status", "--porcelain", "--untracked-files=no", "../src"]
    if _first_line(dirty) != "?":
        git += " + uncommitted changes in src/"
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((x.split(":", 1)[1].strip() for x in f if x.startswith("model name")), "?")
    except OSError:
        pass
    parts = [
        f"{os.cpu_count()} x {cpu}, Linux {platform.release()}",
        _first_line(["nginx", "-v"]).replace("nginx version: ", ""),
        _first_line(["haproxy", "-v"]).split(" - ")[0],
        f"Envoy {envoy.split('/')[1] if envoy.count('/') >= 2 else envoy}",
        f"Gossamer {git} (Python {platform.python_version()})",
        _first_line([shutil.which("wrk") or "wrk", "--version"]).split(" Copyright")[0],
    ]
    return "; ".join(parts)


def med(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def paired(row: Row, base: Row, metric: str, how: str) -> float | None:
    """Median over repetitions of row-vs-base in the same repetition ('diff' or 'ratio')."""
    a, b = row.samples.get(metric, []), base.samples.get(metric, [])
    n = min(len(a), len(b))
    if n == 0:
        return None
    if how == "diff":
        return statistics.median(a[i] - b[i] for i in range(n))
    if any(b[i] == 0 for i in range(n)):
        return None
    return statistics.median(a[i] / b[i] for i in range(n))


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _row_line(row: Row, direct: Row | None) -> str:
    if row.status:
        why = " ".join(row.status.split())
        return f"| {row.name} | {why[:160]}{'…' if len(why) > 160 else ''} ||||||"
    s = row.samples
    pcts = " / ".join(fmt(med(s.get(q, [])), ".2f") for q in ("p50", "p90", "p99"))
    if direct is not None and row is not direct:
        added = " / ".join(fmt(paired(row, direct, q, "diff"), "+.2f") for q in ("p50", "p99"))
    else:
        added = "—"
    cpu = " / ".join(fmt(med(s.get(k, [])), ".0f") for k in ("cpu_max", "cpu_rate"))
    rss = " / ".join(fmt(med(s.get(k, [])), ".0f") for k in ("rss_idle", "rss_load"))
    if not row.roots:
        cpu = rss = "—"
    rps = fmt(med(s.get("rps", [])), ",.0f")
    noise = fmt(med(s.get("others", [])), ".0f")
    return f"| {row.name} | {rps} | {pcts} | {added} | {cpu} | {rss} | {noise} |"


RATIO_METRICS = (
    ("req/s", "rps"),
    ("added p50", "added_p50"),
    ("added p99", "added_p99"),
    ("CPU µs/req at max", "cpu_max"),
    ("CPU µs/req at 1000 rps", "cpu_rate"),
    ("RSS under load", "rss_load"),
)


def _ratio(a: Row | None, b: Row | None, metric: str, direct: Row | None) -> str:
    if a is None or b is None or a.status or b.status:
        return "—"
    if metric.startswith("added_"):
        if direct is None:
            return "—"
        q = metric.removeprefix("added_")
        da, db = paired(a, direct, q, "diff"), paired(b, direct, q, "diff")
        return "—" if da is None or not db else f"{da / db:.2f}x"
    value = paired(a, b, metric, "ratio")
    return "—" if value is None else f"{value:.2f}x"


def ratios(rows: Sequence[Row]) -> str:
    by = {r.name: r for r in rows}
    direct = by.get(DIRECT)
    pairs = [
        ("Gossamer", "Envoy 1.40"),
        ("Gossamer", "nginx"),
        ("Gossamer → Gossamer", "Envoy → Envoy"),
        ("Gossamer → Gossamer", "nginx → nginx"),
        ("Gossamer → Gossamer (mTLS)", "Envoy → Envoy (mTLS)"),
    ]
    head = "| metric | " + " | ".join(f"{a} ÷ {b}" for a, b in pairs) + " |"
    lines = [head, "|---|" + "---:|" * len(pairs)]
    for label, metric in RATIO_METRICS:
        cells = [_ratio(by.get(a), by.get(b), metric, direct) for a, b in pairs]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(
    rows: Sequence[Row],
    cfg: dict[str, Any],
    notes: dict[str, str],
    took: float,
    sections: Sequence[str] = (),
) -> str:
    direct = next((r for r in rows if r.name == DIRECT and not r.status), None)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    reps = cfg["reps"]
    method = f"""# HTTP/1.1 proxies side by side ({when})

Method: one run of `bench/http_proxies.py{" --quick" if reps == 1 else ""}` ({took:.0f} s).
Upstream: nginx, 1 worker, `return 200` with a 1 KB body, keep-alive. Upstream, wrk, the
latency generator and the control plane on CPU 0; every proxy on CPU 1 (taskset), one worker
or thread each (nginx `worker_processes 1`, HAProxy `nbthread 1`, Envoy `--concurrency 1`,
Gossamer `--concurrency 1`); keep-alive on both sides of every proxy. Envoy and Gossamer are
sidecars configured over xDS by `gossamer controlplane` (Service + WorkloadEntry → upstream);
Envoy A with INTERCEPTION_MODE NONE (outbound listener on 127.0.0.1:<service port>), Gossamer
in explicit mode (client sends `Host: <svc>.default.svc.cluster.local:<port>` to its outbound
port). Two hops (client → A → B → upstream) go through the service whose WorkloadEntry is B's
inbound port; B forwards to the Service's targetPort. Gossamer B's are configured by the control
plane; each Envoy B runs a static bootstrap holding the control plane's virtualInbound listener
and `inbound|port||` clusters for it (the translator's `sidecar_resources`), moved to a loopback
port (without iptables the listener on 15006 cannot be reached by destination port). nginx
pair: two nginx processes chained. **mTLS**: both A's hold a mesh certificate from the control
plane's CA, obtained by the product's path (a bootstrap credential from `POST
/api/v1/credentials`, CSR to the certificate service): Gossamer in-process (`--ca-address`),
Envoy under `gossamer agent` (SDS on a Unix socket). The `(mTLS)` pairs go to a B holding a
certificate of its own, registered with `security.istio.io/tlsMode: istio` (auto mTLS: TLS 1.3,
SPIFFE SAN checked by A) under a STRICT PeerAuthentication (plaintext impossible); the other
pairs go to a B without a certificate (plaintext, as before mTLS). Envoy rows without mTLS
count Envoy alone; the mTLS Envoy pair counts both agents too (Gossamer's identity agent is
in-process, always counted).

Measured, {reps} repetition(s), medians; differences and ratios are taken inside each
repetition, then the median. **req/s**: wrk `-t2 -c32 -d{cfg["wrk_s"]:g}s` keep-alive (after a
{cfg["warm_s"]:g} s warm-up per row). **Latency**: open-loop at 1000 req/s for {cfg["lat_s"]:g} s
over 16 keep-alive connections (bench/http_load.py, uvloop): each 0.5 ms tick sends every
request that fell due on an idle connection; latency runs from that tick to the last response
byte (queueing behind a slow proxy counts, the client's timer lateness does not). **added** =
row minus direct in the same repetition. **CPU µs/req**: utime+stime from /proc/<pid>/stat over
the proxy's process tree(s) during the wrk run ("max") and the 1000 rps run, divided by the
requests. **RSS**: VmRSS summed over the proxy's processes, idle after configuration (before
any load) and peak under load (wrk; for pairs the 1000 rps run, both proxies together).
**others' CPU %**: CPU used meanwhile by processes the bench did not start (/proc/stat minus
the bench's own process tree), median over the row's loads, in % of one CPU: the machine may be
shared, and rows with a high value are disturbed. Cross-CPU wake-ups on this nested VM add
~0.3 ms to every proxied latency; compare within this run only.

Versions: {versions()}.
"""
    table = [
        "| proxy | req/s | p50 / p90 / p99 ms at 1000 rps | added p50 / p99 ms "
        "| CPU µs/req max / 1000 rps | RSS MB idle / load | others' CPU % |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    table += [_row_line(r, direct) for r in rows]
    counts = [f"{r.name} {r.samples['processes'][0]:.0f}" for r in rows if "processes" in r.samples]
    notes = {"processes per row (CPU and RSS summed over them)": ", ".join(counts), **notes}
    note_lines = [f"- {k}: {v}" for k, v in notes.items()]
    return (
        method
        + "\n"
        + "\n".join(table)
        + "\n\nGossamer's ratios (same run; < 1 is better for latency, CPU and memory):\n\n"
        + ratios(rows)
        + "\n\n"
        + "\n".join(note_lines)
        + "\n"
        + "".join("\n" + section for section in sections)
    )

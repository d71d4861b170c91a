"""What a new connection between two sidecars costs: the pairs with one request per connection.

The main rows keep every connection alive, so mTLS shows only its steady-state cost (record
encryption). Here each pair goes through a `new-<kind>` Service whose DestinationRule says
`maxRequestsPerConnection: 1`: sidecar A opens a new connection to B for every request (with
mTLS, a full TLS 1.3 handshake with ECDSA P-256 certificates on both sides) while the client
keeps its connection to A. wrk at full speed for a short bounded run: req/s is new A→B
connections per second; CPU µs per request covers both sidecars' handshakes. The plaintext
pairs give the same run without TLS, so mTLS minus plaintext is the handshake's cost.
"""

from __future__ import annotations

import re
import sys
import urllib.parse
import urllib.request
from collections.abc import Sequence

from http_measure import Row, run_wrk
from http_report import fmt, med, paired

CONNECTIONS, THREADS = 8, 2  # few: every request leaves a socket in TIME_WAIT


def measure_connections(rows: Sequence[Row], seconds: float, reps: int) -> None:
    """`reps` short wrk runs per live row, rows interleaved within each repetition."""
    for rep in range(reps):
        for row in rows:
            if row.status:
                continue
            print(f"  connections {rep + 1}/{reps}: {row.name}", file=sys.stderr, flush=True)
            run_wrk(row, seconds, CONNECTIONS, THREADS)


def session_reuse(who: str, admin_port: int, service: str) -> str:
    """What sidecar A's TLS counters (Envoy's names, on either sidecar's admin `/stats`) say
    of its connections to `service`'s cluster: how many handshakes, and how many resumed a
    session (a ticket from B: no certificates exchanged)."""
    wanted = urllib.parse.urlencode({"filter": f"{service}.*ssl\\.(handshake|session_reused)$"})
    url = f"http://127.0.0.1:{admin_port}/stats?{wanted}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
    except OSError as e:
        return f"{who} A's stats unavailable ({e})"
    counts = {m[0]: int(m[1]) for m in re.findall(r"ssl\.(\w+): (\d+)", text)}
    return (
        f"{who} A → {service}: {counts.get('handshake', 0):,} TLS handshakes, "
        f"{counts.get('session_reused', 0):,} of them resumed a session"
    )


def _plain_twin(row: Row, by_name: dict[str, Row]) -> Row | None:
    return by_name.get(row.name.removesuffix(" (mTLS)")) if row.name.endswith("(mTLS)") else None


def render_connections(rows: Sequence[Row], seconds: float, notes: Sequence[str] = ()) -> str:
    """The markdown section: one line per pair, then Gossamer ÷ Envoy with mTLS, then notes."""
    by_name = {r.name: r for r in rows}
    lines = [
        "## New connections between the sidecars",
        "",
        f"Each pair through a Service with `maxRequestsPerConnection: 1` (sidecar A opens a new "
        f"connection to B per request; the client keeps its {CONNECTIONS} connections to A): "
        f"wrk `-t{THREADS} -c{CONNECTIONS} -d{max(1, round(seconds))}s`, medians over "
        "repetitions. **handshake CPU** = CPU µs/req of the mTLS pair minus its plaintext twin "
        "in the same repetition (both sidecars, client and server side of the handshake).",
        "",
        "| pair | new connections/s | CPU µs/req (both sidecars) | handshake CPU µs |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        if row.status:
            why = " ".join(row.status.split())[:160]
            lines.append(f"| {row.name} | {why} |||")
            continue
        twin = _plain_twin(row, by_name)
        extra = paired(row, twin, "cpu_max", "diff") if twin and not twin.status else None
        rps = fmt(med(row.samples.get("rps", [])), ",.0f")
        cpu = fmt(med(row.samples.get("cpu_max", [])), ".0f")
        lines.append(f"| {row.name} | {rps} | {cpu} | {fmt(extra, '.0f')} |")
    gossamer, envoy = by_name.get("Gossamer → Gossamer (mTLS)"), by_name.get("Envoy → Envoy (mTLS)")
    if gossamer and envoy and not gossamer.status and not envoy.status:
        rate = paired(gossamer, envoy, "rps", "ratio")
        per_connection = paired(gossamer, envoy, "cpu_max", "ratio")
        lines += [
            "",
            f"Gossamer → Gossamer (mTLS) ÷ Envoy → Envoy (mTLS): new connections/s "
            f"{fmt(rate, '.2f')}x, CPU µs per new connection {fmt(per_connection, '.2f')}x.",
        ]
    lines += ["", *(f"- {note}" for note in notes)] if notes else []
    return "\n".join(lines) + "\n"

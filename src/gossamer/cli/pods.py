"""`gossamer get pods`: the local runtime's pods, as `kubectl get pods -o wide` shows them."""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table

from gossamer.cli.client import ApiClient, ApiFailure
from gossamer.cli.output import Format, err, out, print_structured

POD_WORDS = frozenset({"pods", "pod", "po"})


def show_pods(client: ApiClient, namespace: str | None, output: Format) -> None:
    try:
        reply = client.get("/api/v1/pods", namespace=namespace or "")
    except ApiFailure as exc:
        err.print(f"Error: {exc}", style="bold red", markup=False)
        raise SystemExit(1) from None
    pods: list[dict[str, Any]] = reply["items"]
    if print_structured(pods, output):
        return
    if reply.get("runtime") is None:
        err.print("No pods: `gossamer up` is not running on this control plane's home.")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "SIDECAR"):
        table.add_column(column)
    table.add_column("LABELS")
    for pod in pods:
        table.add_row(
            pod["namespace"],
            pod["name"],
            "1/1" if pod["ready"] else "0/1",
            pod["phase"],
            str(pod["restarts"]),
            _age(pod["started"]),
            pod["ip"],
            pod["sidecar"],
            ",".join(f"{k}={v}" for k, v in sorted(pod["labels"].items())),
        )
    out.print(table)


def _age(started: float) -> str:
    seconds = int(time.time() - started)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"

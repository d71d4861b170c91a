"""Child process: a grpcio proxyless client (`xds:///` target) driven by JSON commands on stdin.

`python grpc_xds_client.py TARGET` (GRPC_XDS_BOOTSTRAP must be set). One JSON object per line in,
one JSON line out:
  {"cmd": "calls", "n": N, "metadata": {...}}      → {"versions": {v: n}, "errors": {code: n}}
  {"cmd": "until", "want": "v2"|"CODE", "streak": K, "metadata": {...}}
                                                    → {"ok": bool, "calls": n}
     (calls until K outcomes in a row equal `want`; at most 5000 calls or 20 s)
  {"cmd": "start", "metadata": {...}}               → {"started": true}; calls in a loop
  {"cmd": "stop"}                                   → {"records": [[t, outcome], ...]}
     (outcome is the version or the error code name; t = time.time() at completion;
      the loop stops by itself after 20000 calls or 30 s)
Every call has a 5 s deadline. Imports nothing from the repository.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from typing import Any

import grpc

METHOD = "/gossamer.test.Version/Get"


def main() -> None:
    channel = grpc.insecure_channel(sys.argv[1])
    stub = channel.unary_unary(METHOD)

    def call(metadata: dict[str, str], *, ready: bool = False) -> str:
        try:
            reply = stub(b"", timeout=5, metadata=tuple(metadata.items()), wait_for_ready=ready)
            return bytes(reply).decode()
        except grpc.RpcError as exc:
            return str(exc.code().name)

    loop: dict[str, Any] = {}

    def run_loop(metadata: dict[str, str], stop: threading.Event, records: list[Any]) -> None:
        deadline = time.monotonic() + 30
        while not stop.is_set() and len(records) < 20000 and time.monotonic() < deadline:
            outcome = call(metadata)
            records.append([time.time(), outcome])

    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        metadata = dict(req.get("metadata", {}))
        cmd = req["cmd"]
        if cmd == "calls":
            versions: Counter[str] = Counter()
            errors: Counter[str] = Counter()
            for i in range(int(req["n"])):
                outcome = call(metadata, ready=i == 0)
                (versions if outcome.startswith("v") else errors)[outcome] += 1
            reply: dict[str, Any] = {"versions": dict(versions), "errors": dict(errors)}
        elif cmd == "until":
            streak = calls = 0
            deadline = time.monotonic() + 20
            while streak < int(req["streak"]) and calls < 5000 and time.monotonic() < deadline:
                calls += 1
                streak = streak + 1 if call(metadata, ready=calls == 1) == req["want"] else 0
            reply = {"ok": streak >= int(req["streak"]), "calls": calls}
        elif cmd == "start":
            stop, records = threading.Event(), list[Any]()
            thread = threading.Thread(target=run_loop, args=(metadata, stop, records))
            loop.update(stop=stop, records=records, thread=thread)
            thread.start()
            reply = {"started": True}
        elif cmd == "stop":
            loop["stop"].set()
            loop["thread"].join()
            reply = {"records": loop["records"]}
        else:
            reply = {"error": f"unknown command {cmd!r}"}
        print(json.dumps(reply), flush=True)
    channel.close()


if __name__ == "__main__":
    main()

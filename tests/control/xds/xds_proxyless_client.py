"""A real grpcio proxyless client, run as a child process: `python xds_proxyless_client.py TARGET`.

Reads commands on stdin, answers one JSON line on stdout per command:
  `call N`          → N unary calls; {"counts": {backend: n}, "errors": n}
  `until NAME K`    → calls until K in a row reach NAME (at most 5000 calls or 20 s);
                      {"ok": bool, "calls": n, "errors": n}
  `quit` (or EOF)   → exit.
Needs GRPC_XDS_BOOTSTRAP in its environment; imports nothing from the repository.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter

import grpc

METHOD = "/gossamer.test.Who/Name"


def main() -> None:
    target = sys.argv[1]
    with grpc.insecure_channel(target) as channel:
        who = channel.unary_unary(METHOD)

        def call() -> str | None:
            try:
                return bytes(who(b"", timeout=5)).decode()
            except grpc.RpcError as exc:
                print(f"rpc error: {exc.code()} {exc.details()}", file=sys.stderr)
                return None

        for line in sys.stdin:
            cmd = line.split()
            if not cmd or cmd[0] == "quit":
                break
            if cmd[0] == "call":
                counts: Counter[str] = Counter()
                errors = 0
                for _ in range(int(cmd[1])):
                    name = call()
                    if name is None:
                        errors += 1
                    else:
                        counts[name] += 1
                reply: dict[str, object] = {"counts": dict(counts), "errors": errors}
            elif cmd[0] == "until":
                wanted, streak_needed = cmd[1], int(cmd[2])
                streak = calls = errors = 0
                deadline = time.monotonic() + 20
                while streak < streak_needed and calls < 5000 and time.monotonic() < deadline:
                    name = call()
                    calls += 1
                    errors += name is None
                    streak = streak + 1 if name == wanted else 0
                reply = {"ok": streak >= streak_needed, "calls": calls, "errors": errors}
            else:
                reply = {"error": f"unknown command {cmd[0]!r}"}
            print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()

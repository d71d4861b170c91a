"""Child process: gRPC servers on 127.0.0.1 that answer their version name, one per argument.

`python grpc_version_servers.py v1 v2` prints `{"v1": port, "v2": port}` once serving and runs
until stdin closes. Method `/gossamer.test.Version/Get` (raw bytes, unary) returns the version.
Imports nothing from the repository.
"""

from __future__ import annotations

import json
import sys
from concurrent import futures

import grpc

SERVICE, METHOD = "gossamer.test.Version", "Get"


def serve(version: str) -> tuple[grpc.Server, int]:
    def get(request: bytes, context: grpc.ServicerContext) -> bytes:
        return version.encode()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handler = grpc.unary_unary_rpc_method_handler(get)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def main() -> None:
    servers = {name: serve(name) for name in sys.argv[1:]}
    print(json.dumps({name: port for name, (_, port) in servers.items()}), flush=True)
    sys.stdin.read()  # until the parent closes our stdin (or dies)
    for server, _ in servers.values():
        server.stop(grace=None)


if __name__ == "__main__":
    main()

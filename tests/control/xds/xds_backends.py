"""Tiny gRPC backends that answer with their own name, and a bounded wait for test conditions."""

from __future__ import annotations

from typing import Any

import grpc

SERVICE, METHOD = "gossamer.test.Who", "Name"  # called as /gossamer.test.Who/Name, raw bytes


async def start_backend(name: str) -> tuple[grpc.aio.Server, int]:
    """A gRPC server on 127.0.0.1 (port 0) whose one method answers `name`; caller stops it."""

    async def who(request: bytes, context: Any) -> bytes:
        return name.encode()

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(who)  # no serializers: raw bytes
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port

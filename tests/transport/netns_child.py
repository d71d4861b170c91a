"""Runs inside a test network namespace (see test_original_dst_netns.py); prints one JSON line.

iptables in that namespace redirects 10.77.0.9:8080 to the inbound capture port and the rest of
10.77.0.0/24 to the outbound one. We check SO_ORIGINAL_DST directly, then a non-explicit
Dataplane routing captured HTTP by its original destination to `0.0.0.0_9080`, captured TCP to
the listener `10.77.0.6_3306`, and inbound HTTP by destination port to the local app."""

from __future__ import annotations

import asyncio
import json
import socket
import sys

from gossamer.control.translate import clusters, listeners
from gossamer.proxy.dataplane import Dataplane, DataplaneOptions
from gossamer.transport.original_dst import original_destination
from gossamer.waits import bounded
from tests.proxy.server.http_wire import Client
from tests.proxy.server.protos import proxy_config, route, routes, static_cluster
from tests.proxy.server.upstreams import Upstream


def raw_original_dst(capture_port: int) -> list[object]:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", capture_port))
    server.listen()
    with server, socket.create_connection(("10.77.0.7", 80), timeout=5):
        accepted, _ = server.accept()
        with accepted:
            return list(original_destination(accepted) or ())


async def _upper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write((await reader.read()).upper())
    await writer.drain()
    writer.close()


async def through_dataplane(capture_port: int, inbound_port: int) -> dict[str, object]:
    up = await Upstream("a").start()
    app = await Upstream("app").start()
    tcp = await asyncio.start_server(_upper, "127.0.0.1", 0)
    tcp_port = tcp.sockets[0].getsockname()[1]
    http = listeners.socket_listener(
        "0.0.0.0_9080",
        "0.0.0.0",
        9080,
        [listeners.inline_routes_filter("9080", routes("9080", (["*"], [route("a")])))],
        bind=False,
    )
    mysql = listeners.socket_listener(
        "10.77.0.6_3306",
        "10.77.0.6",
        3306,
        [listeners.tcp_proxy_filter("db", [("db", 1)])],
        bind=False,
    )
    inbound_routes = routes("inbound|8080||", (["*"], [route("inbound|8080||")]))
    inbound = listeners.virtual_inbound(
        inbound_port,
        [
            listeners.port_chain(
                "inbound|8080||", 8080, [listeners.inline_routes_filter("in", inbound_routes)]
            )
        ],
        "InboundPassthroughCluster",
    )
    config = proxy_config(
        static_cluster("inbound|8080||", app.port),
        clusters.inbound_passthrough(),
        inbound,
        static_cluster("a", up.port),
        static_cluster("db", tcp_port),
        clusters.passthrough(),
        listeners.virtual_outbound(capture_port, "PassthroughCluster"),
        http,
        mysql,
    )
    dataplane = Dataplane(
        DataplaneOptions(explicit=False, outbound_port=capture_port, inbound_port=inbound_port)
    )
    await dataplane.apply(config)
    try:
        client = await Client.connect(9080, host="10.77.0.5")
        resp = await client.get("/captured", "reviews:9080")
        await client.close()
        reader, writer = await asyncio.open_connection("10.77.0.6", 3306)
        writer.write(b"ping")
        writer.write_eof()
        echoed = await bounded(reader.read(), 5)
        writer.close()
        client = await Client.connect(8080, host="10.77.0.9")
        inbound_resp = await client.get("/in", "productpage:9080")
        await client.close()
        return {
            "http_status": resp.status,
            "http_upstream": resp.headers.get("x-upstream"),
            "upstream_saw": up.requests[0].target if up.requests else None,
            "tcp": echoed.decode(),
            "inbound": inbound_resp.headers.get("x-upstream"),
        }
    finally:
        await dataplane.close()
        await up.stop()
        await app.stop()
        tcp.close()


def main() -> None:
    capture_port, inbound_port = int(sys.argv[1]), int(sys.argv[2])
    out: dict[str, object] = {"raw": raw_original_dst(capture_port)}
    out.update(asyncio.run(bounded(through_dataplane(capture_port, inbound_port), 20)))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

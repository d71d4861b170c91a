"""Push benchmark: notify → last ACK across N ADS streams, and control-plane CPU per stream push.

Run: `.venv/bin/python bench/push.py [--streams 100,1000] [--trials 5] [--debounce 0.01]`.
The AdsServer runs alone in a child process (its CPU is measured with getrusage there); the
simulated proxyless streams run in one or two other processes, grpc.aio, every stream
subscribing to one service's listener, route, clusters and endpoints and ACKing every response.
Each trial shifts the weights of all 50 routes (every stream gets one RDS push). Times include
the debounce, shown apart. Everything is on 127.0.0.1 and every process exits by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

# The extension messages must be imported for ParseDict to resolve their "@type".
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2,
)
from google.protobuf.json_format import ParseDict

from gossamer.waits import bounded

_ = (router_pb2, http_connection_manager_pb2)
SERVICES = 50
CHILD_LIFETIME = 600.0  # seconds: a child that lost its parent still exits


def service_names(i: int) -> dict[str, Any]:
    host = f"svc-{i}.default.svc.cluster.local"
    return {
        "listener": f"{host}:80",
        "route": f"route-{i}",
        "clusters": [f"outbound|80|v1|{host}", f"outbound|80|v2|{host}"],
    }


def build_messages(weight: int) -> list[Any]:
    """50 services: API listener → route (v1/v2 split at `weight`%) → 2 EDS clusters each."""
    ads = {"ads": {}, "resource_api_version": "V3"}
    router = {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    out: list[Any] = []
    for i in range(SERVICES):
        n = service_names(i)
        manager = {
            "@type": "type.googleapis.com/envoy.extensions.filters.network."
            "http_connection_manager.v3.HttpConnectionManager",
            "rds": {"config_source": ads, "route_config_name": n["route"]},
            "http_filters": [{"name": "envoy.filters.http.router", "typed_config": router}],
        }
        out.append(
            ParseDict(
                {"name": n["listener"], "api_listener": {"api_listener": manager}},
                listener_pb2.Listener(),
            )
        )
        split = [
            {"name": c, "weight": w}
            for c, w in zip(n["clusters"], (weight, 100 - weight), strict=True)
        ]
        vhost = {
            "name": n["listener"],
            "domains": [n["listener"]],
            "routes": [
                {"match": {"prefix": "/"}, "route": {"weighted_clusters": {"clusters": split}}}
            ],
        }
        out.append(
            ParseDict(
                {"name": n["route"], "virtual_hosts": [vhost]}, route_pb2.RouteConfiguration()
            )
        )
        for k, c in enumerate(n["clusters"]):
            out.append(
                ParseDict(
                    {"name": c, "type": "EDS", "eds_cluster_config": {"eds_config": ads}},
                    cluster_pb2.Cluster(),
                )
            )
            eps = [
                {
                    "endpoint": {
                        "address": {
                            "socket_address": {"address": f"10.{i}.{k}.{e}", "port_value": 8080}
                        }
                    }
                }
                for e in range(3)
            ]
            locality = {
                "locality": {"region": "r1", "zone": "z1"},
                "load_balancing_weight": 1,
                "lb_endpoints": eps,
            }
            out.append(
                ParseDict(
                    {"cluster_name": c, "endpoints": [locality]},
                    endpoint_pb2.ClusterLoadAssignment(),
                )
            )
    return out


# --------------------------------------------------------------------------- server process


async def serve(debounce: float, cache_size: int) -> None:
    from gossamer.control.xds import AdsServer, ProxyNode, Snapshot

    class Source:
        """Same Snapshot for every proxy, rebuilt once per revision (as the translator memoizes)."""

        def __init__(self) -> None:
            self.revision, self.weight = 1, 50
            self.current = Snapshot.build(build_messages(self.weight), revision=self.revision)

        def shift(self) -> int:
            self.revision += 1
            self.weight = 90 if self.weight != 90 else 10
            self.current = Snapshot.build(build_messages(self.weight), revision=self.revision)
            return self.revision

        def snapshot(self, node: ProxyNode) -> Snapshot:
            return self.current

    source = Source()
    server = AdsServer(
        source, debounce=debounce, max_delay=max(1.0, debounce), response_cache_size=cache_size
    )
    port = await server.start()
    print(json.dumps({"port": port}), flush=True)
    cpu0 = 0.0
    try:
        async with asyncio.timeout(CHILD_LIFETIME):
            while line := await asyncio.to_thread(sys.stdin.readline):
                cmd = line.strip()
                if cmd == "shift":
                    revision = source.shift()  # the translator's work, outside the measurement
                    use = resource.getrusage(resource.RUSAGE_SELF)
                    cpu0 = use.ru_utime + use.ru_stime
                    t0 = time.monotonic()
                    server.notify(revision)
                    print(json.dumps({"t0": t0}), flush=True)
                elif cmd == "cpu":
                    use = resource.getrusage(resource.RUSAGE_SELF)
                    reply = {
                        "cpu": use.ru_utime + use.ru_stime - cpu0,
                        "hits": server.cache.hits,
                        "misses": server.cache.misses,
                        "streams": len(server.connections()),
                    }
                    print(json.dumps(reply), flush=True)
                else:
                    break
    finally:
        await server.stop(None)


# --------------------------------------------------------------------------- client process


async def clients(port: int, count: int, first: int) -> None:
    import grpc
    from envoy.config.core.v3 import base_pb2
    from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

    prefix = "type.googleapis.com/envoy.config."
    types = {
        "lds": prefix + "listener.v3.Listener",
        "rds": prefix + "route.v3.RouteConfiguration",
        "cds": prefix + "cluster.v3.Cluster",
        "eds": prefix + "endpoint.v3.ClusterLoadAssignment",
    }
    rds_seen = [0] * count  # RDS responses per stream
    last_ack = [0.0] * count
    synced = [0] * count
    ready = asyncio.Event()

    async def stream(channel: Any, j: int) -> None:
        n = service_names((first + j) % SERVICES)
        names = {
            "lds": [n["listener"]],
            "rds": [n["route"]],
            "cds": n["clusters"],
            "eds": n["clusters"],
        }
        by_url = {types[k]: v for k, v in names.items()}
        call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()
        node = base_pb2.Node(
            id=f"proxyless~10.9.{j // 250}.{j % 250}~bench-{first + j}.default~"
            "default.svc.cluster.local",
            user_agent_name="gRPC bench",
        )
        for k, short in enumerate(("lds", "rds", "cds", "eds")):
            req = discovery_pb2.DiscoveryRequest(type_url=types[short], resource_names=names[short])
            if k == 0:
                req.node.CopyFrom(node)
            await call.write(req)
        async for resp in call:
            await call.write(
                discovery_pb2.DiscoveryRequest(
                    type_url=resp.type_url,
                    resource_names=by_url[resp.type_url],
                    version_info=resp.version_info,
                    response_nonce=resp.nonce,
                )
            )
            if resp.type_url == types["rds"]:
                rds_seen[j] += 1
                last_ack[j] = time.monotonic()
            if synced[j] < 4:
                synced[j] += 1
                if sum(synced) == 4 * count:
                    ready.set()

    # A few channels (HTTP/2 connections), many streams each, as many clients would be.
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(max(1, count // 100))]
    try:
        async with asyncio.timeout(CHILD_LIFETIME), asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(stream(channels[j % len(channels)], j)) for j in range(count)]
            await bounded(ready.wait(), 120)
            print(json.dumps({"ready": count}), flush=True)
            while line := await asyncio.to_thread(sys.stdin.readline):
                want = int(line.split()[1])  # "report K": streams with >= K RDS responses
                done = [t for t, seen in zip(last_ack, rds_seen, strict=True) if seen >= want]
                print(json.dumps({"done": len(done), "last": max(done, default=0.0)}), flush=True)
            for task in tasks:  # stdin closed: end every stream (the TaskGroup then exits)
                task.cancel()
    finally:
        for ch in channels:
            await ch.close()


# --------------------------------------------------------------------------- orchestrator


class Child:
    """A child process speaking one JSON line per command."""

    def __init__(self, *args: str) -> None:
        self.role = args[0]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child {self.role} exited ({self.proc.poll()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_case(streams: int, trials: int, debounce: float, cache_size: int) -> dict[str, Any]:
    server = Child("--serve", f"--debounce={debounce}", f"--cache-size={cache_size}")
    port = server.read()["port"]
    # Two client processes for large N, so client-side Python is not the only bottleneck.
    split = [streams] if streams <= 200 else [streams // 2, streams - streams // 2]
    fleet: list[Child] = []
    try:
        first = 0
        for n in split:
            fleet.append(Child("--clients", f"--port={port}", f"--count={n}", f"--first={first}"))
            first += n
        for c in fleet:
            c.read()  # {"ready": n}
        latencies: list[float] = []
        cpu: list[float] = []
        for trial in range(trials):
            t0 = server.ask("shift")["t0"]
            deadline = time.monotonic() + 30
            while True:
                reports = [c.ask(f"report {trial + 2}") for c in fleet]
                if sum(r["done"] for r in reports) == streams:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {sum(r['done'] for r in reports)}/{streams} ACKed")
                time.sleep(0.02)
            latencies.append(max(r["last"] for r in reports) - t0)
            stats = server.ask("cpu")
            cpu.append(stats["cpu"])
        return {"latency": latencies, "cpu": cpu, "stats": stats}
    finally:
        for c in fleet:
            c.close()
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="100,1000")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--debounce", type=float, default=0.01)
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--clients", action="store_true")
    parser.add_argument("--cache-size", type=int, default=4096)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--first", type=int, default=0)
    args = parser.parse_args()
    if args.serve or args.clients:
        import uvloop  # set before any grpc.aio object exists (xds-notes.md)

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        job = (
            serve(args.debounce, args.cache_size)
            if args.serve
            else clients(args.port, args.count, args.first)
        )
        asyncio.run(job)
        return
    signal.alarm(900)  # the whole benchmark stops by itself
    print(
        f"{os.cpu_count()} CPUs; {SERVICES} services; debounce {args.debounce * 1000:.0f} ms "
        f"(included in 'notify → last ACK'); {args.trials} trials, median (max)\n"
    )
    print(
        "| streams | response cache | notify → last ACK ms | minus debounce ms "
        "| server CPU ms / stream / push | cache hits / misses |"
    )
    print("|---:|:---|---:|---:|---:|---:|")
    for streams in (int(s) for s in args.streams.split(",")):
        for cache_size in (4096, 0):
            r = run_case(streams, args.trials, args.debounce, cache_size)
            lat = [x * 1000 for x in r["latency"]]
            per = [c * 1000 / streams for c in r["cpu"]]
            st = r["stats"]
            print(
                f"| {streams} | {'on' if cache_size else 'off'} "
                f"| {statistics.median(lat):.0f} ({max(lat):.0f}) "
                f"| {statistics.median(lat) - args.debounce * 1000:.0f} "
                f"| {statistics.median(per):.3f} ({max(per):.3f}) "
                f"| {st['hits']} / {st['misses']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

"""An EDS push that removes a host closes the sidecar's idle connections to it (as Envoy drains
a removed host's pool): a pod replaced on the same address must not get the old pod's stream."""

from __future__ import annotations

import asyncio

from envoy.config.endpoint.v3 import endpoint_pb2

from gossamer.control.translate.clusters import socket_address
from gossamer.proxy.config.snapshot import SnapshotBuilder
from gossamer.proxy.dataplane import Dataplane, DataplaneOptions
from tests.proxy.server.harness import simple
from tests.proxy.server.http_wire import Client
from tests.proxy.server.protos import Cluster, free_port, proxy_config
from tests.proxy.server.upstreams import Upstream


def eds_cluster(name: str) -> Cluster:
    cluster = Cluster(name=name, type=Cluster.EDS)
    cluster.connect_timeout.FromMilliseconds(1000)
    cluster.eds_cluster_config.eds_config.ads.SetInParent()
    return cluster


def assignment(name: str, *ports: int) -> endpoint_pb2.ClusterLoadAssignment:
    out = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    group = out.endpoints.add()
    for port in ports:
        group.lb_endpoints.add().endpoint.address.CopyFrom(socket_address("127.0.0.1", port))
    return out


async def test_an_eds_change_closes_idle_connections_to_removed_hosts_only() -> None:
    leaving = await Upstream("leaving").start()
    staying = await Upstream("staying").start()
    port = free_port()
    options = DataplaneOptions(explicit=True, outbound_port=free_port(), inbound_port=free_port())
    dataplane = Dataplane(options)
    try:
        listener = simple(port, "a")
        builder = SnapshotBuilder()  # one per sidecar, as in production: unchanged bytes,
        await dataplane.apply(  # unchanged compiled listener, so the client stays connected
            proxy_config(
                eds_cluster("a"),
                assignment("a", leaving.port, staying.port),
                listener,
                builder=builder,
            )
        )
        client = await Client.connect(port)
        for _ in range(6):  # round robin: idle pool connections to both hosts
            assert (await client.get("/", "svc")).status == 200
        assert len(leaving.writers) == len(staying.writers) == 1
        backend = dataplane.backends["a"]
        await dataplane.apply(
            proxy_config(eds_cluster("a"), assignment("a", staying.port), listener, builder=builder)
        )
        assert dataplane.backends["a"] is backend  # same cluster: reconfigured in place
        for _ in range(250):  # up to 5 s for the upstream to see the sidecar close it
            if not leaving.writers:
                break
            await asyncio.sleep(0.02)
        assert not leaving.writers
        assert len(staying.writers) == 1  # the remaining host keeps its warm connection
        for _ in range(3):
            resp = await client.get("/", "svc")
            assert (resp.status, resp.headers["x-upstream"]) == (200, "staying")
        assert staying.connections == 1
        await client.close()
    finally:
        await dataplane.close()
        await leaving.stop()
        await staying.stop()

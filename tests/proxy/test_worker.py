"""The supervisor → worker link: frames over a real socketpair, and the worker's replica of the
supervisor's config rebuilt from the serialized resources the control plane really sends."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gossamer.control.ca import begin_root_rotation, key_pem, make_csr, new_key, open_ca
from gossamer.identity.spiffe import SpiffeId
from gossamer.proxy.config.snapshot import ProxyConfig
from gossamer.proxy.supervisor_workers import WorkerPool
from gossamer.proxy.worker import ConfigReplica, LinkClosed, decode_resources, read_frame
from gossamer.transport.tls import IdentityMaterial
from tests.proxy.config.meshes import REVIEWS_V2, applied, snapshot


def accepted_config() -> ProxyConfig:
    """What the supervisor's XdsClient holds after the control plane's pushes."""
    config = applied(snapshot(REVIEWS_V2))
    assert config.complete
    return config


def chains(listener: Any) -> list[tuple[object, ...]]:
    return [
        (c.destination_port, type(c.handler).__name__, getattr(c.handler, "route_name", None))
        for c in listener.chains
    ]


async def through_link(frame: bytes) -> dict[str, object]:
    left, right = socket.socketpair()
    try:
        _, writer = await asyncio.open_connection(sock=left)
        reader, other = await asyncio.open_connection(sock=right)
        writer.write(frame)
        await writer.drain()
        message = await read_frame(reader)
        writer.close()
        with pytest.raises(LinkClosed):
            await read_frame(reader)
        other.close()
        return message
    finally:
        left.close()
        right.close()


async def test_a_worker_rebuilds_the_supervisors_config_from_the_link() -> None:
    config = accepted_config()
    pool = WorkerPool(2, {}, asyncio.Event())
    pool.push(7, config)
    generation, frame = pool.latest_frame()
    assert generation == 7 and frame is not None
    assert pool.latest_frame()[1] is frame  # serialized once per generation, not per worker

    message = await through_link(frame)
    assert message["op"] == "config" and message["generation"] == 7
    replica = ConfigReplica()
    rebuilt = replica.apply(decode_resources(message), message["versions"])  # type: ignore[arg-type]

    assert rebuilt.complete
    assert dict(rebuilt.versions) == dict(config.versions)
    assert dict(rebuilt.clusters) == dict(config.clusters)
    assert dict(rebuilt.endpoints) == dict(config.endpoints)
    assert dict(rebuilt.resources) == dict(config.resources)  # the very same protos
    assert set(rebuilt.listeners) == set(config.listeners)
    for name, listener in config.listeners.items():  # inline RouteTables compare by identity
        assert chains(rebuilt.listeners[name]) == chains(listener), name
    assert set(rebuilt.routes) == set(config.routes) == {"9080"}

    # The next push of the same protos carries the same bytes, and the worker keeps every
    # compiled value (so its backends keep their state).
    pool.push(8, config)
    _, frame8 = pool.latest_frame()
    assert frame8 is not None
    message8 = await through_link(frame8)
    assert decode_resources(message8) == decode_resources(message)
    again = replica.apply(decode_resources(message8), message8["versions"])  # type: ignore[arg-type]
    assert all(again.clusters[n] is rebuilt.clusters[n] for n in rebuilt.clusters)


async def test_frames_are_length_prefixed_json() -> None:
    body = json.dumps({"op": "stats", "id": 3}).encode()
    assert await through_link(struct.pack(">I", len(body)) + body) == {"op": "stats", "id": 3}
    left, right = socket.socketpair()
    try:
        reader, writer = await asyncio.open_connection(sock=right)
        left.sendall(struct.pack(">I", 10) + b"{}")  # truncated: the worker died mid-frame
        left.close()
        with pytest.raises(LinkClosed):
            await read_frame(reader)
        writer.close()
    finally:
        right.close()


async def test_a_new_trust_bundle_under_the_same_certificate_reaches_every_worker(
    tmp_path: Path,
) -> None:
    """A root rotation's BEGIN changes the bundle, not the certificate: the pool must send it
    again and count workers that have not confirmed it as behind."""
    identity = SpiffeId("default", "reviews")
    authority = open_ca(tmp_path / "ca")
    key = new_key()
    issued = authority.sign(make_csr(key, identity), identity)
    first = IdentityMaterial(
        issued.chain_pem().decode(), key_pem(key).decode(), issued.bundle_pem().decode()
    )
    begin_root_rotation(tmp_path / "ca", timedelta(hours=48))
    wider = replace(first, trust_bundle_pem=open_ca(tmp_path / "ca").bundle.pem().decode())
    pool = WorkerPool(2, {}, asyncio.Event())
    pool.push_identity(first)
    version, frame = pool.identity_serial, pool.identity_frame
    pool.push_identity(wider)
    assert pool.identity_serial != version and pool.identity_frame != frame
    assert pool.identity_serial.startswith(f"{first.serial:x}/")
    assert pool.identity_frame is not None
    message = await through_link(pool.identity_frame)
    assert message["trust_bundle_pem"] == wider.trust_bundle_pem
    assert not pool.identity_everywhere()  # no worker has confirmed the new bundle yet

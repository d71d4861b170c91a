"""A worker process: one Dataplane on SO_REUSEPORT listeners, fed config by the supervisor.

Run as `python -m gossamer.proxy.worker --fd N --options JSON` by the supervisor only (through
the parent-death launcher, so a worker never outlives it). Theory of operation:

1. The supervisor and the worker share one Unix stream socket (fd N, a socketpair end). Every
   message is a frame: 4-byte big-endian length, then a JSON object with an `op`.
2. The worker says `hello` (its pid), then serves, in order of arrival:
   `config` (raw serialized resources + versions + generation: compile with the same compile
   functions the supervisor used, apply, answer `applied` or `failed`), `stats` (answer with the
   stats of every backend, the security counters and Istio's metrics: admin_stats.report_of),
   `drain` (close listeners, let in-flight requests finish up to the timeout, answer
   `drained`, exit 0).
3. EOF on the socket means the supervisor is gone: exit at once. SIGINT is ignored (a terminal's
   Ctrl-C reaches the whole process group; the supervisor decides when workers drain), SIGTERM
   drains like the `drain` message.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import logging
import os
import signal
import socket
import struct
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from gossamer.proxy import admin_stats
from gossamer.proxy.supervisor_heap import FrozenHeap

log = logging.getLogger("gossamer.proxy.worker")

_HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024  # a config of every resource in a big mesh still fits

# type URL → [(resource name, serialized proto)]
RawResources = Mapping[str, Sequence[tuple[str, bytes]]]


# --- the seam to the Dataplane and the snapshot (shared with the in-process supervisor) -------

DataplaneLike = Any  # gossamer.proxy.dataplane.Dataplane


def new_dataplane(options: Mapping[str, Any], *, reuse_port: bool) -> DataplaneLike:
    """A Dataplane for these ProxyOptions (as a dict); `reuse_port` when several processes
    listen on the same ports (workers)."""
    from gossamer.proxy.dataplane import Dataplane, DataplaneOptions
    from gossamer.proxy.supervisor_options import ProxyOptions
    from gossamer.telemetry.istio_labels import WorkloadFacts
    from gossamer.telemetry.istio_metrics import attach

    dataplane = Dataplane(
        DataplaneOptions(
            ip=options["ip"],
            explicit=options["explicit"],
            outbound_port=options["outbound_port"],
            inbound_port=options["inbound_port"],
            wildcard_address=options["gateway_address"] if options.get("gateway") else None,
            reuse_port=reuse_port,
        )
    )
    node = ProxyOptions(**options).node_id
    attach(dataplane, WorkloadFacts.from_options(options), node)  # metrics (and peers) name us
    return dataplane


class ConfigReplica:
    """Rebuilds the supervisor's ProxyConfig from raw resources with the same SnapshotBuilder
    the XdsClient uses. One per worker for its lifetime, so resources whose bytes did not change
    keep their compiled value (and the Dataplane keeps those backends' state)."""

    def __init__(self) -> None:
        from gossamer.proxy.config.snapshot import SnapshotBuilder

        self._builder = SnapshotBuilder()

    def apply(self, raw: RawResources, versions: Mapping[str, str]) -> Any:
        """The ProxyConfig of these resources. ConfigRejected here means supervisor and worker
        disagree (they run the same code): a bug, reported by the caller."""
        from google.protobuf import any_pb2

        from gossamer.proxy.config.snapshot import TYPE_URLS

        config = self._builder.config
        for type_url in TYPE_URLS:  # clusters before endpoints, listeners before routes
            if type_url not in raw:
                continue
            packed = [any_pb2.Any(type_url=type_url, value=data) for _, data in raw[type_url]]
            config = self._builder.apply(type_url, versions.get(type_url, ""), packed)
        return config


async def apply_config(dataplane: DataplaneLike, config: Any) -> None:
    result = dataplane.apply(config)
    if asyncio.iscoroutine(result):
        await result


async def drain_dataplane(dataplane: DataplaneLike, grace: float) -> None:
    """Stop accepting, let in-flight requests finish for up to `grace` seconds, close."""
    await dataplane.drain(grace)


class LinkClosed(ConnectionError):
    """The other end of the supervisor/worker socket closed (or sent a truncated frame)."""


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any]:
    """The next message; LinkClosed on EOF, ValueError on a frame that is not a JSON object."""
    try:
        (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
        if size > MAX_FRAME:
            raise ValueError(f"frame of {size} bytes exceeds {MAX_FRAME}")
        body = await reader.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise LinkClosed("peer closed the link") from exc
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("frame is not a JSON object")
    return message


def frame_bytes(message: Mapping[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return _HEADER.pack(len(body)) + body


def config_message(
    generation: int, versions: Mapping[str, str], resources: RawResources
) -> dict[str, Any]:
    """The `config` frame: protos stay serialized (base64 in JSON), the worker parses them."""
    return {
        "op": "config",
        "generation": generation,
        "versions": dict(versions),
        "resources": {
            type_url: [[name, base64.b64encode(data).decode()] for name, data in items]
            for type_url, items in resources.items()
        },
    }


def identity_version(material: Any) -> str:
    """Which identity a worker holds: the certificate's serial and a digest of its trust bundle
    (a root rotation changes the bundle under the same certificate, and it must reach workers)."""
    digest = hashlib.sha256(material.trust_bundle_pem.encode()).hexdigest()[:12]
    return f"{material.serial:x}/{digest}"


def identity_message(material: Any) -> dict[str, Any]:
    """The `identity` frame: the workload's certificate chain, key and trust bundle (PEM). The
    link is a socketpair inside the pod, so the key never leaves the sidecar's processes."""
    return {
        "op": "identity",
        "cert_chain_pem": material.cert_chain_pem,
        "private_key_pem": material.private_key_pem,
        "trust_bundle_pem": material.trust_bundle_pem,
    }


def decode_resources(message: Mapping[str, Any]) -> dict[str, list[tuple[str, bytes]]]:
    return {
        str(type_url): [(str(name), base64.b64decode(data)) for name, data in items]
        for type_url, items in message["resources"].items()
    }


class Worker:
    """The worker's side of the link; owns its Dataplane. `serve()` returns the exit code."""

    def __init__(self, link: socket.socket, options: Mapping[str, Any]) -> None:
        self._link = link
        self._options = options
        self._dataplane: DataplaneLike | None = None
        self._replica = ConfigReplica()
        self._draining = False
        self._heap = FrozenHeap()

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, lambda: None)
        drain_now = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, drain_now.set)
        reader, writer = await asyncio.open_connection(sock=self._link)
        self._dataplane = new_dataplane(self._options, reuse_port=True)
        writer.write(frame_bytes({"op": "hello", "pid": os.getpid()}))
        await writer.drain()
        served = asyncio.create_task(self._serve_link(reader, writer))
        signalled = asyncio.create_task(drain_now.wait())
        try:
            await asyncio.wait({served, signalled}, return_when=asyncio.FIRST_COMPLETED)
            if served.done():
                return served.result()
            served.cancel()
            await self._drain(float(self._options.get("drain_timeout", 5.0)))
            return 0
        finally:
            for task in (served, signalled):
                task.cancel()
            await asyncio.gather(served, signalled, return_exceptions=True)
            writer.close()

    async def _serve_link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
        while True:
            try:
                message = await read_frame(reader)
            except LinkClosed:
                log.warning("worker %d: supervisor link closed; exiting", os.getpid())
                return 1
            op = message.get("op")
            if op == "config":
                reply = await self._apply(message)
            elif op == "identity":
                reply = self._set_identity(message)
            elif op == "stats":
                assert self._dataplane is not None
                reply = {
                    "op": "stats",
                    "id": message.get("id"),
                    **admin_stats.report_of(self._dataplane),
                }
            elif op == "drain":
                await self._drain(float(message.get("timeout", 5.0)))
                writer.write(frame_bytes({"op": "drained"}))
                await writer.drain()
                return 0
            else:
                raise RuntimeError(f"worker: unknown supervisor message {op!r}")
            writer.write(frame_bytes(reply))
            await writer.drain()

    async def _apply(self, message: Mapping[str, Any]) -> dict[str, Any]:
        generation = int(message["generation"])
        assert self._dataplane is not None
        try:
            config = self._replica.apply(decode_resources(message), message["versions"])
            await apply_config(self._dataplane, config)
        except Exception as exc:
            # Accepted by the supervisor, so this is a bug or a bind failure: report it, keep
            # the last good config (readiness stays false until a later push applies).
            log.exception("worker %d: applying generation %d failed", os.getpid(), generation)
            return {"op": "failed", "generation": generation, "error": f"{exc}"}
        self._heap.config_applied()
        return {"op": "applied", "generation": generation}

    def _set_identity(self, message: Mapping[str, Any]) -> dict[str, Any]:
        from gossamer.transport.tls import IdentityMaterial, IdentityMaterialInvalid

        assert self._dataplane is not None
        material = IdentityMaterial(
            message["cert_chain_pem"], message["private_key_pem"], message["trust_bundle_pem"]
        )
        try:
            self._dataplane.set_identity(material)
        except IdentityMaterialInvalid as exc:
            log.error("worker %d: identity refused: %s", os.getpid(), exc)
            return {"op": "identity_failed", "error": str(exc)}
        return {"op": "identity_applied", "serial": identity_version(material)}

    async def _drain(self, grace: float) -> None:
        if self._draining or self._dataplane is None:
            return
        self._draining = True
        await drain_dataplane(self._dataplane, grace)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gossamer.proxy.worker")
    parser.add_argument("--fd", type=int, required=True, help="the supervisor link (socket)")
    parser.add_argument("--options", required=True, help="ProxyOptions as JSON")
    args = parser.parse_args(argv)
    options = json.loads(args.options)
    logging.basicConfig(
        level=str(options.get("log_level", "info")).upper(),
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s worker[{os.getpid()}] %(name)s: %(message)s",
    )
    link = socket.socket(fileno=args.fd)
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    FrozenHeap.tune()
    return asyncio.run(Worker(link, options).serve())


if __name__ == "__main__":
    sys.exit(main())

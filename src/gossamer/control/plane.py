"""The control plane process: store → world → xDS push, plus the REST API and the registry.

Life of a config change: the API commits to the store; the store's watch delivers the change;
the plane re-parses the changed objects, builds a new World and calls `AdsServer.notify`; the
ADS server debounces, asks the SnapshotSource for each proxy's resources and sends what changed.
Resources are released in reverse order of start by `stop()`; `run()` owns them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from gossamer.control.ca import DEFAULT_TTL, Authority, CaError, ca_dir_of
from gossamer.control.ca.credentials import CredentialIssuer, load_or_create_secret
from gossamer.control.ca.ledger import IssuanceLedger
from gossamer.control.ca.live import LiveCa
from gossamer.control.ca.service import CertificateService
from gossamer.control.registry import Registry
from gossamer.control.snapshots import TranslatingSource
from gossamer.control.store import open_store
from gossamer.control.store.base import Change, Store, StoredObject
from gossamer.control.world import World, build_world
from gossamer.control.xds.server import AdsServer
from gossamer.spec.base import Resource, ResourceKey
from gossamer.spec.loader import Document
from gossamer.spec.parse import parse_document

log = logging.getLogger("gossamer.controlplane")


def default_home() -> Path:
    return Path(os.environ.get("GOSSAMER_HOME") or Path.home() / ".gossamer")


@dataclass
class PlaneConfig:
    """Where state lives and which addresses to bind (port 0 = any free port)."""

    home: Path = field(default_factory=default_home)
    store_url: str | None = None  # default: sqlite in home
    xds_host: str = "127.0.0.1"
    xds_port: int = 15010
    api_host: str = "127.0.0.1"
    api_port: int = 15080
    ca_host: str = "127.0.0.1"
    ca_port: int | None = None  # the certificate service (15012); None: not served
    workload_cert_ttl: timedelta = DEFAULT_TTL  # workload certificates' default lifetime
    debounce: float = 0.1
    registry_sweep: float = 1.0


def ensure_token(home: Path) -> str:
    """The API bearer token, created (mode 0600) on first start."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = home / "token"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


class ControlPlane:
    """Owns the store, the registry, the current World, the ADS server and the API server."""

    def __init__(self, config: PlaneConfig) -> None:
        self.config = config
        self.store: Store | None = None
        self.registry = Registry(on_change=self._registry_changed)
        self.objects: dict[ResourceKey, tuple[StoredObject, Resource]] = {}
        self.store_revision = 0
        self._generation = 0
        self.world: World = build_world(0, [])
        self.source = TranslatingSource(lambda: self.world)
        self.xds = AdsServer(self.source, debounce=config.debounce)
        self.token = ""
        self.live_ca: LiveCa | None = None
        self.ca_error = ""  # why the CA could not be opened (`gossamer check` reports it)
        self.credentials = CredentialIssuer()
        self.issuance = IssuanceLedger()
        self.ca_port = 0
        self._ca_service: CertificateService | None = None
        self.xds_port = 0
        self.api_port = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._api_runner: web.AppRunner | None = None
        self._rebuild_pending = False

    @property
    def api_app(self) -> web.Application | None:
        """The REST API's application while it serves (its router lists every route)."""
        return self._api_runner.app if self._api_runner is not None else None

    async def start(self) -> None:
        """Open the store, load every object, start serving xDS and the API."""
        cfg = self.config
        self.token = ensure_token(cfg.home)
        await self._open_ca()
        self.store = open_store(cfg.store_url or str(cfg.home / "store.db"))
        revision, objects = await self.store.list()
        for obj in objects:
            self._load(obj)
        self.store_revision = revision
        self._rebuild()
        self.xds_port = await self.xds.start(cfg.xds_host, cfg.xds_port)
        from gossamer.control.api.app import start_api

        self._api_runner, self.api_port = await start_api(self, cfg.api_host, cfg.api_port)
        self._tasks.append(asyncio.create_task(self._follow_store(revision), name="follow-store"))
        self._tasks.append(asyncio.create_task(self._sweep_registry(), name="sweep-registry"))
        if self.live_ca is not None:
            finisher = self.live_ca.finish_overlaps()
            self._tasks.append(asyncio.create_task(finisher, name="finish-root-overlaps"))
        log.info(
            "control plane ready: xDS %s:%d, API http://%s:%d, store revision %d",
            cfg.xds_host,
            self.xds_port,
            cfg.api_host,
            self.api_port,
            revision,
        )

    @property
    def ca(self) -> Authority | None:
        """The CA signing right now (it changes with each root rotation step)."""
        return self.live_ca.authority if self.live_ca is not None else None

    async def _open_ca(self) -> None:
        """The mesh CA (its root is created on first start). A broken plug-in CA does not stop
        the control plane: nothing is issued until it is fixed, and `gossamer check` says why."""
        ca_dir = ca_dir_of(self.config.home)
        try:
            self.live_ca = await asyncio.to_thread(
                LiveCa.open, ca_dir, self.config.workload_cert_ttl
            )
            self.credentials = CredentialIssuer(load_or_create_secret(ca_dir))
        except CaError as exc:
            self.live_ca, self.ca_error = None, str(exc)
            log.error("mesh CA unavailable: %s", exc)
            return
        if self.config.ca_port is not None:
            self._ca_service = CertificateService(self.live_ca, self.credentials, self.issuance)
            self.ca_port = await self._ca_service.start(self.config.ca_host, self.config.ca_port)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._api_runner is not None:
            await self._api_runner.cleanup()
        if self._ca_service is not None:
            await self._ca_service.stop()
        await self.xds.stop(0.5)
        if self.store is not None:
            await self.store.close()

    async def run(self) -> None:
        """Start, serve until cancelled, stop."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    # -- store → world -----------------------------------------------------------------------

    async def _follow_store(self, after: int) -> None:
        assert self.store is not None
        async for batch in self.store.watch(after):
            self._apply_changes(batch)

    def _apply_changes(self, batch: list[Change]) -> None:
        for change in batch:
            if change.op == "delete":
                self.objects.pop(change.key, None)
            else:
                self._load(change.object)
            self.store_revision = max(self.store_revision, change.revision)
        self._rebuild()

    def _load(self, obj: StoredObject) -> None:
        parsed = parse_document(Document(f"store:{obj.key}", 0, obj.manifest))
        if parsed.resource is None:
            # Stored config that no longer validates (rules changed on upgrade): keep serving
            # the rest and say which object was left out.
            log.error("stored %s no longer validates: %s", obj.key, parsed.findings)
            self.objects.pop(obj.key, None)
            return
        self.objects[obj.key] = (obj, parsed.resource)

    def _rebuild(self) -> None:
        ordered = sorted(self.objects.values(), key=lambda pair: pair[0].create_revision)
        self._generation += 1
        self.world = build_world(
            self._generation, [r for _, r in ordered], self.registry.workloads()
        )
        self.xds.notify(self._generation)

    def _registry_changed(self) -> None:
        # Coalesce bursts of registrations into one rebuild per loop turn.
        if self._rebuild_pending:
            return
        self._rebuild_pending = True

        def rebuild() -> None:
            self._rebuild_pending = False
            self._rebuild()

        try:
            asyncio.get_running_loop().call_soon(rebuild)
        except RuntimeError:
            rebuild()

    async def _sweep_registry(self) -> None:
        while True:
            await asyncio.sleep(self.config.registry_sweep)
            for gone in self.registry.expire():
                log.warning("workload %s missed its heartbeats: removed", gone.uid)

"""Fixtures for the config store tests: a fresh SQLite store per test and manifest builders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gossamer.control.store import SqliteStore, Write
from gossamer.spec.base import ResourceKey

Doc = Callable[..., Write]


def virtual_service(
    name: str,
    *,
    hosts: tuple[str, ...] = ("reviews",),
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    expected: int | None = None,
) -> Write:
    """A put of a small VirtualService, as `gossamer apply` would send it."""
    key = ResourceKey("networking.istio.io", "VirtualService", namespace, name)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels is not None:
        metadata["labels"] = labels
    manifest = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": metadata,
        "spec": {"hosts": list(hosts), "http": [{"route": [{"destination": {"host": hosts[0]}}]}]},
    }
    return Write(key, manifest, expected)


@pytest.fixture
def vs() -> Doc:
    return virtual_service


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore.open(tmp_path / "store.db")
    try:
        yield opened
    finally:
        await opened.close()

"""Fresh bootstrap credentials for running pods, as a kubelet refreshes projected tokens.

A pod's bootstrap credential lives an hour (control/ca/credentials.py); its sidecar renews its
certificate hours later by presenting the certificate itself, but a restarted sidecar, or one
whose certificate lapsed, needs the credential again. So every CREDENTIAL_REFRESH seconds each
pod with an identity gets a new credential and the current trust bundle in its secrets folder.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from gossamer.runtime.registration import (
    CREDENTIAL_FILE,
    PodRecord,
    RegistrationError,
    RegistryClient,
)

log = logging.getLogger(__name__)
CREDENTIAL_REFRESH = 20 * 60.0

Owners = Callable[[], Iterable[tuple[PodRecord, Path]]]
"""The pods (and gateway) that may hold an identity, each with its secrets folder."""


async def refresh_once(registry: RegistryClient, owners: Owners) -> None:
    """One round; a failure is logged and the next round tries again. Owners without a
    credential (no CA when they started, or not prepared yet) are left alone."""
    for record, secrets in list(owners()):
        if not (secrets / CREDENTIAL_FILE).exists():
            continue
        try:
            await registry.identity_files(record, secrets)
        except RegistrationError as exc:
            log.warning("refreshing the credential of %s: %s", record.name, exc)


async def refresh_forever(
    registry: RegistryClient, owners: Owners, every: float = CREDENTIAL_REFRESH
) -> None:
    while True:
        await asyncio.sleep(every)
        await refresh_once(registry, owners)

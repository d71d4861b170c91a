"""Opening the mesh CA from its directory: the operator's plug-in CA when present, else the
self-signed root (created on first use). Root rotation applies to the self-signed root only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gossamer.control.ca import selfsigned
from gossamer.control.ca.authority import Authority
from gossamer.control.ca.errors import RotationError
from gossamer.control.ca.plugin import load_plugin, plugin_present
from gossamer.identity.spiffe import DEFAULT_TRUST_DOMAIN

PLUGIN_DIR = "cacerts"


def ca_dir_of(home: Path) -> Path:
    """`$GOSSAMER_HOME/ca`."""
    return home / "ca"


def open_ca(
    ca_dir: Path,
    now: datetime | None = None,
    trust_domain: str = DEFAULT_TRUST_DOMAIN,
) -> Authority:
    """The CA to sign with. Raises CaFileError naming any unusable file; never falls back from a
    broken plug-in CA to a self-signed one (that would silently split the mesh's trust)."""
    now = datetime.now(UTC) if now is None else now
    if plugin_present(ca_dir / PLUGIN_DIR):
        return load_plugin(ca_dir / PLUGIN_DIR, now, trust_domain)
    return selfsigned.open_self_signed(ca_dir, now, trust_domain)


def _refuse_plugin(ca_dir: Path) -> None:
    if plugin_present(ca_dir / PLUGIN_DIR):
        raise RotationError(
            f"{ca_dir / PLUGIN_DIR}: a plug-in CA's roots are rotated by its operator "
            "(replace the files, with old and new roots in root-cert.pem during the overlap)"
        )


def begin_root_rotation(
    ca_dir: Path,
    overlap: timedelta,
    now: datetime | None = None,
    trust_domain: str = DEFAULT_TRUST_DOMAIN,
    promote: bool = False,
) -> None:
    """Make a new root and add it to the trust bundle; the old root keeps signing until
    `promote_root_rotation` (push the new bundle to every workload in between). With
    `promote=True` the new root signs at once: only safe when no workload can receive a
    new-root leaf before its peers have the new bundle."""
    _refuse_plugin(ca_dir)
    now = datetime.now(UTC) if now is None else now
    selfsigned.begin_rotation(ca_dir, overlap, now, trust_domain, promote)


def promote_root_rotation(ca_dir: Path, now: datetime | None = None) -> None:
    """Sign with the new root; trust the old one too until now + the overlap given at begin."""
    _refuse_plugin(ca_dir)
    now = datetime.now(UTC) if now is None else now
    selfsigned.promote_rotation(ca_dir, now)


def finish_root_rotation(
    ca_dir: Path, now: datetime | None = None, force: bool = False
) -> tuple[str, ...]:
    """Drop the old root(s); returns their serials (hex)."""
    _refuse_plugin(ca_dir)
    now = datetime.now(UTC) if now is None else now
    return selfsigned.finish_rotation(ca_dir, now, force)

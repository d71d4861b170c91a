"""The self-signed mesh root in `$GOSSAMER_HOME/ca`: created on first use, loaded after, rotated.

Layout (directory 0700):
  state.json               0644  RootsState: phase, signing serial, trusted serials, overlap end
  roots/<serial>-cert.pem  0644  one per trusted root
  roots/<serial>-key.pem   0600  its private key
  trust-bundle.pem         0644  every trusted root, derived from state.json after each change
  .lock                    0600  flock held while reading or changing the files above
`state.json` is written last (atomically), so it is the commit point: files a crash left behind
that it does not name are ignored.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from gossamer.control.ca.authority import Authority
from gossamer.control.ca.bundle import TrustBundle
from gossamer.control.ca.errors import CaFileError, RotationError
from gossamer.control.ca.pemfiles import (
    CERT_MODE,
    KEY_MODE,
    certs_to_pem,
    ensure_private_dir,
    key_to_pem,
    read_cert,
    read_signing_key,
    write_atomic,
)
from gossamer.control.ca.root import check_ca_cert, check_key_matches, new_root
from gossamer.control.ca.rotation import Phase, RootsState, Step, next_phase

STATE_FILE = "state.json"
BUNDLE_FILE = "trust-bundle.pem"
LOCK_FILE = ".lock"


def cert_path(ca_dir: Path, serial: str) -> Path:
    return ca_dir / "roots" / f"{serial}-cert.pem"


def key_path(ca_dir: Path, serial: str) -> Path:
    return ca_dir / "roots" / f"{serial}-key.pem"


def _make_root(ca_dir: Path, now: datetime, trust_domain: str) -> str:
    """Write a new root's key and cert; return its serial (hex). Not yet trusted."""
    ensure_private_dir(ca_dir / "roots")
    key, cert = new_root(now, f"{trust_domain} root {now:%Y-%m-%dT%H:%M:%SZ}")
    serial = f"{cert.serial_number:x}"
    write_atomic(key_path(ca_dir, serial), key_to_pem(key), KEY_MODE)
    write_atomic(cert_path(ca_dir, serial), certs_to_pem([cert]), CERT_MODE)
    return serial


def _commit(ca_dir: Path, state: RootsState, now: datetime) -> None:
    bundle = _load_bundle(ca_dir, state, now)
    write_atomic(ca_dir / STATE_FILE, state.to_json().encode(), CERT_MODE)
    write_atomic(ca_dir / BUNDLE_FILE, bundle.pem(), CERT_MODE)


def load_state(ca_dir: Path) -> RootsState | None:
    path = ca_dir / STATE_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CaFileError(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        return RootsState.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise CaFileError(path, f"malformed root state ({exc})") from exc


def _load_bundle(ca_dir: Path, state: RootsState, now: datetime) -> TrustBundle:
    roots = []
    for serial in state.trusted:
        path = cert_path(ca_dir, serial)
        root = read_cert(path)
        check_ca_cert(path, root, now)
        roots.append(root)
    return TrustBundle(tuple(roots))


@contextmanager
def _locked(ca_dir: Path) -> Iterator[None]:
    """Serialise changes to the directory between processes (two first starts make one root)."""
    ensure_private_dir(ca_dir)
    fd = os.open(ca_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, KEY_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def open_self_signed(ca_dir: Path, now: datetime, trust_domain: str) -> Authority:
    """Load the self-signed CA, creating the directory and a first root when there is none."""
    with _locked(ca_dir):
        state = load_state(ca_dir)
        if state is None:
            serial = _make_root(ca_dir, now, trust_domain)
            state = RootsState(phase=Phase.STEADY, signing=serial, trusted=(serial,))
            _commit(ca_dir, state, now)
        bundle = _load_bundle(ca_dir, state, now)
        bundle_file = ca_dir / BUNDLE_FILE
        if not bundle_file.exists() or bundle_file.read_bytes() != bundle.pem():
            write_atomic(bundle_file, bundle.pem(), CERT_MODE)  # a crash left it behind
    cert = bundle.roots[state.trusted.index(state.signing)]
    key = read_signing_key(key_path(ca_dir, state.signing))
    check_key_matches(key_path(ca_dir, state.signing), key, cert)
    return Authority(
        key=key,
        cert=cert,
        intermediates=(),
        bundle=bundle,
        plugged=False,
        trust_domain=trust_domain,
    )


def _current(ca_dir: Path) -> RootsState:
    state = load_state(ca_dir)
    if state is None:
        raise RotationError(f"{ca_dir}: no self-signed root to rotate (open the CA first)")
    return state


def begin_rotation(
    ca_dir: Path, overlap: timedelta, now: datetime, trust_domain: str, promote: bool
) -> None:
    """Make a new root and trust it; with `promote`, also sign with it from now on."""
    if overlap <= timedelta(0):
        raise RotationError(f"the overlap must be positive, got {overlap}")
    with _locked(ca_dir):
        state = _current(ca_dir)
        next_phase(state.phase, Step.BEGIN)  # refuse a step out of order before writing files
        serial = _make_root(ca_dir, now, trust_domain)
        begun = state.begin(serial, overlap)
        _commit(ca_dir, begun.promote(now) if promote else begun, now)


def promote_rotation(ca_dir: Path, now: datetime) -> None:
    """Sign with the new root from now on; the overlap deadline starts now."""
    with _locked(ca_dir):
        _commit(ca_dir, _current(ca_dir).promote(now), now)


def _finish(ca_dir: Path, state: RootsState, now: datetime, force: bool) -> tuple[str, ...]:
    finished = state.finish(now, force)
    dropped = state.dropped_by_finish()
    _commit(ca_dir, finished, now)
    for serial in dropped:
        key_path(ca_dir, serial).unlink(missing_ok=True)
        cert_path(ca_dir, serial).unlink(missing_ok=True)
    return dropped


def finish_rotation(ca_dir: Path, now: datetime, force: bool = False) -> tuple[str, ...]:
    """Drop the old roots from the bundle and delete their files; return their serials."""
    with _locked(ca_dir):
        return _finish(ca_dir, _current(ca_dir), now, force)

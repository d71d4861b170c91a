"""The CA's errors, named by who is at fault: the operator's files, the caller's CSR, or a peer."""

from __future__ import annotations

from pathlib import Path


class CaError(Exception):
    """Base of every error the CA raises on purpose."""


class CaFileError(CaError):
    """A CA file the operator (or an earlier run) left is unusable; the message names it and why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class CsrRejected(CaError):
    """A workload's CSR cannot be signed: wrong key type, bad signature, or another identity."""


class RotationError(CaError):
    """A root rotation step that the current phase does not allow (or a plug-in CA's roots)."""


class PeerRejected(CaError):
    """A peer's certificate chain does not verify against the trust bundle."""

"""The mesh CA: SPIFFE identities, workload certificates from CSRs, trust bundle, root rotation.

Contract for the code that wires it in (the CSR endpoint on 15012, SDS, `gossamer check`):

What is persisted where (`ca_dir_of(home)` = `$GOSSAMER_HOME/ca`, mode 0700):
- Plug-in CA (Istio's `cacerts` layout), used whenever any of these exist in `ca/cacerts/`:
  `ca-cert.pem` (signs leaves), `ca-key.pem`, `cert-chain.pem` (ca-cert first, then further
  intermediates, optionally the root), `root-cert.pem` (the trust bundle). Never written here.
- Otherwise the self-signed root, created on first `open_ca`: `state.json` (the rotation
  state, written last = commit point), `roots/<serial>-cert.pem` (0644) and
  `roots/<serial>-key.pem` (0600) per trusted root, `trust-bundle.pem` (0644, derived).
- Any unusable file raises `CaFileError` naming the file and the reason; a broken plug-in CA
  never falls back to the self-signed one.

How a workload gets a certificate (the private key never leaves it):
1. Workload: `key = new_key()`, `csr = make_csr(key, SpiffeId(ns, sa))`; send `csr` to the CA
   over the authenticated channel (15012, TLS with the root pinned, plus the pod's bootstrap
   credential bound to its namespace and service account).
2. Control plane: `authority = open_ca(ca_dir_of(home))` once at start (and again after a
   rotation step); per request `issued = authority.sign(csr, identity_from_credential, ttl)`.
   The identity MUST come from the credential, never from the CSR: a CSR naming another
   identity raises `CsrRejected` (the message names both; log it). Default TTL 24 h, max 90 d.
3. Answer with `issued.chain_pem()` (leaf + intermediates) and `issued.bundle_pem()` (roots).
4. Workload: present the chain and `key_pem(key)`; trust the bundle; check a peer with
   `verify_peer(chain, bundle, expect=...)` (returns its `SpiffeId`) or with `ssl` (see
   tests/control/ca/test_tls.py); renew at `renew_at(leaf)` (50 % of the lifetime, ±10 %).

Root rotation (self-signed only; see rotation.py): `begin_root_rotation(ca_dir, overlap)` adds
a new root to the bundle (the old one still signs); once every workload has the new bundle,
`promote_root_rotation(ca_dir)` makes the new root sign; once every leaf has renewed (overlap >
longest TTL), `finish_root_rotation(ca_dir)` drops the old root. On a running control plane this
is `live.LiveCa.rotate(step, overlap, force)` (API `POST /api/v1/ca/rotation`, `gossamer ca
rotate`): it applies the step, re-opens the CA and tells the 15012 service (service.py), which
re-issues its own certificate (serving.py); `LiveCa.finish_overlaps` finishes by itself when the
overlap ends. Workloads
learn the new bundle from 15012's `GET /v1/trust-bundle`, which their identity agents poll;
`ledger.IssuanceLedger` records what was issued to each proxy and which bundle it last fetched
(promote waits for all of them), and `metrics.ca_families` gives istiod's citadel_server_* gauges.
Health for `gossamer check`: `ca_health(authority, now)` for the CA's own certificates and
`cert_health(cert, now)` per workload leaf (expired = error, CA expiring < 30 days = warning).
"""

from gossamer.control.ca.authority import DEFAULT_TTL, MAX_TTL, Authority, IssuedCert
from gossamer.control.ca.bundle import TrustBundle
from gossamer.control.ca.cadir import (
    begin_root_rotation,
    ca_dir_of,
    finish_root_rotation,
    open_ca,
    promote_root_rotation,
)
from gossamer.control.ca.errors import (
    CaError,
    CaFileError,
    CsrRejected,
    PeerRejected,
    RotationError,
)
from gossamer.control.ca.renewal import CertHealth, Level, ca_health, cert_health
from gossamer.control.ca.verify import leaf_identity, verify_peer
from gossamer.identity.csr import key_pem, make_csr, new_key
from gossamer.identity.renewal import renew_at
from gossamer.identity.spiffe import DEFAULT_TRUST_DOMAIN, InvalidSpiffeId, SpiffeId

__all__ = [
    "DEFAULT_TRUST_DOMAIN",
    "DEFAULT_TTL",
    "MAX_TTL",
    "Authority",
    "CaError",
    "CaFileError",
    "CertHealth",
    "CsrRejected",
    "InvalidSpiffeId",
    "IssuedCert",
    "Level",
    "PeerRejected",
    "RotationError",
    "SpiffeId",
    "TrustBundle",
    "begin_root_rotation",
    "ca_dir_of",
    "ca_health",
    "cert_health",
    "finish_root_rotation",
    "key_pem",
    "leaf_identity",
    "make_csr",
    "new_key",
    "open_ca",
    "promote_root_rotation",
    "renew_at",
    "verify_peer",
]

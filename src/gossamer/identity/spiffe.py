"""SPIFFE identities of workloads: `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`.

Istio's form is the only one the mesh issues or accepts, so parsing is strict: a URI with any
other path, a query, a fragment, a port or user info is refused rather than guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_TRUST_DOMAIN = "cluster.local"

# Trust domain: lowercase letters, digits, dots, dashes, underscores (SPIFFE-ID §2.1).
_TRUST_DOMAIN = re.compile(r"^[a-z0-9._-]+$")
# Namespaces and service accounts are Kubernetes DNS-1123 names (service accounts may hold dots).
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SERVICE_ACCOUNT = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_PREFIX = "spiffe://"


class InvalidSpiffeId(ValueError):
    """A string that is not a workload SPIFFE ID of the form the mesh issues."""


@dataclass(frozen=True, slots=True)
class SpiffeId:
    """One workload identity; `str()` gives the URI that goes into a certificate's SAN."""

    namespace: str
    service_account: str
    trust_domain: str = DEFAULT_TRUST_DOMAIN

    def __post_init__(self) -> None:
        if not _TRUST_DOMAIN.match(self.trust_domain):
            raise InvalidSpiffeId(f"invalid trust domain {self.trust_domain!r}")
        if not _NAMESPACE.match(self.namespace):
            raise InvalidSpiffeId(f"invalid namespace {self.namespace!r}")
        if not _SERVICE_ACCOUNT.match(self.service_account):
            raise InvalidSpiffeId(f"invalid service account {self.service_account!r}")

    @classmethod
    def parse(cls, uri: str) -> SpiffeId:
        """Parse `spiffe://td/ns/<ns>/sa/<sa>`; raise InvalidSpiffeId naming what is wrong."""
        if not uri.startswith(_PREFIX):
            raise InvalidSpiffeId(f"{uri!r} is not a spiffe:// URI")
        rest = uri[len(_PREFIX) :]
        if any(c in rest for c in "?#@:%"):
            raise InvalidSpiffeId(f"{uri!r}: query, fragment, port, user info or escapes")
        trust_domain, _, path = rest.partition("/")
        parts = path.split("/")
        if len(parts) != 4 or parts[0] != "ns" or parts[2] != "sa":
            raise InvalidSpiffeId(f"{uri!r}: path must be /ns/<namespace>/sa/<service account>")
        return cls(namespace=parts[1], service_account=parts[3], trust_domain=trust_domain)

    @property
    def uri(self) -> str:
        return f"{_PREFIX}{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    def __str__(self) -> str:
        return self.uri

"""What the CA handed out: the last certificate issued to each proxy, and counts.

`gossamer proxy-config secret` shows a proxy's record (what the CA issued, not what the proxy
proves to hold), and the control plane's metrics show the counts (Istio's citadel_server_*).
Kept in memory, bounded. A restarted control plane learns its proxies again within a bundle
refresh (a minute), not a renewal (hours): each proxy presents its certificate when it fetches
the trust bundle, and a proxy the ledger does not know is recorded from that certificate. So
`ca status` and promote's wait for every proxy's bundle hold after a restart too.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime

from cryptography import x509

from gossamer.control.ca.authority import IssuedCert
from gossamer.transport.svid import spiffe_id

MAX_RECORDS = 10_000


@dataclass(frozen=True, slots=True)
class IssuedRecord:
    """One issuance: to whom (node id, SPIFFE id, peer address), what, and under which roots."""

    node_id: str
    identity: str
    serial: str
    not_before: datetime
    not_after: datetime
    issued_at: datetime
    peer: str
    issuer: str  # subject of the certificate that signed the leaf
    bundle: tuple[x509.Certificate, ...]
    bundle_fetched_at: datetime | None = None  # the proxy's latest trust-bundle refresh
    learned: bool = False  # from the certificate the proxy presented, not from an issuance

    @property
    def source(self) -> str:
        if self.learned:
            return "presented by the proxy (issued before this control plane started)"
        return "issued by the CA"

    def as_json(self) -> dict[str, object]:
        return {
            "nodeId": self.node_id,
            "identity": self.identity,
            "serial": self.serial,
            "notBefore": self.not_before.isoformat(),
            "notAfter": self.not_after.isoformat(),
            "issuedAt": None if self.learned else self.issued_at.isoformat(),
            "peer": self.peer,
            "issuer": self.issuer,
            "bundleFetchedAt": self.bundle_fetched_at.isoformat()
            if self.bundle_fetched_at
            else None,
            "trustBundle": [
                {
                    "serial": f"{root.serial_number:x}",
                    "subject": root.subject.rfc4514_string(),
                    "notBefore": root.not_valid_before_utc.isoformat(),
                    "notAfter": root.not_valid_after_utc.isoformat(),
                }
                for root in self.bundle
            ],
        }


class IssuanceLedger:
    """Last issuance per node id (insertion-ordered, oldest dropped past MAX_RECORDS), and the
    CSR/issuance/refusal counters."""

    def __init__(self, limit: int = MAX_RECORDS) -> None:
        self._records: OrderedDict[str, IssuedRecord] = OrderedDict()
        self._limit = limit
        self.counts: Counter[str] = Counter()

    def record(self, node_id: str, issued: IssuedCert, peer: str, now: datetime) -> None:
        self._put(_record_of(node_id, issued.leaf, peer, now, issued.bundle.roots))

    def bundle_fetched(
        self,
        node_id: str,
        bundle: tuple[x509.Certificate, ...],
        now: datetime,
        presented: x509.Certificate | None = None,
        peer: str = "",
    ) -> None:
        """A proxy refreshed its trust bundle: the record shows the roots it now has. A proxy
        unknown here (or holding a newer leaf than recorded, from before a restart) is recorded
        from the certificate it `presented`."""
        record = self._records.get(node_id)
        if presented is not None and (
            record is None or record.not_before < presented.not_valid_before_utc
        ):
            learned = _record_of(node_id, presented, peer, now, bundle)
            self._put(replace(learned, learned=True, bundle_fetched_at=now))
        elif record is not None:
            self._records[node_id] = replace(record, bundle=bundle, bundle_fetched_at=now)

    def _put(self, record: IssuedRecord) -> None:
        self._records.pop(record.node_id, None)
        self._records[record.node_id] = record
        while len(self._records) > self._limit:
            self._records.popitem(last=False)

    def find(self, wanted: str) -> list[IssuedRecord]:
        """By exact node id, else every record whose node id contains `wanted` (a pod or
        workload name)."""
        exact = self._records.get(wanted)
        if exact is not None:
            return [exact]
        return [r for node, r in self._records.items() if wanted in node]

    def lagging(self, trusted: tuple[x509.Certificate, ...], now: datetime) -> list[IssuedRecord]:
        """Proxies holding a valid certificate whose latest bundle lacks one of `trusted`: a
        root rotation must not promote before they have it (their peers' new leaves would not
        verify)."""
        return [
            record
            for record in self._records.values()
            if record.not_after > now and not set(trusted) <= set(record.bundle)
        ]

    def records(self) -> list[IssuedRecord]:
        return list(self._records.values())


def _record_of(
    node_id: str,
    leaf: x509.Certificate,
    peer: str,
    now: datetime,
    bundle: tuple[x509.Certificate, ...],
) -> IssuedRecord:
    return IssuedRecord(
        node_id=node_id,
        identity=spiffe_id(leaf) or "",
        serial=f"{leaf.serial_number:x}",
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        issued_at=now,
        peer=peer,
        issuer=leaf.issuer.rfc4514_string(),
        bundle=bundle,
    )

"""Consistent-hash balancers: RING_HASH (ketama-style ring) and MAGLEV (lookup table).

Both are built once per eligible host set (milliseconds) and answer a pick with one bisect or one
index. The hash of a ring point or a Maglev permutation is blake2b-64 of the host's address (Envoy
uses xxHash; any well-mixed 64-bit hash gives the same properties, not the same placement).
A pick without a hash key (no hash policy matched) uses a random key, as Envoy does.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Collection, Sequence
from hashlib import blake2b

from gossamer.proxy.upstream.balancer import Random
from gossamer.proxy.upstream.endpoints import Endpoint
from gossamer.proxy.upstream.hosts import HostState

MASK64 = (1 << 64) - 1


def hash64(text: str, seed: int = 0) -> int:
    digest = blake2b(text.encode(), digest_size=8, salt=seed.to_bytes(16, "little")).digest()
    return int.from_bytes(digest, "little")


def _normalized(weights: Sequence[float]) -> list[float]:
    total = float(sum(weights))
    return [w / total for w in weights]


def _other_exists(hosts: Sequence[HostState], avoid: Collection[Endpoint]) -> bool:
    return any(h.endpoint not in avoid for h in hosts)


class RingHash:
    """Envoy's ring: each host gets entries in proportion to its normalized weight, scaled so the
    lightest host has at least minimum_ring_size x its share (capped at maximum_ring_size)."""

    __slots__ = ("_hashes", "_hosts", "_owners", "_random")

    def __init__(
        self,
        hosts: Sequence[HostState],
        weights: Sequence[float],
        random: Random,
        minimum_ring_size: int = 1024,
        maximum_ring_size: int = 8 * 1024 * 1024,
    ):
        self._hosts = list(hosts)
        self._random = random
        points: list[tuple[int, int]] = []
        if self._hosts:
            shares = _normalized(weights)
            smallest = min(shares)
            scale = min(
                math.ceil(smallest * minimum_ring_size) / smallest, float(maximum_ring_size)
            )
            made = 0.0
            target = 0.0
            for index, (host, share) in enumerate(zip(self._hosts, shares, strict=True)):
                target += scale * share
                name = host.endpoint.address
                i = 0
                while made < target:
                    points.append((hash64(f"{name}_{i}"), index))
                    i += 1
                    made += 1
            points.sort()
        self._hashes = [h for h, _ in points]
        self._owners = [self._hosts[i] for _, i in points]

    @property
    def size(self) -> int:
        return len(self._hashes)

    def pick(self, hash_key: int | None, avoid: Collection[Endpoint]) -> HostState | None:
        owners = self._owners
        if not owners:
            return None
        key = int(self._random() * MASK64) if hash_key is None else hash_key & MASK64
        at = bisect_left(self._hashes, key)
        if at == len(owners):
            at = 0
        host = owners[at]
        if avoid and host.endpoint in avoid and _other_exists(self._hosts, avoid):
            # Envoy's retry with a host predicate walks the ring to the next entry.
            size = len(owners)
            for step in range(1, size):
                host = owners[(at + step) % size]
                if host.endpoint not in avoid:
                    break
        return host


class Maglev:
    """Maglev lookup table (prime size, default 65537) filled by per-host permutations; weighted as
    Envoy: in each round a host claims a slot only while its claims stay within its weight share."""

    __slots__ = ("_hosts", "_random", "_size", "_table")

    def __init__(
        self,
        hosts: Sequence[HostState],
        weights: Sequence[float],
        random: Random,
        table_size: int = 65537,
    ):
        self._hosts = list(hosts)
        self._random = random
        self._size = table_size
        self._table: list[HostState] = []
        if self._hosts:
            self._table = [self._hosts[i] for i in self._fill(weights, table_size)]

    def _fill(self, weights: Sequence[float], size: int) -> list[int]:
        """Host index per slot. Each host walks its permutation offset, offset+skip, ... (mod
        size) and takes the first free slot when its turn comes (the hot loop of a rebuild:
        tens of milliseconds for 65537 slots, so the walk is kept to additions)."""
        n = len(self._hosts)
        names = [h.endpoint.address for h in self._hosts]
        positions = [hash64(name, 0) % size for name in names]
        skips = [hash64(name, 1) % (size - 1) + 1 for name in names]
        shares = _normalized(weights)
        top = max(shares)
        claimed = [0.0] * n  # in units of the top share
        table = [-1] * size
        filled = 0
        rounds = 0
        while True:
            rounds += 1
            for i in range(n):
                if rounds * shares[i] < claimed[i]:
                    continue
                claimed[i] += top
                slot, skip = positions[i], skips[i]
                while table[slot] >= 0:
                    slot += skip
                    if slot >= size:
                        slot -= size
                table[slot] = i
                slot += skip
                positions[i] = slot - size if slot >= size else slot
                filled += 1
                if filled == size:
                    return table

    def pick(self, hash_key: int | None, avoid: Collection[Endpoint]) -> HostState | None:
        table = self._table
        if not table:
            return None
        key = int(self._random() * MASK64) if hash_key is None else hash_key & MASK64
        at = key % self._size
        host = table[at]
        if avoid and host.endpoint in avoid and _other_exists(self._hosts, avoid):
            for step in range(1, self._size):
                host = table[(at + step) % self._size]
                if host.endpoint not in avoid:
                    break
        return host

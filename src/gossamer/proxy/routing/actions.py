"""What a matched route does: forward to a cluster, redirect, or answer directly."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from gossamer.proxy.routing.hashing import HashPolicy
from gossamer.proxy.routing.mutation import HeaderMutation
from gossamer.proxy.routing.request import RequestView
from gossamer.proxy.routing.retry import RetryPolicy
from gossamer.proxy.routing.rewrite import PathRewrite

DEFAULT_TIMEOUT = 15.0  # Envoy's route timeout when none is configured


@dataclass(frozen=True, slots=True)
class Mirror:
    """Shadow `fraction` (0..1) of requests to `cluster`; Envoy appends `-shadow` to the host
    of the copy unless `host_suffix` is off."""

    cluster: str
    fraction: float
    host_suffix: bool = True


@dataclass(frozen=True, slots=True)
class WeightedTarget:
    """One weighted cluster, with the header mutations and host rewrite applied when picked."""

    name: str
    weight: int
    request: HeaderMutation
    response: HeaderMutation
    host_rewrite: bytes | None


@dataclass(frozen=True, slots=True)
class Forward:
    """Proxy to `cluster`, or to one of `weighted` picked by weight; times in seconds."""

    cluster: str | None
    weighted: tuple[WeightedTarget, ...]
    total_weight: int
    timeout: float | None
    retry: RetryPolicy | None
    mirrors: tuple[Mirror, ...]
    hash_policy: HashPolicy | None
    path_rewrite: PathRewrite | None
    host_rewrite: bytes | None
    upgrades: frozenset[bytes]
    upgrades_disabled: frozenset[bytes]

    def pick_cluster(self, rand: float) -> str:
        """The cluster for this request; `rand` uniform in [0, 1) (Envoy: random % total)."""
        if self.cluster is not None:
            return self.cluster
        point = min(int(rand * self.total_weight), self.total_weight - 1)
        for target in self.weighted:
            point -= target.weight
            if point < 0:
                return target.name
        return self.weighted[-1].name  # unreachable: the weights sum to total_weight

    def target(self, cluster: str) -> WeightedTarget | None:
        """The weighted cluster entry named `cluster` (for its header mutations)."""
        for target in self.weighted:
            if target.name == cluster:
                return target
        return None

    def hash_key(self, head: RequestView, source_ip: str) -> int | None:
        policy = self.hash_policy
        return None if policy is None else policy.key(head, source_ip)

    def rewrite(self, head: RequestView) -> None:
        """Path (prefix_rewrite / regex_rewrite) and host (host_rewrite_literal) rewrites."""
        if self.path_rewrite is not None:
            head.target = self.path_rewrite.apply(head.target)
        if self.host_rewrite is not None:
            head.headers.set(b"host", self.host_rewrite)

    def allows_upgrade(self, kind: bytes, listener_upgrades: Collection[bytes]) -> bool:
        """Route-level upgrade_configs override the listener's (HCM) list, case-insensitively;
        `listener_upgrades` holds lowercase types."""
        kind = kind.lower()
        if kind in self.upgrades:
            return True
        if kind in self.upgrades_disabled:
            return False
        return kind in listener_upgrades


@dataclass(frozen=True, slots=True)
class Redirect:
    """A redirect answered by the proxy (Envoy's `Http::Utility::newUri`)."""

    status: int
    scheme: bytes | None
    host: bytes | None
    port: bytes  # b":8443", or b"" to keep the request's
    path: bytes | None
    path_has_query: bool
    path_rewrite: PathRewrite | None
    strip_query: bool

    def response(self, head: RequestView, authority: bytes) -> tuple[int, bytes]:
        """(status, Location)."""
        request_scheme = b"http"
        scheme = self.scheme or request_scheme
        host = self.host
        if host is None:
            forwarded = head.headers.get(b"x-forwarded-proto") or request_scheme
            host = request_host(authority, scheme, self.port, forwarded)
        target = head.target
        if self.path is not None:
            query = target.find(b"?")
            keep_query = not self.path_has_query and query >= 0
            path = self.path + target[query:] if keep_query else self.path
        elif self.path_rewrite is not None:
            path = self.path_rewrite.apply(target)
        else:
            path = target
        if not path.startswith(b"/"):
            path = b"/" + path
        if self.strip_query and not self.path_has_query:
            query = path.find(b"?")
            if query >= 0:
                path = path[:query]
        return self.status, b"%s://%s%s%s" % (scheme, host, self.port, path)


def request_host(authority: bytes, scheme: bytes, port: bytes, forwarded: bytes) -> bytes:
    """The request's host for the Location: its port is dropped when the redirect sets a port,
    or when the scheme changes and the port was the old scheme's default."""
    if authority.startswith(b"["):
        end = authority.rfind(b"]:")
        end = end + 1 if end >= 0 else -1
    else:
        end = authority.rfind(b":")
    if end < 0:
        return authority
    request_port = authority[end:]
    remove = bool(port)
    if scheme != forwarded:
        remove |= forwarded.lower() == b"https" and request_port == b":443"
        remove |= forwarded.lower() == b"http" and request_port == b":80"
    return authority[:end] if remove else authority


@dataclass(frozen=True, slots=True)
class DirectResponse:
    """Answer `status` with `body` without going upstream."""

    status: int
    body: bytes

    def location(self, head: RequestView, authority: bytes) -> bytes | None:
        """Envoy gives a 201 or 3xx direct response a Location: the request's own URL."""
        if self.status != 201 and not 300 <= self.status < 400:
            return None
        return _SAME_URL.response(head, authority)[1]


Action = Forward | Redirect | DirectResponse


_SAME_URL = Redirect(301, None, None, b"", None, False, None, False)

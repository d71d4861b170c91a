"""Which kinds Gossamer understands, under which apiVersions, and which it knowingly skips."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gossamer.spec.base import Resource


@dataclass(frozen=True, slots=True)
class KindInfo:
    """One served kind: its API group and versions, its model, and the names the CLI accepts."""

    group: str
    kind: str
    versions: tuple[str, ...]
    model: type[Resource]
    plural: str
    short_names: tuple[str, ...] = ()

    def api_versions(self) -> list[str]:
        return [f"{self.group}/{v}" if self.group else v for v in self.versions]


KINDS: dict[tuple[str, str], KindInfo] = {}

# Kinds that real manifests carry beside mesh config (Bookinfo's Deployments, Istio's EnvoyFilter):
# recognised, not served. Reading them is not an error; applying them stores nothing.
SKIPPED_GROUPS = {"", "apps", "batch", "networking.k8s.io", "rbac.authorization.k8s.io"}


def served(
    group: str, versions: tuple[str, ...], plural: str, *short_names: str
) -> Callable[[type[Resource]], type[Resource]]:
    """Class decorator: register a Resource subclass as the model of its kind."""

    def register(model: type[Resource]) -> type[Resource]:
        kind = model.__name__
        model.group = group
        model.versions = versions
        KINDS[(group, kind)] = KindInfo(group, kind, versions, model, plural, short_names)
        return model

    return register


def split_api_version(api_version: str) -> tuple[str, str]:
    """`networking.istio.io/v1` → (`networking.istio.io`, `v1`); core `v1` → (``, `v1`)."""
    group, _, version = api_version.rpartition("/")
    return group, version


def lookup_name(name: str) -> list[KindInfo]:
    """Kinds a CLI word names (`vs`, `virtualservices`, `VirtualService`), most likely first."""
    word = name.lower()
    found = [
        info
        for info in KINDS.values()
        if word in (info.kind.lower(), info.plural, *info.short_names)
        or word == f"{info.plural}.{info.group}"
    ]
    # Istio's and Kubernetes' kinds before look-alikes from other groups (Linkerd's HTTPRoute).
    preference = ("networking.istio.io", "security.istio.io", "", "gossamer.dev")
    return sorted(found, key=lambda i: preference.index(i.group) if i.group in preference else 9)

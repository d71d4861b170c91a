"""Parity scenarios: one YAML file per feature, loaded into frozen values.

A scenario file has `summary` (what feature, which rule of Istio/Envoy), `config` (a list of
Istio documents applied on top of the base world in `world.py`), optional `probe` (the request
that shows the config is in force; default: the first call), optional `known_failures`
({"envoy" | "gossamer" | "agree": why}, run as strict xfail), optional `skip` (why the scenario
cannot run yet: it names the missing piece), and `calls`, each with its own
`expect` block (see `expectations.py` for the keys). Every scenario has a VirtualService (for a
DestinationRule-only feature, a plain route to the service): the harness tags every HTTP route
of every VirtualService in `config` with the response header `x-parity-config: <tag>`, so a data
plane is measured only once a reply shows that tag.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.parity.world import GUARDED, GUARDED_OTHER, NS, PLANE_KINDS, other_kind

SCENARIO_DIR = Path(__file__).with_name("scenarios")
TAG_HEADER = "x-parity-config"
DENY_TAG_HEADER = "x-parity-deny"
PLANE = "{plane}"
OTHER = "{other}"
FAIL_KEY_MODES = ("", "unique", "fixed")
# What the planes must agree on per call (see expectations.summary); a call may narrow it.
COMPARED = ("status", "backends", "local_bodies", "headers", "upstream_headers")


class ScenarioError(ValueError):
    """A scenario file that the harness cannot run (unknown key, missing field)."""


@dataclass(frozen=True, slots=True)
class Call:
    """`count` requests sent over `concurrency` keep-alive connections to one service."""

    name: str
    service: str
    path: str = "/"
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    count: int = 1
    concurrency: int = 1
    fail_key: str = ""  # "unique": a fresh x-fail-key per request; "fixed": one per call
    vary: Mapping[str, int] = field(default_factory=dict)  # header -> request i sends "v<i % n>"
    authority: str = ""  # Host header override; default <service fqdn>:<service port>
    expect: Mapping[str, Any] = field(default_factory=dict)
    compare: tuple[str, ...] = COMPARED
    within: float = 30.0
    # True: straight to the plane's server-side sidecar (service `guarded`), as a client
    # without a sidecar would (plaintext, no identity); else through the client-side sidecar
    direct: bool = False


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    summary: str
    config: tuple[Mapping[str, Any], ...]
    probe: Call
    calls: tuple[Call, ...]
    # plane -> why that plane is known not to meet the expectation yet (strict xfail: the test
    # fails once it does, so the note is removed with the cause)
    known_failures: Mapping[str, str] = field(default_factory=dict)
    skip: str = ""  # non-empty: not run, and this says which missing piece it waits for

    @property
    def guarded(self) -> bool:
        """Whether calls go to the server-side sidecars (whose own config must be in force)."""
        return any(c.service in (GUARDED, GUARDED_OTHER) for c in (self.probe, *self.calls))

    @property
    def crosses(self) -> bool:
        """Whether calls go to the other plane's server (which must be running too)."""
        return any(c.service == GUARDED_OTHER for c in (self.probe, *self.calls))

    def tagged_config(self, tag: str) -> str:
        """The config as YAML with every VirtualService HTTP route answering `TAG_HEADER: tag`
        (merged into any response `set` the route already has). A guarded scenario also gets
        a DENY policy for requests carrying `DENY_TAG_HEADER: tag` on the servers, which shows
        when a server's config is in force (other requests never carry that header)."""
        docs = self._expanded()
        if self.guarded:
            docs.append(tag_deny_policy(tag))
        for doc in docs:
            if doc.get("kind") != "VirtualService":
                continue
            for route in doc.get("spec", {}).get("http", []):
                response = route.setdefault("headers", {}).setdefault("response", {})
                response.setdefault("set", {})[TAG_HEADER] = tag
        return yaml.safe_dump_all(docs, sort_keys=False)

    def untagged_config(self) -> str:
        docs = self._expanded()
        if self.guarded:
            docs.append(tag_deny_policy(""))
        return yaml.safe_dump_all(docs, sort_keys=False)

    def _expanded(self) -> list[dict[str, Any]]:
        """Documents naming `{plane}` (or `{other}`) once per plane with the plane's name (or
        the other plane's): guarded-{plane} is each plane's own server, guarded-{other} the
        other kind's; the others as they are."""
        out: list[dict[str, Any]] = []
        for doc in self.config:
            text = yaml.safe_dump(dict(doc), sort_keys=False)
            if PLANE in text or OTHER in text:
                out += [
                    yaml.safe_load(text.replace(PLANE, p).replace(OTHER, other_kind(p)))
                    for p in PLANE_KINDS
                ]
            else:
                out.append(copy.deepcopy(dict(doc)))
        return out


def tag_deny_policy(tag: str) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "parity-tag", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": GUARDED}},
            "action": "DENY",
            "rules": [{"when": [{"key": f"request.headers[{DENY_TAG_HEADER}]", "values": [tag]}]}],
        },
    }


_CALL_KEYS = {f for f in Call.__dataclass_fields__}


def _call(raw: Mapping[str, Any], where: str, index: int) -> Call:
    unknown = set(raw) - _CALL_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown call keys {sorted(unknown)}")
    if "service" not in raw:
        raise ScenarioError(f"{where}: a call needs `service`")
    fields: dict[str, Any] = dict(raw)
    fields.setdefault("name", f"call{index}")
    fields["headers"] = {str(k).lower(): str(v) for k, v in (raw.get("headers") or {}).items()}
    fields["vary"] = {str(k).lower(): int(v) for k, v in (raw.get("vary") or {}).items()}
    if "compare" in fields:
        fields["compare"] = tuple(fields["compare"])
    if fields.get("fail_key", "") not in FAIL_KEY_MODES:
        raise ScenarioError(f"{where}: fail_key must be one of {FAIL_KEY_MODES}")
    return Call(**fields)


def load(path: Path) -> Scenario:
    raw = yaml.safe_load(path.read_text())
    where = path.name
    unknown = set(raw) - {"summary", "config", "probe", "calls", "known_failures", "skip"}
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {sorted(unknown)}")
    calls = tuple(_call(c, where, i) for i, c in enumerate(raw.get("calls") or ()))
    if not calls:
        raise ScenarioError(f"{where}: no calls")
    config = tuple(raw.get("config") or ())
    if not any(d.get("kind") == "VirtualService" for d in config):
        raise ScenarioError(f"{where}: needs a VirtualService (its tag shows the config applied)")
    probe_raw = raw.get("probe")
    if probe_raw is None:
        first = calls[0]
        probe = Call(
            "probe", first.service, first.path, first.method, first.headers,
            fail_key="unique" if first.fail_key else "", authority=first.authority,
        )  # fmt: skip
    else:
        probe = _call({"name": "probe", **probe_raw}, where, 0)
    return Scenario(
        name=path.stem,
        summary=str(raw.get("summary", "")),
        config=config,
        probe=probe,
        calls=calls,
        known_failures={str(k): str(v) for k, v in (raw.get("known_failures") or {}).items()},
        skip=str(raw.get("skip") or ""),
    )


def changes_clusters(scenario: Scenario) -> bool:
    return any(d.get("kind") == "DestinationRule" for d in scenario.config)


def load_all(directory: Path = SCENARIO_DIR) -> list[Scenario]:
    """Every scenario, by name, except that those with a DestinationRule come last: entering or
    leaving one changes clusters, which Envoy must re-warm, so they are kept together. (Today
    each re-warm costs Envoy's 15 s initial fetch timeout: the control plane does not re-send
    the unchanged ClusterLoadAssignment after a cluster update; Istio does.)"""
    scenarios = [load(p) for p in sorted(directory.glob("*.yaml"))]
    return sorted(scenarios, key=changes_clusters)

"""From a Workload to what its pod runs: environment, command line, readiness probe, record."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from gossamer.runtime.podspec import (
    Placement,
    app_environment,
    app_launch,
    app_probers,
    pod_name,
    pod_record,
    readiness,
)
from gossamer.runtime.probes import AlwaysReady, HttpProbe, ProbeSchedule, TcpProbe
from gossamer.spec.parse import parse_text
from gossamer.spec.workload import Workload

NETNS = Placement(ip="10.231.0.7", netns="gsm-reviews-0")
EXPLICIT = Placement(ip="127.231.0.7", netns=None)


def workload(spec: str, name: str = "reviews") -> Workload:
    text = f"""
apiVersion: gossamer.dev/v1alpha1
kind: Workload
metadata: {{name: {name}, namespace: shop, labels: {{app: reviews, version: v1}}}}
spec:
{spec}
"""
    (parsed,) = parse_text(text)
    assert isinstance(parsed.resource, Workload), parsed.findings
    return parsed.resource


REVIEWS = workload(
    """
  command: [python, -m, http.server, --bind, "$(POD_IP)", "9080"]
  serviceAccount: bookinfo-reviews
  ports: [{containerPort: 9080, name: http}, {containerPort: 9443}]
  env:
  - {name: ADDR, value: "$(POD_IP):9080"}
  - {name: LITERAL, value: "$$(POD_IP)"}
  - {name: INHERITED, value: "$(HOME)"}
"""
)


def test_every_app_gets_the_downward_variables_and_its_env_expanded() -> None:
    env = app_environment(REVIEWS.spec, "reviews-0", "shop", NETNS)
    assert {k: env[k] for k in ("POD_NAME", "POD_NAMESPACE", "POD_IP", "SERVICE_ACCOUNT")} == {
        "POD_NAME": "reviews-0",
        "POD_NAMESPACE": "shop",
        "POD_IP": "10.231.0.7",
        "SERVICE_ACCOUNT": "bookinfo-reviews",
    }
    assert env["HOSTNAME"] == "reviews-0"
    assert env["ADDR"] == "10.231.0.7:9080"
    assert env["LITERAL"] == "$(POD_IP)"


def test_only_declared_variables_expand_not_the_runtimes_environment() -> None:
    """Kubernetes expands names the container declares; $(HOME) is not one of them."""
    assert "HOME" in os.environ
    env = app_environment(REVIEWS.spec, "reviews-0", "shop", NETNS)
    assert env["INHERITED"] == "$(HOME)"
    spec = workload('  command: [echo, "$(HOME)", "$(POD_NAME)"]', name="echo")
    assert app_launch(spec, 0, NETNS).argv[-2:] == ["$(HOME)", "echo-0"]


def test_explicit_mode_points_http_clients_at_the_sidecar() -> None:
    env = app_environment(REVIEWS.spec, "reviews-0", "shop", EXPLICIT)
    assert env["HTTP_PROXY"] == env["http_proxy"] == "http://127.231.0.7:15001"
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost,127.0.0.1"


def test_netns_mode_drops_inherited_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://corporate:3128")
    monkeypatch.setenv("https_proxy", "http://corporate:3128")
    env = app_environment(REVIEWS.spec, "reviews-0", "shop", NETNS)
    assert not {"HTTP_PROXY", "http_proxy", "https_proxy", "NO_PROXY"} & env.keys()
    explicit = app_environment(REVIEWS.spec, "reviews-0", "shop", EXPLICIT)
    assert explicit["HTTP_PROXY"] == "http://127.231.0.7:15001"  # the sidecar, not ours


def test_path_starts_with_this_interpreters_bin_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    env = app_environment(REVIEWS.spec, "reviews-0", "shop", NETNS)
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)


def test_the_command_expands_pod_ip_and_its_program_becomes_a_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    launch = app_launch(REVIEWS, 0, EXPLICIT)
    python = str(Path(sys.executable).parent / "python")
    assert launch.argv[-6:] == [python, "-m", "http.server", "--bind", "127.231.0.7", "9080"]
    assert launch.env["POD_NAME"] == "reviews-0" and launch.restart


def test_netns_mode_runs_the_command_inside_the_pods_namespace() -> None:
    launch = app_launch(REVIEWS, 1, NETNS, restart=False)
    assert launch.argv[:4] == ["ip", "netns", "exec", "gsm-reviews-0"]
    assert launch.argv[-2:] == ["10.231.0.7", "9080"]
    assert launch.env["POD_NAME"] == "reviews-1" and not launch.restart


def test_an_unknown_program_is_left_for_the_launcher_to_report() -> None:
    spec = workload("  command: [no-such-program-gsm, x]", name="odd")
    assert app_launch(spec, 0, NETNS).argv[-2:] == ["no-such-program-gsm", "x"]


def test_http_readiness_probe_resolves_a_named_port_and_keeps_the_schedule() -> None:
    spec = workload(
        """
  command: [x]
  ports: [{containerPort: 9080, name: http}]
  readinessProbe:
    httpGet: {path: /health, port: http}
    initialDelaySeconds: 2
    periodSeconds: 3
    timeoutSeconds: 4
    successThreshold: 2
    failureThreshold: 5
"""
    ).spec
    assert readiness(spec, "10.231.0.7") == (
        HttpProbe("10.231.0.7", 9080, "/health", timeout=4),
        ProbeSchedule(initial_delay=2, period=3, success_threshold=2, failure_threshold=5),
    )


def test_tcp_readiness_probe_uses_kubernetes_defaults() -> None:
    spec = workload("  command: [x]\n  readinessProbe: {tcpSocket: {port: 9080}}").spec
    assert readiness(spec, "10.231.0.7") == (TcpProbe("10.231.0.7", 9080, 1), ProbeSchedule())


def test_no_probe_and_ports_means_a_tcp_connect_to_the_first_port() -> None:
    probe, schedule = readiness(REVIEWS.spec, "10.231.0.7")
    assert probe == TcpProbe("10.231.0.7", 9080)
    assert schedule.period == 2.0


def test_no_probe_and_no_ports_is_ready_once_started() -> None:
    spec = workload("  command: [x]").spec
    assert readiness(spec, "10.231.0.7") == (AlwaysReady(), ProbeSchedule())


def test_in_a_pod_network_the_probe_goes_to_the_sidecar_which_runs_the_real_one() -> None:
    """Istio's probe rewrite: the prober asks the sidecar's status port; the sidecar gets the
    Workload's probe as ISTIO_KUBE_APP_PROBERS JSON (the schedule stays the Workload's)."""
    http = workload(
        "  command: [x]\n  ports: [{containerPort: 9080, name: http}]\n"
        "  readinessProbe: {httpGet: {path: /health, port: http}, periodSeconds: 3}"
    )
    launch = app_launch(http, 0, NETNS, rewrite_probes=True)
    assert launch.probe == HttpProbe("10.231.0.7", 15020, "/app-health/reviews/readyz")
    assert launch.schedule.period == 3
    assert json.loads(app_probers(http)) == {
        "/app-health/reviews/readyz": {
            "httpGet": {"path": "/health", "port": 9080},
            "timeoutSeconds": 1,
        }
    }
    assert json.loads(app_probers(REVIEWS)) == {
        "/app-health/reviews/readyz": {"tcpSocket": {"port": 9080}}
    }
    assert app_probers(workload("  command: [x]")) == ""
    # no sidecar to ask (explicit mode has no interception): the probe goes to the app itself
    assert app_launch(http, 0, EXPLICIT).probe == HttpProbe("127.231.0.7", 9080, "/health")


def test_the_record_in_netns_mode_names_each_port_by_number_and_name() -> None:
    record = pod_record(REVIEWS, 0, NETNS)
    assert record.name == pod_name(REVIEWS, 0) == "reviews-0"
    assert (record.namespace, record.address) == ("shop", "10.231.0.7")
    assert record.labels == {"app": "reviews", "version": "v1"}
    assert record.service_account == "bookinfo-reviews"
    assert record.ports == {"9080": 9080, "http": 9080, "9443": 9443}


def test_the_record_in_explicit_mode_sends_every_port_to_the_sidecars_inbound_port() -> None:
    record = pod_record(REVIEWS, 2, EXPLICIT)
    assert record.name == "reviews-2" and record.address == "127.231.0.7"
    assert record.ports == {"9080": 15006, "http": 15006, "9443": 15006}

"""`gossamer proxy` flag parsing: every mistake is a usage error (exit 2) naming the flag."""

from __future__ import annotations

import socket
import subprocess

import pytest
import typer
from typer.testing import CliRunner

from gossamer.cli.main import app
from gossamer.cli.proxy import parse_labels, parse_target
from gossamer.runtime.envoy import with_parent_death_signal
from tests.e2e.harness import gossamer_argv

runner = CliRunner()
CP = ["proxy", "--controlplane", "127.0.0.1:15010"]


def usage_error(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    boxless = result.output.translate({ord(c): " " for c in "│╭╮╰╯─"})
    return " ".join(boxless.split())  # rich wraps the message in a box


def test_controlplane_is_required() -> None:
    assert "Missing option '--controlplane'" in usage_error(["proxy"])


@pytest.mark.parametrize("target", ["localhost", "localhost:", ":15010", "h:0", "h:99999", "h:x"])
def test_controlplane_must_be_host_port(target: str) -> None:
    out = usage_error(["proxy", "--controlplane", target])
    assert "--controlplane" in out
    assert "is not HOST:PORT" in out


@pytest.mark.parametrize(
    ("labels", "why"),
    [
        ("app", "'app' is not key=value"),
        ("app=a,app=b", "label 'app' given twice"),
        ("=v", "'' in '=v' is not a valid label key"),
        ("-app=v", "is not a valid label key"),
        ("app=two words", "is not a valid label value"),
        ("app=a,,version=v1", "'' is not key=value"),
    ],
)
def test_bad_labels_are_refused_naming_the_item(labels: str, why: str) -> None:
    out = usage_error([*CP, "--labels", labels])
    assert "--labels" in out
    assert why in out


@pytest.mark.parametrize(
    "args",
    [
        ["--concurrency", "0"],
        ["--admin-port", "70000"],
        ["--outbound-port", "-1"],
        ["--stats-port", "http"],
        ["--drain-timeout", "-1"],
    ],
)
def test_out_of_range_numbers_are_refused(args: list[str]) -> None:
    assert args[0] in usage_error([*CP, *args])


def test_ip_must_be_an_address() -> None:
    assert "'pod-a' is not an IP address" in usage_error([*CP, "--ip", "pod-a"])


def test_log_level_must_be_known() -> None:
    assert "'loud' is not a log level" in usage_error([*CP, "--log-level", "loud"])


def test_labels_parse_to_a_dict_in_order() -> None:
    labels = parse_labels("app=reviews, version=v1,topology.kubernetes.io/zone=z-1,empty=")
    assert labels == {
        "app": "reviews",
        "version": "v1",
        "topology.kubernetes.io/zone": "z-1",
        "empty": "",
    }
    assert parse_labels("") == {}


def test_targets_accept_names_and_bracketed_ipv6() -> None:
    assert parse_target("istiod.istio-system:15010") == "istiod.istio-system:15010"
    assert parse_target("[::1]:15010") == "[::1]:15010"
    with pytest.raises(typer.BadParameter):
        parse_target("istiod")


def test_a_taken_admin_port_exits_1_with_a_clear_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = [*gossamer_argv(), *CP, "--explicit", "--concurrency", "1"]
        argv += ["--admin-port", str(port), "--stats-port", "0", "--health-port", "0"]
        done = subprocess.run(
            with_parent_death_signal(argv),
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert "cannot listen for admin/stats/health" in done.stderr
    assert "Traceback" not in done.stderr

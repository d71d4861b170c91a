"""`gossamer validate`: exit codes, one-line located errors, every error of a file, JSON."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gossamer.cli.main import app

runner = CliRunner()

TWO_BAD_DOCS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - timeout: 0s
    route:
    - destination: {host: reviews}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - websocketUpgrade: true
    route:
    - destination: {host: ratings}
"""


def test_a_valid_directory_exits_0(conformance: Path) -> None:
    result = runner.invoke(app, ["validate", str(conformance / "istio" / "bookinfo")])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_every_error_of_a_file_is_reported_on_one_line_with_its_location(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TWO_BAD_DOCS)
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert any(
        f"{bad}[0]" in line
        and "VirtualService shop/reviews" in line
        and "spec.http[0].timeout" in line
        and "1ms" in line
        for line in lines
    ), lines
    assert any(
        f"{bad}[1]" in line and "spec.http[0].websocketUpgrade" in line and "unknown field" in line
        for line in lines
    ), lines


def test_an_unreadable_path_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_json_output_lists_findings_with_their_parts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TWO_BAD_DOCS)
    result = runner.invoke(app, ["validate", "-o", "json", str(bad)])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["valid"] is False
    fields = {(f["document"], f["field"]) for f in report["findings"] if f["level"] == "Error"}
    assert {(0, "spec.http[0].timeout"), (1, "spec.http[0].websocketUpgrade")} <= fields


def test_invalid_yaml_is_invalid_not_unreadable(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: [\n")
    result = runner.invoke(app, ["validate", str(broken)])
    assert result.exit_code == 1
    assert "invalid YAML at line" in result.output

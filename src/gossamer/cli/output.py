"""How the CLI prints: findings on one line each, JSON when asked, colour only on a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from rich.console import Console

from gossamer.spec.findings import Finding, Level

# Piped output (scripts, grep) gets whole table rows, not rows cut to 80 columns.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 250)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Format(StrEnum):
    """`-o` choices of every listing command."""

    text = "text"
    json = "json"
    yaml = "yaml"


_STYLE = {Level.ERROR: "bold red", Level.WARNING: "yellow", Level.INFO: "dim"}


def print_findings(findings: Iterable[Finding], console: Console = out) -> None:
    for finding in findings:
        console.print(str(finding), style=_STYLE[finding.level], markup=False)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")


def print_yaml(value: Any) -> None:
    import yaml

    sys.stdout.write(yaml.safe_dump(value, sort_keys=False))


def print_structured(value: Any, output: Format) -> bool:
    """`-o json|yaml`: print `value` that way and say so; False for text (the caller's table)."""
    if output is Format.json:
        print_json(value)
        return True
    if output is Format.yaml:
        print_yaml(value)
        return True
    return False

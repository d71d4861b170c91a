"""`gossamer validate`: offline checks of manifests, with Istio's analyzer codes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gossamer.cli.output import Format, err, out, print_findings, print_json
from gossamer.spec.validate import validate_paths


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)


def validate(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (- for stdin).")],
    output: Annotated[Format, typer.Option("-o", "--output", help="text or json")] = Format.text,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Also show informational findings.")
    ] = False,
    analyze: Annotated[
        bool, typer.Option("--analyze/--no-analyze", help="Run the IST analyzers too.")
    ] = True,
) -> None:
    """Validate manifests offline: exit 0 when all are valid, 1 when any is invalid, 2 when a
    path cannot be read. Analyzer messages (IST codes) are reported but do not fail."""
    report = validate_paths(paths, run_analyzers=analyze)
    if output is Format.json:
        print_json(
            {
                "valid": report.exit_code == 0,
                "files": report.files,
                "resources": len(report.resources),
                "unreadable": report.unreadable,
                "findings": [f.as_json() for f in report.shown(verbose)],
            }
        )
        raise typer.Exit(report.exit_code)
    for problem in report.unreadable:
        err.print(f"Error: {problem}", style="bold red", markup=False)
    print_findings(report.shown(verbose))
    errors = len(report.errors)
    if report.unreadable:
        summary = f"✘ {len(report.unreadable)} path(s) could not be read"
    elif errors:
        summary = f"✘ {errors} error(s) in {report.files} file(s)"
    else:
        summary = f"✔ {len(report.resources)} resource(s) in {report.files} file(s) are valid"
    (err if report.exit_code else out).print(summary, markup=False)
    raise typer.Exit(report.exit_code)

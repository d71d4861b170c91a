"""Offline validation of files: schema and rules per document, then analyzers across all of them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gossamer.spec.analyzers import Corpus, analyze
from gossamer.spec.base import Resource
from gossamer.spec.findings import Finding, Level
from gossamer.spec.loader import Document, Unreadable, load_file, manifest_files
from gossamer.spec.parse import Parsed, parse_loaded


@dataclass
class Report:
    """The outcome of validating some files.

    `unreadable` lists paths that could not be read at all (exit code 2); errors among
    `findings` make the config invalid (exit code 1). Analyzer messages (IST codes) inform
    but only their ERROR level counts as invalid when `analyzer_errors_fail` was asked for.
    """

    files: int = 0
    parsed: list[Parsed] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    @property
    def resources(self) -> list[Resource]:
        return [p.resource for p in self.parsed if p.resource is not None]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.is_error and f.code is None]

    @property
    def exit_code(self) -> int:
        if self.unreadable:
            return 2
        return 1 if self.errors else 0

    def shown(self, verbose: bool = False) -> list[Finding]:
        """Findings worth printing: errors and warnings, and informational ones if verbose."""
        return [f for f in self.findings if verbose or f.level is not Level.INFO or f.code]


def validate_paths(paths: Iterable[str | Path], *, run_analyzers: bool = True) -> Report:
    """Validate every manifest under `paths` (files, directories, `-` for stdin)."""
    report = Report()
    try:
        files = list(manifest_files(paths))
    except Unreadable as exc:
        report.unreadable.append(str(exc))
        return report
    for path in files:
        try:
            loaded = load_file(path)
        except Unreadable as exc:
            report.unreadable.append(str(exc))
            continue
        report.files += 1
        parsed, file_findings = parse_loaded(loaded)
        report.parsed.extend(parsed)
        report.findings.extend(file_findings)
        for p in parsed:
            report.findings.extend(p.findings)
    if run_analyzers:
        report.findings.extend(analyze(corpus_of(report.parsed)))
    return report


def corpus_of(parsed: Iterable[Parsed]) -> Corpus:
    """The analyzers' view of parsed documents: served resources plus skipped documents."""
    resources: list[Resource] = []
    others: list[Document] = []
    origin: dict[int, Document] = {}
    for p in parsed:
        seen = p.resource or p.candidate
        if seen is not None:
            resources.append(seen)
            origin[id(seen)] = p.document
        elif p.skipped:
            others.append(p.document)
    return Corpus(resources, others, origin)

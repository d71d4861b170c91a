"""Read operators' files: multi-document YAML or JSON, from files, directories or text."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gossamer.spec.findings import Finding

try:  # the C loader is ~10x faster on large manifests; fall back where libyaml is missing
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class Document:
    """One document of a file: `index` counts every `---` section from 0, empty ones included."""

    source: str
    index: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a file held: its non-empty documents and the reasons any part could not be read."""

    documents: list[Document]
    findings: list[Finding]


class Unreadable(Exception):
    """A path that cannot be read at all (missing, permission denied, not a manifest)."""


def load_text(text: str, source: str = "<input>") -> Loaded:
    """Split YAML (or JSON) text into documents; a syntax error stops reading at that point."""
    documents: list[Document] = []
    findings: list[Finding] = []
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return Loaded([], [Finding(f"invalid JSON: {exc}", source=source, document=0)])
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            _accept(item, source, index, documents, findings)
        return Loaded(documents, findings)
    index = 0
    try:
        for index, item in enumerate(yaml.load_all(text, Loader=_Loader)):
            _accept(item, source, index, documents, findings)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        findings.append(
            Finding(f"invalid YAML{where}: {problem}", source=source, document=len(documents))
        )
    return Loaded(documents, findings)


def _accept(
    item: object, source: str, index: int, documents: list[Document], findings: list[Finding]
) -> None:
    if item is None:
        return  # an empty `---` section: nothing to do, as kubectl does
    if not isinstance(item, dict):
        findings.append(
            Finding(
                f"a document must be a mapping with apiVersion and kind, not {type(item).__name__}",
                source=source,
                document=index,
            )
        )
        return
    if item.get("kind") == "List" and isinstance(item.get("items"), list):
        for sub in item["items"]:
            _accept(sub, source, index, documents, findings)
        return
    documents.append(Document(source, index, item))


def manifest_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Expand directories (recursively, sorted) into their .yaml/.yml/.json files.

    Raises Unreadable for a path that does not exist.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES
            )
        elif path.exists() or str(raw) == "-":
            yield path
        else:
            raise Unreadable(f"{raw}: no such file or directory")


def load_file(path: Path) -> Loaded:
    """Read one file (`-` is standard input). Raises Unreadable when it cannot be read."""
    if str(path) == "-":
        import sys

        return load_text(sys.stdin.read(), "<stdin>")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Unreadable(f"{path}: {exc}") from exc
    return load_text(text, str(path))

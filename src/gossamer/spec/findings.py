"""Findings: one validation error or analyzer message, located precisely and printed on one line."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace


class Level(enum.Enum):
    """Severity, with istioctl's names: an ERROR refuses the config, the others only inform."""

    ERROR = "Error"
    WARNING = "Warning"
    INFO = "Info"


def format_path(loc: Sequence[str | int]) -> str:
    """Render a field location as `spec.http[0].route[1].weight` (list indices in brackets)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out


@dataclass(frozen=True, slots=True)
class Finding:
    """Something wrong (or worth knowing) about one resource of one document of one file.

    `field` is the dotted path inside the document (`spec.http[0].timeout`), empty when the
    finding concerns the whole resource; `code` is Istio's analyzer code where Istio has the same
    check (`IST0101`), else None.
    """

    reason: str
    field: str = ""
    level: Level = Level.ERROR
    code: str | None = None
    source: str | None = None
    document: int | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None

    @property
    def is_error(self) -> bool:
        return self.level is Level.ERROR

    def located(
        self,
        *,
        source: str | None = None,
        document: int | None = None,
        kind: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
    ) -> Finding:
        """The same finding with the missing parts of its location filled in."""
        return replace(
            self,
            source=self.source or source,
            document=self.document if self.document is not None else document,
            kind=self.kind or kind,
            namespace=self.namespace or namespace,
            name=self.name or name,
        )

    @property
    def resource(self) -> str:
        """`Kind namespace/name`, as much of it as is known."""
        ref = "/".join(p for p in (self.namespace, self.name) if p)
        return " ".join(p for p in (self.kind, ref) if p)

    def __str__(self) -> str:
        where = []
        if self.source is not None:
            where.append(
                self.source if self.document is None else f"{self.source}[{self.document}]"
            )
        if self.resource:
            where.append(self.resource)
        if self.field:
            where.append(self.field)
        code = f" [{self.code}]" if self.code else ""
        head = ": ".join(where)
        sep = ": " if head else ""
        return f"{self.level.value}{code}: {head}{sep}{self.reason}"

    def as_json(self) -> dict[str, object]:
        return {
            "level": self.level.value,
            "code": self.code,
            "file": self.source,
            "document": self.document,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "field": self.field,
            "reason": self.reason,
            "message": str(self),
        }


class ConfigError(Exception):
    """Config was refused; carries every finding that made it so (and any warnings beside them)."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        errors = [f for f in self.findings if f.is_error] or self.findings
        super().__init__("; ".join(str(f) for f in errors[:5]))

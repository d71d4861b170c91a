"""The shape every resource shares: strict models, Kubernetes metadata, and rule checking.

Theory of operation:
1. Pydantic checks shape: types, enums, required fields, and (`extra="forbid"`) that every field
   exists in the API. All shape errors of a document are collected at once.
2. A valid shape is then walked by `SpecModel.check`, which calls each model's `rules()` for the
   cross-field rules Istio's webhook enforces (and deprecation warnings), again collecting all.
3. Models are frozen: a parsed resource is a value that the store, the world and the
   translators can share without copying.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from gossamer.spec.findings import Finding, Level, format_path

Loc = tuple[str | int, ...]

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def problem(
    at: Loc, reason: str, *, level: Level = Level.ERROR, code: str | None = None
) -> Finding:
    """A finding about the field at `at` (a location tuple such as ("spec", "http", 0))."""
    return Finding(reason, field=format_path(at), level=level, code=code)


def warning(at: Loc, reason: str, *, code: str | None = None) -> Finding:
    return problem(at, reason, level=Level.WARNING, code=code)


def deprecated(at: Loc, reason: str) -> Finding:
    """Istio's IST0002 Deprecated: accepted and honoured, but users should move on."""
    return problem(at, reason, level=Level.WARNING, code="IST0002")


class SpecModel(BaseModel):
    """Base of every API object: camelCase fields as in the YAML, unknown fields refused, frozen.

    Subclasses override `rules(at)` to yield the findings that need more than one field; `check`
    walks the whole tree so nested models' rules run too.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
        use_enum_values=False,
        arbitrary_types_allowed=True,
    )

    def rules(self, at: Loc) -> Iterator[Finding]:
        """Cross-field rules of this model alone; `at` is where it sits in the document."""
        return iter(())

    def check(self, at: Loc = ()) -> Iterator[Finding]:
        """Run `rules` on this model and, depth first, on every nested model."""
        yield from self.rules(at)
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if value is None:
                continue
            yield from _check_value(value, (*at, info.alias or name))

    def given(self, field: str) -> bool:
        """Whether the document set this field (as opposed to it taking its default)."""
        return field in self.model_fields_set


def _check_value(value: object, at: Loc) -> Iterator[Finding]:
    if isinstance(value, SpecModel):
        yield from value.check(at)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _check_value(item, (*at, index))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _check_value(item, (*at, str(key)))


class ObjectMeta(SpecModel):
    """Kubernetes object metadata; fields set by an API server are tolerated and ignored."""

    name: str = Field(min_length=1, max_length=253)
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    # Written by API servers; real exported YAML carries them, so they are allowed.
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    generate_name: str | None = None
    self_link: str | None = None
    managed_fields: list[dict[str, Any]] | None = None
    owner_references: list[dict[str, Any]] | None = None
    finalizers: list[str] | None = None

    @field_validator("namespace")
    @classmethod
    def _namespace_is_label(cls, value: str) -> str:
        if not DNS1123_LABEL.match(value) or len(value) > 63:
            raise ValueError("namespace must be a lowercase RFC 1123 label")
        return value

    def rules(self, at: Loc) -> Iterator[Finding]:
        if not DNS1123_SUBDOMAIN.match(self.name):
            yield problem(
                (*at, "name"),
                f"name {self.name!r} must be a lowercase RFC 1123 subdomain "
                "(letters, digits, '-' and '.')",
            )


class Resource(SpecModel):
    """A whole document: `apiVersion`, `kind`, `metadata`, `spec`.

    Each kind subclasses this, narrows `spec`, and is listed in `gossamer.spec.kinds`.
    """

    group: ClassVar[str] = ""
    versions: ClassVar[tuple[str, ...]] = ()

    api_version: str
    kind: str
    metadata: ObjectMeta
    spec: Any = None
    status: dict[str, Any] | None = Field(default=None, exclude=True)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.group, self.kind, self.metadata.namespace, self.metadata.name)

    def manifest(self) -> dict[str, Any]:
        """The resource as a plain JSON-able document, camelCase, defaults left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=False)


class ResourceKey(tuple[str, str, str, str]):
    """(group, kind, namespace, name): what identifies a resource in the store."""

    __slots__ = ()

    def __new__(cls, group: str, kind: str, namespace: str, name: str) -> ResourceKey:
        return super().__new__(cls, (group, kind, namespace, name))

    @property
    def group(self) -> str:
        return self[0]

    @property
    def kind(self) -> str:
        return self[1]

    @property
    def namespace(self) -> str:
        return self[2]

    @property
    def name(self) -> str:
        return self[3]

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

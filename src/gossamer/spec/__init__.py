"""What operators write: typed resources, loading, validation and analysis.

Importing this package registers every served kind (see `gossamer.spec.kinds.KINDS`).
"""

from gossamer.spec import catalog as _catalog  # noqa: F401  (registers the kinds)
from gossamer.spec.base import Resource, ResourceKey
from gossamer.spec.findings import ConfigError, Finding, Level
from gossamer.spec.loader import Document, load_file, load_text
from gossamer.spec.parse import Parsed, parse_document, parse_text

__all__ = [
    "ConfigError",
    "Document",
    "Finding",
    "Level",
    "Parsed",
    "Resource",
    "ResourceKey",
    "load_file",
    "load_text",
    "parse_document",
    "parse_text",
]

"""Run every analyzer over inline YAML, as `gossamer validate` does over files."""

from __future__ import annotations

import textwrap

from gossamer.spec.analyzers import analyze
from gossamer.spec.findings import Finding
from gossamer.spec.parse import parse_text
from gossamer.spec.validate import corpus_of


def findings(*documents: str, code: str | None = None) -> list[Finding]:
    """Analyzer findings for these YAML documents (joined with `---`), of one code if given."""
    text = "\n---\n".join(textwrap.dedent(d) for d in documents)
    found = analyze(corpus_of(parse_text(text, "test.yaml")))
    return [f for f in found if code is None or f.code == code]


def names(found: list[Finding]) -> list[str]:
    """`namespace/name` of each finding, sorted."""
    return sorted(f"{f.namespace}/{f.name}" for f in found)


def service(name: str, namespace: str = "default", *ports: int) -> str:
    port_lines = "".join(f"\n  - name: http-{p}\n    port: {p}" for p in ports or (80,))
    return f"""
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {namespace}
spec:
  ports:{port_lines}
"""

"""A strict parser of the Prometheus text format (0.0.4), written from the spec for tests."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)')


@dataclass
class Parsed:
    types: dict[str, str] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def value(self, name: str, **labels: str) -> float:
        found = [v for n, ls, v in self.samples if n == name and ls == labels]
        assert len(found) == 1, f"{name}{labels}: {found}"
        return found[0]


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], text)


def parse(text: str) -> Parsed:
    """Strict: HELP then TYPE before a family's samples, no duplicate series, only known types,
    histogram series named _bucket/_sum/_count, trailing newline."""
    assert text.endswith("\n")
    parsed = Parsed()
    current = ""
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in parsed.helps, f"duplicate HELP {name}"
            parsed.helps[name] = _unescape(help_text)
            current = name
            continue
        if line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == current and name not in parsed.types
            assert kind in {"counter", "gauge", "histogram"}
            parsed.types[name] = kind
            continue
        m = _SAMPLE.fullmatch(line)
        assert m, f"bad sample line {line!r}"
        name, body, raw = m.group(1), m.group(3), m.group(4)
        labels: dict[str, str] = {}
        if body is not None:
            pos = 0
            while pos < len(body):
                lm = _LABEL.match(body, pos)
                assert lm, f"bad labels in {line!r}"
                assert lm.group(1) not in labels
                labels[lm.group(1)] = _unescape(lm.group(2))
                pos = lm.end()
        family = current
        if parsed.types.get(current) == "histogram":
            assert name in {f"{current}_bucket", f"{current}_sum", f"{current}_count"}
        else:
            assert name == family, f"{name} outside its family {family}"
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, f"duplicate series {key}"
        seen.add(key)
        value = {"+Inf": math.inf, "-Inf": -math.inf}.get(raw)
        parsed.samples.append((name, labels, value if value is not None else float(raw)))
    return parsed

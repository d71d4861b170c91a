"""Prometheus text exposition (format 0.0.4): counter, gauge and histogram families.

Families are plain values filled by whoever owns the numbers (the admin server fills them from
backend stats at scrape time) and rendered in one pass. Rules the renderer keeps:

1. Every family is preceded by `# HELP` (backslash and newline escaped) and `# TYPE`.
2. Metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names `[a-zA-Z_][a-zA-Z0-9_]*` and do not
   start with `__`; a bad name is our bug, so it raises ValueError when the family is built.
3. Label values escape backslash, double quote and newline.
4. Histogram buckets are rendered cumulative with a final `le="+Inf"` bucket equal to `_count`,
   followed by `_sum` and `_count`.
5. Samples keep insertion order; adding to an existing label set accumulates (counters and
   histograms), or replaces (gauges).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

LabelKey = tuple[tuple[str, str], ...]


def _check_metric_name(name: str) -> str:
    if not _METRIC_NAME.fullmatch(name):
        raise ValueError(f"invalid Prometheus metric name {name!r}")
    return name


def _label_key(labels: Mapping[str, str]) -> LabelKey:
    for name in labels:
        if not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
            raise ValueError(f"invalid Prometheus label name {name!r}")
    return tuple(labels.items())


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """Integers without a decimal point (as Envoy prints counters), floats in repr, and the
    special values spelled as Prometheus expects."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _labels_text(key: LabelKey, extra: tuple[str, str] | None = None) -> str:
    pairs = [*key, extra] if extra is not None else list(key)
    if not pairs:
        return ""
    inner = ",".join(f'{name}="{escape_label_value(value)}"' for name, value in pairs)
    return "{" + inner + "}"


@dataclass(slots=True)
class _Family:
    name: str
    help: str

    def __post_init__(self) -> None:
        _check_metric_name(self.name)

    def header(self, kind: str) -> list[str]:
        return [f"# HELP {self.name} {escape_help(self.help)}", f"# TYPE {self.name} {kind}"]


@dataclass(slots=True)
class Counter(_Family):
    """A monotonically increasing count per label set (Envoy's names carry no `_total`)."""

    samples: dict[LabelKey, float] = field(default_factory=dict)

    def add(self, labels: Mapping[str, str], value: float) -> None:
        key = _label_key(labels)
        self.samples[key] = self.samples.get(key, 0) + value

    def lines(self) -> list[str]:
        out = self.header("counter")
        out += [f"{self.name}{_labels_text(k)} {format_value(v)}" for k, v in self.samples.items()]
        return out


@dataclass(slots=True)
class Gauge(_Family):
    """A value that goes up and down per label set; `set` replaces."""

    samples: dict[LabelKey, float] = field(default_factory=dict)

    def set(self, labels: Mapping[str, str], value: float) -> None:
        self.samples[_label_key(labels)] = value

    def lines(self) -> list[str]:
        out = self.header("gauge")
        out += [f"{self.name}{_labels_text(k)} {format_value(v)}" for k, v in self.samples.items()]
        return out


@dataclass(slots=True)
class _HistogramSample:
    counts: list[int]  # per bucket, not cumulative; one more than bounds (the +Inf bucket)
    total: float = 0.0


@dataclass(slots=True)
class Histogram(_Family):
    """Observations in buckets with upper bounds `bounds` (ascending, finite; +Inf is implied).

    `observe` adds one value; `add_counts` merges counts already bucketed elsewhere (a worker's
    histogram) with the same bounds.
    """

    bounds: Sequence[float] = ()
    samples: dict[LabelKey, _HistogramSample] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_metric_name(self.name)
        bounds = list(self.bounds)
        if any(math.isinf(b) or math.isnan(b) for b in bounds) or bounds != sorted(set(bounds)):
            raise ValueError(f"{self.name}: bucket bounds must be finite and strictly ascending")
        self.bounds = tuple(bounds)

    def _sample(self, labels: Mapping[str, str]) -> _HistogramSample:
        key = _label_key(labels)
        sample = self.samples.get(key)
        if sample is None:
            sample = self.samples[key] = _HistogramSample([0] * (len(self.bounds) + 1))
        return sample

    def observe(self, labels: Mapping[str, str], value: float) -> None:
        sample = self._sample(labels)
        index = len(self.bounds)
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                index = i
                break
        sample.counts[index] += 1
        sample.total += value

    def add_counts(self, labels: Mapping[str, str], counts: Sequence[int], total: float) -> None:
        """`counts` per bucket (not cumulative), len(bounds) + 1 entries, the last for +Inf."""
        if len(counts) != len(self.bounds) + 1:
            raise ValueError(f"{self.name}: expected {len(self.bounds) + 1} bucket counts")
        sample = self._sample(labels)
        for i, n in enumerate(counts):
            sample.counts[i] += n
        sample.total += total

    def lines(self) -> list[str]:
        out = self.header("histogram")
        for key, sample in self.samples.items():
            running = 0
            for bound, n in zip(self.bounds, sample.counts, strict=False):
                running += n
                le = ("le", format_value(bound))
                out.append(f"{self.name}_bucket{_labels_text(key, le)} {running}")
            running += sample.counts[-1]
            out.append(f"{self.name}_bucket{_labels_text(key, ('le', '+Inf'))} {running}")
            out.append(f"{self.name}_sum{_labels_text(key)} {format_value(sample.total)}")
            out.append(f"{self.name}_count{_labels_text(key)} {running}")
        return out


Family = Counter | Gauge | Histogram


def render(families: Iterable[Family]) -> str:
    """The exposition text of `families` (empty families are left out), newline-terminated."""
    lines: list[str] = []
    for family in families:
        if family.samples:
            lines += family.lines()
    return "\n".join(lines) + "\n" if lines else ""

"""Cross-resource checks with istioctl analyze's message codes (IST0101, IST0109, ...).

Each analyzer module registers functions with `@analyzer`; `analyze()` runs them all.
"""

from gossamer.spec.analyzers.base import Corpus, analyze, analyzer

__all__ = ["Corpus", "analyze", "analyzer"]

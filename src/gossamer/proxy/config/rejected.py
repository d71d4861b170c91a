"""Why a pushed resource cannot be applied: the text of the NACK the xDS client sends."""

from __future__ import annotations


class ConfigRejected(ValueError):
    """Raised by every compile step; the message names the resource, the field and the reason,
    e.g. `route "9080" vhost "reviews:9080" route 0 safe_regex: invalid regex`."""

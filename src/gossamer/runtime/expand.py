"""Kubernetes' `$(VAR)` expansion in a container's command and env values.

`$(NAME)` becomes NAME's value when NAME is defined (the downward-API variables and earlier env
entries); an unknown name stays as written; `$$` is a literal `$`, so `$$(NAME)` stays literal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, variables: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        return variables.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


def expand_env(base: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """Env entries in order, each able to refer to `base` and to the entries before it."""
    result = dict(base)
    for name, value in env.items():
        result[name] = expand(value, result)
    return result

"""The supervisor's accepted configs as numbered generations (supervisor.py, rules 1 and 2).

Every ProxyConfig the xDS client accepts becomes the next generation. Kept here: the latest
config, when each type URL's version last changed (config_dump's `last_updated`), the first
generation that was `initialized` (readiness waits for it everywhere), and whether a push came
since the xDS watcher last looked.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from gossamer.proxy import admin_render

log = logging.getLogger("gossamer.proxy")


class Generations:
    """See the module docstring. Single-threaded: called from the supervisor's event loop."""

    def __init__(self) -> None:
        self.config: Any = None  # ProxyConfig
        self.number = 0
        self.first_ready: int | None = None  # the first generation with `initialized` set
        self._updated: dict[str, float] = {}  # type URL → when its version last changed
        self._pushed = False

    def __repr__(self) -> str:
        return f"<Generations number={self.number} first_ready={self.first_ready}>"

    def accept(self, config: Any) -> int:
        """`config` is the next generation; its number. Logs the versions it carries."""
        now = time.time()
        old = self.config.versions if self.config is not None else {}
        for type_url, version in config.versions.items():
            if old.get(type_url) != version:
                self._updated[type_url] = now
        self.config = config
        self._pushed = True
        self.number += 1
        if config.initialized and self.first_ready is None:
            self.first_ready = self.number
        versions = " ".join(
            f"{t.rsplit('.', 1)[-1]}={v}" for t, v in sorted(config.versions.items())
        )
        missing = f" missing={','.join(sorted(config.missing))}" if config.missing else ""
        log.info(
            "config accepted: generation %d %s complete=%s%s",
            self.number, versions, config.complete, missing,
        )  # fmt: skip
        return self.number

    def take_pushed(self) -> bool:
        """Whether a push came since the last call."""
        pushed, self._pushed = self._pushed, False
        return pushed

    def describe(self) -> dict[str, Any]:
        """The `config` block of /server_info."""
        config = self.config
        return {
            "generation": self.number,
            "complete": bool(config is not None and config.complete),
            "initialized": bool(config is not None and config.initialized),
            "missing": sorted(config.missing) if config is not None else [],
            "versions": dict(config.versions) if config is not None else {},
        }

    def config_dump(self) -> dict[str, Any]:
        """Envoy's /config_dump of the latest generation (empty before the first)."""
        config = self.config
        if config is None:
            return admin_render.config_dump({}, {}, {})
        return admin_render.config_dump(config.resources, config.versions, self._updated)

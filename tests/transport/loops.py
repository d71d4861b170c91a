"""The event loops transport tests run on: asyncio's and uvloop's (the sidecar's)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}

Run = Callable[[Coroutine[Any, Any, Any]], Any]
"""Runs a coroutine to its end on one of LOOPS (the `run` fixture)."""

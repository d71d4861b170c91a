"""LiveCa.finish_overlaps: a root rotation's overlap ends by itself at its deadline (the old
root leaves the bundle and its files go), at once for a plane started after the deadline, and
never early."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gossamer.control.ca import Authority, begin_root_rotation, open_ca
from gossamer.control.ca.live import LiveCa
from gossamer.control.ca.rotation import Step
from tests.control.ca.support import WritePlugin
from tests.polling import until

TTL = timedelta(seconds=1)


@contextlib.asynccontextmanager
async def finishing(live: LiveCa) -> AsyncIterator[None]:
    task = asyncio.create_task(live.finish_overlaps(check_every=30))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def files_of(ca_dir: Path, serial: int) -> list[Path]:
    return list(ca_dir.rglob(f"*{serial:x}*"))


def serials(authority: Authority) -> list[int]:
    return [root.serial_number for root in authority.bundle.roots]


async def test_the_overlap_ends_by_itself_at_its_deadline_not_before(
    ca_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    open_ca(ca_dir)
    live = LiveCa.open(ca_dir, TTL)
    old = live.authority.cert.serial_number
    told: list[Authority] = []
    live.subscribe(told.append)
    async with finishing(live):  # running before the rotation: a step must wake it
        await live.rotate(Step.BEGIN, timedelta(seconds=1.5))
        promoted = await live.rotate(Step.PROMOTE)
        new = live.authority.cert.serial_number
        deadline = live.overlap_deadline()
        assert deadline is not None and promoted["phase"] == "overlap"

        await asyncio.sleep(1.0)
        assert live.status()["phase"] == "overlap"  # not before the deadline
        assert serials(live.authority) == [old, new]
        await until(lambda: serials(live.authority) == [new], 2.0, "the overlap to finish")

    assert datetime.now(UTC) >= deadline
    assert live.status()["phase"] == "steady" and serials(told[-1]) == [new]
    assert not files_of(ca_dir, old), "the old root's files stay behind"
    messages = [r.getMessage() for r in caplog.records]
    assert any("the overlap ended at" in m for m in messages), messages
    assert any(f"finish done; phase steady, signing {new:x}" in m for m in messages), messages


async def test_a_plane_started_after_the_deadline_finishes_at_once(ca_dir: Path) -> None:
    open_ca(ca_dir)
    begin_root_rotation(ca_dir, timedelta(milliseconds=300), promote=True)
    await asyncio.sleep(0.4)  # the plane was down when the overlap ended
    live = LiveCa.open(ca_dir, TTL)
    assert live.status()["phase"] == "overlap" and len(serials(live.authority)) == 2
    async with finishing(live):
        await until(lambda: len(serials(live.authority)) == 1, 2.0, "the overdue finish")
    assert live.status()["phase"] == "steady"
    assert serials(live.authority) == [live.authority.cert.serial_number]


async def test_a_finish_by_hand_leaves_the_finisher_nothing_to_do(
    ca_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    open_ca(ca_dir)
    live = LiveCa.open(ca_dir, TTL)
    async with finishing(live):
        await live.rotate(Step.BEGIN, timedelta(seconds=1))
        await live.rotate(Step.PROMOTE)
        await live.rotate(Step.FINISH, force=True)
        await asyncio.sleep(1.5)  # past the deadline the overlap would have had
    assert live.status()["phase"] == "steady"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_plug_in_ca_has_no_overlap_to_finish(
    ca_dir: Path, write_plugin: WritePlugin
) -> None:
    write_plugin()
    live = LiveCa.open(ca_dir, TTL)
    assert live.overlap_deadline() is None
    async with finishing(live):
        await asyncio.sleep(0.1)
    assert live.status()["phase"] == "plug-in"

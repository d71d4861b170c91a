"""Root rotation with overlap: the new root is trusted first, then signs, old and new are
trusted until the overlap ends, then the old root is dropped and its leaves stop verifying.
Persisted in ca/state.json."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gossamer.control.ca import (
    PeerRejected,
    RotationError,
    begin_root_rotation,
    finish_root_rotation,
    open_ca,
    promote_root_rotation,
    verify_peer,
)
from gossamer.control.ca.rotation import TRANSITIONS, Phase, RootsState, Step, next_phase
from tests.control.ca.support import Issue, WritePlugin

OVERLAP = timedelta(days=2)


def phase_of(ca_dir: Path) -> str:
    return str(json.loads((ca_dir / "state.json").read_text())["phase"])


def test_the_table_is_a_cycle_of_three_steps() -> None:
    assert TRANSITIONS == {
        (Phase.STEADY, Step.BEGIN): Phase.TRUSTING,
        (Phase.TRUSTING, Step.PROMOTE): Phase.OVERLAP,
        (Phase.OVERLAP, Step.FINISH): Phase.STEADY,
    }
    with pytest.raises(RotationError, match="cannot finish a root rotation in phase steady"):
        next_phase(Phase.STEADY, Step.FINISH)
    with pytest.raises(RotationError, match="cannot finish a root rotation in phase trusting"):
        next_phase(Phase.TRUSTING, Step.FINISH)
    with pytest.raises(RotationError, match="cannot begin a root rotation in phase overlap"):
        next_phase(Phase.OVERLAP, Step.BEGIN)


def test_state_survives_its_json(now: datetime) -> None:
    trusting = RootsState(Phase.STEADY, "a1", ("a1",)).begin("b2", OVERLAP)
    assert RootsState.from_json(trusting.to_json()) == trusting
    assert trusting.trusted == ("a1", "b2") and trusting.signing == "a1"
    overlap = trusting.promote(now)
    assert RootsState.from_json(overlap.to_json()) == overlap
    assert overlap.signing == "b2" and overlap.overlap_until == now + OVERLAP


def test_new_root_is_trusted_before_it_signs(ca_dir: Path, now: datetime, issue: Issue) -> None:
    old = open_ca(ca_dir, now=now)
    begin_root_rotation(ca_dir, OVERLAP, now=now)
    assert phase_of(ca_dir) == "trusting"
    trusting = open_ca(ca_dir, now=now)
    assert trusting.cert == old.cert  # the old root still signs
    assert len(trusting.bundle.roots) == 2 and trusting.bundle.roots[0] == old.cert
    _, leaf = issue(trusting, now=now)
    # peers that still have only the old bundle accept it, and so do those with the new one
    assert verify_peer([leaf.leaf], old.bundle, now=now).service_account == "reviews"
    assert verify_peer([leaf.leaf], trusting.bundle, now=now).service_account == "reviews"


def test_leaves_from_either_root_verify_during_the_overlap(
    ca_dir: Path, now: datetime, issue: Issue
) -> None:
    old = open_ca(ca_dir, now=now)
    _, old_leaf = issue(old, sa="ratings", now=now)

    begin_root_rotation(ca_dir, OVERLAP, now=now)
    promote_root_rotation(ca_dir, now=now)
    assert phase_of(ca_dir) == "overlap"
    new = open_ca(ca_dir, now=now)
    assert new.cert != old.cert
    assert new.bundle.roots == (old.cert, new.cert)
    assert (ca_dir / "trust-bundle.pem").read_bytes() == new.bundle.pem()
    _, new_leaf = issue(new, sa="reviews", now=now)
    assert new_leaf.leaf.issuer == new.cert.subject  # new leaves come from the new root

    assert verify_peer([old_leaf.leaf], new.bundle, now=now).service_account == "ratings"
    assert verify_peer([new_leaf.leaf], new.bundle, now=now).service_account == "reviews"
    with pytest.raises(PeerRejected):  # why the bundle must travel before promotion
        verify_peer([new_leaf.leaf], old.bundle, now=now)


def test_begin_with_promote_signs_with_the_new_root_at_once(ca_dir: Path, now: datetime) -> None:
    old = open_ca(ca_dir, now=now)
    begin_root_rotation(ca_dir, OVERLAP, now=now, promote=True)
    assert phase_of(ca_dir) == "overlap"
    new = open_ca(ca_dir, now=now)
    assert new.cert != old.cert and new.bundle.roots == (old.cert, new.cert)


def test_after_the_overlap_the_old_root_is_dropped(
    ca_dir: Path, now: datetime, issue: Issue
) -> None:
    old = open_ca(ca_dir, now=now)
    _, old_leaf = issue(old, now=now)
    begin_root_rotation(ca_dir, OVERLAP, now=now, promote=True)
    old_serial = f"{old.cert.serial_number:x}"

    later = now + OVERLAP
    assert finish_root_rotation(ca_dir, now=later) == (old_serial,)
    steady = open_ca(ca_dir, now=later)
    assert steady.bundle.roots == (steady.cert,)
    assert not (ca_dir / "roots" / f"{old_serial}-key.pem").exists()
    assert not (ca_dir / "roots" / f"{old_serial}-cert.pem").exists()
    with pytest.raises(PeerRejected, match="does not verify"):
        verify_peer([old_leaf.leaf], steady.bundle, now=later - timedelta(hours=1))
    _, fresh = issue(steady, now=later)
    assert verify_peer([fresh.leaf], steady.bundle, now=later).service_account == "reviews"


def test_the_overlap_is_counted_from_promotion(ca_dir: Path, now: datetime) -> None:
    open_ca(ca_dir, now=now)
    begin_root_rotation(ca_dir, OVERLAP, now=now)
    promoted = now + timedelta(hours=1)
    promote_root_rotation(ca_dir, now=promoted)
    state = json.loads((ca_dir / "state.json").read_text())
    assert datetime.fromisoformat(state["overlap_until"]) == promoted + OVERLAP


def test_finishing_early_is_refused_unless_forced(ca_dir: Path, now: datetime) -> None:
    open_ca(ca_dir, now=now)
    begin_root_rotation(ca_dir, OVERLAP, now=now, promote=True)
    with pytest.raises(RotationError, match="overlap runs until"):
        finish_root_rotation(ca_dir, now=now + timedelta(hours=1))
    assert len(open_ca(ca_dir, now=now).bundle.roots) == 2  # nothing changed
    finish_root_rotation(ca_dir, now=now + timedelta(hours=1), force=True)
    assert len(open_ca(ca_dir, now=now).bundle.roots) == 1


def test_steps_out_of_order_are_refused_and_change_nothing(ca_dir: Path, now: datetime) -> None:
    open_ca(ca_dir, now=now)
    with pytest.raises(RotationError, match="phase steady"):
        finish_root_rotation(ca_dir, now=now)
    with pytest.raises(RotationError, match="phase steady"):
        promote_root_rotation(ca_dir, now=now)
    begin_root_rotation(ca_dir, OVERLAP, now=now)
    state = (ca_dir / "state.json").read_text()
    files = sorted((ca_dir / "roots").iterdir())
    with pytest.raises(RotationError, match="phase trusting"):
        begin_root_rotation(ca_dir, OVERLAP, now=now)
    with pytest.raises(RotationError, match="phase trusting"):
        finish_root_rotation(ca_dir, now=now + OVERLAP, force=True)
    assert (ca_dir / "state.json").read_text() == state
    assert sorted((ca_dir / "roots").iterdir()) == files


def test_rotation_state_is_persisted_across_restarts(ca_dir: Path, now: datetime) -> None:
    open_ca(ca_dir, now=now)
    begin_root_rotation(ca_dir, OVERLAP, now=now, promote=True)
    state = json.loads((ca_dir / "state.json").read_text())
    assert state["phase"] == "overlap"
    assert len(state["trusted"]) == 2 and state["signing"] == state["trusted"][1]
    assert datetime.fromisoformat(state["overlap_until"]) == now + OVERLAP
    with pytest.raises(RotationError, match="overlap runs until"):
        finish_root_rotation(ca_dir, now=now + OVERLAP - timedelta(seconds=1))
    assert len(finish_root_rotation(ca_dir, now=now + OVERLAP)) == 1
    assert phase_of(ca_dir) == "steady"


def test_rotation_without_a_ca_is_refused(ca_dir: Path, now: datetime) -> None:
    with pytest.raises(RotationError, match="no self-signed root"):
        begin_root_rotation(ca_dir, OVERLAP, now=now)


def test_plugin_ca_roots_are_rotated_by_their_operator(
    ca_dir: Path, now: datetime, write_plugin: WritePlugin
) -> None:
    write_plugin()
    with pytest.raises(RotationError, match="plug-in CA"):
        begin_root_rotation(ca_dir, OVERLAP, now=now)
    with pytest.raises(RotationError, match="plug-in CA"):
        promote_root_rotation(ca_dir, now=now)
    with pytest.raises(RotationError, match="plug-in CA"):
        finish_root_rotation(ca_dir, now=now)


def test_overlap_must_be_positive(ca_dir: Path, now: datetime) -> None:
    open_ca(ca_dir, now=now)
    with pytest.raises(RotationError, match="positive"):
        begin_root_rotation(ca_dir, timedelta(0), now=now)

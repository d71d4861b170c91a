"""When workloads renew (half their lifetime, with jitter) and what `gossamer check` will say
about each certificate (expired is an error, a root expiring within 30 days a warning)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gossamer.control.ca import Authority, Level, ca_health, cert_health, open_ca, renew_at
from tests.control.ca.support import Issue, WritePlugin

DAY_TTL = timedelta(hours=24)


def test_renews_at_half_life_without_jitter(
    authority: Authority, issue: Issue, now: datetime
) -> None:
    _, issued = issue(authority, now=now)
    leaf = issued.leaf
    half = leaf.not_valid_before_utc + (leaf.not_valid_after_utc - leaf.not_valid_before_utc) / 2
    assert renew_at(leaf, jitter=0) == half


def test_jitter_spreads_renewals_within_ten_percent(
    authority: Authority, issue: Issue, now: datetime
) -> None:
    _, issued = issue(authority, now=now)
    leaf = issued.leaf
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    rng = random.Random(7)
    moments = [renew_at(leaf, rng=rng) for _ in range(200)]
    earliest = leaf.not_valid_before_utc + lifetime * 0.4
    latest = leaf.not_valid_before_utc + lifetime * 0.6
    assert all(earliest <= m <= latest for m in moments)
    assert len(set(moments)) > 150  # a fleet issued together does not renew together
    assert min(moments) < leaf.not_valid_before_utc + lifetime * 0.45
    assert max(moments) > leaf.not_valid_before_utc + lifetime * 0.55
    assert renew_at(leaf, rng=random.Random(7)) == moments[0]  # seeded: reproducible


def test_two_minute_certs_renew_well_before_expiry(
    authority: Authority, issue: Issue, now: datetime
) -> None:
    _, issued = issue(authority, ttl=timedelta(minutes=2), now=now)
    moment = renew_at(issued.leaf, rng=random.Random(1))
    assert now + timedelta(seconds=40) <= moment <= now + timedelta(seconds=70)


@pytest.mark.parametrize(("fraction", "jitter"), [(0.5, -0.1), (0.95, 0.1), (0.05, 0.1), (1.0, 0)])
def test_impossible_schedules_are_refused(
    authority: Authority, issue: Issue, fraction: float, jitter: float
) -> None:
    _, issued = issue(authority)
    with pytest.raises(ValueError, match="fraction"):
        renew_at(issued.leaf, fraction=fraction, jitter=jitter)


def test_fresh_leaf_is_ok(authority: Authority, issue: Issue, now: datetime) -> None:
    _, issued = issue(authority, now=now)
    health = cert_health(issued.leaf, now)
    assert health.level is Level.OK
    assert health.name == "spiffe://cluster.local/ns/default/sa/reviews"
    assert health.serial == f"{issued.leaf.serial_number:x}"
    assert health.expires_in == DAY_TTL and not health.expired and not health.is_ca


def test_leaf_past_its_renewal_window_is_a_warning(
    authority: Authority, issue: Issue, now: datetime
) -> None:
    _, issued = issue(authority, now=now)
    health = cert_health(issued.leaf, now + timedelta(hours=20))
    assert health.level is Level.WARNING and "not renewed" in health.message


def test_expired_leaf_is_an_error(authority: Authority, issue: Issue, now: datetime) -> None:
    _, issued = issue(authority, now=now)
    health = cert_health(issued.leaf, now + DAY_TTL)
    assert health.expired and health.level is Level.ERROR
    assert health.expires_in == timedelta(0) and "expired" in health.message


def test_root_expiring_within_30_days_is_a_warning(ca_dir: Path, now: datetime) -> None:
    root = open_ca(ca_dir, now=now).cert
    assert cert_health(root, now).level is Level.OK
    month_left = root.not_valid_after_utc - timedelta(days=29)
    health = cert_health(root, month_left)
    assert health.is_ca and health.level is Level.WARNING and "rotate" in health.message
    assert health.name.startswith("CN=cluster.local root")
    assert cert_health(root, root.not_valid_after_utc).level is Level.ERROR


def test_ca_health_lists_the_plugin_chain(
    ca_dir: Path, now: datetime, write_plugin: WritePlugin
) -> None:
    plugin = write_plugin(intermediate_not_after=now + timedelta(days=10))
    report = ca_health(open_ca(ca_dir, now=now), now)
    assert [h.serial for h in report] == [
        f"{plugin.intermediate.serial_number:x}",
        f"{plugin.root.serial_number:x}",
    ]
    assert [h.level for h in report] == [Level.WARNING, Level.OK]
    assert report[0].name == "CN=Operator Intermediate,O=Operator"


def test_ca_health_of_a_self_signed_ca_names_each_root_once(ca_dir: Path, now: datetime) -> None:
    report = ca_health(open_ca(ca_dir, now=now), now)
    assert len(report) == 1 and report[0].is_ca and report[0].level is Level.OK

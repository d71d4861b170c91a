"""Go-style durations, as `--workload-cert-ttl` and `--overlap` take them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gossamer.control.ca.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("2m", timedelta(minutes=2)),
        ("24h", timedelta(hours=24)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(minutes=90)),
        ("500ms", timedelta(milliseconds=500)),
        ("0", timedelta(0)),
    ],
)
def test_go_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "2", "2x", "h", "-5m", "5 m", "1d", "m5"])
def test_anything_else_is_refused_with_examples(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_formatting_is_the_shortest_spelling() -> None:
    assert format_duration(timedelta(hours=24)) == "24h"
    assert format_duration(timedelta(seconds=90)) == "1m30s"
    assert format_duration(timedelta(0)) == "0s"
    assert parse_duration(format_duration(timedelta(hours=2, seconds=5))) == timedelta(
        hours=2, seconds=5
    )

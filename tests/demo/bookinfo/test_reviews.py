"""reviews: v1 shows no ratings, v2 black stars, v3 red; it passes the trace headers and
`end-user` on to ratings, and says ratings is unavailable when it is."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.demo.bookinfo.running import (
    RecordingServer,
    RecordingUpstream,
    Service,
    fetch,
    free_port,
    get_json,
    running,
    upstream_env,
)


@pytest.fixture(scope="module")
def ratings() -> Iterator[Service]:
    with running("ratings") as service:
        yield service


def ratings_of(body: object) -> list[object]:
    assert isinstance(body, dict)
    return [review.get("rating") for review in body["reviews"]]


def test_v1_does_not_show_ratings(ratings: Service) -> None:
    with running("reviews", "v1", upstream_env(ratings=ratings.port)) as reviews:
        status, body = get_json(reviews.url("/reviews/0"))
    assert status == 200
    assert isinstance(body, dict)
    assert body["id"] == "0" and body["version"] == "v1"
    assert {"podname", "clustername"} <= body.keys()
    assert [r["reviewer"] for r in body["reviews"]] == ["Reviewer1", "Reviewer2"]
    assert ratings_of(body) == [None, None]


@pytest.mark.parametrize(("version", "color"), [("v2", "black"), ("v3", "red")])
def test_v2_and_v3_show_stars_in_their_color(ratings: Service, version: str, color: str) -> None:
    with running("reviews", version, upstream_env(ratings=ratings.port)) as reviews:
        status, body = get_json(reviews.url("/reviews/0"))
    assert status == 200
    assert ratings_of(body) == [{"stars": 5, "color": color}, {"stars": 4, "color": color}]


def test_ratings_down_means_ratings_unavailable() -> None:
    with running("reviews", "v2", upstream_env(ratings=free_port())) as reviews:
        status, body = get_json(reviews.url("/reviews/0"))
    assert status == 200
    unavailable = {"error": "Ratings service is currently unavailable"}
    assert ratings_of(body) == [unavailable, unavailable]


async def test_forwarded_headers_reach_ratings() -> None:
    recorder = RecordingUpstream({"id": 0, "ratings": {"Reviewer1": 1, "Reviewer2": 2}})
    async with RecordingServer(recorder):
        with running("reviews", "v3", upstream_env(ratings=recorder.port)) as reviews:
            sent = {
                "x-request-id": "req-42",
                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
                "end-user": "jason",
                "x-not-forwarded": "nope",
            }
            status, _ = await fetch(reviews.url("/reviews/0"), sent)
    assert status == 200
    assert recorder.paths == ["/ratings/0"]
    [seen] = recorder.seen
    for name in ("x-request-id", "traceparent", "x-b3-traceid", "end-user"):
        assert seen[name] == sent[name]
    assert "x-not-forwarded" not in seen
    assert seen["host"] == f"127.0.0.1:{recorder.port}"


async def test_v3_gives_up_on_slow_ratings_after_its_timeout() -> None:
    slow = RecordingUpstream({"id": 0, "ratings": {"Reviewer1": 1}}, delay_s=4.0)
    async with RecordingServer(slow):
        with running("reviews", "v3", upstream_env(ratings=slow.port)) as reviews:
            started = time.monotonic()
            status, body = await fetch(reviews.url("/reviews/0"))
            took_s = time.monotonic() - started
    assert status == 200 and 2.4 < took_s < 3.9
    assert json.loads(body)["reviews"][0]["rating"] == {
        "error": "Ratings service is currently unavailable"
    }

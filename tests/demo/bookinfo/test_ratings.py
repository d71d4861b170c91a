"""ratings answers each reviewer's stars for a product."""

from __future__ import annotations

from tests.demo.bookinfo.running import get, get_json, running


def test_ratings_of_a_book() -> None:
    with running("ratings") as ratings:
        status, body = get_json(ratings.url("/ratings/0"))
        assert status == 200
        assert body == {"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
        assert get_json(ratings.url("/ratings/x"))[0] == 400
        assert get(ratings.url("/health")) == (200, '{"status": "Healthy"}')

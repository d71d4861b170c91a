"""details answers the sample's book facts and refuses ids that are not numbers."""

from __future__ import annotations

import time

from tests.demo.bookinfo.running import get, get_json, running


def test_details_of_a_book() -> None:
    with running("details") as details:
        status, body = get_json(details.url("/details/7"))
        assert status == 200
        assert body == {
            "id": 7,
            "author": "William Shakespeare",
            "year": 1595,
            "type": "paperback",
            "pages": 200,
            "publisher": "PublisherA",
            "language": "English",
            "ISBN-10": "1234567890",
            "ISBN-13": "123-1234567890",
        }
        status, body = get_json(details.url("/details/seven"))
        assert status == 400 and body == {"error": "please provide numeric product id"}
        assert get(details.url("/health"))[0] == 200
        assert get(details.url("/nothing-here"))[0] == 404


def test_each_request_is_logged_on_one_line() -> None:
    with running("details") as details:
        get(details.url("/details/3"))
        get(details.url("/details/x"))
        deadline = time.monotonic() + 5
        while "/details/x" not in details.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = details.log().splitlines()
    assert any('"GET /details/3" 200' in line for line in lines), lines
    assert any('"GET /details/x" 400' in line for line in lines), lines

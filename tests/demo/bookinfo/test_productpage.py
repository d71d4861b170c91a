"""productpage end to end over real details, reviews and ratings processes; in-test recording
upstreams check what it forwards, and a recording proxy checks it honours `http_proxy`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import aiohttp
import pytest

from tests.demo.bookinfo.running import (
    RecordingServer,
    RecordingUpstream,
    Service,
    fetch,
    free_port,
    get,
    get_json,
    running,
    upstream_env,
)

REVIEWS_MARKER = '<div class="reviews" data-reviews-version="{}">'
REVIEWS_BODY = {
    "id": "0",
    "podname": "reviews-v2-test",
    "clustername": "null",
    "version": "v2",
    "reviews": [
        {"reviewer": "Reviewer1", "text": "Fine.", "rating": {"stars": 3, "color": "black"}}
    ],
}


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, Service]]:
    with running("ratings") as ratings, running("details") as details:
        to_ratings = upstream_env(ratings=ratings.port)
        with (
            running("reviews", "v1", to_ratings) as v1,
            running("reviews", "v2", to_ratings) as v2,
            running("reviews", "v3", to_ratings) as v3,
        ):
            yield {"ratings": ratings, "details": details, "v1": v1, "v2": v2, "v3": v3}


def productpage_env(backends: dict[str, Service], reviews: str) -> dict[str, str]:
    return upstream_env(
        details=backends["details"].port,
        reviews=backends[reviews].port,
        ratings=backends["ratings"].port,
    )


def test_page_shows_details_and_v1_reviews_without_stars(backends: dict[str, Service]) -> None:
    with running("productpage", env=productpage_env(backends, "v1")) as page:
        status, html = get(page.url("/productpage"))
    assert status == 200
    assert "The Comedy of Errors" in html and "William Shakespeare" in html
    assert "1234567890" in html
    assert REVIEWS_MARKER.format("v1") in html
    assert "An extremely entertaining play by Shakespeare" in html
    assert "★" not in html


@pytest.mark.parametrize(("version", "color"), [("v2", "black"), ("v3", "red")])
def test_page_shows_stars_in_the_reviews_version_color(
    backends: dict[str, Service], version: str, color: str
) -> None:
    with running("productpage", env=productpage_env(backends, version)) as page:
        status, html = get(page.url("/productpage"))
    assert status == 200
    assert REVIEWS_MARKER.format(version) in html
    assert f'<span class="stars" data-stars="5" style="color: {color}">★★★★★</span>' in html
    assert f'<span class="stars" data-stars="4" style="color: {color}">★★★★☆</span>' in html


def test_json_api(backends: dict[str, Service]) -> None:
    with running("productpage", env=productpage_env(backends, "v3")) as page:
        status, products = get_json(page.url("/api/v1/products"))
        assert status == 200 and isinstance(products, list)
        assert products[0]["id"] == 0 and products[0]["title"] == "The Comedy of Errors"
        status, details = get_json(page.url("/api/v1/products/0"))
        assert status == 200 and isinstance(details, dict) and details["pages"] == 200
        status, reviews = get_json(page.url("/api/v1/products/0/reviews"))
        assert status == 200 and isinstance(reviews, dict)
        assert reviews["reviews"][0]["rating"] == {"stars": 5, "color": "red"}
        status, ratings = get_json(page.url("/api/v1/products/0/ratings"))
        assert status == 200 and ratings == {"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
        assert get(page.url("/"))[0] == 200
        assert get(page.url("/health"))[0] == 200


def test_ratings_down_shows_ratings_unavailable(backends: dict[str, Service]) -> None:
    with running("reviews", "v2", upstream_env(ratings=free_port())) as reviews:
        env = productpage_env(backends, "v1") | upstream_env(reviews=reviews.port)
        with running("productpage", env=env) as page:
            status, html = get(page.url("/productpage"))
    assert status == 200
    assert REVIEWS_MARKER.format("v2") in html
    assert "Ratings service is currently unavailable" in html


def test_reviews_and_details_down_still_render_the_page() -> None:
    env = upstream_env(details=free_port(), reviews=free_port(), ratings=free_port())
    with running("productpage", env=env) as page:
        status, html = get(page.url("/productpage"))
        api_status, _ = get(page.url("/api/v1/products/0/reviews"))
    assert status == 200
    assert "Sorry, product reviews are currently unavailable for this book." in html
    assert "Sorry, product details are currently unavailable for this book." in html
    assert REVIEWS_MARKER.format("unavailable") in html
    assert api_status == 503


async def test_signed_in_user_goes_upstream_as_end_user_with_trace_headers() -> None:
    reviews = RecordingUpstream(REVIEWS_BODY)
    details = RecordingUpstream({"id": 0, "author": "Someone"})
    async with RecordingServer(reviews), RecordingServer(details):
        env = upstream_env(reviews=reviews.port, details=details.port, ratings=free_port())
        with running("productpage", env=env) as page:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
                async with browser.post(
                    page.url("/login"), data={"username": "jason"}, allow_redirects=False
                ) as login:
                    assert login.status == 302
                    assert login.headers["Location"] == "/productpage"
                    assert login.cookies["user"].value == "jason"
                trace = {
                    "x-request-id": "req-7",
                    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                    "x-b3-sampled": "1",
                }
                async with browser.get(page.url("/productpage"), headers=trace) as signed_in:
                    assert signed_in.status == 200
                    html = await signed_in.text()
                async with browser.get(page.url("/logout"), allow_redirects=False) as logout:
                    assert logout.status == 302
                async with browser.get(page.url("/productpage")) as signed_out:
                    assert signed_out.status == 200
    assert "Signed in as jason" in html and REVIEWS_MARKER.format("v2") in html
    assert "★★★☆☆" in html
    assert reviews.paths == ["/reviews/0", "/reviews/0"] and details.paths == ["/details/0"] * 2
    for seen in (reviews.seen[0], details.seen[0]):
        assert seen["end-user"] == "jason"
        for name, value in trace.items():
            assert seen[name] == value
    assert "end-user" not in reviews.seen[1]


async def test_upstream_calls_go_through_http_proxy_in_absolute_form() -> None:
    request_lines: list[str] = []
    details_json = json.dumps({"id": 0, "author": "Proxied"}).encode()

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_lines.append(head.split(b"\r\n", 1)[0].decode())
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(details_json), details_json)
        )
        await writer.drain()
        writer.close()

    proxy_port = free_port()
    server = await asyncio.start_server(proxy, "127.0.0.1", proxy_port)
    try:
        env = {"http_proxy": f"http://127.0.0.1:{proxy_port}"}
        with running("productpage", env=env) as page:
            status, body = await fetch(page.url("/api/v1/products/0"))
    finally:
        server.close()
        await server.wait_closed()
    assert status == 200 and json.loads(body) == {"id": 0, "author": "Proxied"}
    assert request_lines == ["GET http://details:9080/details/0 HTTP/1.1"]

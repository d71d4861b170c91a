"""productpage: the page people see, composed from details and reviews (Istio's sample).

Sign-in is a `user` cookie (POST /login with form field `username`); when set, calls to
details and reviews carry `end-user: <user>`, which is what jason's header routing matches.
Each upstream call has a 3 s timeout and no retry; a failed call still renders the page (200)
with the sample's apology instead of that block.

The HTML marks the reviews block for tests: `<div class="reviews" data-reviews-version="vN">`
(the version reviews reported, or `unavailable`).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from aiohttp import web

from gossamer.demo.bookinfo.plumbing import (
    CLIENT,
    Reply,
    Upstream,
    add_client,
    forwarded,
    get_json,
    new_app,
)

DETAILS_UNAVAILABLE = "Sorry, product details are currently unavailable for this book."
REVIEWS_UNAVAILABLE = "Sorry, product reviews are currently unavailable for this book."
RATINGS_UNAVAILABLE = "Sorry, product ratings are currently unavailable for this book."
PRODUCT_ID = 0
PRODUCT = {
    "id": PRODUCT_ID,
    "title": "The Comedy of Errors",
    "descriptionHtml": (
        '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: '
        "The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his "
        "shortest and one of his most farcical comedies, with a major part of the humour "
        "coming from slapstick and mistaken identity, in addition to puns and word play."
    ),
}
DETAILS_KEY = web.AppKey("details", Upstream)
REVIEWS_KEY = web.AppKey("reviews", Upstream)
RATINGS_KEY = web.AppKey("ratings", Upstream)


def outgoing_headers(request: web.Request) -> dict[str, str]:
    """The forwarded headers, plus `end-user` from the sign-in cookie."""
    headers = forwarded(request.headers)
    user = request.cookies.get("user")
    if user:
        headers["end-user"] = user
    return headers


async def ask(request: web.Request, key: web.AppKey[Upstream], path: str) -> Reply:
    return await get_json(request.app[CLIENT], request.app[key], path, outgoing_headers(request))


def product_id_of(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise web.HTTPBadRequest(text="please provide numeric product id") from None


async def products(_request: web.Request) -> web.Response:
    return web.json_response([PRODUCT])


async def api_details(request: web.Request) -> web.Response:
    reply = await ask(request, DETAILS_KEY, f"/details/{product_id_of(request)}")
    if reply.ok:
        return web.json_response(reply.body)
    return web.json_response({"error": DETAILS_UNAVAILABLE}, status=reply.status or 503)


async def api_reviews(request: web.Request) -> web.Response:
    reply = await ask(request, REVIEWS_KEY, f"/reviews/{product_id_of(request)}")
    if reply.ok:
        return web.json_response(reply.body)
    return web.json_response({"error": REVIEWS_UNAVAILABLE}, status=reply.status or 503)


async def api_ratings(request: web.Request) -> web.Response:
    reply = await ask(request, RATINGS_KEY, f"/ratings/{product_id_of(request)}")
    if reply.ok:
        return web.json_response(reply.body)
    return web.json_response({"error": RATINGS_UNAVAILABLE}, status=reply.status or 503)


def details_html(reply: Reply) -> str:
    if not reply.ok or not isinstance(reply.body, Mapping):
        return (
            '<div class="details"><h4>Error fetching product details!</h4>'
            f"<p>{DETAILS_UNAVAILABLE}</p></div>"
        )
    rows = "".join(
        f"<dt>{escape(str(key))}:</dt><dd>{escape(str(value))}</dd>"
        for key, value in reply.body.items()
        if key != "id"
    )
    return f'<div class="details"><h4>Book Details</h4><dl>{rows}</dl></div>'


def rating_html(rating: object) -> str:
    if not isinstance(rating, Mapping):
        return ""
    if "error" in rating:
        return f'<p class="rating-error">{escape(str(rating["error"]))}</p>'
    stars = int(rating.get("stars", 0))
    color = escape(str(rating.get("color", "black")))
    shown = "★" * stars + "☆" * max(0, 5 - stars)
    return f'<span class="stars" data-stars="{stars}" style="color: {color}">{shown}</span>'


def reviews_html(reply: Reply) -> str:
    body = reply.body
    if not reply.ok or not isinstance(body, Mapping):
        return (
            '<div class="reviews" data-reviews-version="unavailable">'
            f"<h4>Error fetching product reviews!</h4><p>{REVIEWS_UNAVAILABLE}</p></div>"
        )
    version = escape(str(body.get("version", "unknown")))
    parts = [f'<div class="reviews" data-reviews-version="{version}"><h4>Book Reviews</h4>']
    entries = body.get("reviews")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        parts.append(
            f"<blockquote><p>{escape(str(entry.get('text', '')))}</p>"
            f"<small>{escape(str(entry.get('reviewer', '')))}</small>"
            f"{rating_html(entry.get('rating'))}</blockquote>"
        )
    parts.append(f"<p>Reviews served by: <u>{escape(str(body.get('podname', '')))}</u></p></div>")
    return "".join(parts)


async def product_page(request: web.Request) -> web.Response:
    product_id = PRODUCT_ID  # the sample always shows product 0
    details = await ask(request, DETAILS_KEY, f"/details/{product_id}")
    reviews = await ask(request, REVIEWS_KEY, f"/reviews/{product_id}")
    user = request.cookies.get("user")
    signed_in = (
        f'<p class="user">Signed in as {escape(user)} <a href="/logout">sign out</a></p>'
        if user
        else '<form method="post" action="/login"><input name="username">'
        '<input type="password" name="passwd"><button>Sign in</button></form>'
    )
    page = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Simple Bookstore App</title>'
        f"</head><body><h1>BookInfo Sample</h1>{signed_in}"
        f"<h2>{escape(str(PRODUCT['title']))}</h2><p>{PRODUCT['descriptionHtml']}</p>"
        f"{details_html(details)}{reviews_html(reviews)}</body></html>"
    )
    return web.Response(text=page, content_type="text/html")


async def index(_request: web.Request) -> web.Response:
    page = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Simple Bookstore App</title>'
        '</head><body><h1>Simple Bookstore App</h1><a href="/productpage?u=normal">Normal user'
        '</a> <a href="/productpage?u=test">Test user</a></body></html>'
    )
    return web.Response(text=page, content_type="text/html")


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    user = str(form.get("username", "")).strip()
    response = web.HTTPFound("/productpage")
    if user:
        response.set_cookie("user", user, path="/")
    return response


async def logout(_request: web.Request) -> web.StreamResponse:
    response = web.HTTPFound("/productpage")
    response.del_cookie("user", path="/")
    return response


def build(version: str = "v1") -> web.Application:
    app = new_app("productpage", version)
    app[DETAILS_KEY] = Upstream.from_env("details")
    app[REVIEWS_KEY] = Upstream.from_env("reviews")
    app[RATINGS_KEY] = Upstream.from_env("ratings")
    add_client(app)
    app.router.add_get("/", index)
    app.router.add_get("/productpage", product_page)
    app.router.add_post("/login", login)
    app.router.add_get("/logout", logout)
    app.router.add_get("/api/v1/products", products)
    app.router.add_get("/api/v1/products/{id}", api_details)
    app.router.add_get("/api/v1/products/{id}/reviews", api_reviews)
    app.router.add_get("/api/v1/products/{id}/ratings", api_ratings)
    return app

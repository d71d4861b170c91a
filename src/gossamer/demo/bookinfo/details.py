"""details: the book's bibliographic facts, `GET /details/<id>` (Istio's sample shape)."""

from __future__ import annotations

from aiohttp import web

from gossamer.demo.bookinfo.plumbing import new_app


def book_details(product_id: int) -> dict[str, object]:
    """Every id describes the same book, as in the sample."""
    return {
        "id": product_id,
        "author": "William Shakespeare",
        "year": 1595,
        "type": "paperback",
        "pages": 200,
        "publisher": "PublisherA",
        "language": "English",
        "ISBN-10": "1234567890",
        "ISBN-13": "123-1234567890",
    }


async def details(request: web.Request) -> web.Response:
    try:
        product_id = int(request.match_info["id"])
    except ValueError:
        return web.json_response({"error": "please provide numeric product id"}, status=400)
    return web.json_response(book_details(product_id))


def build(version: str = "v1") -> web.Application:
    app = new_app("details", version)
    app.router.add_get("/details/{id}", details)
    return app

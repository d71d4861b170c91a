"""ratings: the stars each reviewer gave, `GET /ratings/<id>` (Istio's sample shape)."""

from __future__ import annotations

from aiohttp import web

from gossamer.demo.bookinfo.plumbing import new_app

STARS_BY_REVIEWER: dict[str, int] = {"Reviewer1": 5, "Reviewer2": 4}


async def ratings(request: web.Request) -> web.Response:
    try:
        product_id = int(request.match_info["id"])
    except ValueError:
        return web.json_response({"error": "please provide numeric product id"}, status=400)
    return web.json_response({"id": product_id, "ratings": dict(STARS_BY_REVIEWER)})


def build(version: str = "v1") -> web.Application:
    app = new_app("ratings", version)
    app.router.add_get("/ratings/{id}", ratings)
    return app

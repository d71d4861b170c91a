"""reviews: two reviews of the book; v1 without ratings, v2 with black stars, v3 with red.

v2 and v3 ask ratings and pass on the forwarded headers, with the sample's timeouts: 10 s for
v2, 2.5 s for v3, no retry (so ratings delayed 7 s makes productpage's 3 s timeout fire on v2,
as Istio's fault-injection task shows, while v3 answers in time). When ratings does not answer
200, each review carries `rating: {error: ...}` instead of stars. Beyond the sample's fields
the JSON has `version`, so productpage can say which version answered.
"""

from __future__ import annotations

from aiohttp import web

from gossamer.demo.bookinfo.plumbing import (
    CLIENT,
    VERSION,
    Upstream,
    add_client,
    forwarded,
    get_json,
    new_app,
    pod_name,
)

RATINGS_UNAVAILABLE = "Ratings service is currently unavailable"
STAR_COLOR = {"v2": "black", "v3": "red"}
RATINGS_TIMEOUT_S = {"v2": 10.0, "v3": 2.5}
REVIEWS: tuple[tuple[str, str], ...] = (
    (
        "Reviewer1",
        "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!",
    ),
    (
        "Reviewer2",
        "Absolutely fun and entertaining. The play lacks thematic depth when compared to other "
        "plays by Shakespeare.",
    ),
)
RATINGS_KEY = web.AppKey("ratings", Upstream)


async def reviews(request: web.Request) -> web.Response:
    raw_id = request.match_info["id"]
    try:
        product_id = int(raw_id)
    except ValueError:
        return web.json_response({"error": "please provide numeric product id"}, status=400)
    version = request.app[VERSION]
    color = STAR_COLOR.get(version)
    stars: dict[str, object] = {}
    ratings_ok = False
    if color is not None:
        reply = await get_json(
            request.app[CLIENT],
            request.app[RATINGS_KEY],
            f"/ratings/{product_id}",
            forwarded(request.headers),
            RATINGS_TIMEOUT_S[version],
        )
        if reply.ok and isinstance(reply.body, dict):
            found = reply.body.get("ratings")
            if isinstance(found, dict):
                stars, ratings_ok = found, True
    entries: list[dict[str, object]] = []
    for reviewer, text in REVIEWS:
        entry: dict[str, object] = {"reviewer": reviewer, "text": text}
        if color is not None:
            if ratings_ok:
                entry["rating"] = {"stars": stars.get(reviewer, 0), "color": color}
            else:
                entry["rating"] = {"error": RATINGS_UNAVAILABLE}
        entries.append(entry)
    return web.json_response(
        {
            "id": raw_id,
            "podname": pod_name("reviews", version),
            "clustername": "null",
            "version": version,
            "reviews": entries,
        }
    )


def build(version: str = "v1") -> web.Application:
    app = new_app("reviews", version)
    app[RATINGS_KEY] = Upstream.from_env("ratings")
    if version in STAR_COLOR:
        add_client(app)
    app.router.add_get("/reviews/{id}", reviews)
    return app

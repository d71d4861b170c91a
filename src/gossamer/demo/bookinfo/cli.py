"""Runs one Bookinfo service in this process until it is signalled."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence

from aiohttp import web

from gossamer.demo.bookinfo import details, productpage, ratings, reviews

BUILDERS: dict[str, Callable[[str], web.Application]] = {
    "productpage": productpage.build,
    "details": details.build,
    "reviews": reviews.build,
    "ratings": ratings.build,
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gossamer.demo.bookinfo")
    parser.add_argument("service", choices=sorted(BUILDERS))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "9080")))
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument(
        "--version",
        default=os.environ.get("SERVICE_VERSION", "v1"),
        help="v1, v2 or v3 (only reviews differs by version)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    app = BUILDERS[args.service](args.version)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)

"""Where services find each other, and which headers they pass on."""

from __future__ import annotations

from gossamer.demo.bookinfo.plumbing import Upstream, forwarded


def test_dependencies_are_called_by_service_name_on_9080_by_default() -> None:
    assert Upstream.from_env("details", {}).url("/details/0") == "http://details:9080/details/0"


def test_hostname_and_port_can_be_overridden_as_in_the_sample() -> None:
    env = {"RATINGS_HOSTNAME": "127.0.0.1", "RATINGS_SERVICE_PORT": "18080"}
    assert Upstream.from_env("ratings", env).url("/ratings/1") == "http://127.0.0.1:18080/ratings/1"


def test_only_tracing_identity_and_user_headers_are_forwarded() -> None:
    incoming = {
        "x-request-id": "r",
        "traceparent": "t",
        "tracestate": "s",
        "b3": "b",
        "x-b3-spanid": "x",
        "end-user": "jason",
        "user-agent": "curl",
        "cookie": "user=jason",
        "authorization": "secret",
        "content-length": "0",
    }
    assert forwarded(incoming) == {
        key: incoming[key]
        for key in (
            "x-request-id",
            "traceparent",
            "tracestate",
            "b3",
            "x-b3-spanid",
            "end-user",
            "user-agent",
            "cookie",
        )
    }

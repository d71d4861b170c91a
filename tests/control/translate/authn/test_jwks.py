"""jwksUri resolution: the control plane reads files and fetches from loopback only, inlines
what it got, and turns any failure into a JWKS no token can satisfy (never an open door)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gossamer.control.translate.authn import UNUSABLE_JWKS, JwksResolver
from gossamer.control.translate.authn.jwks import CACHE_SECONDS, RETRY_SECONDS
from tests.proxy.authn.issuers import Issuer

A = Issuer("https://a.example")
TIMEOUT = timedelta(seconds=2)


class _Keys(BaseHTTPRequestHandler):
    served: list[str] = []

    def do_GET(self) -> None:
        _Keys.served.append(self.path)
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("location", "http://203.0.113.1/keys")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        body = A.jwks().encode() if self.path == "/keys" else b"not json"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Keys)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_file_uri_is_read(tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text(A.jwks())
    assert JwksResolver().jwks_for(f"file://{tmp_path}/keys.json", TIMEOUT) == A.jwks()


def test_missing_file_gives_the_unusable_jwks(tmp_path: Path) -> None:
    resolver = JwksResolver()
    uri = f"file://{tmp_path}/absent.json"
    assert resolver.jwks_for(uri, TIMEOUT) == UNUSABLE_JWKS
    assert "cannot read" in resolver.error_for(uri)


def test_loopback_http_is_fetched_once_then_cached(server: str) -> None:
    resolver = JwksResolver()
    _Keys.served.clear()
    assert resolver.jwks_for(server + "/keys", TIMEOUT, now=0) == A.jwks()
    assert resolver.jwks_for(server + "/keys", TIMEOUT, now=CACHE_SECONDS - 1) == A.jwks()
    assert _Keys.served == ["/keys"]
    resolver.jwks_for(server + "/keys", TIMEOUT, now=CACHE_SECONDS + 1)
    assert _Keys.served == ["/keys", "/keys"]  # refreshed after the cache period


def test_not_a_jwks_and_redirects_are_refused(server: str) -> None:
    resolver = JwksResolver()
    assert resolver.jwks_for(server + "/junk", TIMEOUT, now=0) == UNUSABLE_JWKS
    assert "not JSON" in resolver.error_for(server + "/junk")
    assert resolver.jwks_for(server + "/moved", TIMEOUT, now=0) == UNUSABLE_JWKS
    assert "302" in resolver.error_for(server + "/moved")


def test_hosts_off_this_machine_are_never_contacted() -> None:
    resolver = JwksResolver()
    for uri in ("https://www.googleapis.com/oauth2/v3/certs", "http://10.0.0.1/keys"):
        assert resolver.jwks_for(uri, TIMEOUT, now=0) == UNUSABLE_JWKS
        assert "outside this machine" in resolver.error_for(uri)


def test_a_failure_is_retried_after_a_while(tmp_path: Path) -> None:
    resolver = JwksResolver()
    uri = f"file://{tmp_path}/later.json"
    assert resolver.jwks_for(uri, TIMEOUT, now=0) == UNUSABLE_JWKS
    (tmp_path / "later.json").write_text(A.jwks())
    assert resolver.jwks_for(uri, TIMEOUT, now=RETRY_SECONDS - 1) == UNUSABLE_JWKS
    assert resolver.jwks_for(uri, TIMEOUT, now=RETRY_SECONDS + 1) == A.jwks()


def test_unusable_jwks_is_a_valid_key_set() -> None:
    keys = json.loads(UNUSABLE_JWKS)["keys"]
    assert [(k["kty"], k["alg"]) for k in keys] == [("EC", "ES256")]
    assert "d" not in keys[0]  # no private part

"""The CLI's only way to the control plane: its REST API, with the token from the state dir."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SERVER = "http://127.0.0.1:15080"


class ApiFailure(Exception):
    """The API answered with an error (status ≥ 400) or could not be reached (status 0)."""

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body or {}

    @property
    def findings(self) -> list[dict[str, Any]]:
        return list(self.body.get("error", {}).get("findings", []))


def home() -> Path:
    return Path(os.environ.get("GOSSAMER_HOME") or Path.home() / ".gossamer")


def read_token() -> str:
    token = os.environ.get("GOSSAMER_TOKEN")
    if token:
        return token.strip()
    path = home() / "token"
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def announced_server(state_dir: Path) -> str | None:
    """The API address in runtime.json (a running `gossamer up`) or controlplane.json."""
    for name in ("runtime.json", "controlplane.json"):
        try:
            api = json.loads((state_dir / name).read_text()).get("api")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(api, str) and api:
            return api
    return None


@dataclass
class ApiClient:
    server: str = DEFAULT_SERVER
    token: str = ""
    timeout: float = 30.0

    @classmethod
    def from_env(cls, server: str | None = None) -> ApiClient:
        """--server, else $GOSSAMER_SERVER, else the API a running `up`/`controlplane` on this
        home announced (it may have bound any port), else the default."""
        chosen = server or os.environ.get("GOSSAMER_SERVER") or announced_server(home())
        return cls(chosen or DEFAULT_SERVER, read_token())

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> Any:
        url = self.server.rstrip("/") + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v})
        req = urllib.request.Request(url, data=body, method=method)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        if body is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = {"error": {"message": raw.decode(errors="replace")}}
            message = payload.get("error", {}).get("message", exc.reason)
            raise ApiFailure(exc.code, str(message), payload) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiFailure(
                0,
                f"cannot reach the control plane at {self.server} ({reason}); "
                "is `gossamer controlplane` (or `gossamer up`) running?",
            ) from None

    def get(self, path: str, **query: str) -> Any:
        return self.request("GET", path, query=query)

    def post_text(self, path: str, text: str, **query: str) -> Any:
        return self.request(
            "POST", path, body=text.encode(), content_type="application/yaml", query=query
        )

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

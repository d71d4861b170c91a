"""`gossamer up` as an ordinary user: no namespaces, no iptables, the same demo in explicit mode
(each pod on its own 127.231.x address, apps sending through HTTP_PROXY)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import gossamer_argv
from tests.e2e.mesh.bookinfo import leftovers, product_page, versions

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("setpriv"),
        reason="switching to an unprivileged user needs root and setpriv",
    ),
]


def as_nobody(home: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "GOSSAMER_HOME": str(home)}
    env.pop("GOSSAMER_SERVER", None)
    return subprocess.run(
        [*NOBODY, *gossamer_argv(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def home() -> Iterator[Path]:
    """A home the unprivileged user can reach (pytest's own tmp root is private to root)."""
    with tempfile.TemporaryDirectory(prefix="gossamer-nobody-") as directory:
        path = Path(directory)
        path.chmod(0o777)
        yield path


def test_up_without_root_runs_the_demo_in_explicit_mode(home: Path) -> None:
    readable = subprocess.run(
        [*NOBODY, sys.executable, "-c", "import gossamer"], capture_output=True, check=False
    )
    if readable.returncode != 0:
        pytest.skip("this checkout is not readable by an unprivileged user")
    started = as_nobody(
        home, "up", "--detach", "--xds-port", "0", "--api-port", "0", "--ca-port", "0"
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert "explicit mode" in started.stderr
        pods = json.loads(as_nobody(home, "get", "pods", "-o", "json").stdout)
        assert len(pods) == 6 and all(p["ip"].startswith("127.231.") for p in pods), pods
        assert all(p["mode"] == "explicit" and p["ready"] for p in pods), pods
        assert set(versions(60)) == {"v1", "v2", "v3"}
        fetched = as_nobody(home, "run", "--", sys.executable, "-c", _FETCH_REVIEWS)
        assert fetched.returncode == 0 and fetched.stdout.startswith("reviews-v"), fetched
    finally:
        stopped = as_nobody(home, "down", timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert product_page().status == 0
    assert leftovers() == {k: [] for k in leftovers()}


_FETCH_REVIEWS = (
    "import json, urllib.request\n"
    "body = urllib.request.urlopen('http://reviews:9080/reviews/0', timeout=10).read()\n"
    "print(json.loads(body)['podname'])\n"
)

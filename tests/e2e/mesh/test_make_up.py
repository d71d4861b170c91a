"""The README's first command from a fresh clone: `make up` (detached here) builds its own venv,
starts the demo mesh, and the product page answers on 127.0.0.1:8080."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.mesh.bookinfo import leftovers, product_page

REPO = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("make") or not (REPO / ".git").exists(),
        reason="needs root (netns pods), make and a git checkout",
    ),
]


def test_make_up_from_a_fresh_clone_serves_the_product_page(tmp_path: Path) -> None:
    clone = tmp_path / "gossamer"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    env = {**os.environ, "GOSSAMER_HOME": str(tmp_path / "home")}
    for key in ("VIRTUAL_ENV", "GOSSAMER_SERVER", "MAKEFLAGS", "MAKELEVEL"):
        env.pop(key, None)
    assert leftovers() == {k: [] for k in leftovers()}, "another mesh runs on this machine"
    try:
        result = subprocess.run(
            ["make", "-C", str(clone), "up", "UP_FLAGS=--detach"],
            env=env,
            capture_output=True,
            text=True,
            timeout=840,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "http://127.0.0.1:8080/productpage" in result.stdout
        page = product_page()
        assert page.ok, page
    finally:
        down = subprocess.run(
            [str(clone / ".venv" / "bin" / "gossamer"), "down"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert down.returncode == 0, down.stdout + down.stderr
    assert leftovers() == {k: [] for k in leftovers()}

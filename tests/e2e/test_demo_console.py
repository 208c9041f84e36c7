"""`tier2 demo console`: one command after the demo serves the console on its store."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tier2.devtools.demo import run_company
from tier2.entrypoints.cli.demo import DEMO_PASSWORD, _demo_users


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_the_demo_console_signs_in_a_demo_user_and_shows_the_overview(tmp_path: Path) -> None:
    """After the demo, `tier2 demo console` serves its store; head signs in and sees the KPI."""
    run_company(tmp_path, "Northwind Cloud", "saas", n=30, seed=4)
    _demo_users(tmp_path / "saas.db")
    port = _port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tier2", "demo", "console", "--dir", str(tmp_path),
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    page = client.get("/login")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the console did not start"
                    time.sleep(0.2)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            overview = client.post(
                "/login",
                data={"csrf_token": token.group(1), "name": "head", "password": DEMO_PASSWORD,
                      "next": "/"},
                follow_redirects=True,
            )  # fmt: skip
            assert overview.status_code == 200
            assert "Median cycle time" in overview.text and "head_of_support" in overview.text
    finally:
        server.terminate()
        server.wait(timeout=20)

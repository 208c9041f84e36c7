"""`tier2 serve`'s console: its secret, its users (`tier2 user add`), and the follow-up
that records a case's final resolution once a person resolved it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.integration.console.conftest import SECRET, TOKEN, World, csrf_of, sign_in
from tier2.core.library import Library
from tier2.entrypoints import bootstrap
from tier2.entrypoints.cli.run import web_console
from tier2.entrypoints.config import Config, ConsoleConfig
from tier2.entrypoints.http import create_app
from tier2.entrypoints.http.console import (
    ConsoleSecretError,
    ConsoleSettings,
    console_settings,
)
from tier2.helpdesk.local import LocalHelpDesk
from tier2.store import models as m
from tier2.store.db import make_engine


def test_the_console_needs_a_session_secret_of_32_bytes() -> None:
    """Without the secret the console is off (or refused when asked for); a short one is
    refused; the variable is the one [console] names."""
    assert console_settings(ConsoleConfig(), {}) is None
    with pytest.raises(ConsoleSecretError, match="TIER2_SESSION_SECRET is not set"):
        console_settings(ConsoleConfig(enabled=True), {})
    with pytest.raises(ConsoleSecretError, match="shorter than 32 bytes"):
        console_settings(ConsoleConfig(), {"TIER2_SESSION_SECRET": "short"})
    named = ConsoleConfig(session_secret_env="MY_SECRET", secure_cookies=True)
    found = console_settings(named, {"MY_SECRET": SECRET})
    assert found is not None and found.secret == SECRET and found.secure_cookies
    assert console_settings(ConsoleConfig(enabled=False), {"TIER2_SESSION_SECRET": SECRET}) is None


def _tier2(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tier2", *args], input=stdin, capture_output=True, text=True,
        env={**os.environ, **env}, timeout=120, check=False,
    )  # fmt: skip


def test_user_add_stores_an_argon2_hash(tmp_path: Path) -> None:
    """`tier2 user add --password-stdin`: the user with their role and team, the password only
    as an argon2 hash; a short password, a senior without a team and an unknown role are one
    line each."""
    db = str(tmp_path / "users.db")
    done = _tier2("user", "add", "sam", "--role", "senior", "--team", "senior_support",
                  "--password-stdin", "--db", db, env={}, stdin="a long enough password\n")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "user sam added: senior of senior_support\n"
    with Session(make_engine(f"sqlite:///{db}")) as session:
        user = session.get(m.User, "sam")
        assert user is not None and user.password_hash.startswith("$argon2id$")
        assert "a long enough password" not in user.password_hash
    for args, stdin, said in [
        (("sam", "--role", "viewer"), "short\n", "password: a password of at least 12"),
        (("ann", "--role", "senior"), "a long enough password\n", "--team"),
        (("ann", "--role", "boss"), "a long enough password\n", "--role: one of"),
    ]:
        refused = _tier2("user", "add", *args, "--password-stdin", "--db", db, env={}, stdin=stdin)
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr
        assert len(refused.stderr.splitlines()) == 1
    listed = _tier2("user", "list", "--db", db, env={})
    assert listed.stdout == "sam: senior of senior_support\n"


def test_serve_refuses_to_start_the_console_without_its_secret(tmp_path: Path) -> None:
    """`tier2 serve --console` without TIER2_SESSION_SECRET: one line, exit 2."""
    env = {"TIER2_API_TOKENS": TOKEN, "TIER2_SESSION_SECRET": ""}
    done = _tier2("serve", "--console", "--port", "0", "--db", str(tmp_path / "x.db"), env=env)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        next(line for line in done.stderr.splitlines() if "TIER2_SESSION_SECRET is not set" in line)
    ]


def test_a_resolution_is_followed_up_at_once(
    template_store: Path, tmp_path: Path, saas: Library
) -> None:
    """As `tier2 serve` wires it, resolving a case records its final resolution on the case
    (by a human, with its cycle time) without waiting for the next SLA scan."""
    path = tmp_path / "serve.db"
    shutil.copy(template_store, path)
    engine = make_engine(f"sqlite:///{path}")
    deployment = bootstrap.Deployment(Config(), "saas", saas, engine, LocalHelpDesk(engine))
    console = web_console(deployment, ConsoleSettings(secret=SECRET))
    client = TestClient(create_app(saas, engine, [TOKEN], console=console))
    world = World(engine, saas, client, console)
    case_id = world.escalated()[0]
    sign_in(client, "sam")
    token = csrf_of(client.get(f"/queue/{case_id}"))
    done = client.post(f"/queue/{case_id}/resolve",
                       data={"csrf_token": token, "summary": "Done.", "role": "senior_support"})  # fmt: skip
    assert done.status_code == 200, done.text[:300]
    with Session(engine) as session:
        case = session.get(m.Case, case_id)
        assert case is not None and case.resolved_by == "human"
        assert case.resolved_at is not None
        assert abs(case.resolved_at - datetime.now(UTC)) < timedelta(minutes=5)
    engine.dispose()

"""The console over a real store: the saas library, a local help desk with 40 cases that
`tier2 run` decided, and four users (a head of support, a senior of senior_support, a
senior of finance, a viewer). The store is made once and copied for each test."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.integration.runner.test_runner import make_store
from tier2.core.library import Library
from tier2.entrypoints.http import create_app
from tier2.entrypoints.http.console import Console, ConsoleSettings
from tier2.entrypoints.http.console._security import hash_password
from tier2.helpdesk.local import LocalHelpDesk
from tier2.store import models as m
from tier2.store.console import save_user
from tier2.store.db import make_engine

SECRET = "console-session-secret-for-the-tests-0123456789"
TOKEN = "console-api-token-0123456789"
PASSWORD = "correct horse battery staple"
USERS = {
    "hana": ("head_of_support", None),
    "sam": ("senior", "senior_support"),
    "fin": ("senior", "finance"),
    "vic": ("viewer", None),
}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session")
def template_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("console") / "template.db"
    engine, _, runner = make_store(f"sqlite:///{path}", n=40)
    runner.run_once()
    now = datetime.now(UTC)
    hashed = hash_password(PASSWORD)
    for name, (role, team) in USERS.items():
        save_user(engine, name, hashed, role, team, now)
    engine.dispose()
    return path


@dataclass
class World:
    engine: Engine
    library: Library
    client: TestClient
    console: Console
    followed: list[Any] = field(default_factory=list)

    def escalated(self, to: str = "senior_support") -> list[str]:
        """The ids of escalated cases to `to`, oldest first."""
        with Session(self.engine) as session:
            return list(
                session.scalars(
                    select(m.Case.id)
                    .where(m.Case.state == "escalated", m.Case.escalate_to == to)
                    .order_by(m.Case.received_at, m.Case.id)
                )
            )


def csrf_of(response: Response) -> str:
    found = _CSRF.search(response.text)
    assert found, response.text[:500]
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> Response:
    """The sign-in form fetched (for its token) and posted."""
    token = csrf_of(client.get("/login"))
    return client.post(
        "/login", data={"name": name, "password": password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )  # fmt: skip


def make_world(path: Path, saas: Library, **settings: Any) -> World:
    engine = make_engine(f"sqlite:///{path}")
    followed: list[Any] = []
    console = Console(
        saas, engine, LocalHelpDesk(engine), ConsoleSettings(secret=SECRET, **settings),
        after_resolve=followed.append,
    )  # fmt: skip
    app = create_app(saas, engine, [TOKEN], console=console)
    return World(engine, saas, TestClient(app), console, followed)


@pytest.fixture
def world(template_store: Path, tmp_path: Path, saas: Library) -> Iterator[World]:
    path = tmp_path / "console.db"
    shutil.copy(template_store, path)
    made = make_world(path, saas)
    yield made
    made.client.close()
    made.engine.dispose()

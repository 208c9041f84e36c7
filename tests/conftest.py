"""Shared fixtures: the built-in libraries, and cases built from a base by dotted-path patches."""

from __future__ import annotations

import copy
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from tier2.contract import CaseError, Vocabulary, decision_to_dict, parse_case
from tier2.core import decide
from tier2.core.library import Library
from tier2.library.loader import load_library

DELETE = object()  # a patch value that removes the field

SAAS_BASE: dict[str, Any] = {
    "case_id": "NW-1",
    "received_at": "2026-03-03T10:20:00+01:00",
    "ticket": {
        "id": "20417",
        "subject": "Charged twice for March",
        "description": "We were billed twice for our March invoice.",
        "channel": "email",
        "created_at": "2026-03-03T08:05:00+01:00",
        "severity": "medium",
        "category": "billing",
        "messages": [
            {
                "from": "customer",
                "at": "2026-03-03T08:05:00+01:00",
                "body": "We were billed twice.",
            },
            {"from": "agent", "at": "2026-03-03T08:40:00+01:00", "body": "Checking with billing."},
        ],
    },
    "handoff": {
        "from": "support-agent",
        "escalated_at": "2026-03-03T10:18:00+01:00",
        "reason": "Refund above tier-1 limit",
        "steps_taken": [{"step": "verify_invoice", "result": "charged twice"}],
        "customer_expectation": "Refund of the duplicate charge",
        "request": {"type": "refund", "amount": 240.0, "currency": "EUR"},
        "sentiment": "frustrated",
    },
    "customer": {
        "id": "C-1088",
        "name": "Ada Brandt",
        "segment": "smb",
        "arr": 2880.0,
        "currency": "EUR",
        "plan": {
            "billing": "monthly",
            "seats": 8,
            "monthly_fee": 240.0,
            "renewed_at": "2026-03-01T00:00:00+01:00",
        },
        "flags": [],
    },
    "history": [],
    "facts": {"invoice": {"id": "INV-3321", "amount": 240.0, "duplicate": True}},
}

ECOMMERCE_BASE: dict[str, Any] = {
    "case_id": "HP-1",
    "received_at": "2026-03-10T15:00:00-05:00",
    "ticket": {
        "id": "77001",
        "subject": "Refund for returned jacket",
        "description": "I sent the jacket back two weeks ago.",
        "channel": "email",
        "created_at": "2026-03-10T12:00:00-05:00",
        "severity": "medium",
        "category": "refund",
        "messages": [],
    },
    "handoff": {
        "reason": "Refund needs tier-2",
        "steps_taken": [{"step": "verify_order", "result": "order found"}],
        "customer_expectation": "Money back",
        "request": {"type": "refund", "amount": 120.0, "currency": "USD"},
    },
    "customer": {"id": "U-5", "name": "Mia Chen", "segment": "consumer", "currency": "USD"},
    "history": [],
    "facts": {
        "order": {
            "id": "O-1",
            "value": 120.0,
            "delivered_at": "2026-02-25T10:00:00-05:00",
            "return_received": True,
        }
    },
}


def patched(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of base with each dotted path set (or removed, with DELETE)."""
    out = copy.deepcopy(dict(base))
    for path, value in patch.items():
        node: Any = out
        parts = path.split(".")
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        if value is DELETE:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = copy.deepcopy(value)
    return out


@pytest.fixture(scope="session")
def saas() -> Library:
    return load_library("saas")


@pytest.fixture(scope="session")
def ecommerce() -> Library:
    return load_library("ecommerce")


def run(raw: Mapping[str, Any], library: Library, now: Any = None) -> dict[str, Any]:
    case = parse_case(dict(raw), "test", Vocabulary.of(library))
    assert not isinstance(case, CaseError), case.lines()
    return decision_to_dict(decide(case, library, now))


@pytest.fixture
def decide_saas(saas: Library) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    return lambda patch: run(patched(SAAS_BASE, patch), saas)


@pytest.fixture
def decide_ecommerce(ecommerce: Library) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    return lambda patch: run(patched(ECOMMERCE_BASE, patch), ecommerce)


# --------------------------------------------------------------------------- store backends
# Store tests run on both backends: an SQLite file, and a real PostgreSQL server.
# PostgreSQL comes from TIER2_TEST_POSTGRES_URL (`make test` and `.ci/run` set it with
# scripts/test-postgres.sh). Without it the PostgreSQL cases are skipped on a developer's
# machine and fail under CI=true, so CI can never pass without them.

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tier2.db'}"
        return
    base = os.environ.get("TIER2_TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("CI") == "true":
            pytest.fail("TIER2_TEST_POSTGRES_URL is not set: .ci/run must start PostgreSQL")
        pytest.skip("no PostgreSQL: run scripts/test-postgres.sh or `make test`")
    name = f"tier2_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    _admin(admin, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _admin(engine: Any, statement: str) -> None:
    """Run a CREATE/DROP DATABASE, retrying while PostgreSQL says the template or database
    is still in use by another session (it is, briefly, after a killed client), or that an
    autovacuum worker in it may not be terminated by this role (a server set up without
    scripts/test-postgres.sh's pg_signal_backend grant)."""
    for attempt in range(10):
        try:
            with engine.connect() as conn:
                conn.execute(text(statement))
            return
        except (OperationalError, ProgrammingError) as exc:
            transient = "being accessed by other users" in str(exc) or (
                "pg_signal_backend" in str(exc)
            )
            if not transient or attempt == 9:
                raise
            time.sleep(0.5)

"""tier2 serve: POST /decide as `tier2 decide` does, GET /cases/{id}, tokens, clear errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import SAAS_BASE
from tests.integration.runner.test_runner import make_store
from tier2.app.worker import Worker
from tier2.contract import decision_json, parse_case
from tier2.core import decide
from tier2.core.library import Library
from tier2.entrypoints.http import EXAMPLE_CASE, WebhookSecrets, create_app, zendesk_signature
from tier2.library.loader import load_library
from tier2.store import models as m
from tier2.store.db import make_engine, upgrade

TOKEN = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def client(tmp_path: Path, saas: Library) -> TestClient:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(url)
    return TestClient(create_app(saas, make_engine(url), ["s3cret", "other"]))


def test_decide_gives_the_contracts_decision_byte_for_byte(client: TestClient) -> None:
    """The body is exactly what `tier2 decide` prints for the case (without the newline)."""
    response = client.post("/decide", json=SAAS_BASE, headers=TOKEN)
    assert response.status_code == 200
    case = parse_case(SAAS_BASE, "x")
    apart = load_library("saas")  # as `tier2 decide` loads it, in a process of its own
    assert response.content == decision_json(decide(case, apart))  # type: ignore[arg-type]
    example = client.post("/decide", json=EXAMPLE_CASE, headers=TOKEN)
    assert example.status_code == 200 and orjson.loads(example.content)["outcome"] == "resolve"


def test_bad_cases_get_the_contracts_error_lines(client: TestClient) -> None:
    """A bad case is a 422 naming the case, the field and the problem."""
    bad = {**SAAS_BASE, "ticket": {**SAAS_BASE["ticket"], "severity": "urgent"}}
    response = client.post("/decide", json=bad, headers=TOKEN)
    assert response.status_code == 422
    assert any("ticket.severity" in line for line in response.json()["errors"])


def test_tokens_are_required_except_for_health(client: TestClient) -> None:
    """No token or a wrong one: 401; /health answers without one."""
    assert client.post("/decide", json=SAAS_BASE).status_code == 401
    assert (
        client.post("/decide", json=SAAS_BASE, headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    assert client.get("/cases/X", headers={"Authorization": "Bearer other"}).status_code == 404
    assert client.get("/health").json()["status"] == "ok"


def test_the_service_refuses_to_run_open(tmp_path: Path, saas: Library) -> None:
    """Without any token the app is not created."""
    with pytest.raises(ValueError, match="no API tokens"):
        create_app(saas, make_engine(f"sqlite:///{tmp_path / 'x.db'}"), [])


def test_a_case_path_after_a_run(database_url: str) -> None:
    """GET /cases/{id} gives the audit path, the decision, notes and actions of a run case."""
    engine, library, runner = make_store(database_url, 5)
    runner.run_once()
    client = TestClient(create_app(library, engine, ["s3cret"]))
    case_id = "NW-000001"
    body = client.get(f"/cases/{case_id}", headers=TOKEN).json()
    assert body["case_id"] == case_id and body["state"] in ("closed", "returned", "escalated")
    assert [e["event"] for e in body["path"]][:2] == ["received", "decided"]
    assert body["decisions"][0]["decision"]["case_id"] == case_id
    assert any(n["kind"] == "note" for n in body["notes"])


def test_openapi_docs_are_served(client: TestClient) -> None:
    """/docs and /openapi.json describe the endpoints."""
    spec = client.get("/openapi.json").json()
    assert {"/decide", "/cases/{case_id}", "/health"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOOK_SECRET = "dGhpcyBpcyBhIHNpZ25pbmcgc2VjcmV0"


@pytest.fixture
def hooked(tmp_path: Path, saas: Library) -> tuple[TestClient, Any]:
    url = f"sqlite:///{tmp_path / 'hooks.db'}"
    upgrade(url)
    engine = make_engine(url)
    app = create_app(
        saas, engine, ["s3cret"],
        webhooks=WebhookSecrets(zendesk=HOOK_SECRET, rt="rt-shared"), clock=lambda: NOW,
    )  # fmt: skip
    return TestClient(app), engine


def signed(body: bytes, at: datetime = NOW, secret: str = HOOK_SECRET) -> dict[str, str]:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "X-Zendesk-Webhook-Signature": zendesk_signature(secret, stamp, body),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "Content-Type": "application/json",
    }


def test_a_signed_zendesk_webhook_is_queued_once(hooked: tuple[TestClient, Any]) -> None:
    """Verified, queued durably, 202; the same delivery again is refused as a replay."""
    client, engine = hooked
    body = b'{"type":"zen:event-type:ticket.status_changed","detail":{"id":"35436"}}'
    first = client.post("/webhooks/zendesk", content=body, headers=signed(body))
    assert first.status_code == 202 and first.json()["ticket_id"] == "35436"
    replay = client.post("/webhooks/zendesk", content=body, headers=signed(body))
    assert replay.status_code == 409
    with Session(engine) as session:
        rows = session.scalars(select(m.WebhookDelivery)).all()
    assert [(r.source, r.ticket_id) for r in rows] == [("zendesk", "35436")]


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        (lambda b: signed(b, secret="wrong"), 401, "does not match"),
        (lambda b: signed(b, at=NOW - timedelta(minutes=10)), 401, "outside 300 s"),
        (lambda b: {"Content-Type": "application/json"}, 401, "headers are missing"),
    ],
)  # fmt: skip
def test_bad_zendesk_webhooks_are_refused(
    hooked: tuple[TestClient, Any], headers: Any, status: int, message: str
) -> None:
    """A wrong signature, a stale timestamp or no signature: refused, nothing queued."""
    client, engine = hooked
    body = b'{"ticket_id": 7}'
    response = client.post("/webhooks/zendesk", content=body, headers=headers(body))
    assert response.status_code == status and message in response.json()["error"]
    with Session(engine) as session:
        assert session.scalars(select(m.WebhookDelivery)).all() == []


def test_an_altered_body_fails_the_signature(hooked: tuple[TestClient, Any]) -> None:
    """A body changed after signing does not verify."""
    client, _ = hooked
    body = b'{"ticket_id": 7}'
    response = client.post("/webhooks/zendesk", content=b'{"ticket_id": 8}', headers=signed(body))
    assert response.status_code == 401


def test_rt_webhooks_need_the_shared_secret(hooked: tuple[TestClient, Any]) -> None:
    """RT: the shared secret queues the ticket; a wrong one is refused; a replay is refused."""
    client, _ = hooked
    body = {"ticket_id": 12, "transaction_id": 345}
    assert (
        client.post(
            "/webhooks/rt", json=body, headers={"X-Tier2-Webhook-Secret": "nope"}
        ).status_code
        == 401
    )
    ok = client.post("/webhooks/rt", json=body, headers={"X-Tier2-Webhook-Secret": "rt-shared"})
    assert ok.status_code == 202 and ok.json()["ticket_id"] == "12"
    again = client.post("/webhooks/rt", json=body, headers={"X-Tier2-Webhook-Secret": "rt-shared"})
    assert again.status_code == 409


def test_a_delivery_wakes_the_worker_which_owns_the_case(database_url: str) -> None:
    """The webhook queues the delivery; the worker's pass decides the escalations at once
    (long before its poll) and takes the delivery."""
    engine, library, runner = make_store(database_url, n=5)
    worker = Worker(runner, poll_seconds=3600, log=lambda _line: None)
    app = create_app(
        library, engine, ["s3cret"], webhooks=WebhookSecrets(rt="rt-shared"),
        on_delivery=worker.wake,
    )  # fmt: skip
    worker.start()
    try:
        client = TestClient(app)
        answer = client.post(
            "/webhooks/rt", json={"ticket_id": "1", "transaction_id": 9},
            headers={"X-Tier2-Webhook-Secret": "rt-shared"},
        )  # fmt: skip
        assert answer.status_code == 202
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.passes == 0:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert worker.passes >= 1
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(m.Case)) == 5
        states = set(session.scalars(select(m.Case.state)))
        assert states <= {"closed", "returned", "escalated"}
        delivery = session.scalars(select(m.WebhookDelivery)).one()
        assert delivery.taken_at is not None


def test_a_pass_takes_only_the_deliveries_queued_before_it(database_url: str) -> None:
    """tier2 run beside the service takes the deliveries its pass has seen, and no later."""
    engine, _library, runner = make_store(database_url, n=2)
    with Session(engine) as session, session.begin():
        session.add(m.WebhookDelivery(source="rt", delivery_key="rt:1:1", ticket_id="1",
                                      received_at=NOW, body={}))  # fmt: skip
    stats = runner.run_once()
    assert stats.deliveries == 1
    assert runner.run_once().deliveries == 0

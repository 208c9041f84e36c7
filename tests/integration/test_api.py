"""tier2 serve: POST /decide as `tier2 decide` does, GET /cases/{id}, tokens, clear errors."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import SAAS_BASE, patched
from tests.integration.runner.test_runner import make_store
from tier2.app.worker import Worker
from tier2.contract import decision_json, parse_case
from tier2.core import decide
from tier2.core.library import Library
from tier2.entrypoints.http import EXAMPLE_CASE, WebhookSecrets, create_app, zendesk_signature
from tier2.library.loader import load_library
from tier2.store import models as m
from tier2.store.db import make_engine, upgrade

SECRET = "s3cret-api-token-0123456789"
OTHER = "other-api-token-0123456789"
TOKEN = {"Authorization": f"Bearer {SECRET}"}


@pytest.fixture
def client(tmp_path: Path, saas: Library) -> TestClient:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(url)
    return TestClient(create_app(saas, make_engine(url), [SECRET, OTHER]))


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


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (b"", "case (input): (input): no case: the input is empty"),
        (b"{not json", ": not valid JSON: "),
        (b"[1", "case (input): (input): not valid JSON"),
        (b"[1]", "case item 1: (case): must be a JSON object, got int"),
        (b"null", "case item 1: (case): must be a JSON object, got NoneType"),
        (b'{"case_id": "X"}', "case X (item 1): received_at: required field is missing"),
    ],
)  # fmt: skip
def test_unusable_bodies_get_the_contracts_error_lines(
    client: TestClient, body: bytes, line: str
) -> None:
    """Not JSON, not an object, a missing field: 422 with the contract's lines, not FastAPI's
    validation format."""
    response = client.post("/decide", content=body, headers=TOKEN)
    assert response.status_code == 422 and "detail" not in response.json()
    assert response.json()["decisions"] == []
    assert any(line in found for found in response.json()["errors"]), response.json()


def test_a_batch_gets_what_tier2_decide_writes(client: TestClient, tmp_path: Path) -> None:
    """A batch with a bad case: 422, the same error lines `tier2 decide` writes on standard
    error, and the good cases' decisions, the same as on its standard output."""
    good = patched(SAAS_BASE, {"case_id": "NW-A"})
    bad = patched(SAAS_BASE, {"case_id": "NW-B", "ticket.severity": "urgent"})
    batch = orjson.dumps([good, bad, patched(SAAS_BASE, {"case_id": "NW-C"})])
    (tmp_path / "batch.json").write_bytes(batch)
    cli = subprocess.run(
        [sys.executable, "-m", "tier2", "decide", str(tmp_path / "batch.json")],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert cli.returncode == 2
    response = client.post("/decide", content=batch, headers=TOKEN)
    assert response.status_code == 422
    assert response.json()["errors"] == cli.stderr.decode().splitlines()
    assert response.json()["errors"][0].startswith("case NW-B (item 2): ticket.severity: ")
    assert response.json()["decisions"] == [orjson.loads(x) for x in cli.stdout.splitlines()]
    assert [d["case_id"] for d in response.json()["decisions"]] == ["NW-A", "NW-C"]


def test_a_good_batch_gets_its_decisions_one_per_line(client: TestClient) -> None:
    """A JSON array or JSON Lines of good cases: 200, one decision per line, byte for byte."""
    cases = [patched(SAAS_BASE, {"case_id": f"NW-{n}"}) for n in range(3)]
    apart = load_library("saas")
    expected = b"".join(
        decision_json(decide(parse_case(c, "x"), apart)) + b"\n"  # type: ignore[arg-type]
        for c in cases
    )
    as_array = client.post("/decide", content=orjson.dumps(cases), headers=TOKEN)
    assert as_array.status_code == 200 and as_array.content == expected
    assert as_array.headers["content-type"] == "application/x-ndjson"
    lines = b"\n".join(orjson.dumps(c) for c in cases)
    as_lines = client.post("/decide", content=lines, headers=TOKEN)
    assert as_lines.status_code == 200 and as_lines.content == expected


@pytest.mark.parametrize(
    ("now", "line"),
    [("2026-03-03T10:00:00", "now: needs an offset"), ("yesterday", "now: not an ISO-8601 time")],
)
def test_a_bad_clock_is_an_error_line(client: TestClient, now: str, line: str) -> None:
    """?now= without an offset, or not a time: 422 saying so."""
    response = client.post("/decide", params={"now": now}, json=SAAS_BASE, headers=TOKEN)
    assert response.status_code == 422 and response.json()["errors"][0].startswith(line)


def test_tokens_are_required_except_for_health(client: TestClient) -> None:
    """No token or a wrong one: 401; /health answers without one."""
    assert client.post("/decide", json=SAAS_BASE).status_code == 401
    assert (
        client.post("/decide", json=SAAS_BASE, headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    assert client.get("/cases/X", headers={"Authorization": f"Bearer {OTHER}"}).status_code == 404
    assert client.get("/health").json()["status"] == "ok"


def test_the_service_refuses_to_run_open(tmp_path: Path, saas: Library) -> None:
    """Without any token the app is not created."""
    with pytest.raises(ValueError, match="no API tokens"):
        create_app(saas, make_engine(f"sqlite:///{tmp_path / 'x.db'}"), [])


@pytest.mark.parametrize(
    ("tokens", "message"),
    [(["short"], "token 1 is shorter than 20 characters"), ([SECRET, ""], "token 2 is empty")],
)
def test_the_service_refuses_weak_tokens(
    tmp_path: Path, saas: Library, tokens: list[str], message: str
) -> None:
    """A token under 20 characters, or an empty one: the app is not created."""
    with pytest.raises(ValueError, match=message):
        create_app(saas, make_engine(f"sqlite:///{tmp_path / 'x.db'}"), tokens)


def test_a_case_path_after_a_run(database_url: str) -> None:
    """GET /cases/{id} gives the audit path, the decision, notes and actions of a run case."""
    engine, library, runner = make_store(database_url, 5)
    runner.run_once()
    client = TestClient(create_app(library, engine, [SECRET]))
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


def test_the_docs_can_be_turned_off(tmp_path: Path, saas: Library) -> None:
    """docs=False: no /docs, /redoc or /openapi.json; the API itself answers."""
    app = create_app(saas, make_engine(f"sqlite:///{tmp_path / 'x.db'}"), [SECRET], docs=False)
    client = TestClient(app)
    assert [client.get(p).status_code for p in ("/docs", "/redoc", "/openapi.json")] == [404] * 3
    assert client.get("/health").status_code == 200


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOOK_SECRET = "dGhpcyBpcyBhIHNpZ25pbmcgc2VjcmV0"


@pytest.fixture
def hooked(tmp_path: Path, saas: Library) -> tuple[TestClient, Any]:
    url = f"sqlite:///{tmp_path / 'hooks.db'}"
    upgrade(url)
    engine = make_engine(url)
    app = create_app(
        saas, engine, [SECRET],
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


def test_a_signed_timestamp_without_an_offset_is_a_400(hooked: tuple[TestClient, Any]) -> None:
    """A validly signed delivery whose timestamp has no offset: 400 saying so, not a 500."""
    client, engine = hooked
    body = b'{"ticket_id": 7}'
    stamp = NOW.strftime("%Y-%m-%dT%H:%M:%S")
    headers = {
        "X-Zendesk-Webhook-Signature": zendesk_signature(HOOK_SECRET, stamp, body),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }
    response = client.post("/webhooks/zendesk", content=body, headers=headers)
    assert response.status_code == 400 and "has no offset" in response.json()["error"]
    with Session(engine) as session:
        assert session.scalars(select(m.WebhookDelivery)).all() == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"ticket_id": 7.0}', 400, "ticket_id: must be a positive integer"),
        (b'{"detail": "35436"}', 400, "no ticket_id (or detail.id)"),
        (b'{"detail": {"id": true}}', 400, "detail.id: must be a positive integer"),
        (b'["7"]', 400, "must be a JSON object"),
        (b"not json", 400, "not JSON"),
    ],
)  # fmt: skip
def test_malformed_zendesk_deliveries_are_a_400(
    hooked: tuple[TestClient, Any], body: bytes, status: int, message: str
) -> None:
    """A signed delivery without a ticket id of the right shape: 400 naming the field."""
    client, _ = hooked
    response = client.post("/webhooks/zendesk", content=body, headers=signed(body))
    assert response.status_code == status and message in response.json()["error"]


def test_a_malformed_signature_is_refused_before_the_body(hooked: tuple[TestClient, Any]) -> None:
    """A signature that is not a base64 HMAC-SHA256 is refused as unsigned."""
    client, _ = hooked
    body = b'{"ticket_id": 7}'
    headers = {**signed(body), "X-Zendesk-Webhook-Signature": "x" * 5000}
    response = client.post("/webhooks/zendesk", content=body, headers=headers)
    assert response.status_code == 401 and "not a base64" in response.json()["error"]


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


RT = {"X-Tier2-Webhook-Secret": "rt-shared"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"ticket_id": 20417.0, "transaction_id": 1}, "ticket_id: must be a positive integer"),
        ({"ticket_id": True, "transaction_id": 1}, "ticket_id: must be a positive integer"),
        ({"ticket_id": "", "transaction_id": 1}, "ticket_id: must be a positive integer"),
        ({"ticket_id": "1" * 40, "transaction_id": 1}, "ticket_id: must be a positive integer"),
        ({"ticket_id": "12\n", "transaction_id": 1}, "ticket_id: must be a positive integer"),
        ({"ticket_id": "012", "transaction_id": 1}, "ticket_id: must be a positive integer"),
        ({"ticket_id": -3, "transaction_id": 1}, "ticket_id: must be a positive integer"),
        ({"ticket_id": 12, "transaction_id": 3.0}, "transaction_id: must be a positive integer"),
        ({"ticket_id": 12, "delivery_id": "a\u0000b"}, "delivery_id: must be"),
        ({"ticket_id": 12, "delivery_id": ""}, "delivery_id: must be"),
        ({"ticket_id": 12}, "no transaction_id (or delivery_id)"),
        ({"transaction_id": 1}, "no ticket_id"),
        ([12], "must be a JSON object"),
    ],
)  # fmt: skip
def test_rt_ids_must_have_their_shape(
    hooked: tuple[TestClient, Any], body: Any, message: str
) -> None:
    """A float, bool, empty, too long or control-character id: 400 naming it; none queued."""
    client, engine = hooked
    response = client.post("/webhooks/rt", json=body, headers=RT)
    assert response.status_code == 400 and message in response.json()["error"], response.json()
    with Session(engine) as session:
        assert session.scalars(select(m.WebhookDelivery)).all() == []


def test_an_id_as_a_number_or_its_digits_is_one_delivery(hooked: tuple[TestClient, Any]) -> None:
    """{"ticket_id": 12} and {"ticket_id": "12"} of one transaction: the second is a replay."""
    client, _ = hooked
    first = client.post("/webhooks/rt", json={"ticket_id": 12, "transaction_id": 345}, headers=RT)
    assert first.status_code == 202
    again = {"ticket_id": "12", "transaction_id": "345"}
    assert client.post("/webhooks/rt", json=again, headers=RT).status_code == 409


def test_a_delivery_wakes_the_worker_which_owns_the_case(database_url: str) -> None:
    """The webhook queues the delivery; the worker's pass decides the escalations at once
    (long before its poll) and takes the delivery."""
    engine, library, runner = make_store(database_url, n=5)
    worker = Worker(runner, poll_seconds=3600, log=lambda _line: None)
    app = create_app(
        library, engine, [SECRET], webhooks=WebhookSecrets(rt="rt-shared"),
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

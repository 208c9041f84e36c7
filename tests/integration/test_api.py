"""tier2 serve: POST /decide as `tier2 decide` does, GET /cases/{id}, tokens, clear errors."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.conftest import SAAS_BASE
from tests.integration.runner.test_runner import make_store
from tier2.api import EXAMPLE_CASE, create_app
from tier2.contract import decision_json, parse_case
from tier2.core import decide
from tier2.loader import load_library
from tier2.store.db import make_engine, upgrade

TOKEN = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(url)
    return TestClient(create_app(load_library("saas"), make_engine(url), ["s3cret", "other"]))


def test_decide_gives_the_contracts_decision_byte_for_byte(client: TestClient) -> None:
    """The body is exactly what `tier2 decide` prints for the case (without the newline)."""
    response = client.post("/decide", json=SAAS_BASE, headers=TOKEN)
    assert response.status_code == 200
    case = parse_case(SAAS_BASE, "x")
    assert response.content == decision_json(decide(case, load_library("saas")))  # type: ignore[arg-type]
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


def test_the_service_refuses_to_run_open(tmp_path: Path) -> None:
    """Without any token the app is not created."""
    with pytest.raises(ValueError, match="no API tokens"):
        create_app(load_library("saas"), make_engine(f"sqlite:///{tmp_path / 'x.db'}"), [])


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

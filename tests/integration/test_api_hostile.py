"""POST /decide under hostile bodies (hypothesis): a decision or the contract's error lines,
never a traceback and never a 500."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ECOMMERCE_BASE
from tests.unit.test_hostile_cases import PATHS, hostile, set_at
from tier2.entrypoints.http import create_app
from tier2.library.loader import load_library
from tier2.store.db import make_engine, upgrade

TOKEN = "hostile-api-token-0123456789"


CLIENT: dict[str, TestClient] = {}  # one service for every example


def _client(folder: Path) -> TestClient:
    url = f"sqlite:///{folder / 'api.db'}"
    upgrade(url)
    return TestClient(create_app(load_library("ecommerce"), make_engine(url), [TOKEN]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.lists(st.tuples(st.sampled_from(PATHS), hostile), min_size=1, max_size=4),
    shape=st.sampled_from(["object", "array", "lines", "raw"]),
)
def test_hostile_bodies_get_a_decision_or_error_lines(
    tmp_path_factory: Any, changes: list[tuple[str, Any]], shape: str
) -> None:
    """200 with decisions, or 4xx with the contract's error lines; never 500, never a
    traceback in the answer."""
    client = CLIENT.get("client") or CLIENT.setdefault(
        "client", _client(tmp_path_factory.mktemp("api"))
    )
    case = ECOMMERCE_BASE
    for path, value in changes:
        case = set_at(case, path.split("."), value)
    one = orjson.dumps(case, option=orjson.OPT_NON_STR_KEYS)
    body = {
        "object": one,
        "array": b"[" + one + b"," + one + b"]",
        "lines": one + b"\n{broken\n" + one,
        "raw": orjson.dumps(changes[0][1], option=orjson.OPT_NON_STR_KEYS),
    }[shape]
    response = client.post(
        "/decide",
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status_code < 500, response.text
    assert b"Traceback" not in response.content
    if response.status_code != 200:
        errors = response.json()["errors"]
        assert errors and all(line.startswith("case ") and line.isprintable() for line in errors)

"""tier2 check: each connection tried, each problem said plainly (help desks faked with MockTransport)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tier2.entrypoints.checks import check_database, check_rt, check_zendesk, run_checks
from tier2.entrypoints.config import Config, RtConfig, ZendeskConfig
from tier2.helpdesk.rt import custom_field_types
from tier2.store.db import upgrade

RT = RtConfig(url="http://rt.test/REST/2.0", password_env="RT_PW", queue="Tier2")
ZD = ZendeskConfig(subdomain="acme", email="bot@acme.test", token_env="ZD_TOKEN", tag="tier2")


def rt_fake(request: httpx.Request) -> httpx.Response:
    if request.headers.get("Authorization") != httpx.BasicAuth("root", "pw")._auth_header:
        return httpx.Response(401, json={"message": "Unauthorized"})
    if request.url.path in ("/REST/2.0/queue/Tier2", "/REST/2.0/queue/General"):
        return httpx.Response(200, json={"id": 3, "Name": "Tier2"})
    if request.url.path == "/REST/2.0/customfields":
        names = [n for n, _ in custom_field_types()]
        if rt_fake.without:  # type: ignore[attr-defined]
            names.remove(rt_fake.without)  # type: ignore[attr-defined]
        return httpx.Response(200, json={"items": [{"Name": n} for n in names], "pages": 1})
    return httpx.Response(404, json={"message": "Not Found"})


rt_fake.without = None  # type: ignore[attr-defined]


def test_rt_found_wrong_password_and_missing_queue() -> None:
    """RT: the queue is found; a wrong password and a missing queue are told apart."""
    transport = httpx.MockTransport(rt_fake)
    assert check_rt(RT, {"RT_PW": "pw"}, transport).ok
    wrong = check_rt(RT, {"RT_PW": "nope"}, transport)
    assert not wrong.ok and "HTTP 401: RT refused the credentials" in wrong.detail
    missing = check_rt(
        RtConfig(url=RT.url, password_env="RT_PW", queue="Nope"), {"RT_PW": "pw"}, transport
    )
    assert not missing.ok and "there is no queue 'Nope'" in missing.detail
    unset = check_rt(RT, {}, transport)
    assert not unset.ok and "environment variable RT_PW is not set" in unset.detail


def test_rt_without_a_queue_or_custom_field_tier2_needs() -> None:
    """A missing target queue, or a missing custom field, is named."""
    transport = httpx.MockTransport(rt_fake)
    queues = RtConfig(url=RT.url, password_env="RT_PW", queues={"senior_support": "Seniors"})
    result = check_rt(queues, {"RT_PW": "pw"}, transport)
    assert not result.ok and "no queue 'Seniors'" in result.detail
    rt_fake.without = "Steps Taken"  # type: ignore[attr-defined]
    try:
        result = check_rt(RT, {"RT_PW": "pw"}, transport)
    finally:
        rt_fake.without = None  # type: ignore[attr-defined]
    assert not result.ok and "no ticket custom field 'Steps Taken'" in result.detail


def test_rt_that_does_not_answer() -> None:
    """A refused connection says it could not connect."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result = check_rt(RT, {"RT_PW": "pw"}, httpx.MockTransport(refuse))
    assert not result.ok and "cannot connect" in result.detail


def test_zendesk_signed_in_and_anonymous() -> None:
    """Zendesk: users/me names the signed-in agent; an anonymous answer means a bad token."""

    def fake(request: httpx.Request) -> httpx.Response:
        assert (
            request.url.host == "acme.zendesk.com" and request.url.path == "/api/v2/users/me.json"
        )
        good = (
            request.headers["Authorization"]
            == httpx.BasicAuth("bot@acme.test/token", "t0k")._auth_header
        )
        user = (
            {"id": 7, "email": "bot@acme.test", "role": "agent"}
            if good
            else {"id": None, "role": "end-user"}
        )
        return httpx.Response(200, json={"user": user})

    transport = httpx.MockTransport(fake)
    ok = check_zendesk(ZD, {"ZD_TOKEN": "t0k"}, transport)
    assert ok.ok and "bot@acme.test (agent)" in ok.detail
    bad = check_zendesk(ZD, {"ZD_TOKEN": "wrong"}, transport)
    assert not bad.ok and "anonymous" in bad.detail


def test_database_missing_behind_and_current(tmp_path: Path) -> None:
    """The store: missing, not yet migrated, or at the newest schema."""
    path = tmp_path / "t.db"
    missing = check_database(Config(database=str(path)), {})
    assert not missing.ok and "tier2 db upgrade" in missing.detail
    upgrade(f"sqlite:///{path}", "0004")
    behind = check_database(Config(database=str(path)), {})
    assert not behind.ok and "schema 0004" in behind.detail
    upgrade(f"sqlite:///{path}")
    assert check_database(Config(database=str(path)), {}).ok


def test_run_checks_lists_every_part(tmp_path: Path) -> None:
    """Configuration, library, database, connector and each named secret get a line."""
    path = tmp_path / "t.db"
    upgrade(f"sqlite:///{path}")
    config = Config.model_validate(
        {
            "database": str(path),
            "webhooks": {"rt_secret_env": "HOOK"},
            "api": {"tokens_env": "TOKENS"},
        }
    )
    results = run_checks(config, {"HOOK": "x"})
    assert [r.name for r in results] == [
        "configuration",
        "library",
        "database",
        "connector local",
        "webhook secret rt",
        "API tokens",
    ]
    assert [r.ok for r in results] == [True, True, True, True, True, False]


@pytest.mark.parametrize(
    ("tokens", "ok", "says"),
    [(",", False, "token 1 is empty"), ("short", False, "shorter than"),
     ("a-long-enough-token-0123456789", True, "1 from TOKENS")],
)  # fmt: skip
def test_api_tokens_are_checked_as_serve_checks_them(tokens: str, ok: bool, says: str) -> None:
    """`tier2 check` refuses what `tier2 serve` refuses: an empty entry, a short token."""
    config = Config.model_validate({"database": "sqlite://", "api": {"tokens_env": "TOKENS"}})
    found = next(r for r in run_checks(config, {"TOKENS": tokens}) if r.name == "API tokens")
    assert found.ok is ok and says in found.detail

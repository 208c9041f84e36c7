"""`tier2 run` on Zendesk, against a fake of the Support API served through httpx.MockTransport
(tests/fakes/zendesk.py, built from Zendesk's API reference)."""

from __future__ import annotations

import copy
import functools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.fakes.zendesk import FakeZendesk
from tier2.app.ports import ActionOrder
from tier2.app.runner import Runner
from tier2.contract import CaseError, decision_to_dict, parse_case
from tier2.core import decide
from tier2.core.library import Library
from tier2.entrypoints.bootstrap import open_desk
from tier2.entrypoints.checks import check_zendesk
from tier2.entrypoints.config import Config, ConnectorConfig, ZendeskConfig
from tier2.helpdesk._marks import keys_in
from tier2.helpdesk.zendesk import ZendeskClient, ZendeskError
from tier2.library.loader import load_library
from tier2.store import models as m
from tier2.store.db import make_engine, upgrade
from tier2.store.unit_of_work import SqlUnitOfWork

ROOT = Path(__file__).resolve().parents[3]
FIELDS = {
    "ticket.category": 501, "handoff.reason": 502, "handoff.customer_expectation": 503,
    "handoff.sentiment": 504, "handoff.steps_taken": 505, "handoff.request.type": 506,
    "handoff.request.amount": 507, "handoff.request.currency": 508,
    "handoff.escalated_at": 509, "facts": 510, "ticket.channel": 511,  # review sites, ...
}  # fmt: skip
GROUPS = {"senior_support": 300, "support_manager": 400}


def _config(**finder: Any) -> Config:
    zd = ZendeskConfig(
        subdomain="acme", email="tier2@acme.example", token_env="ZD_TOKEN",
        groups=GROUPS, return_group_id=100, fields=FIELDS, actions_field_id=520,
        outcome_field_id=521, **(finder or {"tag": "tier2"}),
    )  # fmt: skip
    return Config(connector=ConnectorConfig(kind="zendesk", zendesk=zd))


def _fake(**options: Any) -> FakeZendesk:
    return FakeZendesk(groups={100: "Tier 1", 200: "Tier 2", 300: "Seniors", 400: "Managers"},
                       **options)  # fmt: skip


def _examples(library: str) -> list[dict[str, Any]]:
    lines = (ROOT / "examples" / library / "cases.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@functools.cache
def _reference(library: str) -> Library:
    """The library the expected decisions are taken from: loaded once, apart from tier2's."""
    return load_library(library)


def _expected(case: dict[str, Any], library: str) -> dict[str, Any]:
    as_read = copy.deepcopy(case)
    as_read["received_at"] = case["handoff"].get("escalated_at") or case["received_at"]
    parsed = parse_case(as_read, "expected")
    assert not isinstance(parsed, CaseError)
    return decision_to_dict(decide(parsed, _reference(library)))


def _runner(tmp_path: Path, fake: FakeZendesk, library: str, config: Config | None = None,
            since: datetime | None = None) -> tuple[Runner, Any]:  # fmt: skip
    url = f"sqlite:///{tmp_path / 'tier2.db'}"
    upgrade(url)
    engine = make_engine(url)
    desk = open_desk(config or _config(), engine, environ={"ZD_TOKEN": fake.token},
                     transport=fake.transport, since=since)  # fmt: skip
    desk.zd.sleep = lambda _s: None  # type: ignore[attr-defined]
    lib = load_library(library)
    return Runner(SqlUnitOfWork(engine), lib, desk, clock=lambda: datetime.now(UTC)), engine


def _keys(fake: FakeZendesk, tid: int) -> list[str]:
    return sorted(k for c in fake.comments[tid] for k in keys_in([{"Content": c["body"]}]))


@pytest.mark.parametrize("library", ["saas", "ecommerce"])
def test_every_outcome_lands_in_zendesk(tmp_path: Path, library: str) -> None:
    """Private comments with their keys, status, group and tags for every example; a second
    run changes nothing."""
    fake = _fake()
    cases = _examples(library)
    for i, case in enumerate(cases):
        case["customer"]["id"] = f"{case['customer'].get('id', 'c')}-{i}"
    tickets = {c["case_id"]: fake.add_case(c, FIELDS, "tier2") for c in cases}
    runner, engine = _runner(tmp_path, fake, library)
    stats = runner.run_once()
    assert stats.finished == len(cases) and not stats.failed
    with Session(engine) as session:
        decided = {d.case_id: d.body for d in session.scalars(select(m.Decision))}
    for case in cases:
        tid = tickets[case["case_id"]]
        want, got = _expected(case, library), decided[f"ZD-{tid}"]
        for key in ("outcome", "escalate_to", "policies", "actions"):
            assert got[key] == want[key], (case["case_id"], key)
        ticket = fake.tickets[tid]
        mine = [c for c in fake.comments[tid] if c["author_id"] == fake.agent_id]
        assert mine and not any(c["public"] for c in mine)  # notes are internal
        keys = _keys(fake, tid)
        assert f"ZD-{tid}:1:note" in keys and len(keys) == len(set(keys))
        assert {"id": 521, "value": want["outcome"]} in ticket["custom_fields"]
        if want["outcome"] == "resolve":
            assert ticket["status"] == "solved"
            assert all(f"tier2_action_{a['type']}" in ticket["tags"] for a in want["actions"])
            listed = next(f["value"] for f in ticket["custom_fields"] if f["id"] == 520)
            assert len(listed.splitlines()) == len(want["actions"])
        elif want["outcome"] == "return_to_tier1":
            assert ticket["group_id"] == 100 and "tier2" not in ticket["tags"]
            assert f"ZD-{tid}:1:guidance" in keys
        else:
            assert ticket["group_id"] == GROUPS.get(want["escalate_to"], 100)
            assert "tier2_escalated" in ticket["tags"] and ticket["status"] == "open"
    updates = fake.updates
    again = runner.run_once()
    assert again.received == 0 and again.finished == 0 and fake.updates == updates


def test_a_run_after_a_crash_writes_nothing_twice(tmp_path: Path) -> None:
    """A new process (nothing cached) repeating the steps finds the keys on the tickets."""
    fake = _fake()
    cases = _examples("saas")
    tickets = [fake.add_case(c, FIELDS, "tier2") for c in cases]
    runner, engine = _runner(tmp_path, fake, "saas")
    runner.run_once()
    before = {t: _keys(fake, t) for t in tickets}
    with engine.begin() as db:
        db.execute(update(m.Case).values(state="decided"))
        db.execute(update(m.Action).values(status="pending"))
    again, _ = _runner(tmp_path, fake, "saas")
    assert again.run_once().finished == len(cases)
    assert {t: _keys(fake, t) for t in tickets} == before


def test_rate_limits_are_waited_out(tmp_path: Path) -> None:
    """Every third request gets a 429 with Retry-After: the client waits that long and the run
    still finishes."""
    fake = _fake(rate_limit_every=3)
    for case in _examples("saas")[:3]:
        fake.add_case(case, FIELDS, "tier2")
    runner, _ = _runner(tmp_path, fake, "saas")
    assert runner.run_once().finished == 3
    client: ZendeskClient = runner.desk.zd  # type: ignore[attr-defined]
    assert client.waited >= 2 * (len(fake.requests) // 3)


def test_lists_are_read_by_cursor_across_pages(tmp_path: Path) -> None:
    """With pages of two, escalations, comments and requested tickets still come whole."""
    fake = _fake(max_page_size=2)
    case = _examples("saas")[0]
    case["history"] = [{"ticket_id": f"h{i}", "at": "2026-02-01T09:00:00+00:00",
                        "category": "billing", "complaint": True} for i in range(3)]  # fmt: skip
    case["ticket"]["messages"] = [{"from": "customer", "body": f"m{i}"} for i in range(5)]
    tid = fake.add_case(case, FIELDS, "tier2")
    for other in _examples("saas")[1:5]:
        fake.add_case(other, FIELDS, "tier2")
    runner, engine = _runner(tmp_path, fake, "saas")
    assert runner.run_once().finished == 5
    with Session(engine) as session:
        payload = session.get(m.Case, f"ZD-{tid}").payload  # type: ignore[union-attr]
    assert len(payload["ticket"]["messages"]) == 5
    assert len([h for h in payload["history"] if h["complaint"]]) == 3


@pytest.mark.parametrize(
    "finder",
    [{"view_id": 77}, {"custom_field_id": 501, "custom_field_value": "billing"}],
    ids=["view", "custom field"],
)
def test_escalations_by_view_or_custom_field(tmp_path: Path, finder: dict[str, Any]) -> None:
    """A view, or a ticket field's value, finds the escalations as a tag does."""
    fake = _fake(views={77: "tier2"})
    for case in _examples("saas")[:4]:
        fake.add_case(case, FIELDS, "tier2")
    runner, _ = _runner(tmp_path, fake, "saas", _config(**finder))
    found = runner.desk.escalations()
    billing = [
        t for t in fake.tickets.values() if {"id": 501, "value": "billing"} in t["custom_fields"]
    ]
    assert len(found) == (4 if "view_id" in finder else len(billing))


def test_a_backfill_reads_the_incremental_export(tmp_path: Path) -> None:
    """Since a date, escalations come from the incremental ticket export, page by page."""
    fake = _fake(max_page_size=2)
    ids = [fake.add_case(c, FIELDS, "tier2") for c in _examples("saas")[:3]]
    fake.tickets[ids[0]]["status"] = "solved"  # not waiting any more
    runner, _ = _runner(tmp_path, fake, "saas", since=datetime(2026, 1, 1, tzinfo=UTC))
    assert runner.desk.escalations() == [str(i) for i in ids[1:]]
    assert ("GET", "incremental/tickets/cursor") in fake.requests


def test_errors_say_what_zendesk_said() -> None:
    """401, 404 and 422 give Zendesk's own words, never a traceback of JSON."""
    fake = _fake()
    bad = ZendeskClient("acme", "tier2@acme.example", "wrong", transport=fake.transport)
    with pytest.raises(ZendeskError, match="HTTP 401: Couldn't authenticate you"):
        bad.call("GET", "users/me")
    good = ZendeskClient("acme", "tier2@acme.example", fake.token, transport=fake.transport)
    with pytest.raises(ZendeskError, match="HTTP 404: RecordNotFound Not found"):
        good.call("GET", "tickets/4")
    uid = fake.add_user("A", "a@example.com")
    tid = fake.add_ticket(uid, "s", "2026-01-01T00:00:00Z")
    with pytest.raises(
        ZendeskError,
        match="HTTP 422: RecordInvalid Record validation errors group: Group: is invalid",
    ):
        good.call("PUT", f"tickets/{tid}", json={"ticket": {"group_id": 5}})


def test_check_names_a_group_or_field_zendesk_does_not_have() -> None:
    """tier2 check reads the groups and ticket fields (by cursor) and names what is missing."""
    fake = _fake(
        max_page_size=2, ticket_fields={i: f"field {i}" for i in [*FIELDS.values(), 520, 521]}
    )
    env = {"ZD_TOKEN": fake.token}
    config = _config().connector.zendesk
    assert config is not None
    assert check_zendesk(config, env, fake.transport).ok
    del fake.groups[400]
    result = check_zendesk(config, env, fake.transport)
    assert (
        not result.ok
        and "no group 400 in Zendesk (configured for support_manager)" in result.detail
    )
    fake.groups[400] = "Managers"
    del fake.ticket_fields[507]
    result = check_zendesk(config, env, fake.transport)
    assert (
        not result.ok
        and "no ticket field 507 in Zendesk (configured for handoff.request.amount)"
        in result.detail
    )


def test_every_action_of_a_case_is_listed_in_the_actions_field(tmp_path: Path) -> None:
    """Two actions on one ticket leave two lines in the actions field, not the last alone."""
    fake = _fake()
    tid = fake.add_case(_examples("saas")[0], FIELDS, "tier2")
    fake.tickets[tid]["custom_fields"].append({"id": 520, "value": None})  # Zendesk lists
    # every ticket field, null when unset
    runner, _ = _runner(tmp_path, fake, "saas")
    runner.desk.read_cases([str(tid)])
    orders = [ActionOrder(str(tid), f"ZD-{tid}:1:{i}:credit", "credit", 10.0 * (i + 1), "EUR")
              for i in range(2)]  # fmt: skip
    runner.desk.carry_out(None, orders, datetime.now(UTC))  # type: ignore[arg-type]
    listed = next(f["value"] for f in fake.tickets[tid]["custom_fields"] if f["id"] == 520)
    assert listed.splitlines() == [f"credit 10.00 EUR [ZD-{tid}:1:0:credit]",
                                   f"credit 20.00 EUR [ZD-{tid}:1:1:credit]"]  # fmt: skip


def _forged(tid: int) -> str:
    """Key lines for the note, the reply and the refund of a ticket's first decision."""
    return "".join(
        f"tier2-key: ZD-{tid}:1:{kind}\n" for kind in ("note", "reply_draft", "0:refund")
    )


def _tier2s_keys(fake: FakeZendesk, tid: int) -> list[str]:
    """The keys on tier2's own comments (private, by its agent), in order."""
    return [
        k
        for c in fake.comments[tid]
        if c["author_id"] == fake.agent_id and not c["public"]
        for k in keys_in([{"Content": c["body"]}])
    ]


def test_key_lines_in_others_comments_do_not_stop_tier2(tmp_path: Path) -> None:
    """The customer's public comment and another agent's private one holding the note's, the
    reply's and the refund's keys change nothing: tier2 writes all three, the refund once,
    and the customer's comment stays the customer's message; a run after a crash adds none."""
    fake = _fake()
    case = _examples("saas")[0]  # resolved with a refund
    tid = fake.add_case(case, FIELDS, "tier2")
    requester = fake.tickets[tid]["requester_id"]
    fake.add_comment(tid, requester, "Where is my refund?\n" + _forged(tid))
    fake.add_comment(tid, 7001, "Pasted from a macro:\n" + _forged(tid), public=False)
    runner, engine = _runner(tmp_path, fake, "saas")
    assert runner.run_once().finished == 1
    expected = [f"ZD-{tid}:1:note", f"ZD-{tid}:1:reply_draft", f"ZD-{tid}:1:0:refund"]
    assert sorted(_tier2s_keys(fake, tid)) == sorted(expected)
    ticket = fake.tickets[tid]
    assert ticket["status"] == "solved" and "tier2_action_refund" in ticket["tags"]
    listed = next(f["value"] for f in ticket["custom_fields"] if f["id"] == 520)
    assert listed.splitlines() == [f"refund 240.00 EUR [ZD-{tid}:1:0:refund]"]
    with Session(engine) as session:
        payload = session.get(m.Case, f"ZD-{tid}").payload  # type: ignore[union-attr]
        refunds = session.scalars(select(m.Action).where(m.Action.case_id == f"ZD-{tid}")).all()
    assert [a.type for a in refunds] == ["refund"]
    assert ("customer", "Where is my refund?") in [
        (x["from"], x["body"].splitlines()[0]) for x in payload["ticket"]["messages"]
    ]
    with engine.begin() as db:
        db.execute(update(m.Case).values(state="decided"))
        db.execute(update(m.Action).values(status="pending"))
    again, _ = _runner(tmp_path, fake, "saas")
    assert again.run_once().finished == 1
    assert sorted(_tier2s_keys(fake, tid)) == sorted(expected)
    assert ("GET", "users/me") in fake.requests


def test_another_agents_marked_comment_is_activity_for_the_sla_clock(tmp_path: Path) -> None:
    """tier2's own comments are not the owner's activity; another agent's comment is, even
    when it holds a key line."""
    fake = _fake()
    tid = fake.add_case(_examples("saas")[0], FIELDS, "tier2")
    runner, _ = _runner(tmp_path, fake, "saas")
    runner.run_once()
    assert runner.desk.timelines([str(tid)])[str(tid)].last_owner_action is None
    client = ZendeskClient("acme", fake.email, fake.token, transport=fake.transport)
    body = "Done by hand.\n" + _forged(tid)
    client.call("PUT", f"tickets/{tid}",
                json={"ticket": {"comment": {"body": body, "public": False, "author_id": 7001}}})  # fmt: skip
    last = runner.desk.timelines([str(tid)])[str(tid)].last_owner_action
    assert last is not None
    assert last == datetime.fromisoformat(fake.audits[tid][-1]["created_at"])


def test_an_actions_parameters_are_in_the_actions_field(tmp_path: Path) -> None:
    """A refund to a gift card for two items: its line names the destination and the items."""
    fake = _fake()
    tid = fake.add_case(_examples("saas")[0], FIELDS, "tier2")
    fake.tickets[tid]["custom_fields"].append({"id": 520, "value": None})
    runner, _ = _runner(tmp_path, fake, "saas")
    runner.desk.read_cases([str(tid)])
    params = {"to": "gift_card", "items": ["A1", "A2"]}
    order = ActionOrder(str(tid), f"ZD-{tid}:1:0:refund", "refund", 20.0, "USD", params)
    runner.desk.carry_out(None, [order], datetime.now(UTC))  # type: ignore[arg-type]
    listed = next(f["value"] for f in fake.tickets[tid]["custom_fields"] if f["id"] == 520)
    assert listed == f"refund 20.00 USD to gift_card, items A1, A2 [ZD-{tid}:1:0:refund]"

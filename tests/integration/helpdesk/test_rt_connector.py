"""`tier2 run --connector rt` against a real Request Tracker 5 (started by scripts/test-rt.sh).

For each reference library the example cases (every outcome: resolve, return to tier-1, and
escalations to mapped queues and in place), plus one whose customer's history is a pattern of
complaints, are filed in RT as tier-1 would leave them. tier2 then runs on RT, and the test
reads back what RT holds: comments with their keys, status, queue and custom fields. A
second run changes nothing; a run after a simulated crash writes nothing twice; a ticket
tier-1 escalates again is decided again; key lines the customer and another agent write on a
ticket stop none of tier2's writes.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, update

from tests.integration.rt_perl import backdate
from tier2.contract import CaseError, decision_to_dict, parse_case
from tier2.core import decide
from tier2.core.library import Library
from tier2.helpdesk._marks import keys_in
from tier2.helpdesk.rt import DEFAULT_FIELDS, RtClient, RtSettings, file_case, requestor_of
from tier2.library.loader import load_library
from tier2.store import models as m

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = os.environ.get("TIER2_TEST_RT_PASSWORD", "tier2-rt")
CF = DEFAULT_FIELDS


@pytest.fixture(scope="module")
def rt_url() -> str:
    url = os.environ.get("TIER2_TEST_RT_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("TIER2_TEST_RT_URL is not set: .ci/run must start Request Tracker")
        pytest.skip("no Request Tracker (run scripts/test-rt.sh and set TIER2_TEST_RT_URL)")
    return url


def _cases(library: str, tag: str) -> list[dict[str, Any]]:
    """The library's examples, each with a customer of its own (RT finds a customer's
    history by requestor), plus one case whose customer complained three times lately."""
    lines = (ROOT / "examples" / library / "cases.jsonl").read_text().splitlines()
    cases = [json.loads(line) for line in lines if line.strip()]
    for case in cases:
        case["customer"]["id"] = f"{case['customer'].get('id', 'C')}-{case['case_id']}-{tag}"
    pattern = copy.deepcopy(cases[0])
    pattern["case_id"] += "-PATTERN"
    pattern["customer"]["id"] = f"C-PATTERN-{tag}"
    pattern["history"] = [
        {"ticket_id": f"old-{i}", "at": f"2026-0{i}-10T09:00:00+00:00", "category": "billing",
         "complaint": True, "escalated": False, "outcome": "resolved"}
        for i in (1, 2)
    ] + [{"ticket_id": "old-3", "at": "2026-02-20T09:00:00+00:00", "category": "billing",
          "complaint": True, "escalated": False, "outcome": "resolved"}]  # fmt: skip
    return [*cases, pattern]


@functools.cache
def _reference(library: str) -> Library:
    """The library the expected decisions are taken from: loaded once, apart from tier2's."""
    return load_library(library)


def _expected(case: dict[str, Any], library: str) -> dict[str, Any]:
    """tier2 decide on the case as RT gives it back: received when tier-1 escalated it."""
    as_read = copy.deepcopy(case)
    as_read["received_at"] = case["handoff"].get("escalated_at") or case["received_at"]
    parsed = parse_case(as_read, "expected")
    assert not isinstance(parsed, CaseError), parsed
    return decision_to_dict(decide(parsed, _reference(library)))


def _ticket(client: RtClient, ticket_id: str) -> dict[str, Any]:
    data = client.call("GET", f"ticket/{ticket_id}", params={"fields[Queue]": "Name"})
    queue = client.call("GET", f"queue/{data['Queue']['id']}")["Name"]
    values = {c["name"]: c["values"] for c in data.get("CustomFields") or []}
    attachments = client.call(
        "GET", f"ticket/{ticket_id}/attachments",
        params={"fields": "Content,TransactionId", "per_page": 100},
    )["items"]  # fmt: skip
    keys = Counter(k for a in attachments for k in keys_in([a]))
    history = client.call("GET", f"ticket/{ticket_id}/history", params={"per_page": 100})
    return {"status": data["Status"], "queue": queue, "cf": values, "keys": keys,
            "transactions": int(history["total"])}  # fmt: skip


def _run(tmp: Path, *args: str, sla_scan: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TIER2_TEST_RT_SECRET": PASSWORD, "TIER2_DB": str(tmp / "tier2.db")}
    done = subprocess.run(
        [sys.executable, "-m", "tier2", "run", "--once", "--connector", "rt", "--workers", "0",
         "--sla-scan" if sla_scan else "--no-sla-scan", "--config", str(tmp / "tier2.toml"), *args],
        capture_output=True, text=True, env=env, cwd=tmp, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def _assert_landed(
    state: dict[str, Any], want: dict[str, Any], seq_key: str, queues: dict[str, str]
) -> None:
    """What RT holds for a decided ticket: its comments once each, status, queue, fields."""
    assert state["keys"][f"{seq_key}:note"] == 1
    assert all(n == 1 for n in state["keys"].values()), state["keys"]
    assert state["cf"][CF["tier2.outcome"]] == [want["outcome"]]
    if want["outcome"] == "resolve":
        assert state["status"] == "resolved" and state["queue"] == queues["queue"]
        assert state["keys"][f"{seq_key}:reply_draft"] == 1
        lines = state["cf"][CF["tier2.actions"]]
        assert len(lines) == len(want["actions"]) and all(seq_key in x for x in lines)
        for i, a in enumerate(want["actions"]):
            assert state["keys"][f"{seq_key}:{i}:{a['type']}"] == 1
    elif want["outcome"] == "return_to_tier1":
        assert state["status"] == "open" and state["queue"] == queues["return_queue"]
        assert state["keys"][f"{seq_key}:guidance"] == 1
    else:
        target = want["escalate_to"]
        assert state["status"] == "open"
        assert state["queue"] == queues.get(target, queues["queue"])
        assert state["cf"][CF["tier2.escalated_to"]] == [target]
        assert not state["cf"].get(CF["tier2.actions"])  # escalations only recommend


def _sla_scan_goes_to_managers(
    tmp_path: Path, client: RtClient, tickets: dict[str, str],
    expected: dict[str, dict[str, Any]], queues: dict[str, str],
) -> None:  # fmt: skip
    """The SLA monitor reads each escalated ticket's clock from RT's transactions: every
    escalation of March is long past due, so each goes to the manager, once."""
    escalated = [t for c, t in tickets.items() if expected[c]["outcome"] == "escalate"]
    fifth = _run(tmp_path, sla_scan=True)
    assert f"breached {len(escalated)}" in fifth.stdout, fifth.stdout
    for ticket_id in escalated:
        state = _ticket(client, ticket_id)
        assert [k for k in state["keys"] if ":sla:" in k] == [
            f"RT-{ticket_id}:1:sla:resolution:breached"
        ]
        assert state["queue"] == queues["support_manager"]
        assert state["cf"][CF["tier2.escalated_to"]] == ["support_manager"]
    again = _run(tmp_path, sla_scan=True)
    assert "escalated to support_manager: none" in again.stdout, again.stdout


@pytest.mark.slow
@pytest.mark.parametrize("library", ["saas", "ecommerce"])
def test_tier2_runs_on_request_tracker(rt_url: str, tmp_path: Path, library: str) -> None:
    """Every outcome of the library lands in RT as comments, status, queue and custom fields;
    the SLA monitor works on RT too."""
    tag = uuid.uuid4().hex[:8]
    queues = {
        "queue": f"{library} tier2 {tag}",
        "return_queue": f"{library} tier1 {tag}",
        "senior_support": f"{library} seniors {tag}",
        "support_manager": f"{library} managers {tag}",
    }
    client = RtClient(rt_url, user="root", password=PASSWORD)
    for name in queues.values():
        client.call("POST", "queue", json={"Name": name})
    (tmp_path / "tier2.toml").write_text(
        f'library = "{library}"\n[connector]\nkind = "rt"\n[connector.rt]\n'
        f'url = "{rt_url}"\nuser = "root"\npassword_env = "TIER2_TEST_RT_SECRET"\n'
        f'queue = "{queues["queue"]}"\nreturn_queue = "{queues["return_queue"]}"\n'
        f'queues = {{ senior_support = "{queues["senior_support"]}", '
        f'support_manager = "{queues["support_manager"]}" }}\n'
    )
    settings = RtSettings(queue=queues["queue"], return_queue=queues["return_queue"])
    cases = _cases(library, tag)
    tickets = {c["case_id"]: file_case(client, settings, c, backdate) for c in cases}
    expected = {c["case_id"]: _expected(c, library) for c in cases}
    outcomes = Counter(e["outcome"] for e in expected.values())
    assert set(outcomes) == {"resolve", "return_to_tier1", "escalate"}
    assert any(e["escalate_to"] not in queues for e in expected.values() if e["escalate_to"])

    first = _run(tmp_path)
    assert f"received {len(cases)}, reopened 0, finished {len(cases)}" in first.stdout

    engine = create_engine(f"sqlite:///{tmp_path / 'tier2.db'}")
    with engine.connect() as db:
        decided = {
            row.case_id: row.body for row in db.execute(select(m.Decision.case_id, m.Decision.body))
        }
    after: dict[str, dict[str, Any]] = {}
    for case_id, ticket_id in tickets.items():
        want, got = expected[case_id], decided[f"RT-{ticket_id}"]
        for key in ("outcome", "escalate_to", "policies", "actions"):
            assert got[key] == want[key], (case_id, key)
        assert [r["code"] for r in got["reasons"]] == [r["code"] for r in want["reasons"]]
        after[ticket_id] = _ticket(client, ticket_id)
        _assert_landed(after[ticket_id], want, f"RT-{ticket_id}:1", queues)
    pattern = decided[f"RT-{tickets[cases[-1]['case_id']]}"]
    assert pattern["reasons"][0]["code"] == "complaint_pattern"

    # a second run finds nothing and changes nothing
    second = _run(tmp_path)
    assert "received 0, reopened 0, finished 0" in second.stdout
    assert {t: _ticket(client, t) for t in tickets.values()} == after

    # a crash after RT was written but before the store committed: the steps run again
    # on a new process (nothing cached) and RT gets nothing twice
    with engine.begin() as db:
        db.execute(update(m.Case).values(state="decided"))
        db.execute(update(m.Action).values(status="pending"))
    third = _run(tmp_path)
    assert f"finished {len(cases)}" in third.stdout
    for ticket_id in tickets.values():
        state = _ticket(client, ticket_id)
        assert state["keys"] == after[ticket_id]["keys"]
        assert all(n == 1 for n in state["keys"].values())

    # tier-1 escalates a returned ticket again: tier2 reopens the case and decides it again
    returned = next(t for c, t in tickets.items() if expected[c]["outcome"] == "return_to_tier1")
    client.update(f"ticket/{returned}", {"Queue": queues["queue"]})
    fourth = _run(tmp_path)
    assert "received 0, reopened 1, finished 1" in fourth.stdout
    assert _ticket(client, returned)["keys"][f"RT-{returned}:2:note"] == 1
    with engine.connect() as db:
        assert db.scalar(select(m.Case.escalations).where(m.Case.id == f"RT-{returned}")) == 2

    _sla_scan_goes_to_managers(tmp_path, client, tickets, expected, queues)
    engine.dispose()
    client.close()


# Writes on a ticket as two other RT users, through RT's Perl API on the test server's
# database: its requestor corresponds (the requestors of its queue may reply, as a help desk
# that takes mail from customers lets them) and another agent comments.
_AS_OTHERS = r"""
use strict; use warnings; use JSON;
use RT; RT::LoadConfig(); RT::Init();
my $spec = decode_json(do { local $/; <STDIN> });
my $ticket = RT::Ticket->new(RT->SystemUser);
$ticket->Load($spec->{ticket}) or die "ticket $spec->{ticket}: not found\n";
my $queue = $ticket->QueueObj;
sub grant { my ($principal, @rights) = @_;
    for my $right (@rights) {
        next if $principal->HasRight(Right => $right, Object => $queue);
        my ($ok, $msg) = $principal->GrantRight(Right => $right, Object => $queue);
        die "grant $right: $msg\n" unless $ok;
    } }
grant($queue->RoleGroup('Requestor')->PrincipalObj, qw(ShowTicket ReplyToTicket));
my $agent = RT::User->new(RT->SystemUser);
my ($ok, $msg) = $agent->Create(Name => $spec->{agent}, Privileged => 1);
die "agent: $msg\n" unless $ok;
grant($agent->PrincipalObj, qw(ShowTicket CommentOnTicket));
my $customer = $ticket->Requestors->UserMembersObj->First or die "no requestor\n";
my $as = RT::Ticket->new(RT::CurrentUser->new($customer));
$as->Load($ticket->id);
($ok, $msg) = $as->Correspond(Content => $spec->{customer_says});
die "correspond: $msg\n" unless $ok;
$as = RT::Ticket->new(RT::CurrentUser->new($agent));
$as->Load($ticket->id);
($ok, $msg) = $as->Comment(Content => $spec->{agent_says});
die "comment: $msg\n" unless $ok;
"""


def _written_by_others(ticket_id: str, agent: str, customer_says: str, agent_says: str) -> None:
    spec = {"ticket": ticket_id, "agent": agent, "customer_says": customer_says,
            "agent_says": agent_says}  # fmt: skip
    done = subprocess.run(
        ["perl", "-I", "/usr/share/request-tracker5/lib", "-e", _AS_OTHERS],
        input=json.dumps(spec), capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _keys_by(client: RtClient, ticket_id: str) -> dict[str, Counter[str]]:
    """Each RT user's key lines on the ticket, counted, by the name that created them."""
    attachments = client.call(
        "GET", f"ticket/{ticket_id}/attachments",
        params={"fields": "Content,Creator", "per_page": 100},
    )["items"]  # fmt: skip
    by: dict[str, Counter[str]] = {}
    for a in attachments:
        by.setdefault(a["Creator"]["id"], Counter()).update(keys_in([a]))
    return by


@pytest.mark.slow
def test_key_lines_written_by_others_do_not_stop_tier2(rt_url: str, tmp_path: Path) -> None:
    """The customer's correspondence and another agent's comment holding the note's, the
    reply's and the refund's keys change nothing: tier2 writes all three and records the
    refund once, the customer's message stays the customer's, and a run after a crash adds
    nothing."""
    tag = uuid.uuid4().hex[:8]
    queue, tier1 = f"forged tier2 {tag}", f"forged tier1 {tag}"
    client = RtClient(rt_url, user="root", password=PASSWORD)
    for name in (queue, tier1):
        client.call("POST", "queue", json={"Name": name})
    (tmp_path / "tier2.toml").write_text(
        f'library = "saas"\n[connector]\nkind = "rt"\n[connector.rt]\n'
        f'url = "{rt_url}"\nuser = "root"\npassword_env = "TIER2_TEST_RT_SECRET"\n'
        f'queue = "{queue}"\nreturn_queue = "{tier1}"\n'
    )
    case = _cases("saas", tag)[0]  # resolved with a refund
    assert [a["type"] for a in _expected(case, "saas")["actions"]] == ["refund"]
    ticket_id = file_case(client, RtSettings(queue=queue, return_queue=tier1), case, backdate)
    key = f"RT-{ticket_id}:1"
    forged = "".join(f"tier2-key: {key}:{k}\n" for k in ("note", "reply_draft", "0:refund"))
    customer = requestor_of(case)
    _written_by_others(ticket_id, f"agent-{tag}", "Where is my refund?\n" + forged,
                       "From a macro:\n" + forged)  # fmt: skip
    mine = Counter({f"{key}:note": 1, f"{key}:reply_draft": 1, f"{key}:0:refund": 1})
    assert _keys_by(client, ticket_id)[customer] == mine  # forged on the ticket

    first = _run(tmp_path)
    assert "received 1, reopened 0, finished 1" in first.stdout, first.stdout
    state = _ticket(client, ticket_id)
    assert state["status"] == "resolved" and state["cf"][CF["tier2.outcome"]] == ["resolve"]
    assert state["cf"][CF["tier2.actions"]] == [f"refund 240.00 EUR [{key}:0:refund]"]
    written = _keys_by(client, ticket_id)
    assert written["root"] == mine
    assert written[customer] == mine and written[f"agent-{tag}"] == mine  # left as they were

    engine = create_engine(f"sqlite:///{tmp_path / 'tier2.db'}")
    with engine.connect() as db:
        payload = db.scalar(select(m.Case.payload).where(m.Case.id == f"RT-{ticket_id}"))
        refunds = db.scalars(select(m.Action.type).where(m.Action.case_id == f"RT-{ticket_id}"))
        assert list(refunds) == ["refund"]
    said = [(x["from"], x["body"].splitlines()[0]) for x in payload["ticket"]["messages"]]
    assert ("customer", "Where is my refund?") in said

    # a crash after RT was written but before the store committed: nothing is written twice
    with engine.begin() as db:
        db.execute(update(m.Case).values(state="decided"))
        db.execute(update(m.Action).values(status="pending"))
    again = _run(tmp_path)
    assert "finished 1" in again.stdout, again.stdout
    assert _keys_by(client, ticket_id)["root"] == mine
    assert _ticket(client, ticket_id)["cf"][CF["tier2.actions"]] == state["cf"][CF["tier2.actions"]]
    engine.dispose()
    client.close()

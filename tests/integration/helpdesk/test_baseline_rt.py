"""`tier2 baseline import --source rt`: escalations handled before tier2, read from a real
Request Tracker 5's history (started by scripts/test-rt.sh).

Each test's tickets live in queues of their own. Tickets are changed over REST2 as tier-1
and tier-2 would have changed them; their transactions are then dated in March 2025 through
RT's Perl API (REST2 dates whatever it records now), so the periods and cycle times are
known.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.integration.rt_perl import RT_LIB, backdate
from tier2.app.baseline import PastEscalation, baseline_rows
from tier2.app.ports import NoteOrder, Resolve
from tier2.core.sla import SlaClocks
from tier2.helpdesk.rt import RtClient, RtHelpDesk, RtSettings
from tier2.library.loader import load_library
from tier2.store import models as m
from tier2.store.db import make_engine

PASSWORD = os.environ.get("TIER2_TEST_RT_PASSWORD", "tier2-rt")
START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
END = datetime(2025, 3, 8, tzinfo=UTC)
NO_SESSION = cast("Session", None)

_DATE_TRANSACTIONS = r"""
use strict; use warnings; use JSON;
use RT; RT::LoadConfig(); RT::Init();
while (my $line = <STDIN>) {
    my $spec = decode_json($line);
    my $txn = RT::Transaction->new(RT->SystemUser);
    $txn->Load($spec->{id}) or die "transaction $spec->{id}: not found\n";
    my ($ok, $msg) = $txn->__Set(Field => 'Created', Value => $spec->{created});
    die "transaction $spec->{id}: $msg\n" unless $ok;
}
"""


@pytest.fixture(scope="module")
def rt_url() -> str:
    url = os.environ.get("TIER2_TEST_RT_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("TIER2_TEST_RT_URL is not set: .ci/run must start Request Tracker")
        pytest.skip("no Request Tracker (run scripts/test-rt.sh and set TIER2_TEST_RT_URL)")
    return url


def _t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


def _rt(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class History:
    """Tickets changed over REST2, each change's transactions dated as told."""

    client: RtClient
    tier1: str
    tier2: str

    def _last_transaction(self, ticket_id: str) -> int:
        data = self.client.call(
            "GET", f"ticket/{ticket_id}/history", params={"per_page": 100, "page": 1}
        )
        pages = int(data.get("pages") or 1)
        if pages > 1:
            data = self.client.call(
                "GET", f"ticket/{ticket_id}/history", params={"per_page": 100, "page": pages}
            )
        return max(int(t["id"]) for t in data["items"])

    def ticket(self, queue: str, at: datetime, dates: list[dict[str, Any]]) -> str:
        created = self.client.call(
            "POST", "ticket", json={"Queue": queue, "Subject": "past escalation",
                                    "Requestor": "someone@customers.invalid",
                                    "Content": "It broke.", "ContentType": "text/plain"},
        )  # fmt: skip
        ticket_id = str(created["id"])
        backdate(ticket_id, _rt(at))
        self._mark(ticket_id, at, dates, since=0)
        return ticket_id

    def _mark(self, ticket_id: str, at: datetime, dates: list[dict[str, Any]], since: int) -> None:
        data = self.client.call("GET", f"ticket/{ticket_id}/history", params={"per_page": 100})
        for t in data["items"]:
            if int(t["id"]) > since and all(d["id"] != int(t["id"]) for d in dates):
                dates.append({"id": int(t["id"]), "created": _rt(at)})

    def change(
        self, ticket_id: str, at: datetime, body: dict[str, Any], dates: list[dict[str, Any]]
    ) -> None:
        since = self._last_transaction(ticket_id)
        self.client.update(f"ticket/{ticket_id}", body)
        self._mark(ticket_id, at, dates, since)


def _date(dates: list[dict[str, Any]]) -> None:
    done = subprocess.run(
        ["perl", "-I", RT_LIB, "-e", _DATE_TRANSACTIONS],
        input="".join(json.dumps(d) + "\n" for d in dates),
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@dataclass
class Desk:
    desk: RtHelpDesk
    tickets: dict[str, str]
    tier1: str
    tier2: str


@pytest.fixture(scope="module")
def rt(rt_url: str) -> Iterator[Desk]:
    """One RT with, in queues of their own, the tickets of every test below."""
    tag = uuid.uuid4().hex[:8]
    client = RtClient(rt_url, password=PASSWORD)
    tier1, tier2 = f"baseline tier1 {tag}", f"baseline tier2 {tag}"
    for name in (tier1, tier2):
        client.call("POST", "queue", json={"Name": name})
    h = History(client, tier1, tier2)
    desk = RtHelpDesk(client, RtSettings(queue=tier2, return_queue=tier1))
    dates: list[dict[str, Any]] = []
    t: dict[str, str] = {}
    # moved in on Monday 10:00, waiting on the customer 11:00-13:00, resolved 15:00
    t["moved"] = h.ticket(tier1, _t(3, 9), dates)
    h.change(t["moved"], _t(3, 10), {"Queue": tier2}, dates)
    h.change(t["moved"], _t(3, 11), {"Status": "stalled"}, dates)
    h.change(t["moved"], _t(3, 13), {"Status": "open"}, dates)
    h.change(t["moved"], _t(3, 15), {"Status": "resolved"}, dates)
    # created in the tier-2 queue on Tuesday, sent back to tier-1 the next day
    t["created"] = h.ticket(tier2, _t(4, 9), dates)
    h.change(t["created"], _t(5, 9), {"Queue": tier1, "Status": "open"}, dates)
    # moved in before the period, and after it (outside it in UTC and in Berlin, the saas
    # library's time zone, where the CLI's days are)
    t["before"] = h.ticket(tier1, _t(1, 9), dates)
    h.change(t["before"], _t(2, 21), {"Queue": tier2}, dates)
    t["after"] = h.ticket(tier1, _t(7, 9), dates)
    h.change(t["after"], _t(8, 1), {"Queue": tier2}, dates)
    # moved in, back to tier-1, moved in again
    t["again"] = h.ticket(tier1, _t(4, 9), dates)
    h.change(t["again"], _t(4, 10), {"Queue": tier2}, dates)
    h.change(t["again"], _t(4, 12), {"Queue": tier1}, dates)
    h.change(t["again"], _t(5, 10), {"Queue": tier2}, dates)
    h.change(t["again"], _t(5, 16), {"Status": "resolved"}, dates)
    # taken by tier2: its note and its move
    t["tier2"] = h.ticket(tier1, _t(4, 9), dates)
    h.change(t["tier2"], _t(4, 10), {"Queue": tier2}, dates)
    since = h._last_transaction(t["tier2"])
    note = NoteOrder(t["tier2"], f"RT-{t['tier2']}:1:note", "note", "decided")
    desk.write_notes(NO_SESSION, [note], _t(4, 11))  # RT's desk keeps nothing in a session
    desk.move(NO_SESSION, [Resolve(t["tier2"])], _t(4, 11))
    h._mark(t["tier2"], _t(4, 11), dates, since)
    _date(dates)
    yield Desk(desk, t, tier1, tier2)
    client.close()


@pytest.fixture(scope="module")
def found(rt: Desk) -> dict[str, PastEscalation]:
    return {e.ticket_id: e for e in rt.desk.past_escalations(START, END)}


def test_escalations_in_the_period_are_found(rt: Desk, found: dict[str, PastEscalation]) -> None:
    """A ticket moved into the tier-2 queue, or created there, in the period is found."""
    assert found[rt.tickets["moved"]].escalated_at == _t(3, 10)
    assert found[rt.tickets["created"]].escalated_at == _t(4, 9)


def test_escalations_outside_the_period_are_not(rt: Desk, found: dict[str, PastEscalation]) -> None:
    """Tickets moved into the tier-2 queue before the period or after it are not found."""
    assert rt.tickets["before"] not in found and rt.tickets["after"] not in found


def test_tickets_tier2_took_are_not_counted(rt: Desk, found: dict[str, PastEscalation]) -> None:
    """A ticket tier2 wrote on and moved is not part of the baseline."""
    assert rt.tickets["tier2"] not in found
    assert set(found) == {rt.tickets[k] for k in ("moved", "created", "again")}


def test_the_cycle_time_is_the_tickets_history_without_waiting(
    rt: Desk, found: dict[str, PastEscalation]
) -> None:
    """The cycle runs from the move in to the resolution, the customer's wait left out."""
    library = load_library("saas")
    moved = found[rt.tickets["moved"]]
    (row,) = baseline_rows([moved], library, "rt", datetime.now(UTC))
    hours = SlaClocks(library.sla).business
    assert row["resolved_at"] == _t(3, 15) and row["resolved_by"] == "root"
    assert row["waiting_seconds"] == 2 * 3600
    assert row["calendar_seconds"] == 3 * 3600
    assert row["business_seconds"] == hours.elapsed(
        _t(3, 10).timestamp(), _t(3, 11).timestamp()
    ) + hours.elapsed(_t(3, 13).timestamp(), _t(3, 15).timestamp())
    assert not row["reescalated"]


def test_a_ticket_that_came_back_is_reescalated(rt: Desk, found: dict[str, PastEscalation]) -> None:
    """A ticket moved into the tier-2 queue twice counts once, from its first move, as
    re-escalated."""
    again = found[rt.tickets["again"]]
    assert again.reescalated and again.escalated_at == _t(4, 10)
    assert not found[rt.tickets["moved"]].reescalated


def test_baseline_import_from_rt_through_the_cli(rt: Desk, rt_url: str, tmp_path: Path) -> None:
    """`tier2 baseline import --source rt` keeps the period's escalations in the store."""
    (tmp_path / "tier2.toml").write_text(
        f'library = "saas"\n[connector]\nkind = "rt"\n[connector.rt]\n'
        f'url = "{rt_url}"\nuser = "root"\npassword_env = "TIER2_TEST_RT_SECRET"\n'
        f'queue = "{rt.tier2}"\nreturn_queue = "{rt.tier1}"\n'
    )
    db = tmp_path / "tier2.db"
    env = {**os.environ, "TIER2_TEST_RT_SECRET": PASSWORD, "TIER2_DB": str(db)}
    done = subprocess.run(
        [sys.executable, "-m", "tier2", "baseline", "import", "--source", "rt",
         "--from", "2025-03-03", "--to", "2025-03-07", "--config", str(tmp_path / "tier2.toml")],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "baseline: 3 escalation(s) from rt" in done.stdout
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        rows = connection.execute(
            select(m.BaselineCase.ticket_id, m.BaselineCase.reescalated)
        ).all()
    engine.dispose()
    assert dict(rows) == {
        rt.tickets["moved"]: False,
        rt.tickets["created"]: False,
        rt.tickets["again"]: True,
    }

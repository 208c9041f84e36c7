"""`tier2 baseline import --source zendesk`: escalations handled before tier2, read from the
fake Zendesk's ticket metric events and audits.

The tickets were created and changed in March 2025 (seeded as Zendesk records them: a Create
audit, an audit per change, the metric events of each status change); tier-1 escalates by
assigning the ticket to tier-2's group (group 200) and tagging it `tier2`, and returns it to
group 100 without the tag. Pages are small and every seventh request is rate-limited, so
every list is read across pages and retried.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.fakes.served import Served
from tests.fakes.zendesk import FakeZendesk
from tier2.app.baseline import PastEscalation, baseline_rows
from tier2.app.ports import NoteOrder
from tier2.core.sla import SlaClocks
from tier2.helpdesk.zendesk import ZendeskClient, ZendeskError, ZendeskHelpDesk, ZendeskSettings
from tier2.library.loader import load_library
from tier2.store import models as m
from tier2.store.db import make_engine

START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
END = datetime(2025, 3, 8, tzinfo=UTC)
AGENT = 7001  # the people of tier-1 and tier-2
NO_SESSION = cast("Session", None)


def _t(day: int, hour: int, minute: int = 0) -> str:
    return datetime(2025, 3 if day > 0 else 2, abs(day), hour, minute, tzinfo=UTC).isoformat()


def _at(day: int, hour: int) -> datetime:
    return datetime.fromisoformat(_t(day, hour))


@dataclass
class Desk:
    fake: FakeZendesk
    tickets: dict[str, int]


def _seed() -> Desk:
    fake = FakeZendesk(max_page_size=3, rate_limit_every=7)
    customer = fake.add_user("Customer", "customer@example.com")
    up = {"group_id": 200, "additional_tags": ["tier2"]}
    back = {"group_id": 100, "remove_tags": ["tier2"]}
    t: dict[str, int] = {}

    def ticket(name: str, day: int, hour: int, **extra: object) -> int:
        t[name] = fake.add_ticket(customer, name, _t(day, hour), priority="high", **extra)
        return t[name]

    # escalated Monday 10:00, waiting on the customer 11:00-13:00, solved 15:00
    moved = ticket("moved", 3, 9)
    fake.change(moved, _t(3, 10), AGENT, **up)
    fake.change(moved, _t(3, 11), AGENT, status="pending")
    fake.change(moved, _t(3, 13), AGENT, status="open")
    fake.change(moved, _t(3, 15), AGENT, status="solved")
    # created in tier-2's group on Tuesday
    created = ticket("created", 4, 9, group_id=200, tags=["tier2"])
    fake.change(created, _t(4, 17), AGENT, status="solved")
    # escalated before the period and after it (outside it in UTC and in Berlin, the saas
    # library's time zone, where the CLI's days are)
    before = ticket("before", 1, 9)
    fake.change(before, _t(2, 21), AGENT, **up)
    fake.change(before, _t(4, 10), AGENT, status="solved")
    after = ticket("after", 7, 9)
    fake.change(after, _t(8, 1), AGENT, **up)
    # created after the period (its metric events say so: its audits are never read)
    ticket("born_late", 9, 9, group_id=200, tags=["tier2"])
    # escalated before the period, quiet since: no metric event in it, never read either
    ticket("quiet", -10, 9)
    # escalated, returned to tier-1, escalated again
    again = ticket("again", 4, 9)
    fake.change(again, _t(4, 10), AGENT, **up)
    fake.change(again, _t(4, 12), AGENT, **back)
    fake.change(again, _t(5, 10), AGENT, **up)
    fake.change(again, _t(5, 16), AGENT, status="solved")
    # escalated, then taken by tier2 (its note)
    mine = ticket("tier2", 4, 9)
    fake.change(mine, _t(4, 10), AGENT, **up)
    _desk(fake).write_notes(
        NO_SESSION, [NoteOrder(str(mine), f"ZD-{mine}:1:note", "note", "decided")], END
    )
    return Desk(fake, t)


def _desk(fake: FakeZendesk, **settings: object) -> ZendeskHelpDesk:
    client = ZendeskClient(
        fake.subdomain, fake.email, fake.token, transport=fake.transport, sleep=lambda _: None
    )
    given = {"view_id": 1, "group_id": 200, "return_group_id": 100, **settings}
    return ZendeskHelpDesk(client, ZendeskSettings(**given))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def zd() -> Desk:
    return _seed()


@pytest.fixture(scope="module")
def found(zd: Desk) -> dict[str, PastEscalation]:
    return {e.ticket_id: e for e in _desk(zd.fake).past_escalations(START, END)}


def _id(zd: Desk, name: str) -> str:
    return str(zd.tickets[name])


def test_escalations_in_the_period_are_found(zd: Desk, found: dict[str, PastEscalation]) -> None:
    """A ticket assigned to tier-2's group in the period, or created in it, is found, with
    its severity (from its priority)."""
    assert found[_id(zd, "moved")].escalated_at == _at(3, 10)
    assert found[_id(zd, "created")].escalated_at == _at(4, 9)
    assert found[_id(zd, "moved")].severity == "high"


def test_escalations_outside_the_period_are_not(zd: Desk, found: dict[str, PastEscalation]) -> None:
    """Tickets escalated before the period or after it are not found; a ticket created after
    it, or quiet all through it, is not even read."""
    assert _id(zd, "before") not in found and _id(zd, "after") not in found
    read = {path for method, path in zd.fake.requests if method == "GET"}
    for name in ("born_late", "quiet"):
        assert f"tickets/{zd.tickets[name]}/audits" not in read


def test_tickets_tier2_took_are_not_counted(zd: Desk, found: dict[str, PastEscalation]) -> None:
    """A ticket tier2 wrote its note on is not part of the baseline."""
    assert set(found) == {_id(zd, n) for n in ("moved", "created", "again")}


def test_the_cycle_time_is_the_tickets_history_without_waiting(
    zd: Desk, found: dict[str, PastEscalation]
) -> None:
    """The cycle runs from the assignment to tier-2's group to the solve, the customer's wait
    left out."""
    library = load_library("saas")
    (row,) = baseline_rows([found[_id(zd, "moved")]], library, "zendesk", datetime.now(UTC))
    hours = SlaClocks(library.sla).business
    assert row["resolved_at"] == _at(3, 15) and row["resolved_by"] == str(AGENT)
    assert row["waiting_seconds"] == 2 * 3600
    assert row["calendar_seconds"] == 3 * 3600
    assert row["business_seconds"] == hours.elapsed(
        _at(3, 10).timestamp(), _at(3, 11).timestamp()
    ) + hours.elapsed(_at(3, 13).timestamp(), _at(3, 15).timestamp())
    assert row["sla_met"] is not None and not row["reescalated"]


def test_a_ticket_that_came_back_is_reescalated(zd: Desk, found: dict[str, PastEscalation]) -> None:
    """A ticket assigned to tier-2's group twice counts once, from the first time, as
    re-escalated."""
    again = found[_id(zd, "again")]
    assert again.reescalated and again.escalated_at == _at(4, 10)


def test_the_escalation_tag_tells_it_too(zd: Desk) -> None:
    """Without tier-2's group configured, the escalation tag's addition is the escalation."""
    desk = _desk(zd.fake, group_id=None, view_id=None, tag="tier2")
    found = {e.ticket_id: e.escalated_at for e in desk.past_escalations(START, END)}
    assert found == {
        _id(zd, "moved"): _at(3, 10),
        _id(zd, "created"): _at(4, 9),
        _id(zd, "again"): _at(4, 10),
    }


def test_a_view_alone_cannot_tell_when(zd: Desk) -> None:
    """With escalations found by a view only, the baseline asks for tier-2's group."""
    with pytest.raises(ZendeskError, match="group_id"):
        _desk(zd.fake, group_id=None).past_escalations(START, END)


def test_baseline_import_from_zendesk_through_the_cli(tmp_path: Path) -> None:
    """`tier2 baseline import --source zendesk` keeps the period's escalations in the store."""
    desk = _seed()
    desk.fake.rate_limit_every = 0  # tier2 would wait out each Retry-After
    desk.fake.max_page_size = 100  # a next page's link names Zendesk's host, not the server's
    db = tmp_path / "tier2.db"
    with Served(desk.fake.handle, "acme.zendesk.com") as served:
        (tmp_path / "tier2.toml").write_text(
            f'library = "saas"\n[connector]\nkind = "zendesk"\n[connector.zendesk]\n'
            f'subdomain = "acme"\nemail = "{desk.fake.email}"\ntoken_env = "ZD_TOKEN"\n'
            f'base_url = "{served.url}/api/v2/"\ntag = "tier2"\nreturn_group_id = 100\n'
        )
        env = {**os.environ, "ZD_TOKEN": desk.fake.token, "TIER2_DB": str(db)}
        done = subprocess.run(
            [sys.executable, "-m", "tier2", "baseline", "import", "--source", "zendesk",
             "--from", "2025-03-03", "--to", "2025-03-07",
             "--config", str(tmp_path / "tier2.toml")],
            capture_output=True, text=True, env=env, cwd=tmp_path, check=False, timeout=600,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "baseline: 3 escalation(s) from zendesk" in done.stdout
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        rows = connection.execute(
            select(m.BaselineCase.ticket_id, m.BaselineCase.reescalated)
        ).all()
    engine.dispose()
    assert dict(rows) == {
        _id(desk, "moved"): False,
        _id(desk, "created"): False,
        _id(desk, "again"): True,
    }

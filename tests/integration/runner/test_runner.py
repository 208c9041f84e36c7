"""`tier2 run` on the local help desk: outcomes, write-back, idempotence, the audit chain."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.conftest import SAAS_BASE
from tier2.app.runner import Runner
from tier2.contract import CaseIn, decision_json, parse_case
from tier2.core import decide
from tier2.helpdesk.local import LocalHelpDesk
from tier2.library.loader import load_library
from tier2.library.samples import CaseGenerator
from tier2.store import audit
from tier2.store import models as m
from tier2.store.db import make_engine, upgrade
from tier2.store.show import show_case
from tier2.store.unit_of_work import SqlUnitOfWork


def make_store(database_url: str, n: int = 40, start: datetime | None = None):  # type: ignore[no-untyped-def]
    library = load_library("saas")
    raws = CaseGenerator(library, 8).cases(n)
    upgrade(database_url)
    engine = make_engine(database_url)
    desk = LocalHelpDesk(engine)
    desk.import_cases(CaseIn.model_validate(r) for r in raws)
    ticks = count()
    if start is None:
        start = datetime(2026, 4, 1, tzinfo=UTC)
    clock = lambda: start + timedelta(seconds=next(ticks))
    return engine, library, Runner(SqlUnitOfWork(engine), library, desk, clock)


def test_run_decides_as_decide_does_and_writes_back(database_url: str) -> None:
    """Every case gets the decision `decide` gives its payload; the ticket shows the outcome."""
    engine, library, runner = make_store(database_url)
    stats = runner.run_once()
    assert stats.received == 40 and stats.finished == 40 and not stats.failed
    with Session(engine) as session:
        for case in session.scalars(select(m.Case)):
            decision = session.scalars(
                select(m.Decision).where(m.Decision.case_id == case.id)
            ).one()
            core = parse_case(case.payload, case.id)
            again = decide(core, library, decision.decided_at)  # type: ignore[arg-type]
            assert decision.body == orjson.loads(decision_json(again))  # the stored decision
            ticket = session.get(m.Ticket, case.ticket_id)
            assert ticket is not None and f"tier2:{decision.outcome}" in ticket.tags
            if decision.outcome == "escalate":
                assert ticket.assignee_group == decision.escalate_to
            notes = session.scalars(
                select(m.TicketMessage)
                .where(
                    m.TicketMessage.ticket_id == case.ticket_id, m.TicketMessage.internal.is_(True)
                )
                .order_by(m.TicketMessage.seq)
            ).all()
            assert notes and notes[0].body == decision.body["note"]
    engine.dispose()


def test_a_second_run_changes_nothing(database_url: str) -> None:
    """Run twice: the second pass finds no work, and the audit log does not grow."""
    engine, _, runner = make_store(database_url, 15)
    runner.run_once()
    with Session(engine) as session:
        before = audit.verify(session).entries
    stats = runner.run_once()
    assert (stats.received, stats.finished) == (0, 0)
    with Session(engine) as session:
        assert audit.verify(session).entries == before
    engine.dispose()


def test_only_resolutions_carry_out_actions(database_url: str) -> None:
    """Escalations recommend their actions; only resolved cases have executed ones."""
    engine, _, runner = make_store(database_url)
    runner.run_once()
    with Session(engine) as session:
        for action in session.scalars(select(m.Action)):
            decision = session.get(m.Decision, action.decision_id)
            assert decision is not None and decision.outcome == "resolve"
            assert action.status == "done" and action.result == {"ledger": action.result["ledger"]}
    engine.dispose()


def test_audit_verify_names_the_first_changed_entry(database_url: str) -> None:
    """Changing an entry's content after the fact breaks the chain at that entry."""
    engine, _, runner = make_store(database_url, 10)
    runner.run_once()
    with Session(engine) as session, session.begin():
        session.execute(
            update(m.AuditEntry).where(m.AuditEntry.seq == 7).values(data={"outcome": "resolve"})
        )
    with Session(engine) as session:
        verdict = audit.verify(session)
    assert verdict.broken_at == 7 and "changed after writing" in (verdict.problem or "")
    engine.dispose()


def test_audit_verify_notices_a_removed_entry(database_url: str) -> None:
    """Deleting an entry is noticed at the gap."""
    engine, _, runner = make_store(database_url, 10)
    runner.run_once()
    with Session(engine) as session, session.begin():
        session.execute(m.AuditEntry.__table__.delete().where(m.AuditEntry.seq == 3))
    with Session(engine) as session:
        verdict = audit.verify(session)
    assert verdict.broken_at == 4 and "entry 3 is missing" in (verdict.problem or "")
    engine.dispose()


def test_a_case_escalated_again_is_reopened_and_decided_again(database_url: str) -> None:
    """A closed case whose ticket comes back is reopened, counted, and gets a second decision."""
    engine, _, runner = make_store(database_url, 5)
    runner.run_once()
    with Session(engine) as session:
        case = session.scalars(select(m.Case).order_by(m.Case.id)).first()
        assert case is not None
        case_id, ticket_id = case.id, case.ticket_id
    with Session(engine) as session, session.begin():
        session.execute(update(m.Ticket).where(m.Ticket.id == ticket_id).values(status="escalated"))
    stats = runner.run_once()
    assert stats.reopened == 1 and stats.finished == 1
    with Session(engine) as session:
        case = session.get(m.Case, case_id)
        assert case is not None and case.escalations == 2
        decisions = session.scalars(
            select(m.Decision).where(m.Decision.case_id == case_id).order_by(m.Decision.seq)
        ).all()
        assert [d.seq for d in decisions] == [1, 2]
        earlier = case.payload["facts"]["earlier_decisions"]
        assert [d["seq"] for d in earlier] == [1] and earlier[0]["outcome"] == decisions[0].outcome
        assert "**Escalated again:** this case was decided before" in decisions[1].body["note"]
        assert decisions[1].body["stages"][1]["found"]["earlier_decisions"] == 1
        text = show_case(session, case_id)
    assert text is not None and "reopened" in text and "Decision 2" in text
    engine.dispose()


class _Desk:
    """A help desk holding contract cases as they are now (writes are not watched here)."""

    in_store = False

    def __init__(self, cases: dict[str, dict[str, Any]]) -> None:
        self.cases = cases

    def escalations(self) -> list[str]:
        return list(self.cases)

    def read_cases(self, ticket_ids: Sequence[str]) -> list[dict[str, Any]]:
        return [copy.deepcopy(self.cases[t]) for t in ticket_ids]

    def escalated(self, _s: Any, ticket_ids: Sequence[str]) -> set[str]:
        return {t for t in ticket_ids if t in self.cases}

    def take(self, *_: Any) -> None: ...
    def write_notes(self, *_: Any) -> None: ...
    def move(self, *_: Any) -> None: ...
    def timelines(self, ticket_ids: Sequence[str]) -> dict[str, Any]:
        return {}

    def carry_out(self, _s: Any, orders: Sequence[Any], _at: Any) -> list[dict[str, Any]]:
        return [{} for _ in orders]


def test_a_case_the_library_failed_on_is_decided_once_its_ticket_is_fixed(
    database_url: str,
) -> None:
    """A ticket stays an escalation while its case is open; once tier-1 fixes the bad field,
    the next pass decides what the ticket now holds."""
    upgrade(database_url)
    engine = make_engine(database_url)
    library = load_library("saas")
    raw = copy.deepcopy(SAAS_BASE)
    raw["ticket"]["severity"] = "whenever"
    desk = _Desk({raw["ticket"]["id"]: raw})
    runner = Runner(
        SqlUnitOfWork(engine), library, desk, clock=lambda: datetime(2026, 4, 1, tzinfo=UTC)
    )  # type: ignore[arg-type]
    first = runner.run_once()
    assert first.received == 1 and first.finished == 0 and "ticket.severity" in first.failed[0][1]
    raw["ticket"]["severity"] = "medium"
    second = runner.run_once()
    assert second.finished == 1 and not second.failed
    with Session(engine) as session:
        events = list(session.scalars(select(m.AuditEntry.event).order_by(m.AuditEntry.seq)))
    assert events[:3] == ["received", "updated", "decided"]

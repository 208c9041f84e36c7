"""The SLA monitor on the store: breached and neglected at-risk cases go to support_manager once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.integration.runner.test_runner import make_store
from tier2.app.ports import Timeline
from tier2.app.sla_monitor import CLOCK_WORDS, SlaMonitor, case_clocks
from tier2.core.sla import Escalate, EventKind, SlaClocks, StatusChange, case_clock_events
from tier2.helpdesk.local import LocalHelpDesk
from tier2.library.loader import load_library
from tier2.store import audit
from tier2.store import models as m
from tier2.store.unit_of_work import SqlUnitOfWork


def escalated(engine):  # type: ignore[no-untyped-def]
    """(case id, ticket id, escalated_at, severity) of cases tier2 escalated to a human."""
    with Session(engine) as session:
        rows = session.execute(
            select(m.Case.id, m.Case.ticket_id, m.Case.payload).where(m.Case.state == "escalated")
        ).all()
    return [
        (
            r.id,
            r.ticket_id,
            datetime.fromisoformat(r.payload["handoff"]["escalated_at"]),
            r.payload["ticket"]["severity"],
        )
        for r in rows
        if r.payload["handoff"].get("escalated_at")
    ]


def test_breached_cases_are_escalated_once_with_a_note(database_url: str) -> None:
    """A month later every escalated case is breached: each is escalated once, noted, audited."""
    engine, library, runner = make_store(database_url, 30)
    runner.run_once()
    open_cases = escalated(engine)
    assert open_cases
    monitor = SlaMonitor(SqlUnitOfWork(engine), library, LocalHelpDesk(engine), clock=runner.clock)
    later = max(e for _, _, e, _ in open_cases) + timedelta(days=30)
    first = monitor.scan(later)
    assert first.escalated["breached"] == len(open_cases) == first.states["breached"]
    again = monitor.scan(later + timedelta(hours=5))
    assert sum(again.escalated.values()) == 0  # once per breach
    with Session(engine) as session:
        for case_id, ticket_id, _, _ in open_cases:
            ticket = session.get(m.Ticket, ticket_id)
            assert ticket is not None and ticket.assignee_group == "support_manager"
            assert "tier2:sla_breach" in ticket.tags
            note = session.scalars(
                select(m.Note).where(m.Note.case_id == case_id, m.Note.kind == "sla")
            ).one()
            assert "SLA breached" in note.body and "support_manager" in note.body
        assert audit.verify(session).intact
        events = session.scalars(
            select(m.AuditEntry).where(m.AuditEntry.event == "sla_breach")
        ).all()
        assert len(events) == len(open_cases)
    engine.dispose()


def test_waiting_on_the_customer_pauses_the_clock(database_url: str) -> None:
    """A case pending on the customer from minutes after tier2 escalated it does not breach."""
    probe, library, runner = make_store(database_url, 30)
    runner.run_once()
    case_id, ticket_id, started, _ = max(escalated(probe), key=lambda c: c[2])
    probe.dispose()
    with Session(probe) as session, session.begin():  # start again, tier2 acting at once
        for table in reversed(m.Base.metadata.sorted_tables):
            if table.name != "alembic_version":
                session.execute(table.delete())
    engine, library, runner = make_store(database_url, 30, start=started + timedelta(minutes=5))
    runner.run_once()
    desk = LocalHelpDesk(engine)
    desk.update_ticket(
        ticket_id, actor="alice", at=started + timedelta(minutes=10), status="pending"
    )
    monitor = SlaMonitor(SqlUnitOfWork(engine), library, desk, clock=runner.clock)
    stats = monitor.scan(started + timedelta(days=30))
    with Session(engine) as session:
        escalations = session.scalars(select(m.SlaEscalation.case_id)).all()
    assert case_id not in escalations and stats.states["paused"] >= 1
    engine.dispose()


def test_resolving_stops_the_clock(database_url: str) -> None:
    """A case the senior human resolved before its due time is never escalated."""
    engine, library, runner = make_store(database_url, 30)
    runner.run_once()
    case_id, ticket_id, started, _ = escalated(engine)[0]
    desk = LocalHelpDesk(engine)
    desk.update_ticket(
        ticket_id, actor="bob", at=started + timedelta(minutes=20), status="resolved"
    )
    SlaMonitor(SqlUnitOfWork(engine), library, desk, clock=runner.clock).scan(
        started + timedelta(days=30)
    )
    with Session(engine) as session:
        assert case_id not in session.scalars(select(m.SlaEscalation.case_id)).all()
    engine.dispose()


def test_at_risk_escalates_only_without_a_recent_owner_action(database_url: str) -> None:
    """At risk and untouched for a business hour: escalated; a note by the owner holds it off."""
    engine, library, runner = make_store(database_url, 60)
    runner.run_once()
    monitor = SlaMonitor(SqlUnitOfWork(engine), library, LocalHelpDesk(engine), clock=runner.clock)
    high = [c for c in escalated(engine) if c[3] == "high"]
    assert len(high) >= 2
    (quiet_id, _, quiet_start, _), (busy_id, busy_ticket, busy_start, _) = high[0], high[1]
    # each clock at 80 % (6.4 of 8 business hours): one touched by its owner 10 minutes
    # before, one not; each checked right after its own scan, earlier first
    clocks, desk = monitor.clocks, LocalHelpDesk(engine)
    busy_at = clocks.business.add(busy_start.timestamp(), 6.4 * 3600)
    quiet_at = clocks.business.add(quiet_start.timestamp(), 6.4 * 3600)
    desk.update_ticket(
        busy_ticket, actor="carol", at=datetime.fromtimestamp(busy_at - 600).astimezone(),
        message="Called the customer",
    )  # fmt: skip

    def kind_of(case_id: str) -> str | None:
        with Session(engine) as session:
            return session.scalar(
                select(m.SlaEscalation.kind).where(m.SlaEscalation.case_id == case_id)
            )

    for when, case_id, expected in sorted(
        [(busy_at, busy_id, None), (quiet_at, quiet_id, "at_risk")]
    ):
        stats = monitor.scan(datetime.fromtimestamp(when).astimezone())
        assert kind_of(case_id) == expected, stats
    engine.dispose()


def test_monitors_scanning_at_once_escalate_each_case_once(database_url: str) -> None:
    """Three monitors scanning one store at once escalate each breached case once, none failing."""
    engine, library, runner = make_store(database_url, 30)
    runner.run_once()
    open_cases = escalated(engine)
    later = max(e for _, _, e, _ in open_cases) + timedelta(days=30)
    monitors = [
        SlaMonitor(SqlUnitOfWork(engine), library, LocalHelpDesk(engine), clock=runner.clock)
        for _ in range(3)
    ]
    with ThreadPoolExecutor(3) as pool:
        scans = list(pool.map(lambda monitor: monitor.scan(later), monitors))
    assert sum(s.escalated["breached"] for s in scans) == len(open_cases)
    with Session(engine) as session:
        assert len(session.scalars(select(m.SlaEscalation)).all()) == len(open_cases)
        assert audit.verify(session).intact


def test_the_help_desks_words_pause_and_stop_the_clock() -> None:
    """The help desks' waiting statuses pause the clock; done statuses and a move to tier1 stop it."""
    start = datetime.fromisoformat("2026-03-04T09:00:00+01:00")

    def kinds(*changes: StatusChange) -> list[EventKind]:
        return [e.kind for e in case_clock_events(start, "high", changes, CLOCK_WORDS)]

    for status in ("pending", "waiting_on_customer", "on_hold"):
        assert kinds(StatusChange(start + timedelta(hours=1), status=status)) == [
            EventKind.START,
            EventKind.PAUSE,
        ], status
    for status in ("resolved", "closed", "solved"):
        assert kinds(StatusChange(start + timedelta(hours=1), status=status)) == [
            EventKind.START,
            EventKind.STOP,
        ], status
    assert kinds(StatusChange(start + timedelta(hours=1), group="tier1")) == [
        EventKind.START,
        EventKind.STOP,
    ]
    assert kinds(StatusChange(start + timedelta(hours=1), status="open", group="tier2")) == [
        EventKind.START
    ]


def test_case_clocks_per_case() -> None:
    """Per case: a stopped clock says so, an open one has its verdict, an unknown severity fails."""
    clocks = SlaClocks(load_library("saas").sla)
    start = datetime.fromisoformat("2026-03-04T09:00:00+01:00")
    now = start + timedelta(days=7)

    def payload(severity: str) -> dict[str, object]:
        return {
            "handoff": {"escalated_at": start.isoformat()},
            "received_at": (start - timedelta(hours=1)).isoformat(),
            "ticket": {"severity": severity},
        }

    solved = Timeline((StatusChange(start + timedelta(hours=1), status="solved"),), None)
    assert case_clocks(clocks, payload("high"), solved, now).stopped
    late = case_clocks(clocks, payload("high"), Timeline((), None), now)
    assert not late.stopped and not late.failed
    [(clock, verdict)] = late.open
    assert verdict is Escalate.BREACHED and clock.started == start
    unknown = case_clocks(clocks, payload("urgent"), Timeline((), None), now)
    assert unknown.open == () and unknown.failed == ("no resolution target for severity urgent",)

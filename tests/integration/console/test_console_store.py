"""The console's queries and writes on both backends (SQLite and PostgreSQL): the cases list
by key, the review queue most urgent first, accept / resolve / rate in one transaction and
the audit log verifying after them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.integration.runner.test_runner import make_store
from tier2.app.console import Acceptance, Actor, CaseWork, read_resolution, read_review
from tier2.core.sla import SlaClocks
from tier2.helpdesk.local import LocalHelpDesk
from tier2.store import audit
from tier2.store import models as m
from tier2.store.console import (
    CaseFilter,
    SqlConsoleStore,
    _by_resolution,
    case_page,
    list_cases,
    review_queue,
)
from tier2.store.db import make_engine, upgrade


def test_the_console_store_on_each_backend(database_url: str) -> None:
    """List, queue, accept, resolve and rate on a store `tier2 run` filled: what each reads
    and writes, the same on SQLite and PostgreSQL."""
    engine, library, runner = make_store(database_url, n=40)
    runner.run_once()
    everything, more = list_cases(engine, CaseFilter(), 100)
    assert len(everything) == 40 and not more
    first, more = list_cases(engine, CaseFilter(outcome="escalate"), 5)
    rest, _ = list_cases(
        engine, CaseFilter(outcome="escalate", after=(first[-1].received_at, first[-1].id)), 100
    )
    escalated = [c for c in everything if c.outcome == "escalate"]
    assert more and [c.id for c in first + rest] == [c.id for c in escalated]
    found, _ = list_cases(engine, CaseFilter(text=escalated[0].id[:-1]), 100)
    assert escalated[0].id in {c.id for c in found}
    clocks = SlaClocks(library.sla)
    queue = review_queue(engine, "senior_support", clocks.due, 100)
    to_seniors = [
        c for c in escalated if c.escalate_to == "senior_support" and c.state == "escalated"
    ]
    assert {q.id for q in queue} == {c.id for c in to_seniors}
    dues = [q.due for q in queue]
    assert dues == sorted(dues)  # type: ignore[type-var]
    head = review_queue(engine, None, clocks.due, 100)
    assert len(head) >= len(queue)

    case_id = queue[0].id
    work = CaseWork(SqlConsoleStore(engine), LocalHelpDesk(engine), library,
                    lambda: datetime.now(UTC))  # fmt: skip
    sam = Actor("sam", "senior", "senior_support")
    work.accept(sam, case_id, Acceptance(datetime.now(UTC) + timedelta(hours=3)))
    work.resolve(sam, case_id, read_resolution({"summary": "Done", "role": "senior_support"},
                                               library, ["senior_support"]))  # fmt: skip
    work.review(sam, case_id, read_review({"right_outcome": "yes", "right_target": "yes",
                                           "handoff_score": "5"}, ["senior_support"],
                                          ("escalate", "senior_support")))  # fmt: skip
    after = review_queue(engine, "senior_support", clocks.due, 100)
    assert case_id not in {q.id for q in after}
    page = case_page(engine, case_id)
    assert page is not None and page.chain.intact and page.acceptance is not None
    assert page.resolutions[0]["resolved_by"] == "sam" and page.reviews[0]["score"] == 100.0
    with Session(engine) as session:
        events = session.scalars(
            select(m.AuditEntry.event).where(m.AuditEntry.case_id == case_id)
        ).all()
        assert events[-3:] == ["accepted", "resolved_by_human", "reviewed"]
        assert audit.verify(session).intact
    engine.dispose()


def test_a_case_escalated_again_is_accepted_again(database_url: str) -> None:
    """The acceptance is kept per escalation: a case escalated again leaves the queue's
    acceptance empty until it is accepted again, and both acceptances stay."""
    engine, library, runner = make_store(database_url, n=40)
    runner.run_once()
    clocks = SlaClocks(library.sla)
    case_id = review_queue(engine, "senior_support", clocks.due, 100)[0].id
    work = CaseWork(SqlConsoleStore(engine), LocalHelpDesk(engine), library,
                    lambda: datetime.now(UTC))  # fmt: skip
    work.accept(Actor("sam", "senior", "senior_support"), case_id, Acceptance(None))
    queued = {q.id: q for q in review_queue(engine, "senior_support", clocks.due, 100)}
    assert queued[case_id].accepted_by == "sam"
    with Session(engine) as session, session.begin():
        session.execute(update(m.Case).where(m.Case.id == case_id).values(escalations=2))
    queued = {q.id: q for q in review_queue(engine, "senior_support", clocks.due, 100)}
    assert queued[case_id].accepted_by is None
    page = case_page(engine, case_id)
    assert page is not None and page.acceptance is None
    work.accept(Actor("hana", "head_of_support"), case_id, Acceptance(None))
    with Session(engine) as session:
        rows = session.execute(
            select(m.Acceptance.escalation, m.Acceptance.accepted_by)
            .where(m.Acceptance.case_id == case_id)
            .order_by(m.Acceptance.escalation)
        ).all()
    assert [tuple(r) for r in rows] == [(1, "sam"), (2, "hana")]
    page = case_page(engine, case_id)
    assert page is not None and page.acceptance is not None
    assert page.acceptance["accepted_by"] == "hana" and page.acceptance["escalation"] == 2
    engine.dispose()


def test_the_list_filtered_by_the_day_resolved_either_way(database_url: str) -> None:
    """A filter on the day resolved gives the same pages whether the cases are read by the
    resolution index and sorted (few resolved in the days, many received after) or in the
    list's order."""
    engine, _, runner = make_store(database_url, n=40)
    runner.run_once()
    everything, _ = list_cases(engine, CaseFilter(), 100)
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    with Session(engine) as session, session.begin():  # resolved a day apart, oldest first
        for k, line in enumerate(reversed(everything)):
            at = stamp + timedelta(days=k)
            session.execute(update(m.Case).where(m.Case.id == line.id)
                            .values(resolved_at=at, received_at=at - timedelta(hours=1)))  # fmt: skip
    everything, _ = list_cases(engine, CaseFilter(), 100)
    for first, last in ((0, 5), (30, 40), (0, 40)):
        asked = CaseFilter(resolved_from=stamp + timedelta(days=first),
                           resolved_to=stamp + timedelta(days=last))  # fmt: skip
        expected = [
            c.id for c in everything if asked.resolved_from <= c.resolved_at < asked.resolved_to
        ]  # type: ignore[operator]
        with Session(engine) as session:
            sorted_ = _by_resolution(session, asked)
        assert sorted_ == (last == 5)  # 5 resolved against 35 received after
        page, more = list_cases(engine, asked, 3)
        rest, _ = list_cases(engine, replace(asked, after=(page[-1].received_at, page[-1].id)), 100)
        assert more and [c.id for c in page + rest] == expected
    engine.dispose()


def test_the_acceptances_of_0013_take_their_escalation(database_url: str) -> None:
    """Upgrading to 0014: an acceptance made before takes the escalation its `accepted` audit
    entry names, else its case's."""
    upgrade(database_url, "0013")
    engine = make_engine(database_url)
    now = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    old = sa.table("acceptances", sa.column("case_id"), sa.column("accepted_by"),
                   sa.column("accepted_at", m.UtcDateTime()))  # fmt: skip
    log = sa.table("audit_log", sa.column("seq"), sa.column("at", m.UtcDateTime()),
                   sa.column("case_id"), sa.column("event"), sa.column("data", m.JsonType),
                   sa.column("prev_hash"), sa.column("hash"))  # fmt: skip
    with engine.begin() as conn:
        for case_id, escalations in (("C-1", 3), ("C-2", 2)):
            conn.execute(sa.insert(m.table(m.Case)).values(
                id=case_id, ticket_id=case_id, state="escalated", received_at=now, payload={},
                library="saas", escalations=escalations, updated_at=now))  # fmt: skip
            conn.execute(sa.insert(old).values(case_id=case_id, accepted_by="sam", accepted_at=now))
        conn.execute(sa.insert(log).values(seq=1, at=now, case_id="C-1", event="accepted",
                                           data={"by": "sam", "escalation": 2}, prev_hash="0",
                                           hash="1"))  # fmt: skip
    upgrade(database_url)
    with Session(engine) as session:
        found = session.execute(
            select(m.Acceptance.case_id, m.Acceptance.escalation).order_by(m.Acceptance.case_id)
        ).all()
    assert [tuple(r) for r in found] == [("C-1", 2), ("C-2", 2)]
    engine.dispose()

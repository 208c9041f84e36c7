"""The console's queries and writes on both backends (SQLite and PostgreSQL): the cases list
by key, the review queue most urgent first, accept / resolve / rate in one transaction and
the audit log verifying after them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
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
    case_page,
    list_cases,
    review_queue,
)


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

"""One owner per escalation: runners sharing a store never decide or pay for a case twice,
however their work interleaves, and take up the cases of a runner that died."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from tests.e2e.exactly_once import assert_exactly_once
from tier2.app.runner import Runner, RunStats
from tier2.contract import CaseIn
from tier2.helpdesk.local import LocalHelpDesk
from tier2.library.loader import load_library
from tier2.library.samples import CaseGenerator
from tier2.store import models as m
from tier2.store.claims import status
from tier2.store.db import make_engine, upgrade
from tier2.store.unit_of_work import SqlUnitOfWork

CASES = 60
LIBRARY = load_library("saas")


class ListsThen:
    """The local help desk, but once it has listed its escalations `meanwhile` runs before
    the list is handed over: another runner's whole pass between a runner's listing and
    its work on that list."""

    def __init__(self, desk: LocalHelpDesk, meanwhile: Callable[[], object]) -> None:
        self.desk, self.meanwhile = desk, meanwhile
        self.in_store = desk.in_store

    def escalations(self) -> Sequence[str]:
        listing = self.desk.escalations()
        self.meanwhile()
        return listing

    def __getattr__(self, name: str) -> Any:
        return getattr(self.desk, name)


def _store(database_url: str) -> tuple[Engine, LocalHelpDesk]:
    upgrade(database_url)
    engine = make_engine(database_url)
    desk = LocalHelpDesk(engine)
    desk.import_cases(CaseIn.model_validate(c) for c in CaseGenerator(LIBRARY, 5).cases(CASES))
    return engine, desk


def _runner(engine: Engine, desk: Any, batch: int = 7) -> Runner:
    return Runner(
        SqlUnitOfWork(engine), LIBRARY, desk, lambda: datetime(2026, 4, 1, tzinfo=UTC), batch=batch
    )


def _paid(engine: Engine) -> tuple[int, float]:
    with Session(engine) as session:
        n, total = session.execute(
            select(func.count(), func.coalesce(func.sum(m.LedgerEntry.amount), 0))
        ).one()
    return int(n), float(total)


@pytest.mark.slow
def test_a_runner_working_on_a_stale_listing_takes_nothing_twice(database_url: str) -> None:
    """Runner A lists the escalations, B's whole pass runs, then A works through its list:
    A takes no case, and every case is decided and paid once."""
    engine, desk = _store(database_url)
    b = _runner(engine, desk, batch=1)
    a = _runner(engine, ListsThen(desk, b.run_once), batch=7)
    stats = a.run_once()
    assert (stats.received, stats.reopened, stats.finished) == (0, 0, 0)
    counts = assert_exactly_once(engine, CASES)
    assert counts["actions"] > 0 and _paid(engine)[0] == counts["actions"]
    a.close(), b.close()
    engine.dispose()


def test_a_claimed_ticket_is_left_to_its_owner(database_url: str) -> None:
    """While A holds a round of tickets, B's pass finishes every other case and none of A's;
    A then finishes its own."""
    engine, desk = _store(database_url)
    a, b = _runner(engine, desk), _runner(engine, desk)
    a.store.claims.register()
    held = desk.escalations()[:10]
    with Session(engine) as session, session.begin():
        assert a.store.claims.claim(session, held, datetime.now(UTC)) == list(held)
    assert b.run_once().finished == CASES - 10
    assert [r["claims"] for r in status(engine)["runners"] if r["id"] == a.store.claims.id] == [10]
    assert a.run_once().finished == 10
    assert_exactly_once(engine, CASES)
    a.close(), b.close()
    engine.dispose()


def test_the_cases_of_a_runner_past_its_lease_go_to_another_and_it_is_fenced_off(
    database_url: str,
) -> None:
    """A takes in a round and stops renewing; past its lease B reaps it and finishes the
    cases from where they are; A, come back, can no longer change them."""
    engine, desk = _store(database_url)
    a, b = _runner(engine, desk), _runner(engine, desk)
    a.store.claims.register()
    a.store.claims.stop_renewing()
    with Session(engine) as session, session.begin():
        mine = a.store.claims.claim(session, desk.escalations()[:10], datetime.now(UTC))
    taken = a.intake(mine, stats := RunStats())
    assert len(taken) == 10 and stats.received == 10
    with Session(engine) as session, session.begin():  # A's lease runs out
        session.execute(
            update(m.RunnerEntry)
            .where(m.RunnerEntry.id == a.store.claims.id)
            .values(lease_until=datetime.now(UTC) - timedelta(minutes=1))
        )
    assert b.run_once().finished == CASES
    late = RunStats()
    a.advance(taken, late)
    assert late.finished == 0
    assert_exactly_once(engine, CASES)
    b.close()
    engine.dispose()

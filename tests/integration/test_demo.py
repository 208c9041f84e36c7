"""The demo month: every escalation is owned to an outcome, and the summary is reproducible."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tier2.app.sla_monitor import SlaMonitor
from tier2.devtools.demo import run_company
from tier2.helpdesk.local import LocalHelpDesk
from tier2.library.loader import load_library
from tier2.store import audit
from tier2.store import models as m
from tier2.store.db import database_url, make_engine
from tier2.store.unit_of_work import SqlUnitOfWork

LATER = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.mark.slow
def test_a_month_is_owned_to_outcomes_and_reproducible(tmp_path: Path) -> None:
    """Every case gets an outcome; a second run gives the same summary and report, and March
    with tier2 is faster than the simulated February without it."""
    (tmp_path / "a").mkdir()
    first = run_company(tmp_path / "a", "Harbor & Pine", "ecommerce", n=60, seed=3)
    (tmp_path / "b").mkdir()
    second = run_company(tmp_path / "b", "Harbor & Pine", "ecommerce", n=60, seed=3)
    assert first.cases == 60 and sum(first.outcomes.values()) == 60
    assert first.outcomes == second.outcomes and first.money == second.money
    assert first.report == second.report
    # every case finally resolved has a cycle time; February's baseline, each escalation to a
    # senior who starts cold, is slower than March with tier2
    cycle, base = first.report["cycle_time"], first.report["baseline"]
    assert 0 < cycle["cases"] <= 60
    assert base is not None and base["cycle_time"]["cases"] > 0
    assert base["change_pct"] < 0
    engine = make_engine(database_url(str(tmp_path / "a" / "ecommerce.db")))
    with Session(engine) as session:
        assert audit.verify(session).intact
    engine.dispose()


@pytest.mark.slow
def test_the_month_has_sla_breaches_and_a_later_scan_escalates_the_open_ones(
    tmp_path: Path,
) -> None:
    """Seniors run late on some cases: the hourly monitor escalates them; cases left open at the
    end of the month are escalated by a later scan, once."""
    summary = run_company(tmp_path, "Northwind Cloud", "saas", n=120, seed=1)
    assert summary.sla_escalated["breached"] > 0
    assert summary.senior_resolved + summary.still_open == summary.targets.total()
    engine = make_engine(database_url(str(tmp_path / "saas.db")))
    monitor = SlaMonitor(
        SqlUnitOfWork(engine), load_library("saas"), LocalHelpDesk(engine), clock=lambda: LATER
    )
    first = monitor.scan()
    assert first.states["breached"] == summary.still_open  # long past due by then
    assert monitor.scan().escalated.total() == 0
    with Session(engine) as session:
        breached = session.scalar(
            select(func.count())
            .select_from(m.SlaEscalation)
            .where(m.SlaEscalation.kind == "breached")
        )
        assert breached == summary.sla_escalated["breached"] + first.escalated["breached"]
        assert audit.verify(session).intact
    engine.dispose()

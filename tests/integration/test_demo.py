"""The demo month: every escalation is owned to an outcome, and the summary is reproducible."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from tier2.demo import run_company
from tier2.store import audit
from tier2.store.db import database_url, make_engine


def test_a_month_is_owned_to_outcomes_and_reproducible(tmp_path: Path) -> None:
    """Every case gets an outcome within the hour it arrived; a second run gives the same summary."""
    (tmp_path / "a").mkdir()
    first = run_company(tmp_path / "a", "Harbor & Pine", "ecommerce", n=60, seed=3)
    (tmp_path / "b").mkdir()
    second = run_company(tmp_path / "b", "Harbor & Pine", "ecommerce", n=60, seed=3)
    assert first.cases == 60 and sum(first.outcomes.values()) == 60
    assert first.outcomes == second.outcomes and first.money == second.money
    assert first.cycle_minutes == second.cycle_minutes
    assert all(0 <= minutes <= 60 + 10 for minutes in first.cycle_minutes)  # hourly, + tier-1 lag
    assert first.percentile(50) <= first.percentile(90)
    engine = make_engine(database_url(str(tmp_path / "a" / "ecommerce.db")))
    with Session(engine) as session:
        assert audit.verify(session).intact
    engine.dispose()

"""`tier2 demo`: one month of escalations for each reference company, owned by tier2.

For each company a fresh embedded store is filled, hour by hour of a simulated March 2026,
with the escalations that arrived in that hour (seeded: the same every time), and
`tier2 run` takes them on at the end of each hour with the clock at that moment. The
summary is read back from the stores.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tier2.contract import CaseIn
from tier2.generate import BASE, CaseGenerator
from tier2.helpdesk.local import LocalHelpDesk
from tier2.loader import load_library
from tier2.runner import Runner
from tier2.store import models as m
from tier2.store.db import database_url, make_engine, upgrade

COMPANIES = (
    ("Northwind Cloud", "saas", 350),
    ("Harbor & Pine", "ecommerce", 900),
)


@dataclass
class CompanySummary:
    company: str
    library: str
    cases: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    first_reasons: Counter[str] = field(default_factory=Counter)
    targets: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    money: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cycle_minutes: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        if not self.cycle_minutes:
            return 0.0
        if len(self.cycle_minutes) == 1:
            return self.cycle_minutes[0]
        return statistics.quantiles(self.cycle_minutes, n=100, method="inclusive")[int(q) - 1]


def run_company(
    folder: Path,
    company: str,
    library_name: str,
    *,
    n: int,
    seed: int,
    on_hour: Callable[[int], None] | None = None,
) -> CompanySummary:
    library = load_library(library_name)
    path = folder / f"{library_name}.db"
    path.unlink(missing_ok=True)
    url = database_url(str(path))
    upgrade(url)
    engine = make_engine(url)
    desk = LocalHelpDesk(engine)
    cases = sorted(CaseGenerator(library, seed).cases(n), key=lambda c: c["received_at"])
    arrivals = [(datetime.fromisoformat(c["received_at"]), c) for c in cases]
    hour = BASE.replace(minute=0)
    end = BASE + timedelta(days=31)
    i = 0
    while hour <= end:
        hour += timedelta(hours=1)
        batch = []
        while i < len(arrivals) and arrivals[i][0] <= hour:
            batch.append(CaseIn.model_validate(arrivals[i][1]))
            i += 1
        if batch:
            desk.import_cases(batch)
            Runner(engine, library, desk, clock=_ticking(hour)).run_once()
        if on_hour is not None:
            on_hour(1)
    summary = summarise(engine, company, library_name)
    engine.dispose()
    return summary


def _ticking(start: datetime) -> Callable[[], datetime]:
    """A simulated clock: the start, one second later at each reading."""
    ticks = count()
    return lambda: start + timedelta(seconds=next(ticks))


def summarise(engine: Any, company: str, library_name: str) -> CompanySummary:
    s = CompanySummary(company, library_name)
    with Session(engine) as session:
        for case, decision in session.execute(
            select(m.Case, m.Decision).join(m.Decision, m.Decision.case_id == m.Case.id)
        ).all():
            s.cases += 1
            s.outcomes[decision.outcome] += 1
            s.first_reasons[decision.body["reasons"][0]["code"]] += 1
            if decision.escalate_to:
                s.targets[decision.escalate_to] += 1
            start = case.payload["handoff"].get("escalated_at") or case.payload["received_at"]
            s.cycle_minutes.append(
                (case.updated_at - datetime.fromisoformat(start)).total_seconds() / 60
            )
        for action in session.scalars(select(m.Action).where(m.Action.status == "done")):
            s.actions[action.type] += 1
            if action.amount is not None:
                s.money[f"{action.type} {action.currency or ''}".strip()] += action.amount
    return s

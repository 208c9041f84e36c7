"""`tier2 demo`: one month of escalations for each reference company, owned by tier2.

For each company a fresh embedded store is filled, hour by hour of a simulated March 2026,
with the escalations that arrived in that hour (seeded: the same every time), and
`tier2 run` takes them on at the end of each hour with the clock at that moment. Senior
specialists work the cases tier2 escalated to them (seeded per case: some wait on the
customer for a while, most are resolved within the tier-2 SLA, some late), and the SLA
monitor scans every hour, escalating breaches to support_manager. Cases still open at the
end of the month are left open: a later `tier2 sla scan` on the store escalates those past
their due time. The summary is read back from the stores.

The demo signs its audit logs' anchors with a key of its own, `DEMO_AUDIT_KEY`, which is no
secret: `TIER2_AUDIT_KEY=tier2-demo-audit-key tier2 audit verify --db tier2-demo/saas.db`.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tier2.app.runner import Runner
from tier2.app.sla_monitor import SlaMonitor
from tier2.contract import CaseIn
from tier2.core.library import Library
from tier2.core.sla import SlaClocks
from tier2.helpdesk.local import LocalHelpDesk
from tier2.library.loader import load_library
from tier2.library.samples import BASE, CaseGenerator
from tier2.store import models as m
from tier2.store.db import database_url, make_engine, upgrade
from tier2.store.unit_of_work import SqlUnitOfWork

DEMO_AUDIT_KEY = b"tier2-demo-audit-key"  # published: for the demo's stores only

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
    senior_resolved: int = 0
    sla_escalated: Counter[str] = field(default_factory=Counter)
    still_open: int = 0

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
    seniors = Seniors(library, seed)
    monitor = SlaMonitor(
        SqlUnitOfWork(engine, audit_key=DEMO_AUDIT_KEY), library, desk, clock=lambda: hour
    )
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
            store = SqlUnitOfWork(engine, audit_key=DEMO_AUDIT_KEY)
            runner = Runner(store, library, desk, clock=_ticking(hour))
            runner.run_once()
            runner.close()
            seniors.take_on(engine)
        seniors.work(desk, until=hour)
        monitor.scan()
        if on_hour is not None:
            on_hour(1)
    summary = summarise(engine, company, library_name)
    engine.dispose()
    return summary


class Seniors:
    """Senior specialists working what tier2 escalated to them, seeded per case.

    Each escalated case gets a plan when it arrives: in one case of five the specialist
    waits on the customer for 1-8 business hours first; the work itself takes a share of
    the SLA target drawn from a log-normal around 60 % (about one case in six runs late);
    seven in ten write an update on the way.
    """

    def __init__(self, library: Library, seed: int) -> None:
        self.clocks = SlaClocks(library.sla)
        self.seed = seed
        self.planned: set[str] = set()
        self.plan: list[tuple[datetime, str, str]] = []  # (when, ticket, status)

    def take_on(self, engine: Any) -> None:
        with Session(engine) as session:
            rows = session.execute(
                select(m.Case.id, m.Case.ticket_id, m.Case.payload, m.Case.updated_at).where(
                    m.Case.state == "escalated", m.Case.id.not_in(self.planned)
                )
            ).all()
        for case_id, ticket_id, payload, decided in rows:
            self.planned.add(case_id)
            rng = random.Random(f"{self.seed}:{case_id}")
            target = self.clocks.target(payload["ticket"]["severity"])
            hours = target.hours
            t = decided.timestamp()
            if rng.random() < 0.2:
                waited = hours.add(t, rng.uniform(0.1, 0.4) * target.seconds)
                back = self.clocks.business.add(waited, rng.uniform(1, 8) * 3600)
                self.plan += [(_at(waited), ticket_id, "pending"), (_at(back), ticket_id, "open")]
                t = back
            work = min(3.0, rng.lognormvariate(math.log(0.6), 0.45)) * target.seconds
            if rng.random() < 0.7:  # most write an update to the case on the way
                self.plan.append((_at(hours.add(t, work * rng.uniform(0.5, 0.9))), ticket_id, ""))
            self.plan.append((_at(hours.add(t, work)), ticket_id, "resolved"))
        self.plan.sort()

    def work(self, desk: LocalHelpDesk, until: datetime) -> None:
        while self.plan and self.plan[0][0] <= until:
            when, ticket_id, status = self.plan.pop(0)
            if status:
                desk.update_ticket(ticket_id, actor="senior", at=when, status=status)
            else:
                desk.update_ticket(ticket_id, actor="senior", at=when, message=NOTE)


NOTE = "Working on it: checked the account and the history; next step agreed with the customer."


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


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
        for kind, k in session.execute(
            select(m.SlaEscalation.kind, func.count()).group_by(m.SlaEscalation.kind)
        ).all():
            s.sla_escalated[kind] = k
        resolved = m.Ticket.status == "resolved"
        with_seniors = dict(
            session.execute(
                select(resolved, func.count())
                .select_from(m.Case)
                .join(m.Ticket, m.Ticket.id == m.Case.ticket_id)
                .where(m.Case.state == "escalated")
                .group_by(resolved)
            ).all()
        )
        s.senior_resolved, s.still_open = with_seniors.get(True, 0), with_seniors.get(False, 0)
        for action in session.scalars(select(m.Action).where(m.Action.status == "done")):
            s.actions[action.type] += 1
            if action.amount is not None:
                s.money[f"{action.type} {action.currency or ''}".strip()] += action.amount
    return s

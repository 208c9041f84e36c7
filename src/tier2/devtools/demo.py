"""`tier2 demo`: one month of escalations for each reference company, owned by tier2, against
a month before tier2.

February 2026, the baseline, is simulated without tier2: the same kind of escalations (four
weeks of them, from the same generator with another seed) each go to a senior specialist who
starts cold: one to three business hours reading the thread, the customer's history and the
policy before the work itself, which takes what it takes a senior in March. One case in five
waits on the customer first, as in March. Their cycle times are imported as the report's
baseline by the same code as `tier2 baseline import` (source `simulated`).

Then for each company the store is filled, hour by hour of a simulated March 2026,
with the escalations that arrived in that hour (seeded: the same every time), and
`tier2 run` takes them on at the end of each hour with the clock at that moment. Senior
specialists work the cases tier2 escalated to them (seeded per case: some wait on the
customer for a while, most are resolved within the tier-2 SLA, some late), and the SLA
monitor scans every hour, escalating breaches to support_manager and recording each final
resolution. Tier-1 finishes the cases tier2 returned with guidance within a few business
hours. Cases still open at the
end of the month are left open: a later `tier2 sla scan` on the store escalates those past
their due time. The summary is read back from the stores.

The demo signs its audit logs' anchors with a key of its own, `DEMO_AUDIT_KEY`, which is no
secret: `TIER2_AUDIT_KEY=tier2-demo-audit-key tier2 audit verify --db tier2-demo/saas.db`.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tier2.app.baseline import baseline_rows
from tier2.app.console import Rating
from tier2.app.report import report
from tier2.app.runner import Runner
from tier2.app.sla_monitor import SlaMonitor
from tier2.contract import CaseIn
from tier2.core.library import Library
from tier2.core.sla import SlaClocks
from tier2.helpdesk.local import LocalHelpDesk
from tier2.library.loader import load_library, resolve_library_path
from tier2.library.samples import BASE, CaseGenerator
from tier2.store import models as m
from tier2.store.baseline import save_baseline
from tier2.store.db import database_url, make_engine, upgrade
from tier2.store.library_versions import remember_library
from tier2.store.report import SqlReportReader
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
    senior_resolved: int = 0
    sla_escalated: Counter[str] = field(default_factory=Counter)
    still_open: int = 0
    report: dict[str, Any] = field(default_factory=dict)  # tier2 report's figures


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
    remember_library(engine, library, resolve_library_path(library_name))
    desk = LocalHelpDesk(engine)
    simulate_february(engine, desk, library, seed, n)
    cases = sorted(CaseGenerator(library, seed).cases(n), key=lambda c: c["received_at"])
    arrivals = [(datetime.fromisoformat(c["received_at"]), c) for c in cases]
    seniors = Seniors(library, seed)
    monitor = SlaMonitor(
        SqlUnitOfWork(engine, audit_key=DEMO_AUDIT_KEY), library, desk, clock=lambda: hour
    )
    hour = BASE.replace(minute=0).astimezone(UTC)  # the runner's clock, as in production: UTC
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
    seniors_look_back(engine, seed)
    summary = summarise(engine, company, library_name)
    zone = ZoneInfo(library.sla.calendar.timezone)
    summary.report = report(SqlReportReader(engine), zone=zone, now=end)
    engine.dispose()
    return summary


class Seniors:
    """Senior specialists working what tier2 escalated to them, and tier-1 finishing what it
    returned, seeded per case.

    Each escalated case gets a plan when it arrives: in one case of five the specialist
    waits on the customer for 1-8 business hours first; the work itself takes a share of
    the SLA target drawn from a log-normal around 60 % (about one case in six runs late);
    seven in ten write an update on the way. A senior who starts cold (no tier2: February)
    first spends 1-3 business hours reading the case. Tier-1 finishes a returned case
    within a log-normal around 1.5 business hours.
    """

    def __init__(self, library: Library, seed: int) -> None:
        self.clocks = SlaClocks(library.sla)
        self.seed = seed
        self.planned: set[str] = set()
        self.plan: list[tuple[datetime, str, str, str]] = []  # (when, ticket, status, actor)

    def take_on(self, engine: Any) -> None:
        with Session(engine) as session:
            rows = session.execute(
                select(
                    m.Case.id, m.Case.ticket_id, m.Case.state, m.Case.payload, m.Case.updated_at
                ).where(m.Case.state.in_(("escalated", "returned")), m.Case.id.not_in(self.planned))
            ).all()
        for case_id, ticket_id, state, payload, decided in rows:
            self.planned.add(case_id)
            severity = payload["ticket"]["severity"]
            if state == "returned":
                self._tier1(case_id, ticket_id, decided)
            else:
                self.take(case_id, ticket_id, severity, decided, cold=False)
        self.plan.sort()

    def _tier1(self, case_id: str, ticket_id: str, returned: datetime) -> None:
        rng = random.Random(f"{self.seed}:tier1:{case_id}")
        work = min(16.0, rng.lognormvariate(math.log(1.5), 0.5)) * 3600
        done = self.clocks.business.add(returned.timestamp(), work)
        self.plan.append((_at(done), ticket_id, "resolved", "tier1"))

    def take(
        self, case_id: str, ticket_id: str, severity: str, start: datetime, *, cold: bool
    ) -> None:
        """Plan a senior's work on a case from `start`."""
        rng = random.Random(f"{self.seed}:{case_id}")
        target = self.clocks.target(severity)
        hours = target.hours
        t = start.timestamp()
        if cold:  # no annotated handoff: read the thread, the history and the policy first
            t = self.clocks.business.add(t, rng.uniform(1, 3) * 3600)
        if rng.random() < 0.2:
            waited = hours.add(t, rng.uniform(0.1, 0.4) * target.seconds)
            back = self.clocks.business.add(waited, rng.uniform(1, 8) * 3600)
            self.plan += [
                (_at(waited), ticket_id, "pending", "senior"),
                (_at(back), ticket_id, "open", "customer"),
            ]
            t = back
        work = min(3.0, rng.lognormvariate(math.log(0.6), 0.45)) * target.seconds
        if rng.random() < 0.7:  # most write an update to the case on the way
            update = _at(hours.add(t, work * rng.uniform(0.5, 0.9)))
            self.plan.append((update, ticket_id, "", "senior"))
        self.plan.append((_at(hours.add(t, work)), ticket_id, "resolved", "senior"))

    def work(self, desk: LocalHelpDesk, until: datetime) -> None:
        while self.plan and self.plan[0][0] <= until:
            when, ticket_id, status, actor = self.plan.pop(0)
            if status:
                desk.update_ticket(ticket_id, actor=actor, at=when, status=status)
            else:
                desk.update_ticket(ticket_id, actor=actor, at=when, message=NOTE)


def seniors_look_back(engine: Any, seed: int) -> None:
    """What the seniors record in the console about the cases they resolved (seeded per
    case): the money they granted above tier2's authority (the action tier2 recommended),
    and, for two cases in five, a review of tier2's decision: nine in ten agree."""
    with Session(engine) as session, session.begin():
        rows = session.execute(
            select(m.Case.id, m.Case.escalations, m.Case.resolved_at, m.Decision)
            .join(m.Decision, m.Decision.case_id == m.Case.id)
            .where(m.Case.resolved_by == "human", m.Case.state == "escalated")
            .order_by(m.Case.id, m.Decision.seq)
        ).all()
        latest = {case_id: (n, at or d.decided_at, d) for case_id, n, at, d in rows}
        for case_id, (escalations, at, decision) in sorted(latest.items()):
            rng = random.Random(f"{seed}:look-back:{case_id}")
            body = decision.body
            action = (body.get("actions") or [None])[0]
            if body["reasons"][0]["code"] == "authority_exceeded" and action:
                session.add(_granted(case_id, escalations, at, decision.escalate_to, action))
            if rng.random() < 0.4:
                session.add(_reviewed(rng, case_id, decision, at))


def _granted(
    case_id: str, escalations: int, at: datetime, role: str | None, action: dict[str, Any]
) -> m.HumanResolution:
    return m.HumanResolution(
        case_id=case_id, escalation=escalations, resolved_by="senior", role=role or "",
        at=at, summary="Granted what tier2 recommended, under my authority.",
        action_type=action["type"], amount=action.get("amount"),
        currency=action.get("currency"),
    )  # fmt: skip


def _reviewed(rng: random.Random, case_id: str, decision: m.Decision, at: datetime) -> m.Review:
    right = rng.random() < 0.9
    rating = Rating(
        right_outcome=right, right_target=right or rng.random() < 0.5,
        handoff_score=rng.choice((3, 4, 4, 5, 5)), missing=None,
        could_close=rng.random() < 0.05, violation=False,
        correct_outcome=None if right else "resolve", correct_escalate_to=None,
        comment=None if right else "Within policy: tier-2 could have closed it.",
    )  # fmt: skip
    return m.Review(
        case_id=case_id, decision_seq=decision.seq, reviewer="senior", at=at,
        right_outcome=rating.right_outcome, right_target=rating.right_target,
        handoff_score=rating.handoff_score, missing=rating.missing,
        could_close=rating.could_close, violation=rating.violation, score=rating.score,
        agrees=rating.agrees, correct_outcome=rating.correct_outcome,
        correct_escalate_to=rating.correct_escalate_to, comment=rating.comment,
    )  # fmt: skip


FOUR_WEEKS = timedelta(days=28)
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}.*)?")


def simulate_february(engine: Any, desk: LocalHelpDesk, library: Library, seed: int, n: int) -> int:
    """February without tier2 (the baseline): four weeks of escalations, each worked by a
    senior who starts cold, imported as the report's baseline. How many."""
    made = CaseGenerator(library, seed + 1000).cases(n)
    february = [c for c in map(_four_weeks_earlier, made) if c["received_at"] < BASE.isoformat()]
    february.sort(key=lambda c: c["received_at"])
    desk.import_cases([CaseIn.model_validate(c) for c in february])
    seniors = Seniors(library, seed)
    for c in february:
        start = datetime.fromisoformat(c["handoff"].get("escalated_at") or c["received_at"])
        seniors.take(c["case_id"], c["ticket"]["id"], c["ticket"]["severity"], start, cold=True)
    seniors.plan.sort()
    seniors.work(desk, until=datetime.max.replace(tzinfo=UTC))
    first = datetime.fromisoformat(february[0]["received_at"]) - timedelta(days=1)
    past = desk.past_escalations(first, BASE)
    return save_baseline(engine, baseline_rows(past, library, "simulated", BASE))


def _four_weeks_earlier(value: Any) -> Any:
    """A generated case moved four weeks back (same weekdays), under its own ids."""
    if isinstance(value, dict):
        moved = {k: _four_weeks_earlier(v) for k, v in value.items()}
        if "case_id" in moved:
            moved["case_id"] = "FEB-" + moved["case_id"]
            moved["ticket"]["id"] = "FEB-" + moved["ticket"]["id"]
        return moved
    if isinstance(value, list):
        return [_four_weeks_earlier(v) for v in value]
    if isinstance(value, str) and _STAMP.fullmatch(value):
        if "T" in value:
            return (datetime.fromisoformat(value) - FOUR_WEEKS).isoformat()
        return (date.fromisoformat(value) - FOUR_WEEKS).isoformat()
    return value


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
        for decision in session.scalars(select(m.Decision)):
            s.cases += 1
            s.outcomes[decision.outcome] += 1
            s.first_reasons[decision.body["reasons"][0]["code"]] += 1
            if decision.escalate_to:
                s.targets[decision.escalate_to] += 1
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

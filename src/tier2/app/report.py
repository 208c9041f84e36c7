"""`tier2 report`: escalation metrics for a period, against a baseline from before tier2.

The headline is the escalation resolution cycle time: from tier-1's escalation to the case's
final resolution (tier2.app.follow), for the cases resolved in the period, in business hours
on the library's calendar and in calendar hours, median and 90th percentile, with the time
waiting on the customer left out and reported apart. The baseline is the same figure over
escalations handled before tier2 (tier2 baseline import), computed by the same function.

The figures are read through `ReportReader` (the store answers it with a few aggregate
queries) and put together here: the contract's keys (section 4), and more for the console
and the HTML report (the trend by week, who resolved, the backlog by age, at-risk cases).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

HOUR = 3600.0


@dataclass(frozen=True)
class Period:
    """Whole days in a time zone: [start of `first`, end of `last`)."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), self.zone)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), self.zone)

    def shown(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}


@dataclass(frozen=True)
class Resolved:
    """One case's (or baseline escalation's) final resolution, as the figures need it."""

    resolved_at: datetime
    business_seconds: float
    calendar_seconds: float
    waiting_seconds: float


@dataclass
class CaseCounts:
    """The cases received in a period, counted by their latest decision."""

    cases: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    first_reasons: Counter[str] = field(default_factory=Counter)
    escalated_to: Counter[str] = field(default_factory=Counter)
    reescalated: int = 0


@dataclass(frozen=True)
class SlaCounts:
    met: int
    breached: int


@dataclass(frozen=True)
class ReviewCounts:
    reviewed: int
    agreed: int
    critical: int = 0
    mean_score: float | None = None


class ReportReader(Protocol):
    """What the report reads from the store, for [start, end)."""

    def span(self) -> tuple[datetime, datetime] | None:
        """The first time a case was received and the last a case was received or resolved,
        or None for an empty store."""
        ...

    def baseline_span(self) -> tuple[datetime, datetime] | None:
        """The first and last escalation of the baseline, or None without one."""
        ...

    def case_counts(self, start: datetime, end: datetime) -> CaseCounts: ...

    def resolutions(self, start: datetime, end: datetime) -> list[Resolved]:
        """The cases finally resolved in the period."""
        ...

    def resolved_by(self, start: datetime, end: datetime) -> Counter[str]: ...

    def baseline_resolutions(self, start: datetime, end: datetime) -> list[Resolved]: ...

    def sla(self, start: datetime, end: datetime) -> SlaCounts:
        """Cases whose tier-2 clock ended in the period, met or breached, and cases still
        open whose clock was found breached in the period."""
        ...

    def money(self, start: datetime, end: datetime) -> dict[str, dict[str, dict[str, float]]]:
        """Money granted, by authority (tier2, or the human role that granted it), action type
        and currency."""
        ...

    def reviews(self, start: datetime, end: datetime) -> ReviewCounts: ...

    def backlog(self, now: datetime) -> Counter[str]:
        """Cases not finally resolved, by age bucket."""
        ...


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values, interpolated between the two nearest ranks (the
    'inclusive' method: the median of an even count is the mean of the middle two)."""
    if not values:
        return 0.0
    pos = (len(values) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (pos - low)


def cycle_figures(resolved: Iterable[Resolved]) -> dict[str, Any]:
    """The cycle-time figures of a set of resolutions, in hours, rounded to 0.01."""
    rows = list(resolved)
    business = sorted(r.business_seconds / HOUR for r in rows)
    calendar = sorted(r.calendar_seconds / HOUR for r in rows)
    waiting = sorted(r.waiting_seconds / HOUR for r in rows)
    return {
        "cases": len(rows),
        "median_business_hours": round(quantile(business, 0.5), 2),
        "p90_business_hours": round(quantile(business, 0.9), 2),
        "median_calendar_hours": round(quantile(calendar, 0.5), 2),
        "p90_calendar_hours": round(quantile(calendar, 0.9), 2),
        "median_waiting_hours": round(quantile(waiting, 0.5), 2),
        "waited": sum(1 for w in waiting if w > 0),
    }


def change_pct(now: Mapping[str, Any], before: Mapping[str, Any]) -> float | None:
    """The change of the median in business hours, in per cent (negative: faster)."""
    if not now["cases"] or not before["cases"] or not before["median_business_hours"]:
        return None
    base = float(before["median_business_hours"])
    return round((float(now["median_business_hours"]) - base) / base * 100, 1)


def weekly(resolved: Iterable[Resolved], zone: ZoneInfo) -> list[dict[str, Any]]:
    """The median cycle time (business hours) of the cases resolved each week (Monday)."""
    weeks: dict[date, list[Resolved]] = {}
    for r in resolved:
        day = r.resolved_at.astimezone(zone).date()
        weeks.setdefault(day - timedelta(days=day.weekday()), []).append(r)
    return [
        {"week": week.isoformat(), **cycle_figures(rows)} for week, rows in sorted(weeks.items())
    ]


def period_of(
    span: tuple[datetime, datetime] | None, first: date | None, last: date | None, zone: ZoneInfo
) -> Period:
    """The period asked for, its open ends filled from the store's first and last case."""
    today = datetime.now(zone).date()
    lo, hi = (span[0].astimezone(zone).date(), span[1].astimezone(zone).date()) if span else (
        today, today,
    )  # fmt: skip
    return Period(first or lo, last or hi, zone)


def report(
    reader: ReportReader,
    *,
    first: date | None = None,
    last: date | None = None,
    baseline: tuple[date | None, date | None] | None = None,
    zone: ZoneInfo,
    now: datetime,
) -> dict[str, Any]:
    """The report for a period (default: everything in the store), with the baseline (default:
    all of it, when the store has one)."""
    period = period_of(reader.span(), first, last, zone)
    start, end = period.start, period.end
    counts = reader.case_counts(start, end)
    resolved = reader.resolutions(start, end)
    cycle = cycle_figures(resolved)
    sla = reader.sla(start, end)
    reviews = reader.reviews(start, end)
    money = reader.money(start, end)
    sla_cases = sla.met + sla.breached
    return {
        "period": period.shown(),
        "escalations": counts.cases,
        "outcomes": {k: counts.outcomes.get(k, 0) for k in OUTCOMES},
        "first_reasons": dict(counts.first_reasons.most_common()),
        "escalated_to": dict(counts.escalated_to.most_common()),
        "cycle_time": cycle,
        "baseline": _baseline(reader, baseline, cycle, zone),
        "sla": {
            "cases": sla_cases,
            "met": sla.met,
            "breached": sla.breached,
            "breach_rate": round(sla.breached / sla_cases, 4) if sla_cases else 0.0,
        },
        "reescalation_rate": round(counts.reescalated / counts.cases, 4) if counts.cases else 0.0,
        "reescalated": counts.reescalated,
        "money": money.get("tier2", {}),
        "money_by_authority": money,
        "review": {
            "reviewed": reviews.reviewed,
            "agreement_rate": round(reviews.agreed / reviews.reviewed, 4)
            if reviews.reviewed
            else None,
            "critical": reviews.critical,
            "mean_score": reviews.mean_score,
        },
        "resolved_by": dict(reader.resolved_by(start, end).most_common()),
        "trend": weekly(resolved, zone),
        "backlog": dict(reader.backlog(now)),
    }


OUTCOMES = ("resolve", "return_to_tier1", "escalate")


def _baseline(
    reader: ReportReader,
    asked: tuple[date | None, date | None] | None,
    cycle: Mapping[str, Any],
    zone: ZoneInfo,
) -> dict[str, Any] | None:
    span = reader.baseline_span()
    if span is None:
        return None
    first, last = asked or (None, None)
    period = period_of(span, first, last, zone)
    rows = reader.baseline_resolutions(period.start, period.end)
    figures = cycle_figures(rows)
    return {
        "period": period.shown(),
        "cycle_time": figures,
        "change_pct": change_pct(cycle, figures),
        "trend": weekly(rows, zone),
    }

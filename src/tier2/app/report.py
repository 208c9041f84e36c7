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
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
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
class Resolutions:
    """Final resolutions (of cases, or of baseline escalations) as columns, in the order of
    their resolution times: `at` holds those times as the store keeps and sorts them (`key`
    turns a time into that form, `first` and `last` are the earliest and the latest), and the
    cycle times in seconds, row by row."""

    at: Sequence[Any]
    business: Sequence[float]
    calendar: Sequence[float]
    waiting: Sequence[float]
    key: Callable[[datetime], Any]
    first: datetime | None = None
    last: datetime | None = None

    @classmethod
    def of(cls, rows: Iterable[tuple[datetime, float, float, float]]) -> Resolutions:
        """From (resolved_at, business, calendar, waiting seconds) rows, in any order."""
        ordered = sorted(rows, key=lambda r: r[0])
        if not ordered:
            return cls([], [], [], [], _same)
        at, business, calendar, waiting = (list(c) for c in zip(*ordered, strict=True))
        return cls(at, business, calendar, waiting, _same, at[0], at[-1])


def _same(value: datetime) -> datetime:
    return value


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

    def baseline_sources(self) -> list[str]:
        """Where the baseline's escalations came from (local, rt, zendesk, csv:FILE, or
        simulated for the demo's)."""
        ...

    def case_counts(self, start: datetime, end: datetime) -> CaseCounts: ...

    def resolutions(self, start: datetime, end: datetime) -> Resolutions:
        """The cases finally resolved in the period."""
        ...

    def resolved_by(self, start: datetime, end: datetime) -> Counter[str]: ...

    def baseline_resolutions(self, start: datetime, end: datetime) -> Resolutions:
        """The baseline's escalations of the period (escalated in it) that were resolved."""
        ...

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

    def at_risk(self, limit: int) -> list[dict[str, Any]]:
        """Cases not finally resolved whose tier-2 clock the SLA monitor found at risk or
        breached, the soonest due first: case_id, ticket_id, kind, target, severity, due,
        escalate_to (the case's target), found_at."""
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


def _hours(values: Sequence[float], q: float) -> float:
    """quantile() of sorted seconds, in hours: the same figure as quantile() of the values
    divided by HOUR (a division keeps their order)."""
    if not values:
        return 0.0
    pos = (len(values) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(values) - 1)
    below, above = values[low] / HOUR, values[high] / HOUR
    return below + (above - below) * (pos - low)


def _figures(business: list[float], calendar: list[float], waiting: list[float]) -> dict[str, Any]:
    """The cycle-time figures of sorted columns of seconds, in hours, rounded to 0.01."""
    return {
        "cases": len(business),
        "median_business_hours": round(_hours(business, 0.5), 2),
        "p90_business_hours": round(_hours(business, 0.9), 2),
        "median_calendar_hours": round(_hours(calendar, 0.5), 2),
        "p90_calendar_hours": round(_hours(calendar, 0.9), 2),
        "median_waiting_hours": round(_hours(waiting, 0.5), 2),
        "waited": len(waiting) - bisect_right(waiting, 0.0),
    }


def cycle_figures(
    found: Resolutions, zone: ZoneInfo
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The cycle-time figures of a set of resolutions, in hours, rounded to 0.01; and the
    same figures for the resolutions of each week (from Monday, in `zone`) that has any.

    The resolutions come in the order of their times, so each week is a slice of the columns
    (found by bisection on the week's first moment); the weeks' sorted columns, put end to
    end, are sorted again for the whole (Timsort merges sorted runs)."""
    columns = (found.business, found.calendar, found.waiting)
    trend: list[dict[str, Any]] = []
    whole: tuple[list[float], list[float], list[float]] = ([], [], [])
    if found.first is not None and found.last is not None:
        week, final = _monday(found.first, zone), _monday(found.last, zone)
        i, n = 0, len(found.at)
        while week <= final:
            after = week + timedelta(days=7)
            j = n if week == final else bisect_left(found.at, found.key(_midnight(after, zone)), i)
            if j > i:
                b, c, w = (sorted(col[i:j]) for col in columns)
                trend.append({"week": week.isoformat(), **_figures(b, c, w)})
                for into, part in zip(whole, (b, c, w), strict=True):
                    into.extend(part)
            i, week = j, after
    for column in whole:
        column.sort()
    return _figures(*whole), trend


def _monday(at: datetime, zone: ZoneInfo) -> date:
    day = at.astimezone(zone).date()
    return day - timedelta(days=day.weekday())


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone)


def change_pct(now: Mapping[str, Any], before: Mapping[str, Any]) -> float | None:
    """The change of the median in business hours, in per cent (negative: faster)."""
    if not now["cases"] or not before["cases"] or not before["median_business_hours"]:
        return None
    base = float(before["median_business_hours"])
    return round((float(now["median_business_hours"]) - base) / base * 100, 1)


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
    cycle, trend = cycle_figures(reader.resolutions(start, end), zone)
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
        "trend": trend,
        "backlog": dict(reader.backlog(now)),
        "at_risk": reader.at_risk(AT_RISK_LISTED),
    }


OUTCOMES = ("resolve", "return_to_tier1", "escalate")
AT_RISK_LISTED = 25  # the at-risk list's length


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
    figures, trend = cycle_figures(reader.baseline_resolutions(period.start, period.end), zone)
    sources = reader.baseline_sources()
    return {
        "period": period.shown(),
        "cycle_time": figures,
        "change_pct": change_pct(cycle, figures),
        "trend": trend,
        "sources": sources,
        "simulated": SIMULATED in sources,
    }


SIMULATED = "simulated"  # the source name of the demo's simulated baseline

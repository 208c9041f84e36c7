"""The report's figures read from the store (tier2.app.report.ReportReader): a few aggregate
queries over the case rows, which carry their latest outcome and final resolution, so a
period of a million cases is read without touching decisions or payloads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, Connection, Engine, Select, case, func, select
from sqlalchemy.orm import Session

from tier2.app.report import CaseCounts, Resolutions, ReviewCounts, SlaCounts
from tier2.store import models as m

AGES = ((1, "under 1 day"), (3, "1-3 days"), (7, "3-7 days"))
OLDER = "over 7 days"
SECONDS = ("business_seconds", "calendar_seconds", "waiting_seconds")


class SqlReportReader:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # who resolved the cases of a period, and their SLA verdicts: counted while reading
        # their resolutions (one pass over the rows instead of three)
        self._ended: dict[tuple[datetime, datetime], tuple[Counter[str], Counter[Any]]] = {}

    def _rows(self, query: Any) -> list[Any]:
        with Session(self.engine) as session:
            return list(session.execute(query).all())

    def span(self) -> tuple[datetime, datetime] | None:
        c = m.Case
        # one aggregate a query: each is then read off an index's first or last entry
        ((lo, hi, done),) = self._rows(
            select(
                select(func.min(c.received_at)).scalar_subquery(),
                select(func.max(c.received_at)).scalar_subquery(),
                select(func.max(c.resolved_at)).scalar_subquery(),
            )
        )
        if lo is None:
            return None
        return _aware(lo), max(_aware(hi), _aware(done or hi))

    def baseline_span(self) -> tuple[datetime, datetime] | None:
        b = m.BaselineCase
        ((lo, hi),) = self._rows(select(func.min(b.escalated_at), func.max(b.escalated_at)))
        return None if lo is None else (_aware(lo), _aware(hi))

    def baseline_sources(self) -> list[str]:
        b = m.BaselineCase
        return [r[0] for r in self._rows(select(b.source).distinct().order_by(b.source))]

    def case_counts(self, start: datetime, end: datetime) -> CaseCounts:
        c = m.Case
        again = func.sum(case((c.escalations > 1, 1), else_=0))
        query = (
            select(c.outcome, c.first_reason, c.escalate_to, func.count(), again)
            .where(c.received_at >= start, c.received_at < end)
            .group_by(c.outcome, c.first_reason, c.escalate_to)
        )
        counts = CaseCounts()
        for outcome, reason, target, n, reescalated in self._rows(query):
            counts.cases += n
            counts.reescalated += reescalated or 0
            counts.outcomes[outcome or "undecided"] += n
            if reason:
                counts.first_reasons[reason] += n
            if target:
                counts.escalated_to[target] += n
        return counts

    def resolutions(self, start: datetime, end: datetime) -> Resolutions:
        c = m.table(m.Case).c
        found, (by, met) = self._resolutions(c.resolved_at, start, end, c.resolved_by, c.sla_met)
        self._ended[start, end] = Counter(by), Counter(met)
        return found

    def resolved_by(self, start: datetime, end: datetime) -> Counter[str]:
        if (start, end) in self._ended:
            counted: Counter[str] = self._ended[start, end][0]
        else:
            c = m.Case
            query = (
                select(c.resolved_by, func.count())
                .where(c.resolved_at >= start, c.resolved_at < end)
                .group_by(c.resolved_by)
            )
            counted = Counter(dict(self._rows(query)))
        # in the order SQL groups them (NULL first), as when counted by the query above
        ordered = sorted(counted.items(), key=lambda kv: (kv[0] is not None, kv[0] or ""))
        return Counter({who or "unknown": n for who, n in ordered})

    def baseline_resolutions(self, start: datetime, end: datetime) -> Resolutions:
        c = m.table(m.BaselineCase).c
        return self._resolutions(c.escalated_at, start, end)[0]

    def _resolutions(
        self, by: Column[Any], start: datetime, end: datetime, *more: Column[Any]
    ) -> tuple[Resolutions, list[list[Any]]]:
        """The rows of `by`'s table resolved, with `by` in [start, end), as columns in the
        order of their resolution times, and the `more` columns of the same rows.

        The rows are fetched from the driver's cursor as it gives them: a million rows make
        no million datetimes or result rows. The times stay in the form the store keeps them
        in (which sorts as they do); `key` is the column's own conversion to that form."""
        table = by.table
        at = table.c.resolved_at
        query = (
            select(at, *(table.c[n] for n in SECONDS), *more)
            .where(by >= start, by < end, at.is_not(None))
            .order_by(at)
        )
        with self.engine.connect() as conn:
            rows = _fetch(conn, query)
        columns = [[r[i] for r in rows] for i in range(4 + len(more))]
        dialect = self.engine.dialect
        kind = at.type.dialect_impl(dialect)
        key = kind.bind_processor(dialect) or _same
        if not rows:
            return Resolutions([], [], [], [], key), columns[4:]
        decode = kind.result_processor(dialect, None) or _same
        times, business, calendar, waiting = columns[:4]
        found = Resolutions(
            times, business, calendar, waiting, key, decode(times[0]), decode(times[-1])
        )
        return found, columns[4:]

    def sla(self, start: datetime, end: datetime) -> SlaCounts:
        c, e = m.Case, m.SlaEscalation
        if (start, end) in self._ended:
            verdicts = self._ended[start, end][1]
            ended = {True: verdicts[True], False: verdicts[False]}  # (1 and 0 on SQLite)
        else:
            ended = dict(
                self._rows(
                    select(c.sla_met, func.count())
                    .where(c.resolved_at >= start, c.resolved_at < end, c.sla_met.is_not(None))
                    .group_by(c.sla_met)
                )
            )
        ((open_breached,),) = self._rows(
            select(func.count(func.distinct(e.case_id)))
            .join(c, c.id == e.case_id)
            .where(e.kind == "breached", e.at >= start, e.at < end, c.resolved_at.is_(None))
        )
        return SlaCounts(met=ended.get(True, 0), breached=ended.get(False, 0) + open_breached)

    def money(self, start: datetime, end: datetime) -> dict[str, dict[str, dict[str, float]]]:
        a, h = m.Action, m.HumanResolution
        out: dict[str, dict[str, dict[str, float]]] = {}
        tier2 = (
            select(a.type, a.currency, func.sum(a.amount))
            .where(a.status == "done", a.executed_at >= start, a.executed_at < end)
            .where(a.amount.is_not(None))
            .group_by(a.type, a.currency)
        )
        for kind, currency, amount in self._rows(tier2):
            _add(out, "tier2", kind, currency, amount)
        humans = (
            select(h.role, h.action_type, h.currency, func.sum(h.amount))
            .where(h.at >= start, h.at < end, h.amount.is_not(None), h.action_type.is_not(None))
            .group_by(h.role, h.action_type, h.currency)
        )
        for role, kind, currency, amount in self._rows(humans):
            _add(out, role, kind, currency, amount)
        return out

    def reviews(self, start: datetime, end: datetime) -> ReviewCounts:
        r = m.Review
        ((n, agreed, critical, score),) = self._rows(
            select(
                func.count(),
                func.sum(case((r.agrees, 1), else_=0)),
                func.sum(case((r.violation, 1), else_=0)),
                func.avg(r.score),
            ).where(r.at >= start, r.at < end)
        )
        return ReviewCounts(
            n, agreed or 0, critical or 0, None if score is None else round(float(score), 1)
        )

    def backlog(self, now: datetime) -> Counter[str]:
        c = m.Case
        start = func.coalesce(c.escalated_at, c.received_at)
        buckets = case(*((start >= now - timedelta(days=d), name) for d, name in AGES), else_=OLDER)
        query = select(buckets, func.count()).where(c.resolved_at.is_(None)).group_by(buckets)
        found = dict(self._rows(query))
        return Counter({name: found.get(name, 0) for _, name in (*AGES, (0, OLDER))})

    def at_risk(self, limit: int) -> list[dict[str, Any]]:
        c, e = m.Case, m.SlaEscalation
        query = (
            select(
                e.case_id, c.ticket_id, e.kind, e.target, e.severity, e.due,
                c.escalate_to, e.at.label("found_at"),
            )
            .join(c, c.id == e.case_id)
            .where(c.resolved_at.is_(None), e.escalation == c.escalations)
            .order_by(e.due.is_(None), e.due, e.case_id)
            .limit(limit * 4)  # (a case is listed once, but may have a row per kind and target)
        )  # fmt: skip
        found: dict[str, dict[str, Any]] = {}
        for r in self._rows(query):
            row = dict(r._mapping)
            for key in ("due", "found_at"):
                row[key] = None if row[key] is None else _aware(row[key]).isoformat()
            kept = found.get(row["case_id"])
            if kept is None or (kept["kind"] != "breached" and row["kind"] == "breached"):
                found[row["case_id"]] = row  # a breach rather than the risk before it
        return list(found.values())[:limit]

    def cases(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """One row per case received in the period, for the ticket-level CSV."""
        c = m.Case
        query = (
            select(
                c.id.label("case_id"), c.ticket_id, c.received_at, c.escalated_at, c.state,
                c.outcome, c.first_reason, c.escalate_to, c.escalations, c.resolved_at,
                c.resolved_by, c.business_seconds, c.calendar_seconds, c.waiting_seconds, c.sla_met,
            )
            .where(c.received_at >= start, c.received_at < end)
            .order_by(c.received_at, c.id)
        )  # fmt: skip
        with Session(self.engine) as session:
            for row in session.execute(query.execution_options(yield_per=5000)):
                yield dict(row._mapping)


def _fetch(conn: Connection, query: Select[Any]) -> list[Any]:
    """The query's rows as the driver's cursor gives them (on PostgreSQL in psycopg's binary
    format, which reads times and numbers about twice as fast as text)."""
    if conn.dialect.name == "postgresql":
        compiled = query.compile(dialect=conn.dialect)
        driver: Any = conn.connection.driver_connection
        with driver.cursor(binary=True) as cursor:
            cursor.execute(str(compiled), compiled.params)
            return list(cursor.fetchall())
    result = conn.execute(query)
    try:
        return list(result.cursor.fetchall()) if result.cursor is not None else []
    finally:
        result.close()


def _add(
    out: dict[str, dict[str, dict[str, float]]], who: str, kind: str, currency: str | None,
    amount: float | None,
) -> None:  # fmt: skip
    by_currency = out.setdefault(who, {}).setdefault(kind, {})
    key = currency or ""
    by_currency[key] = round(by_currency.get(key, 0.0) + float(amount or 0.0), 2)


def _same(value: Any) -> Any:
    return value


def _aware(value: datetime) -> datetime:
    """func.min over a UtcDateTime column skips the column's result processing on SQLite."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

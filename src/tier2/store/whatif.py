"""The stored cases a what-if replays, read as a stream: each case's stored input with its
latest decision (its time and what it decided) and, where a senior reviewed that decision,
what they said was right. Nothing is written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tier2.app.whatif import Past, side_of
from tier2.store import models as m


def count_cases(engine: Engine, start: datetime | None, end: datetime | None) -> int:
    c = m.Case
    query = select(func.count()).select_from(c).where(c.outcome.is_not(None))
    if start is not None:
        query = query.where(c.received_at >= start)
    if end is not None:
        query = query.where(c.received_at < end)
    with Session(engine) as session:
        return int(session.scalar(query) or 0)


def stored_cases(
    engine: Engine, start: datetime | None = None, end: datetime | None = None, batch: int = 2000
) -> Iterator[Past]:
    """Every decided case received in [start, end), by id, with its latest decision."""
    c, d = m.Case, m.Decision
    latest = select(d.case_id, func.max(d.seq).label("seq")).group_by(d.case_id).subquery("latest")
    query = (
        select(c.id, c.payload, d.seq, d.decided_at, d.body)
        .join(latest, latest.c.case_id == c.id)
        .join(d, (d.case_id == latest.c.case_id) & (d.seq == latest.c.seq))
        .order_by(c.id)
    )
    if start is not None:
        query = query.where(c.received_at >= start)
    if end is not None:
        query = query.where(c.received_at < end)
    with Session(engine) as session:
        reviews = _reviews(session)
        rows = session.execute(query.execution_options(yield_per=batch))
        for case_id, payload, seq, decided_at, body in rows:
            yield Past(
                case_id=case_id,
                payload=_json(payload),
                decided_at=_aware(decided_at),
                old=side_of(_json(body)),
                expected=reviews.get((case_id, seq)),
            )


def _reviews(session: Session) -> dict[tuple[str, int], tuple[str, str | None]]:
    """What the reviewers said was right, per reviewed decision: the decision itself when
    they agreed, else the outcome and target they gave (the latest review counts)."""
    r, d = m.Review, m.Decision
    out: dict[tuple[str, int], tuple[str, str | None]] = {}
    query = (
        select(r.case_id, r.decision_seq, r.agrees, r.correct_outcome, r.correct_escalate_to,
               d.outcome, d.escalate_to)
        .join(d, (d.case_id == r.case_id) & (d.seq == r.decision_seq))
        .order_by(r.at, r.id)
    )  # fmt: skip
    for case_id, seq, agrees, outcome, target, decided, decided_to in session.execute(query):
        if agrees:
            out[(case_id, seq)] = (decided, decided_to)
        else:
            right = outcome or decided
            out[(case_id, seq)] = (right, target if right == "escalate" else None)
    return out


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

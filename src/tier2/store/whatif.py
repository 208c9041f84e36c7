"""The stored cases a what-if replays, read in parts by id (each replaying process reads its
own): each case's stored input with its latest decision (its time and what it decided) and,
where a senior reviewed that decision, what they said was right. Nothing is written."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, Text, cast, func, select
from sqlalchemy.orm import Session

from tier2.app.whatif import Past, side_of
from tier2.store import models as m


def case_ids(
    engine: Engine, start: datetime | None = None, end: datetime | None = None
) -> list[str]:
    """The decided cases received in [start, end), by id."""
    c = m.Case
    query = select(c.id).where(c.outcome.is_not(None)).order_by(c.id)
    if start is not None:
        query = query.where(c.received_at >= start)
    if end is not None:
        query = query.where(c.received_at < end)
    with Session(engine) as session:
        return list(session.scalars(query))


def stored_cases(engine: Engine, ids: Sequence[str]) -> list[Past]:
    """These cases (a part of a replay), each with its latest decision: read as JSON text
    and decoded here, in the replaying process."""
    c, d = m.Case, m.Decision
    latest = (
        select(d.case_id, func.max(d.seq).label("seq"))
        .where(d.case_id.in_(list(ids)))
        .group_by(d.case_id)
        .subquery("latest")
    )
    query = (
        select(c.id, cast(c.payload, Text), d.seq, d.decided_at, cast(d.body, Text))
        .join(latest, latest.c.case_id == c.id)
        .join(d, (d.case_id == latest.c.case_id) & (d.seq == latest.c.seq))
        .order_by(c.id)
    )
    with Session(engine) as session:
        reviews = _reviews(session, ids)
        return [
            Past(
                case_id=case_id,
                payload=_json(payload),
                decided_at=_aware(decided_at),
                old=side_of(_json(body)),
                expected=reviews.get((case_id, seq)),
            )
            for case_id, payload, seq, decided_at, body in session.execute(query)
        ]


def _reviews(session: Session, ids: Sequence[str]) -> dict[tuple[str, int], tuple[str, str | None]]:
    """What the reviewers said was right, per reviewed decision: the decision itself when
    they agreed, else the outcome and target they gave (the latest review counts)."""
    r, d = m.Review, m.Decision
    out: dict[tuple[str, int], tuple[str, str | None]] = {}
    query = (
        select(r.case_id, r.decision_seq, r.agrees, r.correct_outcome, r.correct_escalate_to,
               d.outcome, d.escalate_to)
        .join(d, (d.case_id == r.case_id) & (d.seq == r.decision_seq))
        .where(r.case_id.in_(list(ids)))
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

"""The stored cases a what-if replays, read in parts by id (each replaying process reads its
own): each case's stored input with its latest decision (its time and what it decided) and,
where a senior reviewed that decision, what they said was right. Nothing is written."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, Text, cast, func, select
from sqlalchemy.orm import Session

from tier2.app.whatif import Past, side_of
from tier2.store import models as m


def _decided(start: datetime | None, end: datetime | None) -> list[Any]:
    c = m.Case
    where: list[Any] = [c.outcome.is_not(None)]
    if start is not None:
        where.append(c.received_at >= start)
    if end is not None:
        where.append(c.received_at < end)
    return where


def count_decided(
    engine: Engine, start: datetime | None = None, end: datetime | None = None
) -> int:
    """How many decided cases were received in [start, end)."""
    with Session(engine) as session:
        query = select(func.count()).select_from(m.Case).where(*_decided(start, end))
        return int(session.scalar(query) or 0)


def id_parts(
    engine: Engine, start: datetime | None = None, end: datetime | None = None, size: int = 2000
) -> Iterator[list[str]]:
    """The decided cases received in [start, end), by id, a part at a time (read page by
    page: the ids are never all in memory)."""
    c = m.Case
    after: str | None = None
    while True:
        query = select(c.id).where(*_decided(start, end)).order_by(c.id).limit(size)
        if after is not None:
            query = query.where(c.id > after)
        with Session(engine) as session:
            part = list(session.scalars(query))
        if not part:
            return
        yield part
        after = part[-1]


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


def case_ids(
    engine: Engine, start: datetime | None = None, end: datetime | None = None
) -> list[str]:
    """The decided cases received in [start, end), by id, all at once."""
    return [case_id for part in id_parts(engine, start, end) for case_id in part]

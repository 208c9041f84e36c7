"""The baseline's escalations in the store: imported again, a ticket's row is replaced."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Engine, delete, tuple_
from sqlalchemy.orm import Session

from tier2._batch import batched
from tier2.store import models as m
from tier2.store.bulk import insert_rows


def save_baseline(engine: Engine, rows: Iterable[Mapping[str, Any]], batch: int = 2000) -> int:
    """Store the rows (replacing those of the same source and ticket); how many."""
    table = m.table(m.BaselineCase)
    n = 0
    with Session(engine) as session, session.begin():
        for chunk in batched(list(rows), batch):
            keys = [(r["source"], r["ticket_id"]) for r in chunk]
            session.execute(
                delete(table).where(tuple_(table.c.source, table.c.ticket_id).in_(keys))
            )
            insert_rows(session, table, chunk)
            n += len(chunk)
    return n

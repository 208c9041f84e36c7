"""The store's bulk writes store exactly what SQLAlchemy's own statements store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from tier2.store import models as m
from tier2.store.bulk import Encoded, insert_rows, update_rows
from tier2.store.db import make_engine, upgrade

AT = datetime(2026, 3, 3, 10, 20, 0, 123456, tzinfo=timezone(timedelta(hours=1)))


def _messages(ticket: str) -> list[dict[str, Any]]:
    return [
        {
            "ticket_id": ticket,
            "seq": i,
            "sender": "tier2",
            "at": AT + timedelta(seconds=i),
            "body": f"note {i}",
            "internal": i % 2 == 0,
            "idempotency_key": f"{ticket}:{i}",
        }
        for i in range(3)
    ]


def _tickets(*ids: str) -> list[dict[str, Any]]:
    return [
        {"id": t, "created_at": AT, "updated_at": AT, "severity": "low", "category": "billing",
         "status": "escalated", "tags": [], "facts": {}}
        for t in ids
    ]  # fmt: skip


def _raw(session: Session, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in session.execute(text(sql))]


def test_insert_rows_stores_what_sqlalchemy_stores(database_url: str) -> None:
    """Datetimes (in UTC), booleans, JSON (None as JSON null, or encoded already) and text
    come out of the bulk insert byte for byte as from SQLAlchemy's insert, on every backend."""
    upgrade(database_url)
    engine = make_engine(database_url)
    audit = m.table(m.AuditEntry)
    entries = [
        {"seq": i + 1, "at": AT, "case_id": None if i else "NW-1", "event": "e",
         "data": None if i == 1 else {"k": [1, 2.5, None]}, "prev_hash": "p", "hash": "h"}
        for i in range(3)
    ]  # fmt: skip
    with Session(engine) as session, session.begin():
        session.execute(insert(m.table(m.Ticket)), _tickets("A", "B"))
        insert_rows(session, m.table(m.TicketMessage), _messages("A"))
        session.execute(insert(m.table(m.TicketMessage)), _messages("B"))
        plain = [*entries[:2], {**entries[0], "seq": 3}]
        encoded = {**plain[2], "data": Encoded(orjson.dumps(plain[2]["data"]).decode())}
        insert_rows(session, audit, [*plain[:2], encoded])
        session.execute(insert(audit), [{**e, "seq": e["seq"] + 10} for e in plain])
    with Session(engine) as session:
        a, b = (
            _raw(
                session,
                f"SELECT seq, sender, at, body, internal, idempotency_key "
                f"FROM ticket_messages WHERE ticket_id = '{t}' ORDER BY seq",
            )
            for t in ("A", "B")
        )
        assert [r[:-1] for r in a] == [r[:-1] for r in b]
        log = _raw(session, "SELECT seq, at, case_id, data FROM audit_log ORDER BY seq")
        assert [r[1:] for r in log[:3]] == [r[1:] for r in log[3:]]
        stored = session.scalars(select(m.TicketMessage.at).where(m.TicketMessage.ticket_id == "A"))
        assert list(stored) == [(AT + timedelta(seconds=i)).astimezone(UTC) for i in range(3)]
    engine.dispose()


def test_update_rows_updates_each_row_by_its_key(database_url: str) -> None:
    """Each row is updated by its primary key, and only that row."""
    upgrade(database_url)
    engine = make_engine(database_url)
    with Session(engine) as session, session.begin():
        session.execute(insert(m.table(m.Ticket)), _tickets("T0", "T1", "T2"))
        update_rows(
            session,
            m.Ticket,
            [{"id": "T0", "status": "resolved", "tags": ["x"], "updated_at": AT},
             {"id": "T2", "status": "open", "tags": [], "updated_at": AT + timedelta(hours=1)}],
        )  # fmt: skip
    with Session(engine) as session:
        rows = session.execute(select(m.Ticket.id, m.Ticket.status, m.Ticket.tags,
                                      m.Ticket.updated_at).order_by(m.Ticket.id)).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [
        ("T0", "resolved", ["x"], AT.astimezone(UTC)),
        ("T1", "escalated", [], AT.astimezone(UTC)),
        ("T2", "open", [], (AT + timedelta(hours=1)).astimezone(UTC)),
    ]
    engine.dispose()

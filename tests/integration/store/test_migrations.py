"""The case store's schema: Alembic migrations from the first table on, on both backends."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tier2.store import models as m
from tier2.store.db import current_revision, database_url, head_revision, make_engine, upgrade

TABLES = {
    "tickets", "ticket_messages", "handoffs", "customers", "customer_flags", "crm_history",
    "cases", "decisions", "actions", "notes", "audit_log", "audit_anchor",
}  # fmt: skip
BERLIN = timezone(timedelta(hours=1))


def test_upgrade_creates_every_table_and_is_repeatable(database_url: str) -> None:
    """Upgrading to head creates the store; upgrading again changes nothing."""
    upgrade(database_url)
    upgrade(database_url)
    engine = make_engine(database_url)
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert current_revision(engine) == head_revision(database_url)
    engine.dispose()


def test_models_match_the_migrations(database_url: str) -> None:
    """The migrations build exactly the schema the models describe (no pending autogenerate)."""
    upgrade(database_url)
    engine = make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), m.Base.metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_to_base_removes_the_store(database_url: str) -> None:
    """Every migration can be undone."""
    from alembic import command

    from tier2.store.db import alembic_config

    upgrade(database_url)
    command.downgrade(alembic_config(database_url), "base")
    engine = make_engine(database_url)
    assert not TABLES & set(inspect(engine).get_table_names())
    engine.dispose()


def test_times_and_json_round_trip(database_url: str) -> None:
    """An aware time comes back as the same instant (in UTC); JSON comes back as written."""
    upgrade(database_url)
    engine = make_engine(database_url)
    created = datetime(2026, 3, 3, 8, 5, tzinfo=BERLIN)
    facts = {"invoice": {"id": "INV-3321", "amount": 240.0, "duplicate": True}}
    with Session(engine) as session:
        session.add(m.Ticket(id="20417", created_at=created, severity="medium", category="billing",
                             facts=facts, tags=["invoice"], updated_at=created))  # fmt: skip
        session.commit()
    with Session(engine) as session:
        ticket = session.scalars(select(m.Ticket)).one()
        assert ticket.created_at == created and ticket.created_at.utcoffset() == timedelta(0)
        assert ticket.facts == facts and ticket.tags == ["invoice"]
    engine.dispose()


def test_naive_times_are_refused(database_url: str) -> None:
    """A time without an offset is not stored."""
    upgrade(database_url)
    engine = make_engine(database_url)
    with Session(engine) as session, pytest.raises(Exception, match="naive datetimes"):
        session.add(m.Ticket(id="1", created_at=datetime(2026, 3, 3), severity="low",
                             category="other", updated_at=datetime(2026, 3, 3)))  # fmt: skip
        session.commit()
    engine.dispose()


def test_an_idempotency_key_is_used_once(database_url: str) -> None:
    """Two actions with the same idempotency key cannot both be recorded."""
    upgrade(database_url)
    engine = make_engine(database_url)
    now = datetime(2026, 3, 3, 10, 20, tzinfo=BERLIN)
    with Session(engine) as session:
        session.add(
            m.Ticket(id="T", created_at=now, severity="low", category="billing", updated_at=now)
        )
        session.flush()
        session.add(
            m.Case(
                id="C", ticket_id="T", received_at=now, payload={}, library="saas", updated_at=now
            )
        )
        session.flush()
        session.add(m.Decision(case_id="C", seq=1, decided_at=now, outcome="resolve",
                               library_digest="sha256:x", body={}))  # fmt: skip
        session.flush()
        decision_id = session.scalars(select(m.Decision.id)).one()
        session.add(
            m.Action(
                case_id="C", decision_id=decision_id, idempotency_key="C:1:refund", type="refund"
            )
        )
        session.commit()
        session.add(
            m.Action(
                case_id="C", decision_id=decision_id, idempotency_key="C:1:refund", type="refund"
            )
        )
        with pytest.raises(IntegrityError):
            session.commit()
    engine.dispose()


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("./tier2.db", "sqlite:///tier2.db"),
        ("/var/lib/tier2/cases.db", "sqlite:////var/lib/tier2/cases.db"),
        ("postgresql://u:p@db:5432/tier2", "postgresql+psycopg://u:p@db:5432/tier2"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_url(value: str, url: str) -> None:
    """TIER2_DB takes an SQLAlchemy URL or a path to an SQLite file."""
    assert database_url(value) == url


def test_database_url_defaults_to_tier2_db(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without TIER2_DB the store is ./tier2.db."""
    monkeypatch.delenv("TIER2_DB", raising=False)
    assert database_url() == "sqlite:///tier2.db"


def test_action_parameters_survive_an_upgrade(database_url: str) -> None:
    """A store at 0015 upgrades to head keeping its rows; a ledger row then keeps the action's
    parameters as written; downgrading to 0015 removes the columns again."""
    from alembic import command

    from tier2.store.db import alembic_config

    config = alembic_config(database_url)
    command.upgrade(config, "0015")
    engine = make_engine(database_url)
    now = datetime(2026, 3, 3, 10, 20, tzinfo=BERLIN)
    with Session(engine) as session:  # (the tickets table is the same at 0015)
        session.add(
            m.Ticket(id="T", created_at=now, severity="low", category="billing", updated_at=now)
        )
        session.commit()
    engine.dispose()
    upgrade(database_url)
    engine = make_engine(database_url)
    params = {"to": "gift_card", "items": ["A1", "A2"], "urgent": True}
    with Session(engine) as session:
        session.add(m.LedgerEntry(idempotency_key="C:1:0:refund", ticket_id="T", type="refund",
                                  amount=20.0, currency="USD", at=now, params=params))  # fmt: skip
        session.commit()
    with Session(engine) as session:
        assert session.scalars(select(m.LedgerEntry.params)).one() == params
        assert session.scalars(select(m.Ticket.id)).one() == "T"
    engine.dispose()
    command.downgrade(config, "0015")
    engine = make_engine(database_url)
    columns = {c["name"] for c in inspect(engine).get_columns("actions")}
    assert "params" not in columns and "amount" in columns
    assert "params" not in {c["name"] for c in inspect(engine).get_columns("ledger")}
    engine.dispose()

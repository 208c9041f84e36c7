"""`tier2 run` carries an action's parameters to the local help desk: the store's action row,
the ledger and the audit log keep them; an action without parameters is stored as before."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import SAAS_BASE
from tier2.app.ports import ActionOrder
from tier2.app.runner import Runner
from tier2.contract import CaseIn
from tier2.core.library import Library
from tier2.helpdesk.local import LocalHelpDesk
from tier2.library.loader import load_library, resolve_library_path
from tier2.store import audit
from tier2.store import models as m
from tier2.store.db import make_engine, upgrade
from tier2.store.unit_of_work import SqlUnitOfWork

DUPLICATE = "      - {type: refund, amount: 'has(facts.invoice.amount) ? facts.invoice.amount : request.amount'}"
WITH_PARAMS = (
    "      - {type: refund, amount: 'request.amount', to: '\"gift_card\"', "
    "items: '[facts.invoice.id, \"A2\"]', params: {urgent: 'true'}}"
)
PARAMS = {"to": "gift_card", "items": ["INV-3321", "A2"], "urgent": True}


def params_library(folder: Path) -> Library:
    shutil.copytree(resolve_library_path("saas"), folder)
    path = folder / "policies.yaml"
    path.write_text(path.read_text().replace(DUPLICATE, WITH_PARAMS, 1))
    return load_library(str(folder))


def run_one(database_url: str, library: Library) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    desk = LocalHelpDesk(engine)
    desk.import_cases([CaseIn.model_validate(SAAS_BASE)])
    ticks = count()
    clock = lambda: datetime(2026, 4, 1, tzinfo=UTC) + timedelta(seconds=next(ticks))
    stats = Runner(SqlUnitOfWork(engine), library, desk, clock).run_once()
    assert stats.finished == 1 and not stats.failed
    engine.dispose()


def test_the_parameters_reach_the_store_the_ledger_and_the_audit_log(
    database_url: str, tmp_path: Path
) -> None:
    """A resolution's refund to a gift card for two items: the action row and the ledger row
    hold the parameters, the key is the one an action without them gets, the audit holds."""
    run_one(database_url, params_library(tmp_path / "lib"))
    engine = make_engine(database_url)
    with Session(engine) as session:
        action = session.scalars(select(m.Action)).one()
        assert action.idempotency_key == "NW-1:1:0:refund"
        assert action.params == PARAMS and action.status == "done"
        ledger = session.scalars(select(m.LedgerEntry)).one()
        assert (ledger.type, ledger.amount, ledger.currency) == ("refund", 240.0, "EUR")
        assert ledger.params == PARAMS
        entries = session.scalars(select(m.AuditEntry).order_by(m.AuditEntry.seq)).all()
        decided = next(e for e in entries if e.event == "decided")
        assert decided.data["actions"][0]["params"] == PARAMS
        acted = next(e for e in entries if e.event == "action")
        assert acted.data["params"] == PARAMS
        verdict = audit.verify(session)
        assert verdict.intact, verdict.problem
    engine.dispose()


def test_an_action_without_parameters_is_stored_as_before(database_url: str, saas: Library) -> None:
    """The built-in library's refund: no parameters in the rows or the audit entries."""
    run_one(database_url, saas)
    engine = make_engine(database_url)
    with Session(engine) as session:
        action = session.scalars(select(m.Action)).one()
        assert action.idempotency_key == "NW-1:1:0:refund" and action.params is None
        assert session.scalars(select(m.LedgerEntry.params)).one() is None
        for entry in session.scalars(select(m.AuditEntry)):
            assert "params" not in entry.data
            assert all("params" not in a for a in entry.data.get("actions", []))
        assert audit.verify(session).intact
    engine.dispose()


def test_an_order_in_words() -> None:
    """What a help desk writes for an action: type, amount, destination, items, the rest."""
    order = ActionOrder("T", "K", "refund", 20.0, "USD", {"to": "gift_card", "items": ["A1", "A2"]})
    assert order.words() == "refund 20.00 USD to gift_card, items A1, A2"
    assert ActionOrder("T", "K", "refund", 20.0, "USD").words() == "refund 20.00 USD"
    assert ActionOrder("T", "K", "decline", None, None).words() == "decline"


def test_a_changed_parameter_is_named_by_the_audit(database_url: str, tmp_path: Path) -> None:
    """An action row whose destination was changed after the fact disagrees with the log."""
    run_one(database_url, params_library(tmp_path / "lib"))
    engine = make_engine(database_url)
    with Session(engine) as session, session.begin():
        action = session.scalars(select(m.Action)).one()
        action.params = {**PARAMS, "to": "card"}
    with Session(engine) as session:
        problem = audit.verify(session).problem or ""
    assert "action row 1 (case NW-1, refund): parameters" in problem
    engine.dispose()

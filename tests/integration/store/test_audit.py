"""The anchored audit log: what someone who can write to the database but holds no key does
to the log, the anchor, decisions, actions, the ledger and notes, and how `verify` names it."""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.conftest import SAAS_BASE
from tests.integration.runner.test_runner import _Desk
from tier2.app.runner import Runner
from tier2.app.sla_monitor import SlaMonitor
from tier2.contract import CaseIn
from tier2.entrypoints.cli import app
from tier2.helpdesk.local import LocalHelpDesk
from tier2.library.loader import load_library
from tier2.library.samples import CaseGenerator
from tier2.store import audit
from tier2.store import models as m
from tier2.store.db import make_engine, upgrade
from tier2.store.unit_of_work import SqlUnitOfWork

KEY = b"the runners' audit key, 32 bytes"
OTHER = b"someone else's key, not the one"
T0 = datetime(2026, 4, 1, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Engine]:
    """A store whose 40 cases a runner with the key has taken through every step."""
    library = load_library("saas")
    upgrade(database_url)
    engine = make_engine(database_url)
    desk = LocalHelpDesk(engine)
    desk.import_cases(CaseIn.model_validate(r) for r in CaseGenerator(library, 8).cases(40))
    ticks = count()
    runner = Runner(
        SqlUnitOfWork(engine, audit_key=KEY), library, desk,
        lambda: T0 + timedelta(seconds=next(ticks)),
    )  # fmt: skip
    assert runner.run_once().finished == 40
    runner.close()
    yield engine
    engine.dispose()


def verdict(engine: Engine, key: bytes | None = KEY) -> audit.Verdict:
    with Session(engine) as session:
        return audit.verify(session, key)


def change(engine: Engine, *statements: Any) -> None:
    """What the attacker does, committed."""
    with Session(engine) as session, session.begin():
        for statement in statements:
            session.execute(statement)


def last_seq(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.max(m.AuditEntry.seq))) or 0)


def entry_of(engine: Engine, event: str, **data: Any) -> m.AuditEntry:
    """The first entry of this event whose data holds these values."""
    with Session(engine) as session:
        for e in session.scalars(
            select(m.AuditEntry).where(m.AuditEntry.event == event).order_by(m.AuditEntry.seq)
        ):
            if all(e.data.get(k) == v for k, v in data.items()):
                session.expunge(e)
                return e
    raise AssertionError(f"no {event} entry with {data}")


def entry_listing(engine: Engine, event: str, field: str, key: str) -> m.AuditEntry:
    """The entry of this event whose list `field` (actions, notes) holds the key."""
    with Session(engine) as session:
        for e in session.scalars(select(m.AuditEntry).where(m.AuditEntry.event == event)):
            if any(item["key"] == key for item in e.data.get(field, [])):
                session.expunge(e)
                return e
    raise AssertionError(f"no {event} entry lists {key}")


def rewrite_chain(engine: Engine, seq: int, data: dict[str, Any]) -> None:
    """Give entry `seq` new data and recompute every hash from there on, with the formula
    the design documents (no key needed)."""
    with Session(engine) as session, session.begin():
        entries = session.scalars(select(m.AuditEntry).order_by(m.AuditEntry.seq)).all()
        prev = audit.GENESIS
        for e in entries:
            if e.seq == seq:
                e.data = data
            if e.seq >= seq:
                fields = [e.seq, e.at.astimezone(UTC).isoformat(), e.case_id, e.event, e.data]
                body = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
                e.prev_hash = prev
                e.hash = hashlib.sha256(prev.encode() + b"\n" + body).hexdigest()
            prev = e.hash


# ---------------------------------------------------------------------- untouched


def test_an_untouched_store_verifies_intact_and_anchored(store: Engine) -> None:
    """A store written with the key verifies intact, anchored, every row agreeing with the log."""
    v = verdict(store)
    assert v.intact and v.anchored, v.problem
    assert v.anchor is not None and v.anchor.seq == v.entries == last_seq(store)
    assert v.checked["decisions"] == 40 and v.checked["notes"] >= 40
    assert v.checked["actions"] == v.checked["ledger rows"] > 0


def test_without_the_key_an_untouched_store_is_consistent_but_not_anchored(store: Engine) -> None:
    """Without the key nothing disagrees, but the head is not counted as anchored."""
    v = verdict(store, key=None)
    assert v.intact and not v.anchored and not v.keyed


def test_appends_by_concurrent_writers_keep_the_anchor_at_the_head(store: Engine) -> None:
    """Writers appending at once with the key queue up: the anchor stays on the last entry."""
    start = last_seq(store)

    def append(name: str) -> None:
        uow = SqlUnitOfWork(store, audit_key=KEY)
        for i in range(15):
            with uow.transaction() as tx:
                tx.audit([(T0, None, "probe", {"writer": name, "i": i})] * 2)

    threads = [threading.Thread(target=append, args=(n,)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    v = verdict(store)
    assert v.anchored and v.entries == start + 90, v.problem


def test_a_reopened_case_and_a_remote_desk_verify_anchored(store: Engine) -> None:
    """A second decision, and a remote desk's step-by-step commits, keep the log anchored."""
    with Session(store) as session:
        ticket_id = session.scalars(select(m.Case.ticket_id).order_by(m.Case.id)).first()
    change(store, update(m.Ticket).where(m.Ticket.id == ticket_id).values(status="escalated"))
    library = load_library("saas")
    runner = Runner(
        SqlUnitOfWork(store, audit_key=KEY), library, LocalHelpDesk(store),
        lambda: T0 + timedelta(days=1),
    )  # fmt: skip
    assert runner.run_once().reopened == 1
    raw = copy.deepcopy(SAAS_BASE)
    remote = Runner(
        SqlUnitOfWork(store, audit_key=KEY), library, _Desk({raw["ticket"]["id"]: raw}),  # type: ignore[arg-type]
        lambda: T0 + timedelta(days=2),
    )  # fmt: skip
    assert remote.run_once().finished == 1
    v = verdict(store)
    assert v.anchored and v.checked["decisions"] == 42, v.problem


# ---------------------------------------------------------------------- the chain and its anchor


def test_truncation_is_named(store: Engine) -> None:
    """Entries removed from the end are named, with the key and without it."""
    last = last_seq(store)
    change(store, delete(m.AuditEntry).where(m.AuditEntry.seq > last - 3))
    for key in (KEY, None):
        v = verdict(store, key)
        assert v.problem == (
            f"the audit log ends at entry {last - 3} but its anchor names entry {last}: "
            f"entries {last - 2}-{last} were removed"
        )


def test_truncation_with_the_anchor_moved_back_is_named(store: Engine) -> None:
    """Entries removed and the anchor moved back to the new end: its signature is named."""
    last = last_seq(store)
    with Session(store) as session:
        head = session.scalar(select(m.AuditEntry.hash).where(m.AuditEntry.seq == last - 3))
    change(
        store,
        delete(m.AuditEntry).where(m.AuditEntry.seq > last - 3),
        update(m.AuditAnchor).values(seq=last - 3, head=head),
    )
    assert "the anchor's signature does not match" in (verdict(store).problem or "")


def test_a_wholesale_rewrite_with_recomputed_hashes_is_named(store: Engine) -> None:
    """A chain rewritten with hashes recomputed no longer has the hash its anchor signed."""
    decided = entry_of(store, "decided", outcome="escalate")
    rewrite_chain(store, decided.seq, {**decided.data, "outcome": "resolve"})
    last = last_seq(store)
    assert verdict(store).problem == (
        f"entry {last} does not have the hash its anchor signed: the chain was rewritten, "
        "hashes recomputed"
    )
    assert "the chain was rewritten" in (verdict(store, key=None).problem or "")


def test_a_rewrite_with_the_anchor_rewritten_is_named_with_the_key(store: Engine) -> None:
    """A rewrite with the anchor moved to its head is named with the key, unanchored without."""
    received = entry_of(store, "received")  # (an entry no row is checked against)
    rewrite_chain(store, received.seq, {"ticket": "somewhere else"})
    with Session(store) as session:
        head = session.scalar(select(m.AuditEntry.hash).order_by(m.AuditEntry.seq.desc()))
    change(store, update(m.AuditAnchor).values(head=head))
    assert "the anchor's signature does not match" in (verdict(store).problem or "")
    v = verdict(store, key=None)
    assert v.intact and not v.anchored


def test_a_removed_anchor_is_named(store: Engine) -> None:
    """A deleted anchor is named with the key; without it the head is just not anchored."""
    change(store, delete(m.AuditAnchor))
    assert verdict(store).problem == (
        f"the audit log has {last_seq(store)} entries and no anchor: it was removed, or the log "
        "was never written with the key"
    )
    v = verdict(store, key=None)
    assert v.intact and not v.anchored and v.anchor is None


def test_a_wrong_key_is_named(store: Engine) -> None:
    """Verified with another key: the anchor was signed with another key, named by key id."""
    problem = verdict(store, OTHER).problem or ""
    assert problem.startswith(
        f"the anchor was signed with another key (key id {audit.key_id(KEY)}; "
        f"this key's id is {audit.key_id(OTHER)})"
    )


def test_an_anchor_resigned_with_another_key_is_named(store: Engine) -> None:
    """A rewritten log re-anchored with the attacker's own key: named by key id."""
    last = last_seq(store)
    with Session(store) as session:
        head = session.scalar(select(m.AuditEntry.hash).where(m.AuditEntry.seq == last))
    assert head is not None
    change(
        store,
        update(m.AuditAnchor).values(
            key_id=audit.key_id(OTHER), mac=audit.signature(OTHER, last, head)
        ),
    )
    assert "signed with another key" in (verdict(store).problem or "")


def test_a_keyed_append_refuses_a_truncated_log(store: Engine) -> None:
    """A runner with the key refuses to append to (and so re-sign) a truncated log."""
    last = last_seq(store)
    change(store, delete(m.AuditEntry).where(m.AuditEntry.seq == last))
    uow = SqlUnitOfWork(store, audit_key=KEY)
    with pytest.raises(audit.AuditAnchorError, match="its anchor names entry"):
        uow.check_audit_anchor()
    with pytest.raises(audit.AuditAnchorError), uow.transaction() as tx:
        tx.audit([(T0, None, "probe", {})])
    assert f"entry {last} was removed" in (verdict(store).problem or "")


def test_entries_appended_without_the_key_are_named_until_anchored(store: Engine) -> None:
    """Entries appended without the key are named with it until the head is anchored again."""
    monitor = SlaMonitor(
        SqlUnitOfWork(store), load_library("saas"), LocalHelpDesk(store),
        clock=lambda: T0 + timedelta(days=30),
    )  # fmt: skip
    assert monitor.scan().escalated
    problem = verdict(store).problem or ""
    assert "come after the anchored head" in problem
    assert verdict(store, key=None).intact
    with pytest.raises(audit.AuditAnchorError, match="come after the anchored head"):
        SqlUnitOfWork(store, audit_key=KEY).check_audit_anchor()
    before = verdict(store, key=None)
    with Session(store) as session, session.begin():
        audit.anchor_head(session, KEY, before.head)
    assert verdict(store).anchored


# ---------------------------------------------------------------------- the rows against the log


def test_a_changed_ledger_amount_is_named(store: Engine) -> None:
    """A ledger row's amount changed: named with the entry that recorded the amount paid."""
    with Session(store) as session:
        row = session.scalars(
            select(m.LedgerEntry)
            .where(m.LedgerEntry.amount.is_not(None))
            .order_by(m.LedgerEntry.id)
        ).first()
        assert row is not None and row.amount is not None
        row_id, key, kind, amount = row.id, row.idempotency_key, row.type, row.amount
    done = entry_of(store, "action", key=key)
    change(
        store, update(m.LedgerEntry).where(m.LedgerEntry.id == row_id).values(amount=amount * 10)
    )
    assert verdict(store).problem == (
        f"ledger row {row_id} (case {done.case_id}, {kind}): amount {amount * 10:.2f} differs "
        f"from audit entry {done.seq} ({amount:.2f})"
    )


def test_a_changed_decision_outcome_is_named(store: Engine) -> None:
    """A decision's outcome changed in its row: named with its decided entry."""
    decided = entry_of(store, "decided", outcome="escalate")
    with Session(store) as session:
        row_id = session.scalar(select(m.Decision.id).where(m.Decision.case_id == decided.case_id))
    change(store, update(m.Decision).where(m.Decision.id == row_id).values(outcome="resolve"))
    assert verdict(store).problem == (
        f"decision 1 of case {decided.case_id} (row {row_id}): outcome resolve differs from "
        f"audit entry {decided.seq} (escalate)"
    )


def test_a_changed_decision_body_is_named(store: Engine) -> None:
    """A decision's body changed (its note), outcome untouched: its digest no longer matches."""
    decided = entry_of(store, "decided")
    with Session(store) as session:
        row = session.scalars(select(m.Decision).where(m.Decision.case_id == decided.case_id)).one()
        row_id, body = row.id, row.body
    change(
        store,
        update(m.Decision)
        .where(m.Decision.id == row_id)
        .values(body={**body, "note": "All fine."}),
    )
    assert verdict(store).problem == (
        f"decision 1 of case {decided.case_id} (row {row_id}): its body differs from the "
        f"digest audit entry {decided.seq} recorded"
    )


def test_a_deleted_note_is_named(store: Engine) -> None:
    """A note row deleted: named with the documented entry that stored it."""
    with Session(store) as session:
        note = session.scalars(select(m.Note).order_by(m.Note.id)).first()
        assert note is not None
        key, case_id, kind = note.idempotency_key, note.case_id, note.kind
    documented = entry_listing(store, "documented", "notes", key)
    change(store, delete(m.Note).where(m.Note.idempotency_key == key))
    assert verdict(store).problem == (
        f"note {key} (case {case_id}, {kind}), recorded in audit entry {documented.seq}, is missing"
    )


def test_a_changed_note_is_named(store: Engine) -> None:
    """A note's text changed: its digest no longer matches."""
    with Session(store) as session:
        note = session.scalars(select(m.Note).order_by(m.Note.id)).first()
        assert note is not None
        note_id = note.id
    change(store, update(m.Note).where(m.Note.id == note_id).values(body="Nothing to see."))
    assert "its text differs from the digest audit entry" in (verdict(store).problem or "")


def test_a_deleted_action_is_named(store: Engine) -> None:
    """An action row deleted: named with the decided entry that stored it."""
    with Session(store) as session:
        action = session.scalars(select(m.Action).order_by(m.Action.id)).first()
        assert action is not None
        key, case_id, kind = action.idempotency_key, action.case_id, action.type
    decided = entry_listing(store, "decided", "actions", key)
    change(store, delete(m.Action).where(m.Action.idempotency_key == key))
    assert verdict(store).problem == (
        f"action {key} (case {case_id}, {kind}), recorded in audit entry {decided.seq}, is missing"
    )


def test_an_action_set_back_to_pending_is_named(store: Engine) -> None:
    """An action carried out set back to pending (to have it carried out again): named."""
    with Session(store) as session:
        action_id = session.scalar(select(func.min(m.Action.id)))
    change(store, update(m.Action).where(m.Action.id == action_id).values(status="pending"))
    assert "it is pending, but audit entry" in (verdict(store).problem or "")


def test_an_inserted_ledger_row_is_named(store: Engine) -> None:
    """Money paid out that no entry records: the ledger row is named."""
    with Session(store) as session:
        ticket = session.scalar(select(m.Ticket.id))
    change(
        store,
        m.LedgerEntry.__table__.insert().values(
            idempotency_key="X:1:0:refund", ticket_id=ticket, type="refund", amount=999.0,
            currency="EUR", at=T0,
        ),
    )  # fmt: skip
    assert "refund 999.00): no audit entry records it" in (verdict(store).problem or "")


# ---------------------------------------------------------------------- tier2 audit verify / anchor


def test_the_commands_exit_statuses(store: Engine, database_url: str) -> None:
    """verify exits 0 anchored, 3 without the key, 1 broken; anchor signs and changes keys."""
    cli = CliRunner()
    key = {"TIER2_AUDIT_KEY": KEY.decode()}
    ok = cli.invoke(app, ["audit", "verify", "--db", database_url], env=key)
    assert ok.exit_code == 0 and ok.stdout.startswith("audit log intact and anchored"), ok.stdout
    keyless = cli.invoke(
        app, ["audit", "verify", "--db", database_url], env={"TIER2_AUDIT_KEY": None}
    )
    assert keyless.exit_code == 3 and "NOT ANCHORED" in keyless.stdout
    change(store, delete(m.AuditAnchor))
    broken = cli.invoke(app, ["audit", "verify", "--db", database_url], env=key)
    assert broken.exit_code == 1 and "no anchor" in broken.stdout
    anchored = cli.invoke(app, ["audit", "anchor", "--db", database_url], env=key)
    assert anchored.exit_code == 0 and anchored.stdout.startswith("audit log anchored"), (
        anchored.stdout
    )
    assert cli.invoke(app, ["audit", "verify", "--db", database_url], env=key).exit_code == 0
    other = {"TIER2_AUDIT_KEY": OTHER.decode(), "OLD_KEY": KEY.decode()}
    refused = cli.invoke(app, ["audit", "anchor", "--db", database_url], env=other)
    assert refused.exit_code == 1 and "signed with another key" in refused.stdout
    moved = cli.invoke(
        app, ["audit", "anchor", "--db", database_url, "--previous-key-env", "OLD_KEY"], env=other
    )
    assert moved.exit_code == 0, moved.stdout
    assert verdict(store, OTHER).anchored


def test_a_short_key_is_refused(database_url: str) -> None:
    """A key shorter than 16 bytes stops the command with one line (exit 2)."""
    upgrade(database_url)
    result = CliRunner().invoke(
        app, ["audit", "verify", "--db", database_url], env={"TIER2_AUDIT_KEY": "short"}
    )
    assert result.exit_code == 2 and "TIER2_AUDIT_KEY: a key of at least 16 bytes" in result.stderr

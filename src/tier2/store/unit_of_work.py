"""The case store as `tier2 run` sees it: the `UnitOfWork` port (tier2.app.ports) over
SQLAlchemy, on SQLite or PostgreSQL.

A transaction is one `Session` with `begin()`: what a step records commits together, and
with the local help desk (which lives in the store) what the help desk does commits with it
(the session is the transaction's `handle`). Claims are this runner's (`store/claims.py`);
on PostgreSQL `held` locks the claim rows to the end of the transaction.

The hot inserts go through `store/bulk.py`; a payload or a decision body given as JSON text
(what a deciding worker hands over) is stored as it is. Given the audit key, every append
to the audit log moves its signed anchor in the same transaction (`store/audit.py`).
"""

from __future__ import annotations

import typing
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, Engine, Text, cast, func, select, text, update
from sqlalchemy.orm import Session

from tier2.app.ports import CaseRow, PendingAction, Resolution, StoredDecision, Unresolved
from tier2.app.states import FINAL_STATES, CaseState
from tier2.store import audit
from tier2.store import models as m
from tier2.store.bulk import Encoded, insert_rows, update_rows
from tier2.store.claims import LEASE_SECONDS, Claims, db_now

_MONITOR_LOCK = 7_272_003  # the advisory lock SLA monitors take turns at on PostgreSQL
OPEN = [s.value for s in CaseState if s not in FINAL_STATES]
RESOLVABLE = [s.value for s in FINAL_STATES]


# A case as a step reads it (CaseRow), and with its payload and escalations.
_ROW = (m.Case.id, m.Case.ticket_id, m.Case.state, m.Case.updated_at)
_FULL = (*_ROW, m.Case.payload, m.Case.escalations)


def _stored(value: dict[str, Any] | str) -> Any:
    """A JSON value as given: decoded, or JSON text stored as it is."""
    return Encoded(value) if isinstance(value, str) else value


class SqlTransaction:
    """One transaction of the store (see `tier2.app.ports.Transaction`)."""

    def __init__(self, session: Session, claims: Claims, audit_key: bytes | None = None) -> None:
        self.session = session
        self.handle = session  # the local help desk writes in it
        self._claims = claims
        self._audit_key = audit_key

    def now(self) -> datetime:
        return db_now(self.session)

    # ------------------------------------------------------------------ claims

    def reap(self) -> None:
        self._claims.reap(self.session)

    def orphans(self, limit: int) -> list[str]:
        return self._claims.orphans(self.session, limit)

    def claim(self, ticket_ids: Sequence[str], listed_at: datetime) -> list[str]:
        return self._claims.claim(self.session, ticket_ids, listed_at)

    def held(self, ticket_ids: Sequence[str]) -> set[str]:
        return self._claims.held(self.session, ticket_ids)

    def release(self, ticket_ids: Sequence[str]) -> None:
        self._claims.release(self.session, ticket_ids)

    # ------------------------------------------------------------------ cases

    def open_cases(self) -> list[str]:
        return list(
            self.session.scalars(
                select(m.Case.id)
                .where(m.Case.state.in_(OPEN))
                .order_by(m.Case.received_at, m.Case.id)
            )
        )

    def cases(self, case_ids: Sequence[str], *, payload: str | None = None) -> list[CaseRow]:
        """By key, not by state: given `state IN (...)`, SQLite's planner reads the state
        index (every waiting case) instead of looking these few up."""
        columns: tuple[Any, ...] = _ROW
        if payload == "text":
            columns = (*_ROW, cast(m.Case.payload, Text).label("payload"))
        elif payload == "json":
            columns = (*_ROW, m.Case.payload)
        query = select(*columns).where(m.Case.id.in_(list(case_ids))).order_by(m.Case.id)
        return [CaseRow(*r) for r in self.session.execute(query)]

    def cases_of_tickets(self, ticket_ids: Sequence[str]) -> list[CaseRow]:
        query = (
            select(*_ROW)
            .where(m.Case.ticket_id.in_(sorted(ticket_ids)))
            .order_by(m.Case.received_at, m.Case.id)
        )
        return [CaseRow(*r) for r in self.session.execute(query)]

    def cases_to_take_in(self, case_ids: Sequence[str]) -> dict[str, CaseRow]:
        query = select(*_FULL).where(m.Case.id.in_(list(case_ids))).with_for_update()
        return {r.id: CaseRow(*r) for r in self.session.execute(query)}

    def add_cases(self, rows: Sequence[Mapping[str, Any]]) -> None:
        insert_rows(
            self.session,
            m.table(m.Case),
            [{**row, "payload": _stored(row["payload"])} for row in rows],
        )

    def update_case(self, case_id: str, now: datetime, **values: Any) -> None:
        self.session.execute(
            update(m.table(m.Case))
            .where(m.table(m.Case).c.id == case_id)
            .values(**values, updated_at=now)
        )

    def enter(self, moves: Sequence[tuple[str, str]], now: datetime) -> None:
        by_state: dict[str, list[str]] = defaultdict(list)
        for case_id, state in moves:
            by_state[state].append(case_id)
        cases = m.table(m.Case)
        for state, ids in by_state.items():
            self.session.execute(
                update(cases).where(cases.c.id.in_(ids)).values(state=state, updated_at=now)
            )

    # ------------------------------------------------------------------ decisions

    def decision_seqs(self, case_ids: Sequence[str]) -> dict[str, int]:
        return dict(
            self.session.execute(
                select(m.Decision.case_id, func.max(m.Decision.seq))
                .where(m.Decision.case_id.in_(list(case_ids)))
                .group_by(m.Decision.case_id)
            ).all()
        )

    def record_outcomes(self, rows: Sequence[tuple[str, str, str, str | None]]) -> None:
        update_rows(
            self.session,
            m.Case,
            [{"id": c, "outcome": o, "first_reason": r, "escalate_to": t} for c, o, r, t in rows],
        )

    def add_decisions(self, rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, int], int]:
        decisions = m.table(m.Decision)
        # (RETURNING would go row by row on SQLite)
        insert_rows(self.session, decisions, [{**r, "body": _stored(r["body"])} for r in rows])
        return {
            (r.case_id, r.seq): r.id
            for r in self.session.execute(
                select(decisions.c.case_id, decisions.c.seq, decisions.c.id).where(
                    decisions.c.case_id.in_([row["case_id"] for row in rows])
                )
            )
        }

    def latest_decisions(
        self, case_ids: Sequence[str], *, body: bool = False
    ) -> dict[str, StoredDecision]:
        columns: list[Any] = [m.Decision.case_id, m.Decision.seq, m.Decision.outcome]
        if body:
            columns.append(m.Decision.body)
        rows = self.session.execute(
            select(*columns).where(m.Decision.case_id.in_(list(case_ids))).order_by(m.Decision.seq)
        )
        return {
            r.case_id: StoredDecision(r.case_id, r.seq, r.outcome, r.body if body else None)
            for r in rows
        }

    def earlier_decisions(self, case_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        earlier: dict[str, list[dict[str, Any]]] = defaultdict(list)
        rows = self.session.execute(
            select(
                m.Decision.case_id, m.Decision.seq, m.Decision.decided_at, m.Decision.outcome,
                m.Decision.escalate_to, m.Decision.body,
            )
            .where(m.Decision.case_id.in_(list(case_ids)))
            .order_by(m.Decision.seq)
        )  # fmt: skip
        for d in rows:
            earlier[d.case_id].append(
                {
                    "seq": d.seq,
                    "decided_at": d.decided_at.isoformat(),
                    "outcome": d.outcome,
                    "escalate_to": d.escalate_to,
                    "reasons": [r["code"] for r in d.body["reasons"]],
                }
            )
        return earlier

    # ------------------------------------------------------------------ actions, notes

    def add_actions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        insert_rows(self.session, m.table(m.Action), rows)

    def pending_actions(self, case_ids: Sequence[str]) -> list[PendingAction]:
        rows = self.session.execute(
            select(
                m.Action.id, m.Action.case_id, m.Action.idempotency_key, m.Action.type,
                m.Action.amount, m.Action.currency, m.Action.params,
            )
            .where(m.Action.case_id.in_(list(case_ids)), m.Action.status == "pending")
            .order_by(m.Action.id)
        )  # fmt: skip
        return [PendingAction(*r) for r in rows]

    def actions_done(self, done: Sequence[tuple[int, datetime, dict[str, Any]]]) -> None:
        update_rows(
            self.session,
            m.Action,
            [{"id": i, "status": "done", "executed_at": at, "result": r} for i, at, r in done],
        )

    def recorded_notes(self, keys: Sequence[str]) -> set[str]:
        return set(
            self.session.scalars(
                select(m.Note.idempotency_key).where(m.Note.idempotency_key.in_(list(keys)))
            )
        )

    def add_notes(self, rows: Sequence[Mapping[str, Any]]) -> None:
        insert_rows(self.session, m.table(m.Note), rows)

    # ------------------------------------------------------------------ the SLA monitor

    def cases_in(self, states: Sequence[str]) -> list[CaseRow]:
        query = select(*_FULL).where(m.Case.state.in_(list(states))).order_by(m.Case.id)
        return [CaseRow(*r) for r in self.session.execute(query)]

    def unresolved(self, limit: int) -> list[Unresolved]:
        c = m.Case
        query = (
            select(c.id, c.ticket_id, c.state, c.updated_at, c.escalated_at, c.payload)
            .where(c.state.in_(RESOLVABLE), c.resolved_at.is_(None))
            .order_by(c.updated_at, c.id)
            .limit(limit)
        )
        return [Unresolved(*r) for r in self.session.execute(query)]

    def record_resolutions(self, rows: Sequence[Resolution]) -> int:
        cases = m.table(m.Case)
        recorded = 0
        for r in rows:
            done = self.session.execute(
                update(cases)
                .where(cases.c.id == r.case_id, cases.c.state == r.state)
                .where(cases.c.resolved_at.is_(None))
                .values(
                    escalated_at=r.escalated_at, resolved_at=r.resolved_at,
                    resolved_by=r.resolved_by, business_seconds=r.business_seconds,
                    calendar_seconds=r.calendar_seconds, waiting_seconds=r.waiting_seconds,
                    sla_met=r.sla_met,
                )
            )  # fmt: skip
            recorded += typing.cast(CursorResult[Any], done).rowcount
        return recorded

    def monitors_take_turns(self) -> None:
        """On PostgreSQL an advisory lock to the end of the transaction; on SQLite the
        transaction's write lock does it."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MONITOR_LOCK})

    def sla_escalations(self, case_ids: Sequence[str]) -> set[tuple[str, int, str, str]]:
        e = m.SlaEscalation
        return {
            (r.case_id, r.escalation, r.target, r.kind)
            for r in self.session.execute(
                select(e.case_id, e.escalation, e.target, e.kind).where(
                    e.case_id.in_(sorted(set(case_ids)))
                )
            )
        }

    def add_sla_escalations(self, rows: Sequence[Mapping[str, Any]]) -> None:
        insert_rows(self.session, m.table(m.SlaEscalation), rows)

    # ------------------------------------------------------------------ audit, inbox

    def audit(self, entries: Sequence[tuple[datetime, str | None, str, dict[str, Any]]]) -> None:
        if not entries:
            return
        chain = audit.Chain(self.session, self._audit_key)
        for at, case_id, event, data in entries:
            chain.add(at=at, case_id=case_id, event=event, data=data)
        chain.flush()

    def waiting_deliveries(self) -> int | None:
        inbox = m.table(m.WebhookDelivery)
        found: int | None = self.session.scalar(
            select(func.max(inbox.c.id)).where(inbox.c.taken_at.is_(None))
        )
        return found

    def take_deliveries(self, upto: int, at: datetime) -> int:
        inbox = m.table(m.WebhookDelivery)
        done = self.session.execute(
            update(inbox).where(inbox.c.id <= upto, inbox.c.taken_at.is_(None)).values(taken_at=at)
        )
        return int(done.rowcount or 0)  # type: ignore[attr-defined]


class SqlUnitOfWork:
    """The store's transactions, and this runner's registration and lease in it.

    `audit_key` (the entrypoints read it from the environment) signs the audit log's anchor
    at every append; without it the anchor is left as it is (`store/audit.py`).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        lease_seconds: float = LEASE_SECONDS,
        options: dict[str, Any] | None = None,
        audit_key: bytes | None = None,
    ) -> None:
        self.engine = engine
        self.claims = Claims(engine, lease_seconds=lease_seconds, options=options)
        self.audit_key = audit_key

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        with Session(self.engine) as session, session.begin():
            yield SqlTransaction(session, self.claims, self.audit_key)

    def check_audit_anchor(self) -> None:
        """Raises `audit.AuditAnchorError` when an append with the key would be refused (the
        log does not end where its anchor says, or the anchor does not verify): a runner
        finds out as it starts, not at its first step."""
        if self.audit_key is not None:
            with self.transaction() as tx:
                audit.Chain(tx.session, self.audit_key)

    @property
    def registered(self) -> bool:
        return self.claims.registered

    def register(self) -> None:
        self.claims.register()

    def release_all(self) -> None:
        self.claims.release_all()

    def retire(self) -> None:
        self.claims.retire()

"""The embedded local help desk: tickets, the handoff log and the CRM, in the case store.

`import_cases` files contract-shaped escalations into it (what a tier-1 agent and the CRM
would have recorded); `read_case` gives one back in the contract's shape for the pipeline.
Times are stored in UTC and read back in UTC; times inside `facts` and handoff steps are
kept as given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from tier2.contract import CaseIn
from tier2.store import models as m

ESCALATED = "escalated"  # a ticket tier-1 has handed to tier-2


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


class LocalHelpDesk:
    """The HelpDesk port over the case store's help-desk and CRM tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------ filing escalations

    def import_cases(self, cases: Iterable[CaseIn]) -> int:
        """File escalations (one transaction each); returns how many were filed."""
        n = 0
        for case in cases:
            with Session(self.engine) as session, session.begin():
                self._file(session, case)
            n += 1
        return n

    def _file(self, session: Session, case: CaseIn) -> None:
        t, h, c = case.ticket, case.handoff, case.customer
        given = c.id
        key = given if given and given.strip() else f"~{t.id}"
        customer = session.get(m.Customer, key) or m.Customer(id=key)
        customer.given_id = given
        customer.name, customer.company, customer.segment = c.name, c.company, c.segment
        customer.vip, customer.arr, customer.currency, customer.plan = (
            c.vip,
            c.arr,
            c.currency,
            c.plan,
        )
        session.merge(customer)
        session.flush()  # flags and history refer to the customer
        session.execute(delete(m.CustomerFlag).where(m.CustomerFlag.customer_id == key))
        session.add_all(
            m.CustomerFlag(customer_id=key, type=f.type, note=f.note, resolved=f.resolved is True)
            for f in c.flags or ()
        )
        session.execute(delete(m.CrmHistory).where(m.CrmHistory.customer_id == key))
        session.add_all(
            m.CrmHistory(
                customer_id=key,
                ticket_id=e.ticket_id,
                at=e.at,
                category=e.category,
                complaint=e.complaint is True,
                escalated=e.escalated is True,
                outcome=e.outcome,
            )
            for e in case.history or ()
        )
        ticket = session.get(m.Ticket, t.id)
        if ticket is None:
            ticket = m.Ticket(id=t.id)
            session.add(ticket)
        ticket.customer_id = key
        ticket.subject, ticket.description, ticket.channel = t.subject, t.description, t.channel
        ticket.created_at, ticket.severity, ticket.category = t.created_at, t.severity, t.category
        ticket.tags = list(t.tags or [])
        ticket.facts = dict(case.facts or {})
        ticket.status = ESCALATED
        ticket.updated_at = case.received_at
        session.flush()
        session.execute(delete(m.TicketMessage).where(m.TicketMessage.ticket_id == t.id))
        session.add_all(
            m.TicketMessage(ticket_id=t.id, seq=i, sender=x.sender, at=x.at, body=x.body or "")
            for i, x in enumerate(t.messages or ())
        )
        seq = session.scalar(select(func.max(m.Handoff.seq)).where(m.Handoff.ticket_id == t.id))
        session.add(
            m.Handoff(
                ticket_id=t.id,
                seq=(seq or 0) + 1,
                sender=h.sender,
                escalated_at=h.escalated_at,
                reason=h.reason,
                steps_taken=[
                    _drop_none({"step": s.step, "result": s.result, "at": _iso(s.at)})
                    for s in h.steps_taken or ()
                ],
                customer_expectation=h.customer_expectation,
                request=None if h.request is None else h.request.model_dump(exclude_none=True),
                sentiment=h.sentiment,
                received_at=case.received_at,
                case_ref=case.case_id,
            )
        )

    # ------------------------------------------------------------------ the HelpDesk port

    def escalations(self) -> Sequence[str]:
        """Tickets tier-1 has escalated, oldest first."""
        query = (
            select(m.Ticket.id)
            .where(m.Ticket.status == ESCALATED)
            .order_by(m.Ticket.updated_at, m.Ticket.id)
        )
        with Session(self.engine) as session:
            return list(session.scalars(query))

    def read_case(self, ticket_id: str) -> dict[str, Any]:
        """The ticket, its latest handoff, the customer and their history, as a contract case."""
        with Session(self.engine) as session:
            ticket = session.get(m.Ticket, ticket_id)
            if ticket is None:
                raise KeyError(ticket_id)
            handoff = session.scalars(
                select(m.Handoff)
                .where(m.Handoff.ticket_id == ticket_id)
                .order_by(m.Handoff.seq.desc())
            ).first()
            customer = session.get(m.Customer, ticket.customer_id) if ticket.customer_id else None
            messages = session.scalars(
                select(m.TicketMessage)
                .where(m.TicketMessage.ticket_id == ticket_id, m.TicketMessage.internal.is_(False))
                .order_by(m.TicketMessage.seq)
            ).all()
            received = handoff.received_at if handoff and handoff.received_at else None
            return {
                "case_id": handoff.case_ref if handoff and handoff.case_ref else f"T-{ticket_id}",
                "received_at": (received or datetime.now(UTC)).isoformat(),
                "ticket": _ticket(ticket, messages),
                "handoff": {} if handoff is None else _handoff(handoff),
                "customer": {} if customer is None else _customer(session, customer),
                "history": [] if customer is None else _history(session, customer.id),
                "facts": dict(ticket.facts or {}),
            }


def _ticket(ticket: m.Ticket, messages: Sequence[m.TicketMessage]) -> dict[str, Any]:
    return _drop_none(
        {
            "id": ticket.id,
            "subject": ticket.subject,
            "description": ticket.description,
            "channel": ticket.channel,
            "created_at": ticket.created_at.isoformat(),
            "severity": ticket.severity,
            "category": ticket.category,
            "messages": [
                _drop_none({"from": x.sender, "at": _iso(x.at), "body": x.body}) for x in messages
            ],
            "tags": list(ticket.tags or []),
        }
    )


def _handoff(handoff: m.Handoff) -> dict[str, Any]:
    return _drop_none(
        {
            "from": handoff.sender,
            "escalated_at": _iso(handoff.escalated_at),
            "reason": handoff.reason,
            "steps_taken": handoff.steps_taken,
            "customer_expectation": handoff.customer_expectation,
            "request": handoff.request,
            "sentiment": handoff.sentiment,
        }
    )


def _customer(session: Session, customer: m.Customer) -> dict[str, Any]:
    flags = session.scalars(
        select(m.CustomerFlag)
        .where(m.CustomerFlag.customer_id == customer.id)
        .order_by(m.CustomerFlag.id)
    )
    return _drop_none(
        {
            "id": customer.given_id,
            "name": customer.name,
            "company": customer.company,
            "segment": customer.segment,
            "vip": customer.vip,
            "arr": customer.arr,
            "currency": customer.currency,
            "plan": customer.plan,
            "flags": [
                _drop_none({"type": f.type, "note": f.note, "resolved": f.resolved}) for f in flags
            ],
        }
    )


def _history(session: Session, customer_id: str) -> list[dict[str, Any]]:
    entries = session.scalars(
        select(m.CrmHistory)
        .where(m.CrmHistory.customer_id == customer_id)
        .order_by(m.CrmHistory.id)
    )
    return [
        _drop_none(
            {
                "ticket_id": e.ticket_id,
                "at": _iso(e.at),
                "category": e.category,
                "complaint": e.complaint,
                "escalated": e.escalated,
                "outcome": e.outcome,
            }
        )
        for e in entries
    ]


# --------------------------------------------------------------------------- writing back
# These work inside the caller's transaction: in the local help desk, what tier2 records
# and what the help desk does commit together, so a crash leaves neither or both.

TAKEN = "with_tier2"


def take(session: Session, ticket_id: str, at: datetime) -> None:
    """Tier-2 has the ticket: it leaves the escalation queue."""
    ticket = session.get(m.Ticket, ticket_id)
    if ticket is not None and ticket.status == ESCALATED:
        ticket.status, ticket.updated_at = TAKEN, at


def carry_out(
    session: Session,
    *,
    ticket_id: str,
    key: str,
    type: str,
    amount: float | None,
    currency: str | None,
    at: datetime,
) -> int:
    """Carry out an action once: asked again with the same key, it returns the first entry."""
    existing = session.scalar(select(m.LedgerEntry.id).where(m.LedgerEntry.idempotency_key == key))
    if existing is not None:
        return existing
    entry = m.LedgerEntry(
        idempotency_key=key, ticket_id=ticket_id, type=type, amount=amount, currency=currency, at=at
    )
    session.add(entry)
    session.flush()
    return entry.id


def write_note(
    session: Session, *, ticket_id: str, case_id: str, key: str, kind: str, body: str, at: datetime
) -> bool:
    """Add an internal message to the ticket once per key; False when it was written before."""
    if session.scalar(select(m.Note.id).where(m.Note.idempotency_key == key)) is not None:
        return False
    seq = session.scalar(
        select(func.max(m.TicketMessage.seq)).where(m.TicketMessage.ticket_id == ticket_id)
    )
    session.add(
        m.TicketMessage(
            ticket_id=ticket_id,
            seq=(seq if seq is not None else -1) + 1,
            sender="tier2",
            at=at,
            body=body,
            internal=True,
        )
    )
    session.add(
        m.Note(
            case_id=case_id,
            ticket_id=ticket_id,
            idempotency_key=key,
            kind=kind,
            body=body,
            written_at=at,
        )
    )
    session.flush()
    return True


def move(
    session: Session,
    ticket_id: str,
    *,
    status: str,
    group: str | None,
    tags: Sequence[str],
    at: datetime,
) -> None:
    """Set the ticket's status and assignee group; add tags."""
    ticket = session.get(m.Ticket, ticket_id)
    if ticket is None:
        raise KeyError(ticket_id)
    ticket.status, ticket.assignee_group, ticket.updated_at = status, group, at
    ticket.tags = [*ticket.tags, *(t for t in tags if t not in ticket.tags)]

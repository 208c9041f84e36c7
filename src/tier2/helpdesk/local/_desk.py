"""The embedded local help desk: tickets, the handoff log and the CRM, in the case store.

`import_cases` files contract-shaped escalations into it (what a tier-1 agent and the CRM
would have recorded); `read_case` gives one back in the contract's shape for the pipeline.
Times are stored in UTC and read back in UTC; times inside `facts` and handoff steps are
kept as given.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.orm import Session

from tier2._batch import batched
from tier2.app.baseline import PastEscalation
from tier2.app.ports import (
    ActionOrder,
    EscalateTo,
    NoteOrder,
    Read,
    Resolve,
    ReturnToTier1,
    TicketMove,
    Timeline,
)
from tier2.contract import CaseIn
from tier2.core.sla import StatusChange
from tier2.store import models as m
from tier2.store.bulk import insert_rows, update_rows
from tier2.store.db import make_engine

ESCALATED = "escalated"  # a ticket tier-1 has handed to tier-2
TIER1 = "tier1"  # tier-1's group
NOT_OWNERS = frozenset({"customer", "tier1", "tier2"})  # whose actions are not the owner's


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _utc(value: datetime | str) -> datetime:
    """An aggregate over a time column comes back as the database gives it (text on SQLite)."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _status_and_group(move: TicketMove) -> tuple[str | None, str | None]:
    """The local help desk's words for a move: its status (None: as it is) and group."""
    match move:
        case Resolve():
            return "resolved", None
        case ReturnToTier1():
            return "open", TIER1
        case EscalateTo(target=target, reopen=reopen):
            return ("open" if reopen else None), target


_worker_desks: dict[str, LocalHelpDesk] = {}


def read_in_worker(url: str, ticket_ids: Sequence[str]) -> list[Read]:
    """The local help desk's tickets as cases, read in a worker process from the store at
    `url` (one engine per worker): payloads as JSON text, stored as they are."""
    desk = _worker_desks.get(url)
    if desk is None:
        desk = _worker_desks[url] = LocalHelpDesk(make_engine(url, immediate=False))
    return [
        (str(p["case_id"]), str(p["ticket"]["id"]), p["received_at"], orjson.dumps(p).decode())
        for p in desk.read_cases(ticket_ids)
    ]


class LocalHelpDesk:
    """The HelpDesk port over the case store's help-desk and CRM tables."""

    in_store = True

    def __init__(self, engine: Engine, batch: int = 500) -> None:
        self.engine = engine
        self.batch = batch

    def reader(self) -> Callable[[Sequence[str]], list[Read]]:
        """Read in a deciding worker: a reader beside the store's one writer."""
        return partial(read_in_worker, self.engine.url.render_as_string(hide_password=False))

    # ------------------------------------------------------------------ filing escalations

    def import_cases(self, cases: Iterable[CaseIn]) -> int:
        """File escalations, a batch per transaction; returns how many were filed."""
        n = 0
        for chunk in batched(cases, self.batch):
            with Session(self.engine) as session, session.begin():
                self._file_batch(session, chunk)
            n += len(chunk)
        return n

    def _file_batch(self, session: Session, cases: Sequence[CaseIn]) -> None:
        """New tickets of new customers in a few statements; the rest one by one, in order."""
        keys = [_customer_key(c) for c in cases]
        tickets = Counter(c.ticket.id for c in cases)
        customers = Counter(keys)
        known_tickets = set(
            session.scalars(select(m.Ticket.id).where(m.Ticket.id.in_(list(tickets))))
        )
        known_customers = set(
            session.scalars(select(m.Customer.id).where(m.Customer.id.in_(list(customers))))
        )
        simple: list[tuple[CaseIn, str]] = []
        rest: list[tuple[CaseIn, str]] = []
        for case, key in zip(cases, keys, strict=True):
            fresh = (
                tickets[case.ticket.id] == 1
                and customers[key] == 1
                and case.ticket.id not in known_tickets
                and key not in known_customers
            )
            (simple if fresh else rest).append((case, key))
        if simple:
            rows = _Rows()
            for case, key in simple:
                rows.add(case, key)
            rows.insert(session)
        for case, _ in rest:
            self._file(session, case)

    def _file(self, session: Session, case: CaseIn) -> None:
        t = case.ticket
        key = _customer_key(case)
        customer = session.get(m.Customer, key) or m.Customer(id=key)
        for name, value in _customer_row(case, key).items():
            setattr(customer, name, value)
        session.merge(customer)
        session.flush()  # flags and history refer to the customer
        session.execute(delete(m.CustomerFlag).where(m.CustomerFlag.customer_id == key))
        session.add_all(m.CustomerFlag(**row) for row in _flags(case, key))
        session.execute(delete(m.CrmHistory).where(m.CrmHistory.customer_id == key))
        session.add_all(m.CrmHistory(**row) for row in _crm_history(case, key))
        ticket = session.get(m.Ticket, t.id)
        if ticket is None:
            ticket = m.Ticket(id=t.id)
            session.add(ticket)
        for name, value in _ticket_row(case, key).items():
            setattr(ticket, name, value)
        session.flush()
        # the thread is filed anew; what tier2 wrote on the ticket (keyed) stays
        session.execute(
            delete(m.TicketMessage).where(
                m.TicketMessage.ticket_id == t.id, m.TicketMessage.idempotency_key.is_(None)
            )
        )
        kept = session.scalar(
            select(func.max(m.TicketMessage.seq)).where(m.TicketMessage.ticket_id == t.id)
        )
        start = 0 if kept is None else kept + 1
        session.add_all(
            m.TicketMessage(**{**row, "seq": start + row["seq"]}) for row in _messages(case)
        )
        seq = session.scalar(select(func.max(m.Handoff.seq)).where(m.Handoff.ticket_id == t.id))
        session.add(m.Handoff(**_handoff_row(case, (seq or 0) + 1)))
        session.add(m.TicketEvent(**_escalated_event(case)))

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
        """One ticket as a contract case (KeyError when there is no such ticket)."""
        found = self.read_cases([ticket_id])
        if not found:
            raise KeyError(ticket_id)
        return found[0]

    def read_cases(self, ticket_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The tickets (those that exist, in the order asked) as contract cases.

        Plain rows, not ORM objects: a batch is read in six queries.
        """
        ids = list(ticket_ids)
        with Session(self.engine) as session:
            tickets, handoffs, messages = _read_tickets(session, ids)
            owners = list({t.customer_id for t in tickets.values() if t.customer_id})
            customers, flags, history = _read_customers(session, owners)
            out = []
            for ticket_id in ids:
                ticket = tickets.get(ticket_id)
                if ticket is None:
                    continue
                customer = customers.get(ticket.customer_id) if ticket.customer_id else None
                out.append(
                    _case(
                        ticket_id,
                        ticket,
                        messages[ticket_id],
                        handoff=handoffs.get(ticket_id),
                        customer=customer,
                        flags=flags,
                        history=history,
                    )
                )
            return out

    # ------------------------------------------------------------------ writing back
    # In the local help desk these run in the runner's transaction: what tier2 records and
    # what the help desk does commit together, so a crash leaves neither or both.

    def escalated(self, session: Session, ticket_ids: Sequence[str]) -> set[str]:
        return set(
            session.scalars(
                select(m.Ticket.id).where(
                    m.Ticket.id.in_(list(ticket_ids)), m.Ticket.status == ESCALATED
                )
            )
        )

    def take(self, session: Session, ticket_ids: Sequence[str], at: datetime) -> None:
        waiting = list(
            session.scalars(
                select(m.Ticket.id).where(
                    m.Ticket.id.in_(list(ticket_ids)), m.Ticket.status == ESCALATED
                )
            )
        )
        if not waiting:
            return
        session.execute(
            update(m.Ticket).where(m.Ticket.id.in_(waiting)).values(status=TAKEN, updated_at=at)
        )
        insert_rows(
            session,
            m.table(m.TicketEvent),
            [{"ticket_id": t, "at": at, "status": TAKEN, "actor": "tier2"} for t in waiting],
        )

    def carry_out(
        self, session: Session, orders: Sequence[ActionOrder], at: datetime
    ) -> list[dict[str, Any]]:
        keys = [o.key for o in orders]
        done = dict(
            session.execute(
                select(m.LedgerEntry.idempotency_key, m.LedgerEntry.id).where(
                    m.LedgerEntry.idempotency_key.in_(keys)
                )
            ).all()
        )
        new = [o for o in orders if o.key not in done]
        if new:
            ledger = m.table(m.LedgerEntry)
            insert_rows(
                session,
                ledger,
                [
                    {
                        "idempotency_key": o.key,
                        "ticket_id": o.ticket_id,
                        "type": o.type,
                        "amount": o.amount,
                        "currency": o.currency,
                        "params": dict(o.params) if o.params else None,
                        "at": at,
                    }
                    for o in new
                ],
            )
            done.update(
                session.execute(
                    select(ledger.c.idempotency_key, ledger.c.id).where(
                        ledger.c.idempotency_key.in_([o.key for o in new])
                    )
                ).all()
            )
        return [{"ledger": done[k]} for k in keys]

    def write_notes(self, session: Session, orders: Sequence[NoteOrder], at: datetime) -> None:
        written = set(
            session.scalars(
                select(m.TicketMessage.idempotency_key).where(
                    m.TicketMessage.idempotency_key.in_([o.key for o in orders])
                )
            )
        )
        new = [o for o in orders if o.key not in written]
        if not new:
            return
        last = dict(
            session.execute(
                select(m.TicketMessage.ticket_id, func.max(m.TicketMessage.seq))
                .where(m.TicketMessage.ticket_id.in_({o.ticket_id for o in new}))
                .group_by(m.TicketMessage.ticket_id)
            ).all()
        )
        rows = []
        for o in new:
            seq = last.get(o.ticket_id, -1) + 1
            last[o.ticket_id] = seq
            rows.append(
                {
                    "ticket_id": o.ticket_id,
                    "seq": seq,
                    "sender": "tier2",
                    "at": at,
                    "body": o.body,
                    "internal": True,
                    "idempotency_key": o.key,
                }
            )
        insert_rows(session, m.table(m.TicketMessage), rows)

    def move(self, session: Session, moves: Sequence[TicketMove], at: datetime) -> None:
        """Status, assignee group and tags, and a ticket event for each move."""
        where = {x.ticket_id: _status_and_group(x) for x in moves}
        current = {
            row.id: row
            for row in session.execute(
                select(m.Ticket.id, m.Ticket.tags, m.Ticket.status).where(
                    m.Ticket.id.in_([x.ticket_id for x in moves])
                )
            )
        }
        tags: dict[str, list[str]] = {k: row.tags for k, row in current.items()}
        missing = [x.ticket_id for x in moves if x.ticket_id not in tags]
        if missing:
            raise KeyError(f"no such ticket: {', '.join(missing)}")
        update_rows(
            session,
            m.Ticket,
            [
                {
                    "id": x.ticket_id,
                    "status": where[x.ticket_id][0] or current[x.ticket_id].status,
                    "assignee_group": where[x.ticket_id][1],
                    "updated_at": at,
                    "tags": [
                        *tags[x.ticket_id],
                        *(t for t in x.tags if t not in tags[x.ticket_id]),
                    ],
                }
                for x in moves
            ],
        )
        insert_rows(
            session,
            m.table(m.TicketEvent),
            [
                {"ticket_id": x.ticket_id, "at": at, "status": where[x.ticket_id][0],
                 "group": where[x.ticket_id][1], "actor": "tier2"}
                for x in moves
            ],
        )  # fmt: skip

    def timelines(self, ticket_ids: Sequence[str]) -> dict[str, Timeline]:
        ids = list(ticket_ids)
        events = m.table(m.TicketEvent)
        messages = m.table(m.TicketMessage)
        changes: dict[str, list[StatusChange]] = defaultdict(list)
        owner: dict[str, datetime] = {}
        with Session(self.engine) as session:
            for e in session.execute(
                select(events).where(events.c.ticket_id.in_(ids)).order_by(events.c.at, events.c.id)
            ):
                changes[e.ticket_id].append(
                    StatusChange(e.at, e.status, e.group, e.severity, e.actor)
                )
                if e.actor not in NOT_OWNERS:
                    owner[e.ticket_id] = max(owner.get(e.ticket_id, e.at), e.at)
            for ticket_id, last in session.execute(
                select(messages.c.ticket_id, func.max(messages.c.at))
                .where(
                    messages.c.ticket_id.in_(ids),
                    messages.c.sender.not_in(NOT_OWNERS),
                    messages.c.at.is_not(None),
                )
                .group_by(messages.c.ticket_id)
            ):
                owner[ticket_id] = max(owner.get(ticket_id, last), last)
        return {t: Timeline(tuple(changes[t]), owner.get(t)) for t in ids}

    # ------------------------------------------------------------------ people at work

    def past_escalations(self, start: datetime, end: datetime) -> list[PastEscalation]:
        """Tickets tier-1 escalated in [start, end) that tier2 never took (its baseline):
        the first escalation's time and the ticket's changes, re-escalated when the handoff
        log has more than one entry."""
        h, c = m.Handoff, m.Case
        first = func.min(func.coalesce(h.escalated_at, h.received_at))
        query = (
            select(h.ticket_id, m.Ticket.severity, first, func.count())
            .join(m.Ticket, m.Ticket.id == h.ticket_id)
            .where(h.ticket_id.not_in(select(c.ticket_id)))
            .group_by(h.ticket_id, m.Ticket.severity)
            .having(first >= start, first < end)
        )
        with Session(self.engine) as session:
            found = session.execute(query).all()
        out = []
        for chunk in batched(found, self.batch):
            timelines = self.timelines([row[0] for row in chunk])
            out += [
                PastEscalation(
                    ticket_id, severity, _utc(at), timelines[ticket_id].changes, handoffs > 1
                )
                for ticket_id, severity, at, handoffs in chunk
            ]
        return out

    def update_ticket(
        self,
        ticket_id: str,
        *,
        actor: str,
        at: datetime,
        status: str | None = None,
        group: str | None = None,
        severity: str | None = None,
        message: str | None = None,
    ) -> None:
        """A person changes a ticket or writes on it (what an agent does in the help desk)."""
        with Session(self.engine) as session, session.begin():
            ticket = session.get(m.Ticket, ticket_id, with_for_update=True)
            if ticket is None:
                raise KeyError(f"no such ticket: {ticket_id}")
            if status is not None:
                ticket.status = status
            if group is not None:
                ticket.assignee_group = group
            if severity is not None:
                ticket.severity = severity
            ticket.updated_at = at
            if status or group or severity:
                session.add(
                    m.TicketEvent(
                        ticket_id=ticket_id, at=at, status=status, group=group,
                        severity=severity, actor=actor,
                    )
                )  # fmt: skip
            if message:
                seq = session.scalar(
                    select(func.max(m.TicketMessage.seq)).where(
                        m.TicketMessage.ticket_id == ticket_id
                    )
                )
                session.add(
                    m.TicketMessage(
                        ticket_id=ticket_id, seq=(seq if seq is not None else -1) + 1,
                        sender=actor, at=at, body=message, internal=True,
                    )
                )  # fmt: skip


TAKEN = "with_tier2"


def _customer_key(case: CaseIn) -> str:
    """The CRM's id, or "~<ticket id>" for a customer tier-1 could not identify."""
    given = case.customer.id
    return given if given and given.strip() else f"~{case.ticket.id}"


def _flags(case: CaseIn, key: str) -> list[dict[str, Any]]:
    return [
        {"customer_id": key, "type": f.type, "note": f.note, "resolved": f.resolved is True}
        for f in case.customer.flags or ()
    ]


def _crm_history(case: CaseIn, key: str) -> list[dict[str, Any]]:
    return [
        {
            "customer_id": key,
            "ticket_id": e.ticket_id,
            "at": e.at,
            "category": e.category,
            "complaint": e.complaint is True,
            "escalated": e.escalated is True,
            "outcome": e.outcome,
        }
        for e in case.history or ()
    ]


def _customer_row(case: CaseIn, key: str) -> dict[str, Any]:
    c = case.customer
    return {
        "id": key,
        "given_id": c.id,
        "name": c.name,
        "company": c.company,
        "segment": c.segment,
        "vip": c.vip,
        "arr": c.arr,
        "currency": c.currency,
        "plan": c.plan,
    }


def _ticket_row(case: CaseIn, key: str) -> dict[str, Any]:
    t = case.ticket
    return {
        "customer_id": key,
        "subject": t.subject,
        "description": t.description,
        "channel": t.channel,
        "created_at": t.created_at,
        "severity": t.severity,
        "category": t.category,
        "tags": list(t.tags or []),
        "facts": dict(case.facts or {}),
        "status": ESCALATED,
        "assignee_group": None,
        "updated_at": case.received_at,
    }


def _messages(case: CaseIn) -> list[dict[str, Any]]:
    t = case.ticket
    return [
        {"ticket_id": t.id, "seq": i, "sender": x.sender, "at": x.at, "body": x.body or ""}
        for i, x in enumerate(t.messages or ())
    ]


def _handoff_row(case: CaseIn, seq: int) -> dict[str, Any]:
    h = case.handoff
    return {
        "ticket_id": case.ticket.id,
        "seq": seq,
        "sender": h.sender,
        "escalated_at": h.escalated_at,
        "reason": h.reason,
        "steps_taken": [
            _drop_none({"step": s.step, "result": s.result, "at": _iso(s.at)})
            for s in h.steps_taken or ()
        ],
        "customer_expectation": h.customer_expectation,
        "request": None if h.request is None else h.request.model_dump(exclude_none=True),
        "sentiment": h.sentiment,
        "received_at": case.received_at,
        "case_ref": case.case_id,
    }


def _escalated_event(case: CaseIn) -> dict[str, Any]:
    """Tier-1 escalated the ticket (at its handoff), at its severity."""
    return {
        "ticket_id": case.ticket.id,
        "at": case.handoff.escalated_at or case.received_at,
        "status": ESCALATED,
        "group": None,
        "severity": case.ticket.severity,
        "actor": "tier1",
    }


class _Rows:
    """New customers and tickets gathered for a few multi-row INSERTs."""

    def __init__(self) -> None:
        self.tables: dict[type[m.Base], list[dict[str, Any]]] = defaultdict(list)

    def add(self, case: CaseIn, key: str) -> None:
        self.tables[m.Customer].append(_customer_row(case, key))
        self.tables[m.CustomerFlag].extend(_flags(case, key))
        self.tables[m.CrmHistory].extend(_crm_history(case, key))
        self.tables[m.Ticket].append({"id": case.ticket.id, **_ticket_row(case, key)})
        self.tables[m.TicketMessage].extend(_messages(case))
        self.tables[m.Handoff].append(_handoff_row(case, 1))
        self.tables[m.TicketEvent].append(_escalated_event(case))

    def insert(self, session: Session) -> None:
        for table in (m.Customer, m.CustomerFlag, m.CrmHistory, m.Ticket, m.TicketMessage,
                      m.Handoff, m.TicketEvent):  # fmt: skip
            if self.tables[table]:
                session.execute(insert(m.table(table)), self.tables[table])


def _read_tickets(
    session: Session, ids: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any], defaultdict[str, list[Any]]]:
    """The tickets, each one's latest handoff and each one's public messages in order, as
    rows by ticket id (three queries)."""
    ticket_t, handoff_t, message_t = m.table(m.Ticket), m.table(m.Handoff), m.table(m.TicketMessage)
    tickets = {t.id: t for t in session.execute(select(ticket_t).where(ticket_t.c.id.in_(ids)))}
    handoffs: dict[str, Any] = {}
    for h in session.execute(
        select(handoff_t).where(handoff_t.c.ticket_id.in_(ids)).order_by(handoff_t.c.seq)
    ):
        handoffs[h.ticket_id] = h  # the latest wins
    messages: defaultdict[str, list[Any]] = defaultdict(list)
    for x in session.execute(
        select(message_t)
        .where(message_t.c.ticket_id.in_(ids), message_t.c.internal.is_(False))
        .order_by(message_t.c.ticket_id, message_t.c.seq)
    ):
        messages[x.ticket_id].append(x)
    return tickets, handoffs, messages


def _read_customers(
    session: Session, owners: Sequence[str]
) -> tuple[dict[str, Any], defaultdict[str, list[Any]], defaultdict[str, list[Any]]]:
    """The customers, their flags and their CRM history, as rows by customer id (three
    queries)."""
    customer_t, flag_t, history_t = (
        m.table(m.Customer),
        m.table(m.CustomerFlag),
        m.table(m.CrmHistory),
    )
    customers = {
        c.id: c for c in session.execute(select(customer_t).where(customer_t.c.id.in_(owners)))
    }
    flags: defaultdict[str, list[Any]] = defaultdict(list)
    for f in session.execute(
        select(flag_t).where(flag_t.c.customer_id.in_(owners)).order_by(flag_t.c.id)
    ):
        flags[f.customer_id].append(f)
    history: defaultdict[str, list[Any]] = defaultdict(list)
    for e in session.execute(
        select(history_t).where(history_t.c.customer_id.in_(owners)).order_by(history_t.c.id)
    ):
        history[e.customer_id].append(e)
    return customers, flags, history


def _case(
    ticket_id: str,
    ticket: Any,
    messages: Sequence[Any],
    *,
    handoff: Any,
    customer: Any,
    flags: defaultdict[str, list[Any]],
    history: defaultdict[str, list[Any]],
) -> dict[str, Any]:
    """One ticket's rows as a contract case; received when its latest handoff says, else now."""
    received = handoff.received_at if handoff and handoff.received_at else None
    return {
        "case_id": handoff.case_ref if handoff and handoff.case_ref else f"T-{ticket_id}",
        "received_at": (received or datetime.now(UTC)).isoformat(),
        "ticket": _ticket(ticket, messages),
        "handoff": {} if handoff is None else _handoff(handoff),
        "customer": {} if customer is None else _customer(customer, flags[customer.id]),
        "history": [] if customer is None else _history(history[customer.id]),
        "facts": dict(ticket.facts or {}),
    }


def _ticket(ticket: Any, messages: Sequence[Any]) -> dict[str, Any]:
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


def _handoff(handoff: Any) -> dict[str, Any]:
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


def _customer(customer: Any, flags: Sequence[Any]) -> dict[str, Any]:
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


def _history(entries: Sequence[Any]) -> list[dict[str, Any]]:
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

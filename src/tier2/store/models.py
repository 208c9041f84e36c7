"""The case store's tables (SQLAlchemy 2). Schema changes go through Alembic migrations.

Three sources tier2 reads, in the embedded local help desk:
  tickets + ticket_messages  the help desk's tickets and their threads
  ledger                     what the help desk carried out for tier2 (refunds, credits, ...)
  handoffs                   the support-agent handoff log (one entry per tier-1 handoff;
                             several per ticket when it bounces)
  customers + customer_flags + crm_history   the CRM
and what tier2 writes:
  cases       one per escalation tier2 owns, with its state, its latest decision's outcome
              and, once the customer's problem is finally resolved, its cycle time
  decisions   every decision on a case (a reopened case has several)
  actions     what tier2 carried out, each with a unique idempotency key
  notes       what tier2 wrote back to the ticket, each with a unique idempotency key
  audit_log   append-only, each entry hashing the one before
  audit_anchor  one row: the audit log's last entry and hash, signed with the audit key
and what people tell it, in the console:
  users             who may sign in, with a role (head_of_support, senior, viewer)
  acceptances       a senior took on a case tier2 escalated to them
  human_resolutions what the senior did to resolve it (written back to the help desk)
  reviews           a senior's rating of tier2's decision on a case
and the baseline: escalations handled before tier2 (baseline_cases), from the help desk's
history, so the report compares the same figure computed by the same code;
and how runners share the work:
  runners     each `tier2 run` or service worker alive, with the lease it renews
  claims      which runner owns each ticket tier2 is working on (one owner at a time)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Constraint names are fixed, so migrations are the same on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored in UTC on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: give an offset")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonType = JSON().with_variant(postgresql.JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it from the class)
        datetime: UtcDateTime(),
        dict[str, Any]: JsonType,
        list[Any]: JsonType,
    }


def table(model: type[Base]) -> Table:
    """A model's table, for Core statements (bulk inserts skip the ORM's bookkeeping)."""
    return cast(Table, model.__table__)


# --------------------------------------------------------------------------- the help desk


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    subject: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    severity: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), default="open")
    assignee_group: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime]


class TicketMessage(Base):
    __tablename__ = "ticket_messages"
    __table_args__ = (UniqueConstraint("ticket_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    seq: Mapped[int]
    sender: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime | None]
    body: Mapped[str] = mapped_column(Text, default="")
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    # set on what tier2 writes: the same key is never written twice
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)


class Handoff(Base):
    """One entry of the support-agent handoff log."""

    __tablename__ = "handoffs"
    __table_args__ = (UniqueConstraint("ticket_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    seq: Mapped[int]
    sender: Mapped[str | None] = mapped_column(String(64))
    escalated_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    steps_taken: Mapped[list[Any]] = mapped_column(default=list)
    customer_expectation: Mapped[str | None] = mapped_column(Text)
    request: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    sentiment: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime | None]  # when tier-2 received this escalation
    case_ref: Mapped[str | None] = mapped_column(String(64))  # the case id it carries, if any


class TicketEvent(Base):
    """A change to a ticket (status, group, severity) and who made it: the clocks' history."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime]
    status: Mapped[str | None] = mapped_column(String(32))
    group: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))


class LedgerEntry(Base):
    """What the local help desk carried out for tier2 (refunds, credits, reships, ...).

    The idempotency key is unique: an action asked for twice is carried out once.
    """

    __tablename__ = "ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    amount: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(3))
    at: Mapped[datetime]
    # The action's parameters (destination `to`, `items`, the library's own); None: none.
    params: Mapped[dict[str, Any] | None] = mapped_column(JsonType)


# --------------------------------------------------------------------------- the CRM


class Customer(Base):
    __tablename__ = "customers"

    # The key: the CRM's id, or "~<ticket id>" for a customer tier-1 could not identify.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    given_id: Mapped[str | None] = mapped_column(String(64))  # the id exactly as given
    name: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    segment: Mapped[str | None] = mapped_column(String(32))
    vip: Mapped[bool | None] = mapped_column(Boolean)
    arr: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(3))
    plan: Mapped[dict[str, Any] | None] = mapped_column(JsonType)


class CustomerFlag(Base):
    __tablename__ = "customer_flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    type: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)


class CrmHistory(Base):
    """A prior ticket in the CRM's view of a customer."""

    __tablename__ = "crm_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    ticket_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime | None]
    category: Mapped[str | None] = mapped_column(String(32))
    complaint: Mapped[bool] = mapped_column(Boolean, default=False)
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str | None] = mapped_column(String(32))


# --------------------------------------------------------------------------- what tier2 writes


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_state_received", "state", "received_at"),
        # the console's list in its order (partial: the report's count keeps its own index)
        Index("ix_cases_list", "received_at", "id", sqlite_where=text("state IS NOT NULL"),
              postgresql_where=text("state IS NOT NULL")),
        Index("ix_cases_outcome_received", "outcome", "received_at", "id"),
        # the review queue: the open escalations, by target
        Index(
            "ix_cases_queue", "state", "resolved_at", "escalate_to",
            sqlite_where=text("state = 'escalated' AND resolved_at IS NULL"),
            postgresql_where=text("state = 'escalated' AND resolved_at IS NULL"),
        ),
        # the report's: every column it reads of the cases received, and of those resolved
        Index(
            "ix_cases_report_received",
            "outcome", "first_reason", "escalate_to", "received_at", "escalations",
        ),
        Index(
            "ix_cases_report_resolved",
            "resolved_at", "business_seconds", "calendar_seconds", "waiting_seconds", "sla_met",
            "resolved_by",
        ),
    )  # fmt: skip

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(64), index=True)  # in the help desk it came from
    state: Mapped[str] = mapped_column(String(16), default="received")
    received_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]  # the case as decided, in the contract's shape
    library: Mapped[str] = mapped_column(String(200))
    escalations: Mapped[int] = mapped_column(Integer, default=1)  # > 1: re-escalated
    updated_at: Mapped[datetime]
    # the latest decision, as the report counts it
    outcome: Mapped[str | None] = mapped_column(String(16))
    first_reason: Mapped[str | None] = mapped_column(String(48))
    escalate_to: Mapped[str | None] = mapped_column(String(64))
    # tier-1's escalation, and the case's final resolution (None while it is not resolved):
    # by tier2, by the senior it went to, or by tier-1 after a return. The seconds leave out
    # the time the ticket waited on the customer, which is counted apart.
    escalated_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None] = mapped_column(index=True)
    resolved_by: Mapped[str | None] = mapped_column(String(16))  # tier2, senior, tier1
    business_seconds: Mapped[float | None] = mapped_column(Float)
    calendar_seconds: Mapped[float | None] = mapped_column(Float)
    waiting_seconds: Mapped[float | None] = mapped_column(Float)
    sla_met: Mapped[bool | None] = mapped_column(Boolean)  # the tier-2 resolution target


class Decision(Base):
    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    seq: Mapped[int]
    decided_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    escalate_to: Mapped[str | None] = mapped_column(String(64))
    library_digest: Mapped[str] = mapped_column(String(80), index=True)
    body: Mapped[dict[str, Any]]  # the decision in the contract's shape


class LibraryVersion(Base):
    """A library version that decided cases here, by its digest (`Decision.library_digest`),
    with every file the digest covers (relative path -> text; a file that is not UTF-8 text
    as {"base64": ...}), so it can be loaded again. Written once per digest, when a runner
    starts deciding with it (store/library_versions.py)."""

    __tablename__ = "library_versions"

    digest: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    version: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    stored_at: Mapped[datetime]
    files: Mapped[dict[str, Any]]


class Action(Base):
    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    amount: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(3))
    # The action's parameters (destination `to`, `items`, the library's own); None: none.
    params: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    executed_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonType)


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    ticket_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # note, reply, guidance
    body: Mapped[str] = mapped_column(Text)
    written_at: Mapped[datetime]


class User(Base):
    """Who may sign in to the console. The password is kept only as an argon2 hash."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))  # head_of_support, senior, viewer
    team: Mapped[str | None] = mapped_column(String(64))  # a senior's role or team
    created_at: Mapped[datetime]
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]


class Acceptance(Base):
    """A senior accepted a case tier2 escalated (the handoff form's acceptance block): one
    per escalation of the case (a case escalated again is accepted again)."""

    __tablename__ = "acceptances"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    escalation: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    accepted_by: Mapped[str] = mapped_column(String(64))
    accepted_at: Mapped[datetime]
    estimated_resolution_at: Mapped[datetime | None]


class HumanResolution(Base):
    """What the human a case went to did to resolve it, and what they granted."""

    __tablename__ = "human_resolutions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    escalation: Mapped[int]
    resolved_by: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(64))  # the authority they granted under
    at: Mapped[datetime]
    summary: Mapped[str] = mapped_column(Text)
    action_type: Mapped[str | None] = mapped_column(String(32))
    amount: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(3))


class Review(Base):
    """A senior's rating of tier2's decision on a case: right outcome, right target, the
    handoff's completeness (1-5), whether tier2 could have closed it; a policy or authority
    violation is critical (the review scores 0). `agrees`: the outcome and target were
    right and nothing was violated."""

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("case_id", "reviewer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    decision_seq: Mapped[int]
    reviewer: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    right_outcome: Mapped[bool] = mapped_column(Boolean)
    right_target: Mapped[bool] = mapped_column(Boolean)
    handoff_score: Mapped[int]
    missing: Mapped[str | None] = mapped_column(Text)
    could_close: Mapped[bool] = mapped_column(Boolean)
    violation: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[float] = mapped_column(Float)
    agrees: Mapped[bool] = mapped_column(Boolean)
    correct_outcome: Mapped[str | None] = mapped_column(String(16))
    correct_escalate_to: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(Text)


class BaselineCase(Base):
    """An escalation handled before tier2, read from the help desk's history: its cycle time
    computed by the same code as tier2's cases."""

    __tablename__ = "baseline_cases"
    __table_args__ = (UniqueConstraint("source", "ticket_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))  # local, rt, zendesk, csv:<file name>
    ticket_id: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str | None] = mapped_column(String(16))
    escalated_at: Mapped[datetime] = mapped_column(index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(index=True)
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    business_seconds: Mapped[float | None] = mapped_column(Float)
    calendar_seconds: Mapped[float | None] = mapped_column(Float)
    waiting_seconds: Mapped[float | None] = mapped_column(Float)
    sla_met: Mapped[bool | None] = mapped_column(Boolean)
    reescalated: Mapped[bool] = mapped_column(Boolean, default=False)
    imported_at: Mapped[datetime]


class SlaEscalation(Base):
    """The SLA monitor escalated a case: once per case, escalation, target and kind."""

    __tablename__ = "sla_escalations"
    __table_args__ = (UniqueConstraint("case_id", "escalation", "target", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    escalation: Mapped[int]
    target: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # breached, at_risk
    at: Mapped[datetime]
    severity: Mapped[str] = mapped_column(String(16))
    elapsed_seconds: Mapped[float] = mapped_column(Float)
    target_seconds: Mapped[float] = mapped_column(Float)
    due: Mapped[datetime | None]
    escalate_to: Mapped[str] = mapped_column(String(64))


class WebhookDelivery(Base):
    """A help desk told tier2 a ticket changed (Zendesk, RT): kept until a worker takes it.

    `delivery_key` is unique (the source and its signature or delivery id), so a request
    replayed is refused and never queued twice.
    """

    __tablename__ = "webhook_inbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))
    delivery_key: Mapped[str] = mapped_column(String(200), unique=True)
    ticket_id: Mapped[str] = mapped_column(String(64), index=True)
    received_at: Mapped[datetime]
    body: Mapped[dict[str, Any]]
    taken_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Append-only; `hash` covers this entry and the previous entry's hash."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    case_id: Mapped[str | None] = mapped_column(String(64), index=True)
    event: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))  # no index: the chain is walked by seq


class AuditAnchor(Base):
    """The audit log's head, signed: the last entry's seq and hash, and their HMAC-SHA256
    under the audit key (named by `key_id`, a fingerprint of the key, not the key). One row,
    written in the transaction of every append made with the key (store/audit.py)."""

    __tablename__ = "audit_anchor"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int]
    head: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    mac: Mapped[str] = mapped_column(String(64))


class RunnerEntry(Base):
    """A runner alive: it renews `lease_until` while it works; past it, it is taken for dead
    and its claims are taken back. Times are the database's (PostgreSQL's clock; on SQLite,
    the one machine's)."""

    __tablename__ = "runners"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    started_at: Mapped[datetime]
    lease_until: Mapped[datetime] = mapped_column(index=True)
    options: Mapped[dict[str, Any]]


class Claim(Base):
    """One runner owns a ticket from its claim until its case is final (or the ticket turns
    out not to be an escalation any more): no other runner reads, decides or acts on it.
    Released, the row stays with no runner and the time its work ended, so a listing of
    escalations taken before then does not claim the ticket again."""

    __tablename__ = "claims"

    ticket_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    runner_id: Mapped[str | None] = mapped_column(String(128), index=True)
    claimed_at: Mapped[datetime]
    released_at: Mapped[datetime | None]

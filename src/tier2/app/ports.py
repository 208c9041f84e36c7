"""The ports of tier2's use cases: the help desk every connector implements (local,
Request Tracker, Zendesk).

Reading: escalated tickets, and each as a case in the contract's shape. Writing: what
`tier2 run` does to a ticket, as orders, each with an idempotency key where repeating it
would matter. The runner hands the connector its open transaction (`session`): the local
help desk writes in it, so what tier2 records and what the help desk does commit together;
a remote connector makes its calls and relies on the keys, so a call repeated after a crash
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from tier2.core.sla import StatusChange

Read = tuple[str, str, str, dict[str, Any] | str]
"""A ticket read as a case: case id, ticket id, received_at (ISO), and the payload, decoded or
as JSON text (encoded as the store encodes it)."""


class ConnectorError(RuntimeError):
    """A help desk refused a request or could not be reached: which request, what it said."""


@dataclass(frozen=True)
class ActionOrder:
    """Carry out one action of a resolution (refund, credit, reship, ...), once per key."""

    ticket_id: str
    key: str
    type: str
    amount: float | None
    currency: str | None


@dataclass(frozen=True)
class NoteOrder:
    """Write an internal message on the ticket (the note, guidance, a reply draft) once."""

    ticket_id: str
    key: str
    kind: str
    body: str


@dataclass(frozen=True)
class Resolve:
    """The case is resolved in place: the ticket is solved."""

    ticket_id: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReturnToTier1:
    """Back to tier-1 with guidance: the ticket is open in tier-1's queue and no longer an
    escalation (tier-1 escalates it again to send it back)."""

    ticket_id: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class EscalateTo:
    """To a senior human: the ticket is open in the queue of `target` (an escalation target
    of the library). `reopen=False` leaves the status as it is (the SLA monitor moving a case
    that a human already works on)."""

    ticket_id: str
    target: str
    tags: tuple[str, ...] = ()
    reopen: bool = True


TicketMove = Resolve | ReturnToTier1 | EscalateTo
"""Where a ticket goes: each help desk says it in its own words (statuses, queues, groups)."""


@dataclass(frozen=True)
class Timeline:
    """A ticket's changes (status, group, severity), oldest first, and when its owner last
    acted on it (a note, a reply or a change by someone other than the customer, tier-1 or
    tier2): what the SLA monitor needs."""

    changes: tuple[StatusChange, ...]
    last_owner_action: datetime | None


class HelpDesk(Protocol):
    in_store: bool
    """True when the help desk lives in the case store and writes in the runner's
    transaction: the runner then takes a batch through every step in one transaction."""

    def reader(self) -> Callable[[Sequence[str]], list[Read]] | None:
        """A picklable function that reads tickets as cases in another process (a deciding
        worker reads the next round while this one is taken in), or None: read here."""
        ...

    def escalations(self) -> Sequence[str]:
        """Ids of tickets tier-1 has escalated and tier-2 has not yet taken, oldest first."""
        ...

    def read_cases(self, ticket_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Each ticket with its latest handoff, the customer and their history: contract cases."""
        ...

    def escalated(self, session: Session, ticket_ids: Sequence[str]) -> set[str]:
        """Which of these tickets are escalations now: as the store holds them (the local help
        desk, in the runner's transaction), or as `read_cases` last read them (a remote one).
        The runner claims a ticket before it reads it, so a ticket another runner finished
        meanwhile reads as no escalation, and is not taken again."""
        ...

    def take(self, session: Session, ticket_ids: Sequence[str], at: datetime) -> None:
        """Tier-2 has these tickets: they leave the escalation queue."""
        ...

    def carry_out(
        self, session: Session, orders: Sequence[ActionOrder], at: datetime
    ) -> list[dict[str, Any]]:
        """Carry out each action once per key; what the help desk recorded for each, in order."""
        ...

    def write_notes(self, session: Session, orders: Sequence[NoteOrder], at: datetime) -> None:
        """Write each note once per key."""
        ...

    def move(self, session: Session, moves: Sequence[TicketMove], at: datetime) -> None:
        """Move each ticket where the case's outcome sends it, adding the tags."""
        ...

    def timelines(self, ticket_ids: Sequence[str]) -> dict[str, Timeline]:
        """Each ticket's history of changes and its owner's last action."""
        ...


# The case fields a connector reads from (or, for `tier2.*`, writes to) fields of its own:
# what a deployment may map to its help desk's field names (`fields` in tier2.toml).
CASE_FIELDS: tuple[str, ...] = (
    "ticket.severity", "ticket.category", "ticket.channel", "ticket.tags",
    "handoff.reason", "handoff.customer_expectation", "handoff.sentiment",
    "handoff.steps_taken", "handoff.request.type", "handoff.request.amount",
    "handoff.request.currency", "handoff.escalated_at",
    "customer.id", "customer.name", "customer.company", "customer.segment", "customer.vip",
    "customer.arr", "customer.currency", "customer.plan", "customer.flags",
    "history.complaint", "facts",
    "tier2.outcome", "tier2.escalated_to", "tier2.actions",
)  # fmt: skip

"""The ports of tier2's use cases: the help desk every connector implements (local,
Request Tracker, Zendesk), and the case store (`UnitOfWork`: its transactions).

Reading: escalated tickets, and each as a case in the contract's shape. Writing: what
`tier2 run` does to a ticket, as orders, each with an idempotency key where repeating it
would matter. The runner hands the connector its open transaction's handle: the local
help desk writes in it, so what tier2 records and what the help desk does commit together;
a remote connector makes its calls and relies on the keys, so a call repeated after a crash
changes nothing.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from tier2.core.model import action_head, describe_params
from tier2.core.sla import StatusChange

StoreHandle = Any
"""The store transaction's handle (`Transaction.handle`), passed through to the help desk:
the local help desk writes in it; a remote one ignores it."""

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
    # Its parameters (the decision's `to`, `items` and the library's own), as the decision
    # gives them: name -> a string, number, bool, or (items) a list of strings.
    params: Mapping[str, Any] | None = None

    def words(self) -> str:
        """The action on one line: `refund 20.00 USD to gift_card, items A1, A2`."""
        head = action_head(self.type, self.amount, self.currency).rstrip()
        return head + describe_params(tuple((self.params or {}).items()))


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

    def escalated(self, session: StoreHandle, ticket_ids: Sequence[str]) -> set[str]:
        """Which of these tickets are escalations now: as the store holds them (the local help
        desk, in the runner's transaction), or as `read_cases` last read them (a remote one).
        The runner claims a ticket before it reads it, so a ticket another runner finished
        meanwhile reads as no escalation, and is not taken again."""
        ...

    def take(self, session: StoreHandle, ticket_ids: Sequence[str], at: datetime) -> None:
        """Tier-2 has these tickets: they leave the escalation queue."""
        ...

    def carry_out(
        self, session: StoreHandle, orders: Sequence[ActionOrder], at: datetime
    ) -> list[dict[str, Any]]:
        """Carry out each action once per key; what the help desk recorded for each, in order."""
        ...

    def write_notes(self, session: StoreHandle, orders: Sequence[NoteOrder], at: datetime) -> None:
        """Write each note once per key."""
        ...

    def move(self, session: StoreHandle, moves: Sequence[TicketMove], at: datetime) -> None:
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


# ---------------------------------------------------------------------- the case store


@dataclass(frozen=True)
class CaseRow:
    """A case as a step reads it (the payload and escalations only where asked for)."""

    id: str
    ticket_id: str
    state: str
    updated_at: datetime
    payload: dict[str, Any] | str | None = None
    escalations: int | None = None


@dataclass(frozen=True)
class StoredDecision:
    """A case's decision as stored: its number, outcome and (where asked for) body."""

    case_id: str
    seq: int
    outcome: str
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class PendingAction:
    """An action of a resolution not yet carried out."""

    id: int
    case_id: str
    key: str
    type: str
    amount: float | None
    currency: str | None
    params: dict[str, Any] | None = None  # None: the action has no parameters


AuditEntry = tuple[datetime, str | None, str, dict[str, Any]]  # at, case id, event, data


@dataclass(frozen=True)
class Unresolved:
    """A final case whose customer's problem is not known to be resolved yet: resolved by
    tier2 (closed) but not yet recorded, or with tier-1 or a human after tier2."""

    id: str
    ticket_id: str
    state: str
    updated_at: datetime
    escalated_at: datetime | None  # tier-1's first escalation of the case
    payload: dict[str, Any]


@dataclass(frozen=True)
class Resolution:
    """A case's final resolution and its cycle time (tier2.core.cycle)."""

    case_id: str
    state: str  # the state it was found in: recorded only if the case is still in it
    escalated_at: datetime
    resolved_at: datetime
    resolved_by: str  # tier2, human, tier1
    business_seconds: float
    calendar_seconds: float
    waiting_seconds: float
    sla_met: bool | None


# What an audit entry records of a row's content, so `tier2 audit verify` can check the row
# against the entry: a digest the store recomputes from the row as it reads it back.


def json_digest(value: Mapping[str, Any] | str) -> str:
    """sha256 of a JSON value in canonical form (orjson, keys sorted): the same for the value
    as given (decoded, or JSON text) and as any backend gives it back."""
    decoded = orjson.loads(value) if isinstance(value, str) else value
    canonical = orjson.dumps(decoded, option=orjson.OPT_SORT_KEYS)
    if b"e+" in canonical:  # (rare) a float of 1e16 or more: PostgreSQL's jsonb gives it back
        canonical = orjson.dumps(_whole(decoded), option=orjson.OPT_SORT_KEYS)  # as an integer
    return hashlib.sha256(canonical).hexdigest()


def _whole(value: Any) -> Any:
    """The value with every float of 1e16 or more (each a whole number) as an integer."""
    if isinstance(value, float):
        return int(value) if abs(value) >= 1e16 and math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole(v) for v in value]
    return value


def text_digest(text: str) -> str:
    """sha256 of a text (a note's body) in UTF-8."""
    return hashlib.sha256(text.encode()).hexdigest()


class Transaction(Protocol):
    """One transaction of the case store: what a step of `tier2 run` reads and writes,
    committed together. `handle` goes to the help desk (the local one writes in it)."""

    handle: Any

    def now(self) -> datetime:
        """The store's clock (claims and listings are stamped with it)."""
        ...

    def reap(self) -> None:
        """Dead runners' entries removed and their claims freed."""
        ...

    def orphans(self, limit: int) -> list[str]:
        """Tickets of open cases no runner holds, oldest first."""
        ...

    def claim(self, ticket_ids: Sequence[str], listed_at: datetime) -> list[str]:
        """These tickets made this runner's where no one holds them and no case of theirs
        ended after `listed_at`; the ones now this runner's, in order."""
        ...

    def held(self, ticket_ids: Sequence[str]) -> set[str]:
        """Which of these tickets this runner holds (held so to the end of the transaction)."""
        ...

    def release(self, ticket_ids: Sequence[str]) -> None:
        """Done with these tickets: a listing taken before now no longer claims them."""
        ...

    def open_cases(self) -> list[str]: ...

    def cases(self, case_ids: Sequence[str], *, payload: str | None = None) -> list[CaseRow]:
        """These cases by id (with the payload as "text" or "json" if asked), ordered by id."""
        ...

    def cases_of_tickets(self, ticket_ids: Sequence[str]) -> list[CaseRow]:
        """The cases of these tickets, oldest first."""
        ...

    def cases_to_take_in(self, case_ids: Sequence[str]) -> dict[str, CaseRow]:
        """These cases with payload and escalations, locked to the end of the transaction."""
        ...

    def add_cases(self, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def update_case(self, case_id: str, now: datetime, **values: Any) -> None: ...

    def enter(self, moves: Sequence[tuple[str, str]], now: datetime) -> None:
        """Each case (id, state) moved to its state."""
        ...

    def decision_seqs(self, case_ids: Sequence[str]) -> dict[str, int]:
        """The number of each case's latest decision."""
        ...

    def record_outcomes(self, rows: Sequence[tuple[str, str, str, str | None]]) -> None:
        """Each case's latest decision as the report counts it: (case, outcome, deciding
        reason, escalated to)."""
        ...

    def add_decisions(self, rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, int], int]:
        """The decisions stored; the id of each (case id, seq) of these cases."""
        ...

    def latest_decisions(
        self, case_ids: Sequence[str], *, body: bool = False
    ) -> dict[str, StoredDecision]: ...

    def earlier_decisions(self, case_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """What each case was decided before (for a reopened case's facts)."""
        ...

    def add_actions(self, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def pending_actions(self, case_ids: Sequence[str]) -> list[PendingAction]: ...

    def actions_done(self, done: Sequence[tuple[int, datetime, dict[str, Any]]]) -> None:
        """Each action (id, when, what the help desk recorded) carried out."""
        ...

    def recorded_notes(self, keys: Sequence[str]) -> set[str]: ...

    def add_notes(self, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def audit(self, entries: Sequence[AuditEntry]) -> None:
        """Entries appended to the audit log, in order."""
        ...

    def cases_in(self, states: Sequence[str]) -> list[CaseRow]:
        """Every case in these states, with payload and escalations, ordered by id."""
        ...

    def unresolved(self, limit: int) -> list[Unresolved]:
        """Final cases with no resolution recorded, oldest first."""
        ...

    def record_resolutions(self, rows: Sequence[Resolution]) -> int:
        """Each resolution recorded on its case, if the case is still in the state it was
        found in and has none yet; how many were."""
        ...

    def monitors_take_turns(self) -> None:
        """SLA monitors run one at a time from here to the end of the transaction."""
        ...

    def sla_escalations(self, case_ids: Sequence[str]) -> set[tuple[str, int, str, str]]:
        """The SLA escalations recorded for these cases: (case, escalation, target, kind)."""
        ...

    def add_sla_escalations(self, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def waiting_deliveries(self) -> int | None:
        """The last webhook delivery not yet taken."""
        ...

    def take_deliveries(self, upto: int, at: datetime) -> int:
        """Deliveries up to this one taken; how many."""
        ...


class UnitOfWork(Protocol):
    """The case store's transactions, and this runner's registration in it."""

    @property
    def registered(self) -> bool:
        """Whether this runner is entered (a pass enters it first)."""
        ...

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A transaction: committed when the block ends, rolled back when it raises."""
        ...

    def register(self) -> None:
        """Enter this runner and keep its lease."""
        ...

    def release_all(self) -> None:
        """Let go of every ticket still held."""
        ...

    def retire(self) -> None:
        """Release everything and leave."""
        ...

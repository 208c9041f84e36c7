"""The domain model of the decision core: a case in, a decision out. Frozen, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from tier2.core.money import amount_text

JSON = Any  # a value as JSON gives it: dict, list, str, float, int, bool or None


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Outcome(StrEnum):
    RESOLVE = "resolve"
    RETURN_TO_TIER1 = "return_to_tier1"
    ESCALATE = "escalate"


class ReasonCode(StrEnum):
    HANDOFF_AMBIGUITY = "handoff_ambiguity"
    COMMERCIAL_SENSITIVITY = "commercial_sensitivity"
    COMPLAINT_PATTERN = "complaint_pattern"
    MANAGEMENT_TRIGGER = "management_trigger"
    POLICY_CONFLICT = "policy_conflict"
    NO_POLICY_MATCH = "no_policy_match"
    MISSING_PREREQUISITE = "missing_prerequisite"
    POLICY_RETURN = "policy_return"
    POLICY_ESCALATION = "policy_escalation"
    AUTHORITY_EXCEEDED = "authority_exceeded"
    COMPLEXITY = "complexity"
    SLA_BREACH = "sla_breach"
    POLICY_RESOLUTION = "policy_resolution"
    # Beyond the handbook: tier2 fails closed.
    LIBRARY_ERROR = "library_error"  # a clause or amount could not be evaluated on the case
    CURRENCY_NOT_ACCEPTED = "currency_not_accepted"  # not a currency the library accepts


STAGE_NAMES = ("receive", "gather_context", "apply_policy", "resolve_or_escalate", "document")


@dataclass(frozen=True, slots=True)
class Message:
    sender: str | None
    at: datetime | None
    body: str


@dataclass(frozen=True, slots=True)
class Ticket:
    id: str
    created_at: datetime
    severity: Severity
    category: str
    subject: str | None = None
    description: str | None = None
    channel: str | None = None
    messages: tuple[Message, ...] = ()
    tags: tuple[str, ...] = ()
    status: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    step: str | None  # the handbook's step code (None: tier-1 did not name it)
    result: str | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Request:
    type: str | None = None
    amount: float | None = None
    currency: str | None = None
    # the request fields the library declares that the case gives, as JSON gives them
    fields: Mapping[str, JSON] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Handoff:
    sender: str | None = None
    escalated_at: datetime | None = None
    reason: str | None = None
    steps_taken: tuple[Step, ...] = ()
    customer_expectation: str | None = None
    request: Request | None = None
    sentiment: str | None = None


@dataclass(frozen=True, slots=True)
class Flag:
    type: str | None  # None: the CRM did not say
    note: str | None = None
    resolved: bool = False


@dataclass(frozen=True, slots=True)
class Customer:
    id: str | None = None
    name: str | None = None
    company: str | None = None
    segment: str | None = None
    vip: bool | None = None
    arr: float | None = None
    currency: str | None = None
    plan: Mapping[str, JSON] | None = None
    flags: tuple[Flag, ...] = ()


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    ticket_id: str | None = None
    at: datetime | None = None
    category: str | None = None
    complaint: bool = False
    escalated: bool = False
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class Case:
    """One escalated case as tier-2 receives it (contract section 2)."""

    case_id: str
    received_at: datetime
    ticket: Ticket
    handoff: Handoff
    customer: Customer
    history: tuple[HistoryEntry, ...] = ()
    facts: Mapping[str, JSON] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reason:
    code: ReasonCode
    detail: str
    rule: str  # the handbook rule or policy id that fired


@dataclass(frozen=True, slots=True)
class Action:
    type: str
    amount: float | None = None
    currency: str | None = None
    # The action's parameters, sorted by name: "to" (its destination), "items" (a tuple of
    # strings) and the library's own named parameters; each a string, number or bool.
    params: tuple[tuple[str, JSON], ...] = ()

    def key(self) -> tuple[str, float | None, tuple[tuple[str, JSON], ...]]:
        """What makes two prescribed actions the same: type, amount and parameters."""
        return (self.type, self.amount, self.params)

    def param(self, name: str) -> JSON:
        """The value of a parameter (None: the action has none of that name)."""
        return next((v for k, v in self.params if k == name), None)


@dataclass(frozen=True, slots=True)
class StageRecord:
    """What one stage read, what it found and what it decided."""

    stage: str
    read: tuple[str, ...]
    found: Mapping[str, JSON]
    decided: str


@dataclass(frozen=True, slots=True)
class Decision:
    case_id: str
    outcome: Outcome
    escalate_to: str | None
    reasons: tuple[Reason, ...]
    policies: tuple[str, ...]
    actions: tuple[Action, ...]
    guidance: str | None
    stages: tuple[StageRecord, ...]
    note: str
    customer_reply: str | None
    library_name: str
    library_version: str
    library_digest: str
    escalation_handoff: Mapping[str, JSON] | None = None


def action_head(type_: str, amount: float | None, currency: str | None) -> str:
    """An action's type and amount for a person: `refund 20.00 USD ` (the currency's space
    kept when it has none: callers strip it where they always did)."""
    return type_ if amount is None else f"{type_} {amount_text(amount)} {currency or ''}"


def describe_params(params: tuple[tuple[str, Any], ...]) -> str:
    """An action's parameters in words, after its type and amount: ` to gift_card, items A1,
    A2, direction to_customer` (empty without parameters)."""
    if not params:
        return ""
    shown = dict(params)
    words: list[str] = []
    if "to" in shown:
        words.append(f"to {_param_text(shown.pop('to'))}")
    if "items" in shown:
        items = shown.pop("items")
        words.append("items " + (", ".join(items) if items else "none"))
    words += [f"{name} {_param_text(value)}" for name, value in shown.items()]
    return _CONTROLS.sub(" ", " " + ", ".join(words))


# Line breaks, other control characters and bidirectional overrides: a case's value in an
# action's words stays on its line (the documents escape it further for Markdown or text).
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)

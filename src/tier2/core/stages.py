"""The five stages of a decision, each a small pure function that records what it did.

receive -> gather_context -> apply_policy -> resolve_or_escalate -> document
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from tier2.core.expressions import ClauseFailed, EvaluationError, Expression, Scope
from tier2.core.library import Library, Policy, Signals, Trigger
from tier2.core.model import (
    Action,
    Case,
    Outcome,
    Reason,
    ReasonCode,
    StageRecord,
    describe_params,
)
from tier2.core.money import MAX_AMOUNT, MoneyRule, amount_text, round_money

# --------------------------------------------------------------------------- receive


class Received(NamedTuple):
    missing: tuple[str, ...]  # what the handoff protocol requires and the handoff lacks
    missing_steps: tuple[str, ...]  # required tier-1 steps for the category not done
    record: StageRecord


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def receive(case: Case, library: Library) -> Received:
    """Check the tier-1 handoff against the handoff protocol (A2)."""
    protocol = library.handoff
    handoff = case.handoff
    request = handoff.request
    if not protocol.enabled:
        return _unchecked(case)
    missing: list[str] = []
    if protocol.require_reason and _blank(handoff.reason):
        missing.append("handoff.reason")
    if protocol.require_steps and not handoff.steps_taken:
        missing.append("handoff.steps_taken")
    if protocol.require_expectation and _blank(handoff.customer_expectation):
        missing.append("handoff.customer_expectation")
    if (
        request is not None
        and request.type in protocol.amount_required_for
        and request.amount is None
    ):
        missing.append(f"handoff.request.amount (required for a {request.type} request)")
    if protocol.require_customer_id and _blank(case.customer.id):
        missing.append("customer.id")

    done = tuple(s.step for s in handoff.steps_taken)
    required = protocol.steps_required(case.ticket.category, request.type if request else None)
    missing_steps = tuple(s for s in required if s not in done)

    if missing:
        decided = "handoff ambiguous: missing " + ", ".join(missing)
    elif missing_steps:
        decided = "handoff complete, but required tier-1 steps not done: " + ", ".join(
            missing_steps
        )
    else:
        decided = "handoff complete"
    record = StageRecord(
        stage="receive",
        read=(
            "handoff.reason",
            "handoff.steps_taken",
            "handoff.customer_expectation",
            "handoff.request",
            "customer.id",
            "ticket.category",
        ),
        found={
            "severity": case.ticket.severity.value,
            "category": case.ticket.category,
            "request": None if request is None else request.type,
            "steps_done": list(done),
            "steps_required": list(required),
            "missing": list(missing),
            "missing_steps": list(missing_steps),
        },
        decided=decided,
    )
    return Received(missing=tuple(missing), missing_steps=missing_steps, record=record)


def _unchecked(case: Case) -> Received:
    """The library's handoff protocol is off: nothing is missing."""
    request = case.handoff.request
    record = StageRecord(
        stage="receive",
        read=("ticket.category",),
        found={
            "severity": case.ticket.severity.value,
            "category": case.ticket.category,
            "request": None if request is None else request.type,
            "handoff_protocol": "off",
        },
        decided="handoff not checked: the library's handoff protocol is off",
    )
    return Received(missing=(), missing_steps=(), record=record)


# --------------------------------------------------------------------------- gather context


class Gathered(NamedTuple):
    signals: Mapping[str, Any]
    complaint_detail: str | None
    commercial_notes: tuple[str, ...]
    complexity_points: tuple[str, ...]
    complex: bool
    scope: Scope
    record: StageRecord
    failures: tuple[Failure, ...] = ()  # clauses that could not be evaluated (fail closed)


class Failure(NamedTuple):
    """A clause or amount that could not be evaluated on the case."""

    owner: str  # "policy P", "management trigger T", "complexity point C"
    clause: str  # where in it: "when[0]", "unless[1]", "actions[0].amount"
    source: str  # the expression
    why: str

    def __str__(self) -> str:
        return f"{self.owner} {self.clause}: `{self.source}` could not be evaluated: {self.why}"


def _failure(
    owner: str, exc: ClauseFailed, places: Mapping[str, tuple[Expression | None, ...]]
) -> Failure:
    """The failure, its clause named by its place in the owner (`places`: a pattern such as
    "unless[{}]" and the expressions it numbers)."""
    where = next(
        (
            pattern.format(i)
            for pattern, listed in places.items()
            for i, e in enumerate(listed)
            if e is exc.expression
        ),
        "when",
    )
    return Failure(owner, where, exc.expression.source, exc.why)


def _days(n: int) -> timedelta:
    return timedelta(days=n)


def _mentions(
    case: Case, terms: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
) -> dict[str, list[str]]:
    texts = [case.ticket.description or ""]
    texts.extend([m.body for m in case.ticket.messages if m.sender == "customer"])
    haystack = "\n".join(texts).lower()
    return {name: [t for t, low in words if low in haystack] for name, words in terms}


def earlier_decisions(case: Case) -> list[Mapping[str, Any]]:
    """tier2's earlier decisions on this case, when it was reopened (`facts.earlier_decisions`,
    as the runner writes them from the store): only entries of exactly that shape count."""
    found = case.facts.get("earlier_decisions")
    return [d for d in found if _is_decision(d)] if isinstance(found, list) else []


_OUTCOMES = frozenset(o.value for o in Outcome)


def _is_decision(d: Any) -> bool:
    """An entry shaped as the store's record of a decision (seq, decided_at, outcome,
    escalate_to, reasons)."""
    return (
        isinstance(d, Mapping)
        and type(d.get("seq")) is int
        and isinstance(d.get("decided_at"), str)
        and d.get("outcome") in _OUTCOMES
        and (d.get("escalate_to") is None or isinstance(d.get("escalate_to"), str))
        and isinstance(d.get("reasons"), list)
        and all(isinstance(r, str) for r in d["reasons"])
    )


def _customer_messages_after_agent(case: Case) -> int:
    messages = case.ticket.messages
    agent_times = [m.at for m in messages if m.sender == "agent" and m.at is not None]
    if not agent_times:
        return 0
    first = min(agent_times)
    return len(
        [m for m in messages if m.sender == "customer" and m.at is not None and m.at > first]
    )


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _section_case(case: Case, signals: Mapping[str, Any], now: datetime) -> Any:
    return {"id": case.case_id}


def _section_ticket(case: Case, signals: Mapping[str, Any], now: datetime) -> Any:
    t = case.ticket
    return _compact(
        {
            "id": t.id,
            "severity": t.severity.value,
            "category": t.category,
            "channel": t.channel,
            "created_at": t.created_at,
            "subject": t.subject,
            "description": t.description,
            "tags": list(t.tags),
            "status": t.status,
        }
    )


def _section_handoff(case: Case, signals: Mapping[str, Any], now: datetime) -> Any:
    h = case.handoff
    return _compact(
        {
            "from": h.sender,
            "reason": h.reason,
            "customer_expectation": h.customer_expectation,
            "sentiment": h.sentiment,
            "escalated_at": h.escalated_at,
            "steps": [s.step for s in h.steps_taken if s.step is not None],
        }
    )


def _section_request(case: Case, signals: Mapping[str, Any], now: datetime) -> Any:
    r = case.handoff.request
    if r is None:
        return {}
    section = _compact({"type": r.type, "amount": r.amount, "currency": r.currency})
    return {**section, **r.fields} if r.fields else section


def _section_customer(case: Case, signals: Mapping[str, Any], now: datetime) -> Any:
    c = case.customer
    return _compact(
        {
            "id": c.id,
            "segment": c.segment,
            "vip": c.vip,
            "arr": c.arr,
            "currency": c.currency,
            "plan": c.plan,
            "flags": [_compact({"type": f.type, "resolved": f.resolved}) for f in c.flags],
        }
    )


# The data CEL expressions read, by the top-level names the library's expressions use.
# Nothing is converted here: a clause converts only the fields it reads, when it must run.
_SECTIONS: Mapping[str, Callable[[Case, Mapping[str, Any], datetime], Any]] = {
    "case": _section_case,
    "received_at": lambda case, signals, now: case.received_at,
    "now": lambda case, signals, now: now,
    "ticket": _section_ticket,
    "handoff": _section_handoff,
    "request": _section_request,
    "customer": _section_customer,
    "facts": lambda case, signals, now: case.facts,
    "signals": lambda case, signals, now: signals,
}
_VIEW_NAMES = tuple(_SECTIONS)


def _view(
    case: Case, library: Library, signals: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """The case as the library's expressions see it: only the top-level names they read."""
    names = _VIEW_NAMES if library.view_names is None else library.view_names
    return {name: _SECTIONS[name](case, signals, now) for name in names if name in _SECTIONS}


class _History(NamedTuple):
    """What the customer's earlier tickets show."""

    prior: int  # earlier tickets: dated before receipt, other than this ticket
    complaints: int  # complaints within the complaint window
    escalations: int  # escalations of this category within the escalation window
    pattern: list[str]  # the thresholds reached, in words


class _Concerns(NamedTuple):
    """What the customer's flags, channel and words raise."""

    commercial: tuple[str, ...]  # notes of unresolved commercial-sensitivity flags
    mentions: dict[str, list[str]]  # the terms of each mention list the customer wrote
    churn: list[str]  # churn flags and churn words
    public: list[str]  # public-complaint flags and a public channel


def _history(case: Case, settings: Signals) -> _History:
    """Count the earlier complaints and same-category escalations within their windows."""
    received_at = case.received_at
    ticket_id, category = case.ticket.id, case.ticket.category
    # (age, entry) of each prior ticket: dated before receipt, other than this ticket
    prior = [
        (received_at - e.at, e)
        for e in case.history
        if e.at is not None and e.at < received_at and e.ticket_id != ticket_id
    ]
    cw, ew = settings.complaints, settings.same_category_escalations
    complaint_window, escalation_window = _days(cw.within_days), _days(ew.within_days)
    complaints = len([e for age, e in prior if e.complaint and age <= complaint_window])
    escalations = len(
        [
            e
            for age, e in prior
            if e.escalated and e.category == category and age <= escalation_window
        ]
    )
    pattern: list[str] = []
    if complaints >= cw.at_least:
        pattern.append(f"{complaints} complaints in the {cw.within_days} days before receipt")
    if escalations >= ew.at_least:
        pattern.append(
            f"{escalations} earlier escalations of {category} cases in the "
            f"{ew.within_days} days before receipt (this is escalation {escalations + 1})"
        )
    if "complaint_pattern" in settings.off:  # counted, but no pattern
        pattern = []
    return _History(len(prior), complaints, escalations, pattern)


def _concerns(case: Case, settings: Signals) -> _Concerns:
    """Read the unresolved flags, the channel and the customer's words for risk."""
    unresolved = [f for f in case.customer.flags if not f.resolved]
    commercial = tuple(
        f.note or f.type for f in unresolved if f.type in settings.commercial_flag_types
    )
    mentions = _mentions(case, settings.mention_terms)
    churn_flags = [f.type for f in unresolved if f.type in settings.churn_flag_types]
    churn_words = mentions.get(settings.churn_mention, []) if settings.churn_mention else []
    public_flags = [f.type for f in unresolved if f.type in settings.public_flag_types]
    public_channel = case.ticket.channel in settings.public_channels
    return _Concerns(
        commercial,
        mentions,
        churn_flags + churn_words,
        public_flags + ([f"channel {case.ticket.channel}"] if public_channel else []),
    )


def _signals(case: Case, history: _History, concerns: _Concerns) -> dict[str, Any]:
    """The signals the library's expressions read as `signals`."""
    follow_ups = _customer_messages_after_agent(case)
    hours_before = (case.received_at - case.ticket.created_at).total_seconds() / 3600
    return {
        "prior_tickets": history.prior,
        "complaints": history.complaints,
        "same_category_escalations": history.escalations,
        "complaint_pattern": bool(history.pattern),
        "commercial_sensitivity": bool(concerns.commercial),
        "churn_threat": bool(concerns.churn),
        "public_complaint": bool(concerns.public),
        "mentions": {name: bool(found) for name, found in concerns.mentions.items()},
        "customer_messages_after_agent": follow_ups,
        "hours_before_tier2": round(hours_before, 4),
        "earlier_decisions": len(earlier_decisions(case)),
    }


def _gather_record(
    signals: Mapping[str, Any],
    concerns: _Concerns,
    points: tuple[str, ...],
    is_complex: bool,
    off: tuple[str, ...],
) -> StageRecord:
    """The record of the gather_context stage: the signals found and the risks shown."""
    shown = [
        k
        for k in ("complaint_pattern", "commercial_sensitivity", "churn_threat", "public_complaint")
        if signals[k]
    ]
    if is_complex:
        shown.append("complex")
    return StageRecord(
        stage="gather_context",
        read=("ticket.messages", "handoff.steps_taken", "customer.flags", "history", "facts"),
        found={
            **{k: v for k, v in signals.items() if k != "mentions"},
            "mentions": {k: v for k, v in concerns.mentions.items() if v},
            "churn_signals": concerns.churn,
            "public_signals": concerns.public,
            "commercial_flags": list(concerns.commercial),
            "complexity_points": list(points),
            "complex": is_complex,
            **({"off": list(off)} if off else {}),
        },
        decided=("signals: " + ", ".join(shown)) if shown else "no risk signals",
    )


def gather_context(case: Case, library: Library, now: datetime) -> Gathered:
    """Read the thread, the handoff log and the CRM history into signals (A3)."""
    settings = library.signals
    history = _history(case, settings)
    concerns = _concerns(case, settings)
    signals = _signals(case, history, concerns)
    scope = Scope(
        _view(case, library, signals, now),
        memo=library.memo if library.memoize else None,
        definitions=library.defined,
    )
    failures: list[Failure] = []
    points = tuple(
        [p.id for p in settings.complexity_points if _point_holds(scope, p.id, p.when, failures)]
    )
    is_complex = len(points) >= settings.complexity_threshold
    return Gathered(
        signals=signals,
        complaint_detail="; ".join(history.pattern) or None,
        commercial_notes=concerns.commercial,
        complexity_points=points,
        complex=is_complex,
        scope=scope,
        record=_gather_record(signals, concerns, points, is_complex, settings.off),
        failures=tuple(failures),
    )


def _point_holds(scope: Scope, point: str, when: Expression, failures: list[Failure]) -> bool:
    try:
        return scope.holds(when)
    except ClauseFailed as exc:
        failures.append(_failure(f"complexity point {point}", exc, {}))  # its one clause: when
        return False


# --------------------------------------------------------------------------- apply policy


class PolicyMatch(NamedTuple):
    policy: Policy
    actions: tuple[Action, ...]

    def prescription(self) -> tuple[Outcome, str | None, frozenset[tuple[Any, ...]]]:
        """Outcome, target and set of actions: two matches conflict when these differ."""
        return (
            self.policy.outcome,
            self.policy.escalate_to,
            frozenset(a.key() for a in self.actions),
        )


class Finding(NamedTuple):
    """A rule that fired: its reason and the outcome it would decide."""

    reason: Reason
    outcome: Outcome
    escalate_to: str | None = None
    guidance: str | None = None
    # Every distinct guidance, when several policies that agree return the case (library
    # order; the first is `guidance`); empty otherwise.
    guidances: tuple[str, ...] = ()


class Applied(NamedTuple):
    findings: tuple[Finding, ...]
    matched: tuple[PolicyMatch, ...]
    winner: PolicyMatch | None
    conflict: tuple[PolicyMatch, ...]
    overridden: tuple[tuple[str, str], ...]  # (overridden policy, by policy)
    triggers: tuple[str, ...]
    record: StageRecord
    failures: tuple[Failure, ...] = ()


class ActionFailed(ClauseFailed):
    """An action's parameter that cannot be computed, or is not of its kind: `where` names it
    in the policy (`actions[0].to`, `actions[1].params.direction`)."""

    def __init__(self, expression: Expression, why: str, where: str) -> None:
        super().__init__(expression, why)
        self.where = where


class _ParamAbsent(Exception):
    """An action's amount or parameter reads a field the case does not have."""


def _price(
    policy: Policy, scope: Scope, currency: str | None, rule: MoneyRule
) -> tuple[Action, ...] | None:
    """The policy's actions with amounts (rounded by the library's money rule) and
    parameters computed; None if one reads a field the case does not have (the policy does
    not match); ClauseFailed if one cannot be computed."""
    out: list[Action] = []
    for i, spec in enumerate(policy.actions):
        amount: float | None = None
        if spec.amount is not None:
            try:
                value = scope.value(spec.amount)
            except EvaluationError as exc:
                if exc.absent:
                    return None
                raise ClauseFailed(spec.amount, str(exc)) from None
            amount = _amount(spec.amount, value, rule)
        try:
            params = tuple(
                (name, _param(scope, e, name, f"actions[{i}].{spec.place(name)}"))
                for name, e in spec.params
            )
        except _ParamAbsent:
            return None
        out.append(
            Action(
                type=spec.type,
                amount=amount,
                currency=None if amount is None else currency,
                params=params,
            )
        )
    return tuple(out)


MAX_ITEMS = 100  # the items an action may name


def _param(scope: Scope, expression: Expression, name: str, where: str) -> Any:
    """An action's parameter: `items` a list of at most MAX_ITEMS strings (as a tuple), any
    other a string, a number or a bool; _ParamAbsent, or ActionFailed naming where it is."""
    try:
        value = scope.value(expression)
    except EvaluationError as exc:
        if exc.absent:
            raise _ParamAbsent from None
        raise ActionFailed(expression, str(exc), where) from None
    if name == "items":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ActionFailed(
                expression, f"its value is {value!r:.40}, not a list of strings", where
            )
        if len(value) > MAX_ITEMS:
            raise ActionFailed(
                expression, f"it names {len(value)} items; at most {MAX_ITEMS}", where
            )
        return tuple(value)
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float) and math.isfinite(value):
        return value
    raise ActionFailed(
        expression, f"its value is {value!r:.40}, not a string, a number or a bool", where
    )


def _amount(expression: Expression, value: Any, rule: MoneyRule) -> float:
    """A computed amount, rounded by the rule; ClauseFailed if it is no amount."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClauseFailed(expression, f"its value is {value!r:.40}, not an amount")
    if not math.isfinite(value) or value < 0 or value > MAX_AMOUNT:
        raise ClauseFailed(
            expression, f"its value {value!r} is not an amount between 0 and {MAX_AMOUNT:,.0f}"
        )
    return round_money(float(value), rule)


def _fmt(amount: float, currency: str | None) -> str:
    return amount_text(amount) + (f" {currency}" if currency else "")


def _conflict_finding(library: Library, conflict: tuple[PolicyMatch, ...]) -> Finding:
    """Policies of the same precedence prescribe different things: escalate."""
    names = ", ".join(m.policy.id for m in conflict)
    return Finding(
        Reason(
            ReasonCode.POLICY_CONFLICT,
            f"{names} (precedence {conflict[0].policy.precedence}) prescribe different "
            "outcomes or actions",
            "A4.6",
        ),
        Outcome.ESCALATE,
        library.routing.policy_conflict,
    )


def _no_match_finding(library: Library) -> Finding:
    """No policy covers the case: escalate."""
    return Finding(
        Reason(
            ReasonCode.NO_POLICY_MATCH,
            f"no policy of the {library.name} library covers this case",
            "A4.6",
        ),
        Outcome.ESCALATE,
        library.routing.no_policy_match,
    )


def _authority_finding(
    library: Library, winner: PolicyMatch, currency: str | None
) -> Finding | None:
    """Escalate to the lowest role that may grant the largest amount above the engine's limit
    (amounts valued in the unit of the limits; only the action types the ladder limits);
    None if the engine may grant every amount."""
    authority = library.authority
    priced = [a for a in winner.actions if a.amount is not None and authority.limits(a.type)]
    engine = authority.engine_role
    if not priced:
        return None
    largest = max(priced, key=lambda a: a.amount or 0.0)
    rate = library.currencies.get(currency, 1.0) if currency else 1.0
    amount = (largest.amount or 0.0) * rate
    if engine.covers(amount):
        return None
    role = authority.lowest_covering(amount)
    target = role.name if role else authority.ladder[-1].name
    limit = "no limit" if role is None or role.limit is None else f"up to {_fmt(role.limit, None)}"
    return Finding(
        Reason(
            ReasonCode.AUTHORITY_EXCEEDED,
            f"{winner.policy.id} prescribes {largest.type} "
            f"{_fmt(largest.amount or 0.0, largest.currency)}, "
            f"above {engine.name}'s limit of {_fmt(engine.limit or 0.0, None)}; "
            f"{target} may grant {limit}",
            "A1",
        ),
        Outcome.ESCALATE,
        target,
    )


def _complexity_finding(library: Library, policy: Policy, gathered: Gathered) -> Finding:
    """A policy matched, but the case is too complex to resolve in place: escalate."""
    return Finding(
        Reason(
            ReasonCode.COMPLEXITY,
            f"{policy.id} matched, but the case is complex "
            f"({len(gathered.complexity_points)} points: "
            + ", ".join(gathered.complexity_points)
            + ")",
            "A4.6",
        ),
        Outcome.ESCALATE,
        library.routing.complexity,
    )


def _policy_step(
    library: Library,
    gathered: Gathered,
    winner: PolicyMatch | None,
    conflict: tuple[PolicyMatch, ...],
    currency: str | None,
    *,
    matched: list[PolicyMatch],
) -> Finding:
    """A4 step 6: exactly one finding from the policies of the library."""
    if conflict:
        return _conflict_finding(library, conflict)
    if winner is None:
        return _no_match_finding(library)
    policy = winner.policy
    if policy.outcome is Outcome.RETURN_TO_TIER1:
        return Finding(
            Reason(ReasonCode.POLICY_RETURN, f"{policy.id} matched", policy.id),
            Outcome.RETURN_TO_TIER1,
            guidance=policy.guidance,
            guidances=_guidances(policy, matched),
        )
    if policy.outcome is Outcome.ESCALATE:
        return Finding(
            Reason(
                ReasonCode.POLICY_ESCALATION,
                f"{policy.id} matched: escalate to {policy.escalate_to}",
                policy.id,
            ),
            Outcome.ESCALATE,
            policy.escalate_to,
        )
    over_authority = _authority_finding(library, winner, currency)
    if over_authority is not None:
        return over_authority
    if gathered.complex:
        return _complexity_finding(library, policy, gathered)
    return Finding(
        Reason(ReasonCode.POLICY_RESOLUTION, f"{policy.id} matched", policy.id),
        Outcome.RESOLVE,
    )


def _guidances(winner: Policy, matched: list[PolicyMatch]) -> tuple[str, ...]:
    """The distinct guidance of every policy of the winner's precedence (they agree: all
    return the case), in library order, when there are several; else none."""
    found: list[str] = []
    for m in matched:
        g = m.policy.guidance
        if m.policy.precedence == winner.precedence and g and g not in found:
            found.append(g)
    return tuple(found) if len(found) > 1 else ()


def _rule_findings(
    case: Case, library: Library, received: Received, gathered: Gathered, fired: list[Trigger]
) -> list[Finding]:
    """The findings of A4 steps 1 to 5 (handoff, commercial flag, complaints, triggers, steps)."""
    routing = library.routing
    findings: list[Finding] = []
    if received.missing:
        findings.append(
            Finding(
                Reason(
                    ReasonCode.HANDOFF_AMBIGUITY,
                    "the handoff misses " + ", ".join(received.missing),
                    "A4.1",
                ),
                Outcome.ESCALATE,
                routing.handoff_ambiguity,
            )
        )
    if gathered.commercial_notes:
        findings.append(
            Finding(
                Reason(
                    ReasonCode.COMMERCIAL_SENSITIVITY,
                    "unresolved commercial-sensitivity flag: "
                    + "; ".join(gathered.commercial_notes),
                    "A4.2",
                ),
                Outcome.ESCALATE,
                routing.commercial_sensitivity,
            )
        )
    if gathered.complaint_detail:
        findings.append(
            Finding(
                Reason(ReasonCode.COMPLAINT_PATTERN, gathered.complaint_detail, "A4.3"),
                Outcome.ESCALATE,
                routing.complaint_pattern,
            )
        )
    if fired:
        findings.append(
            Finding(
                Reason(
                    ReasonCode.MANAGEMENT_TRIGGER,
                    "; ".join(f"{t.id}: {t.title}" for t in fired),
                    "A4.4",
                ),
                Outcome.ESCALATE,
                routing.management_trigger,
            )
        )
    if received.missing_steps:
        findings.append(_missing_steps(case, library, received.missing_steps))
    return findings


def _missing_steps(case: Case, library: Library, steps: tuple[str, ...]) -> Finding:
    """A4.5: tier-1 has not done the steps the category (or the request type) requires."""
    category = case.ticket.category
    request = case.handoff.request
    request_type = request.type if request else None
    protocol = library.handoff
    by_category = set(protocol.required_steps.get(category, ())) & set(steps)
    by_request = set(protocol.required_steps_by_request.get(request_type or "", ())) & set(steps)
    if not by_request:
        what = f"{category} case"
    elif by_category:
        what = f"{category} case with a {request_type} request"
    else:
        what = f"{request_type} request"
    return Finding(
        Reason(
            ReasonCode.MISSING_PREREQUISITE,
            f"tier-1 has not done the step(s) required for a {what}: " + ", ".join(steps),
            "A4.5",
        ),
        Outcome.RETURN_TO_TIER1,
        guidance=f"Before escalating a {what}, complete and record: "
        + ", ".join(steps)
        + ". Then escalate again with the results in the handoff.",
    )


def case_currency(case: Case, library: Library) -> str | None:
    """The currency of the case's amounts: the request's, else the customer's, else the
    library's."""
    request = case.handoff.request
    if request and request.currency:
        return request.currency
    return case.customer.currency or library.currency


def _match_policies(
    library: Library, scope: Scope, currency: str | None, failures: list[Failure]
) -> tuple[list[PolicyMatch], list[str]]:
    """The policies whose conditions hold, priced; and those whose amounts read an absent
    field. A policy with a clause or amount that cannot be evaluated goes to `failures`."""
    matched: list[PolicyMatch] = []
    unpriced: list[str] = []
    for policy in library.policies:
        try:
            if not scope.all_hold(policy.when) or scope.any_holds(policy.unless):
                continue
            actions = _price(policy, scope, currency, library.money)
        except ActionFailed as exc:
            failures.append(
                Failure(f"policy {policy.id}", exc.where, exc.expression.source, exc.why)
            )
            continue
        except ClauseFailed as exc:
            places = {
                "when[{}]": policy.when,
                "unless[{}]": policy.unless,
                "actions[{}].amount": tuple(a.amount for a in policy.actions),
            }
            failures.append(_failure(f"policy {policy.id}", exc, places))
            continue
        if actions is None:
            unpriced.append(policy.id)
        else:
            matched.append(PolicyMatch(policy, actions))
    return matched, unpriced


def _fired(library: Library, scope: Scope, failures: list[Failure]) -> list[Trigger]:
    """The management triggers whose conditions all hold."""
    fired: list[Trigger] = []
    for trigger in library.triggers:
        try:
            if scope.all_hold(trigger.when):
                fired.append(trigger)
        except ClauseFailed as exc:
            failures.append(
                _failure(f"management trigger {trigger.id}", exc, {"when[{}]": trigger.when})
            )
    return fired


def _closed_findings(
    library: Library, currency: str | None, failures: list[Failure]
) -> list[Finding]:
    """Fail closed: what tier2 cannot judge goes to a human, first of all reasons."""
    findings: list[Finding] = []
    if failures:
        findings.append(
            Finding(
                Reason(
                    ReasonCode.LIBRARY_ERROR,
                    "the library cannot be evaluated on this case: "
                    + "; ".join(map(str, failures)),
                    failures[0].owner.split(" ")[-1],
                ),
                Outcome.ESCALATE,
                library.routing.library_error,
            )
        )
    if currency is not None and currency not in library.currencies:
        accepted = ", ".join(sorted(library.currencies)) or "none"
        findings.append(
            Finding(
                Reason(
                    ReasonCode.CURRENCY_NOT_ACCEPTED,
                    f"the case is in {currency}; the {library.name} library accepts {accepted}",
                    "currencies",
                ),
                Outcome.ESCALATE,
                library.routing.currency_not_accepted,
            )
        )
    return findings


def _by_precedence(
    matched: list[PolicyMatch],
) -> tuple[PolicyMatch | None, tuple[PolicyMatch, ...], list[tuple[str, str]]]:
    """The winner among the matches of the highest precedence, or the conflict among them;
    and the lower matches they override."""
    if not matched:
        return None, (), []
    top = max(m.policy.precedence for m in matched)
    group = [m for m in matched if m.policy.precedence == top]
    if len(group) > 1 and len({m.prescription() for m in group}) > 1:
        winner, conflict = None, tuple(group)
    else:
        winner, conflict = group[0], ()
    by = group[0].policy.id if winner else "+".join(m.policy.id for m in group)
    return winner, conflict, [(m.policy.id, by) for m in matched if m.policy.precedence < top]


def apply_policy(case: Case, library: Library, received: Received, gathered: Gathered) -> Applied:
    """Check every rule of A4 in order of precedence and match the policies (A4 step 6)."""
    scope = gathered.scope
    currency = case_currency(case, library)
    failures = list(gathered.failures)
    fired = _fired(library, scope, failures)
    matched, unpriced = _match_policies(library, scope, currency, failures)
    findings = _closed_findings(library, currency, failures)
    findings += _rule_findings(case, library, received, gathered, fired)
    winner, conflict, overridden = _by_precedence(matched)
    findings.append(_policy_step(library, gathered, winner, conflict, currency, matched=matched))

    first = findings[0].reason
    record = StageRecord(
        stage="apply_policy",
        read=(
            f"library {library.name} {library.version}",
            "authority",
            "management_triggers",
            "policies",
        ),
        found={
            "triggers": [t.id for t in fired],
            "matched": [m.policy.id for m in matched],
            "not_priced": unpriced,
            "overridden": [{"policy": p, "by": b} for p, b in overridden],
            "conflict": [m.policy.id for m in conflict],
            "winner": None if winner is None else winner.policy.id,
            "reasons": [f.reason.code.value for f in findings],
            **({"not_evaluated": [str(f) for f in failures]} if failures else {}),
        },
        decided=f"first reason: {first.code.value} ({first.rule})",
    )
    return Applied(
        findings=tuple(findings),
        matched=tuple(matched),
        winner=winner,
        conflict=conflict,
        overridden=tuple(overridden),
        triggers=tuple(t.id for t in fired),
        record=record,
        failures=tuple(failures),
    )


# --------------------------------------------------------------------------- resolve or escalate


class Resolution(NamedTuple):
    outcome: Outcome
    escalate_to: str | None
    actions: tuple[Action, ...]
    guidance: str | None
    record: StageRecord
    # Every distinct guidance when several policies return the case (see Finding.guidances).
    guidances: tuple[str, ...] = ()


def resolve_or_escalate(library: Library, applied: Applied) -> Resolution:
    """The first finding decides; the winning policy's actions are done or recommended."""
    first = applied.findings[0]
    actions = applied.winner.actions if applied.winner else ()
    outcome = first.outcome
    target = first.escalate_to if outcome is Outcome.ESCALATE else None
    guidance = first.guidance if outcome is Outcome.RETURN_TO_TIER1 else None
    engine = library.authority.engine_role
    if outcome is Outcome.RESOLVE:
        decided = "resolve in place: " + (
            ", ".join(_describe(a) for a in actions) if actions else "no action needed"
        )
    elif outcome is Outcome.RETURN_TO_TIER1:
        decided = "return to tier-1 with guidance"
    else:
        decided = f"escalate to {target}" + (
            " recommending " + ", ".join(_describe(a) for a in actions) if actions else ""
        )
    record = StageRecord(
        stage="resolve_or_escalate",
        read=("apply_policy.reasons", "authority"),
        found={
            "outcome": outcome.value,
            "escalate_to": target,
            "decided_by": first.reason.code.value,
            "actions": [_describe(a) for a in actions],
            "actions_are": "carried out" if outcome is Outcome.RESOLVE else "recommended",
            "authority": {"role": engine.name, "limit": engine.limit},
        },
        decided=decided,
    )
    guidances = first.guidances if outcome is Outcome.RETURN_TO_TIER1 else ()
    return Resolution(outcome, target, actions, guidance, record, guidances)


def _describe(a: Action) -> str:
    head = a.type if a.amount is None else f"{a.type} {_fmt(a.amount, a.currency)}"
    return head + describe_params(a.params)

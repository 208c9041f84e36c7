"""The document stage: the internal note, the annotated handoff, tier-1 guidance, a draft reply.

The wording lives in Jinja2 templates (package defaults, overridable per library); this
module only assembles the plain data they render from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tier2.core.library import Library
from tier2.core.model import Action, Case, Outcome, StageRecord
from tier2.core.stages import (
    Applied,
    Gathered,
    PolicyMatch,
    Received,
    Resolution,
    earlier_decisions,
)


@dataclass(frozen=True, slots=True)
class Documents:
    note: str
    guidance: str | None
    customer_reply: str | None
    escalation_handoff: Mapping[str, Any] | None
    record: StageRecord


def _action(a: Action) -> dict[str, Any]:
    return {"type": a.type, "amount": a.amount, "currency": a.currency}


def _prescription(m: PolicyMatch) -> str:
    p = m.policy
    head = {
        Outcome.RESOLVE: "resolve",
        Outcome.RETURN_TO_TIER1: "return to tier-1",
        Outcome.ESCALATE: f"escalate to {p.escalate_to}",
    }[p.outcome]
    acts = ", ".join(
        a.type if a.amount is None else f"{a.type} {a.amount:,.2f} {a.currency or ''}".rstrip()
        for a in m.actions
    )
    return head + (f": {acts}" if acts else "")


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _ticket_information(case: Case) -> dict[str, Any]:
    """The ticket, its timeline and the customer, for the escalation handoff."""
    t, h, c = case.ticket, case.handoff, case.customer
    return {
        "case_id": case.case_id,
        "ticket_id": t.id,
        "subject": t.subject,
        "channel": t.channel,
        "severity": t.severity.value,
        "category": t.category,
        "created_at": _iso(t.created_at),
        "escalated_by_tier1_at": _iso(h.escalated_at),
        "received_by_tier2_at": _iso(case.received_at),
        "customer": {
            "id": c.id,
            "name": c.name,
            "company": c.company,
            "segment": c.segment,
            "vip": c.vip,
            "arr": c.arr,
        },
    }


def _issue_summary(case: Case) -> dict[str, Any]:
    """The issue as the ticket and tier-1 describe it, and what the customer asks for."""
    t, h = case.ticket, case.handoff
    return {
        "description": t.description,
        "tier1_reason": h.reason,
        "customer_expectation": h.customer_expectation,
        "request": None
        if h.request is None
        else {
            "type": h.request.type,
            "amount": h.request.amount,
            "currency": h.request.currency,
        },
    }


def _steps_taken(case: Case, applied: Applied) -> list[dict[str, Any]]:
    """The steps tier-1 took, then tier2's policy check."""
    return [
        {"by": "tier1", "step": s.step, "result": s.result, "at": _iso(s.at)}
        for s in case.handoff.steps_taken
    ] + [
        {
            "by": "tier2",
            "step": "apply_policy",
            "result": "matched: " + (", ".join(m.policy.id for m in applied.matched) or "none"),
            "at": None,
        }
    ]


def _current_status(resolution: Resolution, applied: Applied, gathered: Gathered) -> dict[str, Any]:
    """Where the case goes, why, what else was found and the risk signals."""
    first = applied.findings[0].reason
    return {
        "escalated_to": resolution.escalate_to,
        "because": {"code": first.code.value, "detail": first.detail},
        "also_found": [
            {"code": f.reason.code.value, "detail": f.reason.detail} for f in applied.findings[1:]
        ],
        "signals": {
            k: gathered.signals[k]
            for k in (
                "complaint_pattern",
                "commercial_sensitivity",
                "churn_threat",
                "public_complaint",
            )
        },
    }


def _recommendation(resolution: Resolution, applied: Applied) -> dict[str, Any]:
    """The recommended actions, the policy behind them and any conflicting policies."""
    return {
        "actions": [_action(a) for a in resolution.actions],
        "policy": None if applied.winner is None else applied.winner.policy.id,
        "conflicting_policies": [
            {"id": m.policy.id, "prescription": _prescription(m)} for m in applied.conflict
        ],
    }


def _customer_communication(case: Case) -> dict[str, Any]:
    """The customer's mood, channel and last message."""
    t = case.ticket
    last_customer = next((m.body for m in reversed(t.messages) if m.sender == "customer"), None)
    return {
        "sentiment": case.handoff.sentiment,
        "channel": t.channel,
        "last_customer_message": last_customer,
    }


def _escalation_handoff(
    case: Case, resolution: Resolution, applied: Applied, gathered: Gathered
) -> dict[str, Any]:
    """The fields of a proper escalation handoff form, so the new owner does not start cold."""
    return {
        "ticket_information": _ticket_information(case),
        "issue_summary": _issue_summary(case),
        "steps_taken": _steps_taken(case, applied),
        "current_status": _current_status(resolution, applied, gathered),
        "recommendation": _recommendation(resolution, applied),
        "customer_communication": _customer_communication(case),
    }


def _template_context(
    case: Case,
    library: Library,
    now: datetime,
    handoff_form: Mapping[str, Any] | None,
    *,
    received: Received,
    gathered: Gathered,
    applied: Applied,
    resolution: Resolution,
) -> dict[str, Any]:
    """The data the templates render from, before any document is written."""
    titles = {m.policy.id: m.policy.title for m in applied.matched} if applied.overridden else {}
    return {
        "case": case,
        "now": now.isoformat(),
        "library": {"name": library.name, "version": library.version, "title": library.title},
        "outcome": resolution.outcome.value,
        "escalate_to": resolution.escalate_to,
        "reasons": [
            {"code": f.reason.code.value, "detail": f.reason.detail, "rule": f.reason.rule}
            for f in applied.findings
        ],
        "matched": [
            {"id": m.policy.id, "title": m.policy.title, "citation": m.policy.citation}
            for m in applied.matched
        ],
        "winner": None
        if applied.winner is None
        else {
            "id": applied.winner.policy.id,
            "title": applied.winner.policy.title,
            "citation": applied.winner.policy.citation,
        },
        "conflict": [
            {"id": m.policy.id, "citation": m.policy.citation, "prescription": _prescription(m)}
            for m in applied.conflict
        ],
        "overridden": [{"policy": p, "by": b, "title": titles[p]} for p, b in applied.overridden],
        "actions": [_action(a) for a in resolution.actions],
        "signals": gathered.signals,
        "complexity_points": gathered.complexity_points,
        "missing": received.missing,
        "missing_steps": received.missing_steps,
        "stages": [received.record, gathered.record, applied.record, resolution.record],
        "handoff_form": handoff_form,
        "base_guidance": resolution.guidance,
        "earlier": earlier_decisions(case),
    }


def _document_record(
    handoff_form: Mapping[str, Any] | None, guidance: str | None, reply: str | None
) -> StageRecord:
    """The record of the document stage: which documents were written."""
    return StageRecord(
        stage="document",
        read=("templates",),
        found={
            "note": "annotated escalation handoff" if handoff_form else "internal note",
            "guidance": guidance is not None,
            "customer_reply": reply is not None,
        },
        decided="documents written: note"
        + (", escalation handoff" if handoff_form else "")
        + (", tier-1 guidance" if guidance else "")
        + (", draft customer reply" if reply else ""),
    )


def document(
    case: Case,
    library: Library,
    now: datetime,
    *,
    received: Received,
    gathered: Gathered,
    applied: Applied,
    resolution: Resolution,
) -> Documents:
    """Write the note for the ticket and the documents the outcome calls for."""
    outcome = resolution.outcome
    handoff_form = (
        _escalation_handoff(case, resolution, applied, gathered)
        if outcome is Outcome.ESCALATE
        else None
    )
    context = _template_context(
        case,
        library,
        now,
        handoff_form,
        received=received,
        gathered=gathered,
        applied=applied,
        resolution=resolution,
    )
    # Each template sees the documents rendered before it, so the order matters.
    guidance = (
        library.templates.render("guidance.md", context).strip()
        if outcome is Outcome.RETURN_TO_TIER1
        else None
    )
    context["guidance"] = guidance
    context["handoff"] = (  # the annotated handoff, rendered once for the note
        library.templates.render("handoff.md", context) if handoff_form else None
    )
    reply = (
        None
        if outcome is Outcome.RETURN_TO_TIER1
        else library.templates.render("reply.md", context).strip()
    )
    context["customer_reply"] = reply
    note = library.templates.render("note.md", context).strip() + "\n"
    return Documents(
        note, guidance, reply, handoff_form, _document_record(handoff_form, guidance, reply)
    )

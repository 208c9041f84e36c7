"""The decision pipeline: one case, one library, the clock passed in; one Decision out."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from tier2.core.documents import DocumentError, Documents, document, fallback_documents
from tier2.core.library import Library
from tier2.core.model import Action, Case, Decision, Outcome, Reason, ReasonCode
from tier2.core.stages import (
    Applied,
    Finding,
    Gathered,
    Resolution,
    apply_policy,
    gather_context,
    receive,
    resolve_or_escalate,
)


class Verdict(NamedTuple):
    """A decision without its documents: what a what-if replay compares."""

    outcome: Outcome
    escalate_to: str | None
    reasons: tuple[Reason, ...]
    policies: tuple[str, ...]
    actions: tuple[Action, ...]


def verdict(case: Case, library: Library, now: datetime | None = None) -> Verdict:
    """The first four stages only (no document rendered): the outcome, target, reasons,
    policies and actions `decide` gives, unless a template fails on the case (then `decide`
    escalates it as library_error)."""
    clock = case.received_at if now is None else now
    received = receive(case, library)
    gathered = gather_context(case, library, clock)
    applied = apply_policy(case, library, received, gathered)
    resolution = resolve_or_escalate(library, applied)
    return Verdict(
        outcome=resolution.outcome,
        escalate_to=resolution.escalate_to,
        reasons=tuple(f.reason for f in applied.findings),
        policies=tuple(m.policy.id for m in applied.matched),
        actions=resolution.actions,
    )


def decide(case: Case, library: Library, now: datetime | None = None) -> Decision:
    """Take one escalated case through the five stages. Pure: same inputs, same Decision."""
    clock = case.received_at if now is None else now
    received = receive(case, library)
    gathered = gather_context(case, library, clock)
    applied = apply_policy(case, library, received, gathered)
    resolution = resolve_or_escalate(library, applied)
    try:
        docs = document(
            case,
            library,
            clock,
            received=received,
            gathered=gathered,
            applied=applied,
            resolution=resolution,
        )
    except DocumentError as exc:  # fail closed: a person gets the case, and tier2's own note
        applied, resolution, docs = _without_templates(
            case, library, clock, str(exc), gathered=gathered, applied=applied
        )
    return Decision(
        case_id=case.case_id,
        outcome=resolution.outcome,
        escalate_to=resolution.escalate_to,
        reasons=tuple(f.reason for f in applied.findings),
        policies=tuple(m.policy.id for m in applied.matched),
        actions=resolution.actions,
        guidance=docs.guidance,
        stages=(received.record, gathered.record, applied.record, resolution.record, docs.record),
        note=docs.note,
        customer_reply=docs.customer_reply,
        library_name=library.name,
        library_version=library.version,
        library_digest=library.digest,
        escalation_handoff=docs.escalation_handoff,
    )


def _without_templates(
    case: Case,
    library: Library,
    clock: datetime,
    problem: str,
    *,
    gathered: Gathered,
    applied: Applied,
) -> tuple[Applied, Resolution, Documents]:
    """The library's templates failed on this case: it goes to a person, first reason
    library_error, nothing carried out, its documents written without any template."""
    failed = Finding(
        Reason(
            ReasonCode.LIBRARY_ERROR,
            f"the documents could not be written: {problem}",
            "templates",
        ),
        Outcome.ESCALATE,
        library.routing.library_error,
    )
    applied = applied._replace(findings=(failed, *applied.findings))
    resolution = resolve_or_escalate(library, applied)
    docs = fallback_documents(
        case, library, clock, problem, applied=applied, gathered=gathered, resolution=resolution
    )
    return applied, resolution, docs

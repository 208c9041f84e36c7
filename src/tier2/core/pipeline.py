"""The decision pipeline: one case, one library, the clock passed in; one Decision out."""

from __future__ import annotations

from datetime import datetime

from tier2.core.documents import document
from tier2.core.library import Library
from tier2.core.model import Case, Decision
from tier2.core.stages import apply_policy, gather_context, receive, resolve_or_escalate


def decide(case: Case, library: Library, now: datetime | None = None) -> Decision:
    """Take one escalated case through the five stages. Pure: same inputs, same Decision."""
    clock = case.received_at if now is None else now
    received = receive(case, library)
    gathered = gather_context(case, library, clock)
    applied = apply_policy(case, library, received, gathered)
    resolution = resolve_or_escalate(library, applied)
    docs = document(
        case,
        library,
        clock,
        received=received,
        gathered=gathered,
        applied=applied,
        resolution=resolution,
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

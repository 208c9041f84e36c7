"""`tier2 case show`: a case's whole path, for review."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tier2.store import models as m


def show_case(session: Session, case_id: str) -> str | None:
    case = session.get(m.Case, case_id)
    if case is None:
        return None
    out = [
        f"Case {case.id} (ticket {case.ticket_id}): {case.state}; "
        f"received {case.received_at.isoformat()}; escalation {case.escalations}; "
        f"library {case.library}",
        "",
        "Path:",
    ]
    for e in session.scalars(
        select(m.AuditEntry).where(m.AuditEntry.case_id == case_id).order_by(m.AuditEntry.seq)
    ):
        details = ", ".join(f"{k}={v}" for k, v in e.data.items())
        out.append(f"  #{e.seq} {e.at.isoformat()} {e.event}" + (f": {details}" if details else ""))
    for d in session.scalars(
        select(m.Decision).where(m.Decision.case_id == case_id).order_by(m.Decision.seq)
    ):
        body = d.body
        out += [
            "",
            f"Decision {d.seq} ({d.decided_at.isoformat()}): {d.outcome}"
            + (f" -> {d.escalate_to}" if d.escalate_to else "")
            + f", library {d.library_digest}",
        ]
        out += [f"  reason: {r['code']}: {r['detail']}" for r in body["reasons"]]
        out += [f"  stage {s['stage']}: {s['decided']}" for s in body["stages"]]
    actions = session.scalars(
        select(m.Action).where(m.Action.case_id == case_id).order_by(m.Action.id)
    ).all()
    if actions:
        out += ["", "Actions:"]
        out += [
            f"  {a.idempotency_key}: {a.type} {a.amount if a.amount is not None else ''} "
            f"{a.currency or ''} {a.status}".rstrip()
            for a in actions
        ]
    for n in session.scalars(select(m.Note).where(m.Note.case_id == case_id).order_by(m.Note.id)):
        out += ["", f"Written to ticket {n.ticket_id} ({n.kind}, {n.written_at.isoformat()}):"]
        out += ["  " + line if line else "" for line in n.body.splitlines()]
    return "\n".join(out) + "\n"


def case_path(session: Session, case_id: str) -> dict[str, Any] | None:
    """A case's whole path as plain JSON: what `tier2 case show` prints, for the API."""
    case = session.get(m.Case, case_id)
    if case is None:
        return None
    return {
        "case_id": case.id,
        "ticket_id": case.ticket_id,
        "state": case.state,
        "received_at": case.received_at.isoformat(),
        "escalations": case.escalations,
        "library": case.library,
        "path": [
            {"seq": e.seq, "at": e.at.isoformat(), "event": e.event, "data": e.data}
            for e in session.scalars(
                select(m.AuditEntry)
                .where(m.AuditEntry.case_id == case_id)
                .order_by(m.AuditEntry.seq)
            )
        ],
        "decisions": [
            {"seq": d.seq, "decided_at": d.decided_at.isoformat(), "decision": d.body}
            for d in session.scalars(
                select(m.Decision).where(m.Decision.case_id == case_id).order_by(m.Decision.seq)
            )
        ],
        "actions": [
            {
                "key": a.idempotency_key,
                "type": a.type,
                "amount": a.amount,
                "currency": a.currency,
                "status": a.status,
                "executed_at": None if a.executed_at is None else a.executed_at.isoformat(),
            }
            for a in session.scalars(
                select(m.Action).where(m.Action.case_id == case_id).order_by(m.Action.id)
            )
        ],
        "notes": [
            {"kind": n.kind, "written_at": n.written_at.isoformat(), "body": n.body}
            for n in session.scalars(
                select(m.Note).where(m.Note.case_id == case_id).order_by(m.Note.id)
            )
        ],
        "sla_escalations": [
            {
                "kind": s.kind,
                "target": s.target,
                "severity": s.severity,
                "at": s.at.isoformat(),
                "escalate_to": s.escalate_to,
            }
            for s in session.scalars(
                select(m.SlaEscalation)
                .where(m.SlaEscalation.case_id == case_id)
                .order_by(m.SlaEscalation.id)
            )
        ],
    }

"""`tier2 run`: own escalated cases from arrival to a closed, documented outcome.

Each case moves through its states in small transactions, each idempotent:

  intake      the case row (its id from the escalation) + audit "received"; the ticket is taken
  decide      the decision + audit "decided"                              received -> decided
  act         per action: the help desk's ledger entry (idempotency key) + done + audit
                                                                           decided -> acted
  document    the note (and reply draft / tier-1 guidance) on the ticket, the ticket moved,
              + audit "documented"                                         acted -> documented
  finish      the final state + audit               documented -> closed | returned | escalated

A kill at any point leaves the last committed state; the next run picks the case up there.
A decision is only stored when its transaction commits, so a case is never decided twice;
an action is only carried out with its ledger entry, keyed, so never twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tier2.contract import CaseError, decision_to_dict, parse_case
from tier2.core import decide
from tier2.core.library import Library
from tier2.helpdesk import local
from tier2.helpdesk.base import HelpDesk
from tier2.store import audit
from tier2.store import models as m
from tier2.store.models import CaseState

FINAL = {CaseState.CLOSED.value, CaseState.RETURNED.value, CaseState.ESCALATED.value}
OPEN_STATES = [
    s.value for s in CaseState if s.value not in FINAL
]  # received, deciding, decided, acted, documented, reopened
FINAL_OF = {
    "resolve": CaseState.CLOSED.value,
    "return_to_tier1": CaseState.RETURNED.value,
    "escalate": CaseState.ESCALATED.value,
}


def _enter(
    session: Session, case: m.Case, state: str, now: datetime, *, event: str, data: dict[str, Any]
) -> None:
    """Move a case to a state and record it in the audit log, in the same transaction."""
    case.state, case.updated_at = state, now
    audit.append(session, at=now, case_id=case.id, event=event, data=data)


@dataclass
class RunStats:
    received: int = 0
    reopened: int = 0
    finished: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failed: list[tuple[str, str]] = field(default_factory=list)


class Runner:
    def __init__(
        self,
        engine: Engine,
        library: Library,
        desk: HelpDesk,
        clock: Callable[[], datetime],
    ) -> None:
        self.engine = engine
        self.library = library
        self.desk = desk
        self.clock = clock

    # ------------------------------------------------------------------ intake

    def intake(self, stats: RunStats) -> None:
        """Open a case for each escalated ticket; a ticket escalated again reopens its case."""
        for ticket_id in self.desk.escalations():
            payload = self.desk.read_case(ticket_id)
            case_id = str(payload["case_id"])
            now = self.clock()
            with Session(self.engine) as session, session.begin():
                case = session.get(m.Case, case_id)
                if case is None:
                    session.add(
                        m.Case(
                            id=case_id,
                            ticket_id=ticket_id,
                            state=CaseState.RECEIVED.value,
                            received_at=datetime.fromisoformat(payload["received_at"]),
                            payload=payload,
                            library=f"{self.library.name} {self.library.version}",
                            updated_at=now,
                        )
                    )
                    session.flush()
                    audit.append(
                        session,
                        at=now,
                        case_id=case_id,
                        event="received",
                        data={"ticket": ticket_id},
                    )
                    stats.received += 1
                elif case.state in FINAL:
                    earlier = [
                        {
                            "seq": d.seq,
                            "decided_at": d.decided_at.isoformat(),
                            "outcome": d.outcome,
                            "escalate_to": d.escalate_to,
                            "reasons": [r["code"] for r in d.body["reasons"]],
                        }
                        for d in session.scalars(
                            select(m.Decision)
                            .where(m.Decision.case_id == case_id)
                            .order_by(m.Decision.seq)
                        )
                    ]
                    payload["facts"] = {**payload.get("facts", {}), "earlier_decisions": earlier}
                    case.state, case.payload, case.updated_at = (
                        CaseState.REOPENED.value,
                        payload,
                        now,
                    )
                    case.escalations += 1
                    audit.append(
                        session,
                        at=now,
                        case_id=case_id,
                        event="reopened",
                        data={"ticket": ticket_id, "escalation": case.escalations},
                    )
                    stats.reopened += 1
                local.take(session, ticket_id, now)

    # ------------------------------------------------------------------ the states

    def open_cases(self) -> list[str]:
        with Session(self.engine) as session:
            return list(
                session.scalars(
                    select(m.Case.id)
                    .where(m.Case.state.in_(OPEN_STATES))
                    .order_by(m.Case.received_at, m.Case.id)
                )
            )

    def advance(self, case_id: str, stats: RunStats) -> None:
        """Take one case through every step still open for it."""
        steps = {
            CaseState.RECEIVED.value: self._decide,
            CaseState.REOPENED.value: self._decide,
            CaseState.DECIDING.value: self._decide,
            CaseState.DECIDED.value: self._act,
            CaseState.ACTED.value: self._document,
            CaseState.DOCUMENTED.value: self._finish,
        }
        while True:
            with Session(self.engine) as session:
                state = session.scalar(select(m.Case.state).where(m.Case.id == case_id))
            if state is None or state in FINAL:
                return
            outcome = steps[state](case_id)
            if outcome is not None:
                stats.finished += 1
                stats.outcomes[outcome] += 1
                return

    def _latest(self, session: Session, case_id: str) -> m.Decision:
        decision = session.scalars(
            select(m.Decision)
            .where(m.Decision.case_id == case_id)
            .order_by(m.Decision.seq.desc())
            .limit(1)
        ).first()
        if decision is None:
            raise LookupError(f"case {case_id} has no decision")
        return decision

    def _decide(self, case_id: str) -> None:
        now = self.clock()
        with Session(self.engine) as session, session.begin():
            case = session.get(m.Case, case_id, with_for_update=True)
            assert case is not None
            parsed = parse_case(case.payload, case_id)
            if isinstance(parsed, CaseError):
                raise ValueError("; ".join(parsed.lines()))
            decision = decide(parsed, self.library, now)
            body = decision_to_dict(decision)
            seq = (
                session.scalar(
                    select(func.max(m.Decision.seq)).where(m.Decision.case_id == case_id)
                )
                or 0
            ) + 1
            row = m.Decision(
                case_id=case_id,
                seq=seq,
                decided_at=now,
                outcome=body["outcome"],
                escalate_to=body["escalate_to"],
                library_digest=self.library.digest,
                body=body,
            )
            session.add(row)
            session.flush()
            if decision.outcome.value == "resolve":  # escalations only recommend their actions
                for i, action in enumerate(decision.actions):
                    session.add(
                        m.Action(
                            case_id=case_id,
                            decision_id=row.id,
                            type=action.type,
                            idempotency_key=f"{case_id}:{seq}:{i}:{action.type}",
                            amount=action.amount,
                            currency=action.currency,
                        )
                    )
            _enter(
                session,
                case,
                CaseState.DECIDED.value,
                now,
                event="decided",
                data={
                    "seq": seq,
                    "outcome": body["outcome"],
                    "escalate_to": body["escalate_to"],
                    "reasons": [r["code"] for r in body["reasons"]],
                    "policies": body["policies"],
                    "library": body["library"],
                },
            )

    def _act(self, case_id: str) -> None:
        with Session(self.engine) as session:
            decision = self._latest(session, case_id)
            pending = list(
                session.scalars(
                    select(m.Action.id)
                    .where(m.Action.decision_id == decision.id, m.Action.status == "pending")
                    .order_by(m.Action.id)
                )
            )
        for action_id in pending:
            now = self.clock()
            with Session(self.engine) as session, session.begin():
                action = session.get(m.Action, action_id, with_for_update=True)
                assert action is not None
                if action.status != "pending":
                    continue
                case = session.get(m.Case, case_id)
                assert case is not None
                entry = local.carry_out(
                    session,
                    ticket_id=case.ticket_id,
                    key=action.idempotency_key,
                    type=action.type,
                    amount=action.amount,
                    currency=action.currency,
                    at=now,
                )
                action.status, action.executed_at, action.result = "done", now, {"ledger": entry}
                audit.append(
                    session,
                    at=now,
                    case_id=case_id,
                    event="action",
                    data={
                        "key": action.idempotency_key,
                        "type": action.type,
                        "amount": action.amount,
                        "currency": action.currency,
                        "ledger": entry,
                    },
                )
        now = self.clock()
        with Session(self.engine) as session, session.begin():
            case = session.get(m.Case, case_id, with_for_update=True)
            assert case is not None
            if case.state == CaseState.DECIDED.value:
                _enter(session, case, CaseState.ACTED.value, now, event="acted", data={})

    def _document(self, case_id: str) -> None:
        now = self.clock()
        with Session(self.engine) as session, session.begin():
            case = session.get(m.Case, case_id, with_for_update=True)
            assert case is not None
            if case.state != CaseState.ACTED.value:
                return
            decision = self._latest(session, case_id)
            body: dict[str, Any] = decision.body
            written = []
            for kind, text in (
                ("note", body["note"]),
                ("reply_draft", body["customer_reply"]),
                ("guidance", body["guidance"]),
            ):
                if text:
                    key = f"{case_id}:{decision.seq}:{kind}"
                    local.write_note(
                        session,
                        ticket_id=case.ticket_id,
                        case_id=case_id,
                        key=key,
                        kind=kind,
                        body=text,
                        at=now,
                    )
                    written.append(kind)
            status, group = {
                "resolve": ("resolved", None),
                "return_to_tier1": ("open", "tier1"),
                "escalate": ("open", body["escalate_to"]),
            }[body["outcome"]]
            local.move(
                session,
                case.ticket_id,
                status=status,
                group=group,
                tags=[f"tier2:{body['outcome']}"],
                at=now,
            )
            _enter(
                session,
                case,
                CaseState.DOCUMENTED.value,
                now,
                event="documented",
                data={"written": written, "ticket_status": status, "group": group},
            )

    def _finish(self, case_id: str) -> str | None:
        now = self.clock()
        with Session(self.engine) as session, session.begin():
            case = session.get(m.Case, case_id, with_for_update=True)
            assert case is not None
            if case.state != CaseState.DOCUMENTED.value:
                return None
            outcome = self._latest(session, case_id).outcome
            final = FINAL_OF[outcome]
            _enter(session, case, final, now, event=final, data={"outcome": outcome})
            return outcome

    # ------------------------------------------------------------------ a pass

    def run_once(self, on_case: Callable[[str, RunStats], None] | None = None) -> RunStats:
        """Take in every escalation, then advance every open case to its final state."""
        stats = RunStats()
        self.intake(stats)
        for case_id in self.open_cases():
            try:
                self.advance(case_id, stats)
            except Exception as exc:  # one case's fault must not stop the others
                stats.failed.append((case_id, f"{type(exc).__name__}: {exc}"))
            if on_case is not None:
                on_case(case_id, stats)
        return stats

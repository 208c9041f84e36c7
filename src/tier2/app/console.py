"""The console's use cases: what a senior specialist does with a case tier2 escalated to
them. Accept it (who, when, and an estimated resolution time), resolve it (what was done,
and what was granted under whose authority: written back to the help desk as a note and the
ticket resolved, audited, in one store transaction) and rate tier2's decision on it.

Who may do what is decided here (`Actor.may_work`): a head of support works every case, a
senior the cases escalated to their role or team, a viewer none. Form input is read by pure
functions (`read_acceptance`, `read_resolution`, `read_review`) that raise `BadInput` with
a sentence for the page; the store is a port (`ConsoleStore`), implemented by
`tier2.store.console`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from tier2.app.ports import AuditEntry, HelpDesk, NoteOrder, Resolve, text_digest
from tier2.app.states import CaseState
from tier2.core.documents import md_block, md_line
from tier2.core.library import Library

HEAD = "head_of_support"
SENIOR = "senior"
VIEWER = "viewer"
ROLES = (HEAD, SENIOR, VIEWER)
OUTCOMES = ("resolve", "return_to_tier1", "escalate")

MAX_SUMMARY = 4000
MAX_TEXT = 2000
MAX_AMOUNT = 1e12
_WORD = re.compile(r"[a-z][a-z0-9_]{0,31}")
_CURRENCY = re.compile(r"[A-Z]{3}")


class ConsoleError(Exception):
    """Why a console action was not done: one sentence for the page."""

    status = 400


class BadInput(ConsoleError):
    """A form's value that cannot be used (which field, what is wrong)."""

    status = 400


class Refused(ConsoleError):
    """The user's role does not allow this on this case."""

    status = 403


class NotFound(ConsoleError):
    status = 404


class Conflict(ConsoleError):
    """The case is no longer where the form found it (resolved, accepted by someone else)."""

    status = 409


@dataclass(frozen=True)
class Actor:
    """A signed-in console user."""

    name: str
    role: str
    team: str | None = None

    def may_work(self, escalate_to: str | None) -> bool:
        """Whether this user may accept, resolve and rate a case escalated to `escalate_to`."""
        if self.role == HEAD:
            return True
        return self.role == SENIOR and self.team is not None and self.team == escalate_to

    def queue_of(self) -> str | None:
        """The escalation target whose cases this user's queue shows (None: every target)."""
        return None if self.role == HEAD else (self.team or "")

    def may_claim(self, role: str, library: Library) -> bool:
        """Whether this user may resolve a case under the authority of `role` (a role of the
        library's authority ladder, or a team): a head of support under any; a senior under
        their own team, and under the ladder's roles up to their ceiling: their team's rung
        when their team is a role of the ladder, else the ladder's first rung above the
        engine (the first human authority). A viewer under none."""
        if self.role == HEAD:
            return True
        if self.role != SENIOR or not self.team:
            return False
        if role == self.team:
            return True
        names = [r.name for r in library.authority.ladder]
        if role not in names:
            return False
        if self.team in names:
            ceiling = names.index(self.team)
        else:
            engine = (
                names.index(library.authority.engine) if library.authority.engine in names else -1
            )
            ceiling = min(engine + 1, len(names) - 1)
        return names.index(role) <= ceiling


# ---------------------------------------------------------------------- what forms say


@dataclass(frozen=True)
class Acceptance:
    estimated_resolution_at: datetime | None


@dataclass(frozen=True)
class Grant:
    """What the senior granted: an action, its money, and the role whose authority covers it."""

    type: str
    amount: float | None
    currency: str | None


@dataclass(frozen=True)
class HumanResolution:
    summary: str
    role: str  # the authority they resolved under (a role of the library's ladder)
    grant: Grant | None


@dataclass(frozen=True)
class Rating:
    right_outcome: bool
    right_target: bool
    handoff_score: int  # 1-5
    missing: str | None
    could_close: bool
    violation: bool
    correct_outcome: str | None
    correct_escalate_to: str | None
    comment: str | None

    @property
    def agrees(self) -> bool:
        return self.right_outcome and self.right_target and not self.violation

    @property
    def score(self) -> float:
        """The rubric, out of 100: right outcome 40, right target 30, the handoff's
        completeness 20 x (score - 1) / 4, and 10 when tier2 could not have closed the case
        itself (it was right to hand it on); a policy or authority violation scores 0."""
        if self.violation:
            return 0.0
        total = 40.0 * self.right_outcome + 30.0 * self.right_target
        total += 20.0 * (self.handoff_score - 1) / 4
        total += 0.0 if self.could_close else 10.0
        return round(total, 2)


def _text(form: Mapping[str, str], name: str, limit: int = MAX_TEXT) -> str | None:
    value = (form.get(name) or "").strip()
    if len(value) > limit:
        raise BadInput(f"{name}: at most {limit} characters (got {len(value)})")
    return value or None


def _flag(form: Mapping[str, str], name: str) -> bool:
    value = (form.get(name) or "").strip().lower()
    if value in ("", "no", "false", "0", "off"):
        return False
    if value in ("yes", "true", "1", "on"):
        return True
    raise BadInput(f"{name}: yes or no")


def read_time(value: str | None, name: str, now: datetime) -> datetime | None:
    """A time from a form: ISO-8601, or a browser's datetime-local (no offset: the time in
    `now`'s zone)."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{name}: not a date and time (like 2026-03-04T17:00)") from None
    return at.replace(tzinfo=now.tzinfo) if at.tzinfo is None else at


def read_acceptance(form: Mapping[str, str], now: datetime) -> Acceptance:
    """The acceptance block: an estimated resolution time, if given, in the future and within
    a year."""
    estimate = read_time(form.get("estimated_resolution_at"), "estimated_resolution_at", now)
    if estimate is not None and not now - timedelta(minutes=5) <= estimate <= now + timedelta(
        days=366
    ):
        raise BadInput("estimated_resolution_at: must be between now and a year from now")
    return Acceptance(estimate)


def _amount(form: Mapping[str, str]) -> float | None:
    raw = (form.get("amount") or "").strip()
    if not raw:
        return None
    try:
        amount = float(raw)
    except ValueError:
        raise BadInput(f"amount: not a number ({raw[:20]!r})") from None
    if not math.isfinite(amount) or not 0 <= amount <= MAX_AMOUNT:
        raise BadInput("amount: a number from 0 to a trillion")
    return round(amount, 2)


def _grant(form: Mapping[str, str], library: Library) -> Grant | None:
    kind = (form.get("action_type") or "").strip()
    amount = _amount(form)
    currency = (form.get("currency") or "").strip().upper() or None
    if not kind:
        if amount is not None or currency is not None:
            raise BadInput("action_type: say which action the amount is for")
        return None
    if not _WORD.fullmatch(kind):
        raise BadInput("action_type: a word of lowercase letters, digits and _ (like refund)")
    if amount is None:
        if currency is not None:
            raise BadInput("amount: give the amount the currency is for")
        return Grant(kind, None, None)
    if currency is None or not _CURRENCY.fullmatch(currency):
        raise BadInput("currency: an ISO 4217 code (like EUR) for the amount")
    if library.currencies and currency not in library.currencies:
        accepted = ", ".join(sorted(library.currencies))
        raise BadInput(f"currency: {currency} is not one the library accepts ({accepted})")
    return Grant(kind, amount, currency)


def read_resolution(
    form: Mapping[str, str], library: Library, targets: Sequence[str] = ()
) -> HumanResolution:
    """What was done (a summary), under whose authority (a role of the library's authority
    ladder, or one of its escalation targets), and what was granted; money is granted only
    under a role of the ladder, within its limit."""
    summary = _text(form, "summary", MAX_SUMMARY)
    if summary is None:
        raise BadInput("summary: say what was done to resolve the case")
    role = (form.get("role") or "").strip()
    ladder = {r.name: r for r in library.authority.ladder}
    if role not in ladder and role not in targets:
        known = ", ".join(dict.fromkeys([*ladder, *targets]))
        raise BadInput(f"role: one of the library's roles and teams ({known})")
    grant = _grant(form, library)
    if grant is None or grant.amount is None or grant.currency is None:
        return HumanResolution(summary, role, grant)
    if role not in ladder:
        raise BadInput(
            f"role: {role} has no authority over money in the library; choose a role of its "
            f"authority ladder ({', '.join(ladder)})"
        )
    if not ladder[role].covers(grant.amount * library.currencies.get(grant.currency, 1.0)):
        raise BadInput(
            f"amount: {grant.amount:,.2f} {grant.currency} is above the authority of {role} "
            f"(limit {ladder[role].limit:,.2f}); choose the role that covers it"
        )
    return HumanResolution(summary, role, grant)


def _handoff_score(form: Mapping[str, str]) -> int:
    try:
        handoff = int((form.get("handoff_score") or "").strip())
    except ValueError:
        raise BadInput("handoff_score: a whole number from 1 to 5") from None
    if not 1 <= handoff <= 5:
        raise BadInput("handoff_score: a whole number from 1 to 5")
    return handoff


def _corrected(
    form: Mapping[str, str], right: tuple[bool, bool], decided: tuple[str | None, str | None],
    targets: Sequence[str],
) -> tuple[str, str | None]:  # fmt: skip
    """What the senior says was right: the outcome and target given, or tier2's where they
    said tier2's was right."""
    outcome = (form.get("correct_outcome") or "").strip() or None
    if outcome is not None and outcome not in OUTCOMES:
        raise BadInput(f"correct_outcome: one of {', '.join(OUTCOMES)}")
    if right[0] or outcome is None:
        if not right[0]:
            raise BadInput("correct_outcome: say which outcome would have been right")
        outcome = decided[0]
    target = (form.get("correct_escalate_to") or "").strip() or None
    if target is not None and target not in targets:
        raise BadInput(f"correct_escalate_to: one of the library's targets ({', '.join(targets)})")
    if outcome != "escalate":
        return str(outcome), None
    if target is None and right[1] and decided[0] == "escalate":
        target = decided[1]
    if target is None:
        raise BadInput("correct_escalate_to: say who the case should have gone to")
    return outcome, target


def read_review(
    form: Mapping[str, str], targets: Sequence[str], decided: tuple[str | None, str | None]
) -> Rating:
    """The rubric's answers about tier2's decision (`decided`: its outcome and target); where
    it was not right, what would have been."""
    right = (_flag(form, "right_outcome"), _flag(form, "right_target"))
    outcome, target = _corrected(form, right, decided, targets)
    return Rating(
        right_outcome=right[0],
        right_target=right[1],
        handoff_score=_handoff_score(form),
        missing=_text(form, "missing"),
        could_close=_flag(form, "could_close"),
        violation=_flag(form, "violation"),
        correct_outcome=outcome,
        correct_escalate_to=target,
        comment=_text(form, "comment"),
    )


# ---------------------------------------------------------------------- the store's port


@dataclass(frozen=True)
class WorkCase:
    """A case as the console's actions read it (locked to the end of the transaction)."""

    id: str
    ticket_id: str
    state: str
    escalations: int
    escalate_to: str | None
    resolved_at: datetime | None
    decision_seq: int | None
    decided_at: datetime | None
    outcome: str | None


@dataclass(frozen=True)
class Accepted:
    by: str
    at: datetime


class ConsoleTransaction(Protocol):
    handle: Any  # passed to the help desk (the local one writes in it)

    def work_case(self, case_id: str) -> WorkCase | None: ...

    def acceptance(self, case_id: str, escalation: int) -> Accepted | None:
        """Who accepted this escalation of the case, if anyone."""
        ...

    def accept(
        self, case_id: str, escalation: int, by: str, at: datetime, estimate: datetime | None
    ) -> None:
        """This escalation of the case accepted (the earlier escalations' acceptances are
        kept)."""
        ...

    def resolved_escalation(self, case_id: str, escalation: int) -> bool:
        """Whether a human resolution is recorded for this escalation of the case."""
        ...

    def add_resolution(self, row: Mapping[str, Any]) -> None: ...

    def add_notes(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """What was written on the ticket, as tier2's other notes are kept."""
        ...

    def save_review(self, row: Mapping[str, Any]) -> None:
        """The review, in place of this reviewer's earlier one on the case."""
        ...

    def audit(self, entries: Sequence[AuditEntry]) -> None: ...


class ConsoleStore(Protocol):
    def transaction(self) -> AbstractContextManager[ConsoleTransaction]: ...


# ---------------------------------------------------------------------- the use cases

ESCALATED = CaseState.ESCALATED.value
ACCEPTED = "accepted"
RESOLVED_BY_HUMAN = "resolved_by_human"
REVIEWED = "reviewed"


def resolution_note(case_id: str, actor: Actor, found: HumanResolution) -> str:
    """The note written on the ticket: who resolved it, under whose authority, what was done
    and granted (the senior's words escaped as the case's are, inert in Markdown and HTML)."""
    lines = [
        f"## Resolved by {md_line(actor.name)} (authority: {md_line(found.role)})",
        "",
        f"Case {md_line(case_id)}, escalated by tier2, resolved in the tier2 console.",
        "",
        md_block(found.summary),
    ]
    grant = found.grant
    if grant is not None:
        money = "" if grant.amount is None else f" {grant.amount:,.2f} {grant.currency}"
        lines += ["", f"Granted: {md_line(grant.type)}{money}"]
    return "\n".join(lines) + "\n"


class CaseWork:
    """Accept, resolve and rate escalated cases: the console's writes."""

    def __init__(
        self,
        store: ConsoleStore,
        desk: HelpDesk,
        library: Library,
        clock: Callable[[], datetime],
        *,
        after_resolve: Callable[[Sequence[str]], None] | None = None,
    ) -> None:
        self.store = store
        self.desk = desk
        self.library = library
        self.clock = clock
        self.after_resolve = after_resolve

    def _workable(self, tx: ConsoleTransaction, actor: Actor, case_id: str) -> WorkCase:
        case = tx.work_case(case_id)
        if case is None:
            raise NotFound(f"no case {case_id}")
        if not actor.may_work(case.escalate_to):
            raise Refused(
                f"case {case_id} is escalated to {case.escalate_to or 'no one'}; "
                f"{actor.name} ({actor.role}) may not work it"
            )
        return case

    def _open(self, tx: ConsoleTransaction, actor: Actor, case_id: str) -> WorkCase:
        case = self._workable(tx, actor, case_id)
        if case.state != ESCALATED:
            raise Conflict(f"case {case_id} is {case.state}, not escalated to a person")
        if case.resolved_at is not None or tx.resolved_escalation(case_id, case.escalations):
            raise Conflict(f"case {case_id} is resolved already")
        return case

    def accept(self, actor: Actor, case_id: str, form: Acceptance) -> datetime:
        """The case's current escalation is the actor's: the acceptance block (who, when, the
        estimate), audited. Each escalation is accepted once (a case escalated again, once
        more)."""
        now = self.clock()
        with self.store.transaction() as tx:
            case = self._open(tx, actor, case_id)
            earlier = tx.acceptance(case_id, case.escalations)
            if earlier is not None:
                raise Conflict(
                    f"case {case_id} was accepted by {earlier.by} at {earlier.at:%Y-%m-%d %H:%M}"
                )
            estimate = form.estimated_resolution_at
            tx.accept(case_id, case.escalations, actor.name, now, estimate)
            data = {
                "by": actor.name,
                "role": actor.role,
                "escalation": case.escalations,
                "estimated_resolution_at": None if estimate is None else estimate.isoformat(),
            }
            tx.audit([(now, case_id, ACCEPTED, data)])
        return now

    def resolve(self, actor: Actor, case_id: str, found: HumanResolution) -> datetime:
        """Recorded, written back (the note, the ticket resolved) and audited in one
        transaction; then the follow-up hook records the case's final resolution."""
        now = self.clock()
        with self.store.transaction() as tx:
            case = self._open(tx, actor, case_id)
            if not actor.may_claim(found.role, self.library):
                raise Refused(
                    f"{actor.name} ({actor.role}, {actor.team or 'no team'}) may not resolve "
                    f"under the authority of {found.role}: choose your team or a role of the "
                    "authority ladder up to your own"
                )
            body = resolution_note(case_id, actor, found)
            note = NoteOrder(case.ticket_id, f"{case_id}:{case.escalations}:resolved", "note", body)
            grant = found.grant
            tx.add_resolution(
                {
                    "case_id": case_id, "escalation": case.escalations, "resolved_by": actor.name,
                    "role": found.role, "at": now, "summary": found.summary,
                    "action_type": None if grant is None else grant.type,
                    "amount": None if grant is None else grant.amount,
                    "currency": None if grant is None else grant.currency,
                }
            )  # fmt: skip
            self.desk.write_notes(tx.handle, [note], now)
            self.desk.move(tx.handle, [Resolve(case.ticket_id, ("tier2:resolved_by_human",))], now)
            data = {
                "by": actor.name, "role": found.role, "escalation": case.escalations,
                "summary_digest": text_digest(found.summary),
                "grant": None if grant is None else {
                    "type": grant.type, "amount": grant.amount, "currency": grant.currency
                },
                "notes": [{"key": note.key, "kind": note.kind, "digest": text_digest(body)}],
            }  # fmt: skip
            tx.add_notes(
                [{"case_id": case_id, "ticket_id": note.ticket_id, "idempotency_key": note.key,
                  "kind": note.kind, "body": body, "written_at": now}]
            )  # fmt: skip
            # (after the help desk's calls: the audit log is locked to the end)
            tx.audit([(now, case_id, RESOLVED_BY_HUMAN, data)])
        if self.after_resolve is not None:  # the follow-up hook: the case's final resolution
            self.after_resolve([case_id])
        return now

    def review(self, actor: Actor, case_id: str, rating: Rating) -> float:
        """The actor's rating of tier2's latest decision on the case; its score."""
        now = self.clock()
        with self.store.transaction() as tx:
            case = self._workable(tx, actor, case_id)
            if case.decision_seq is None:
                raise Conflict(f"case {case_id} has no decision to rate")
            row = {
                "case_id": case_id, "decision_seq": case.decision_seq, "reviewer": actor.name,
                "at": now, "right_outcome": rating.right_outcome,
                "right_target": rating.right_target, "handoff_score": rating.handoff_score,
                "missing": rating.missing, "could_close": rating.could_close,
                "violation": rating.violation, "score": rating.score, "agrees": rating.agrees,
                "correct_outcome": None if rating.agrees else rating.correct_outcome,
                "correct_escalate_to": None if rating.agrees else rating.correct_escalate_to,
                "comment": rating.comment,
            }  # fmt: skip
            tx.save_review(row)
            data = {
                "by": actor.name, "decision_seq": case.decision_seq, "score": rating.score,
                "agrees": rating.agrees,
            }  # fmt: skip
            tx.audit([(now, case_id, REVIEWED, data)])
        return rating.score


def regression_case(
    payload: Mapping[str, Any], decided: Mapping[str, Any], review: Mapping[str, Any]
) -> dict[str, Any]:
    """A disagreement as a regression case: the stored case, what the senior says was right,
    and what tier2 decided."""
    if review.get("correct_outcome") is None:  # (it agrees: tier2's decision was right)
        expected_outcome, expected_target = decided.get("outcome"), decided.get("escalate_to")
    else:
        expected_outcome = review["correct_outcome"]
        expected_target = review.get("correct_escalate_to")
    return {
        "case": dict(payload),
        "expected": {"outcome": expected_outcome, "escalate_to": expected_target},
        "decided": {
            "outcome": decided.get("outcome"),
            "escalate_to": decided.get("escalate_to"),
            "first_reason": (decided.get("reasons") or [{}])[0].get("code"),
            "policies": decided.get("policies", []),
            "actions": decided.get("actions", []),
            "library": decided.get("library"),
        },
        "review": {
            k: review.get(k) for k in ("reviewer", "at", "score", "missing", "violation", "comment")
        },
    }

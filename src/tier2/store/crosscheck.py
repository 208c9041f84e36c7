"""`tier2 audit verify`'s cross-checks: what tier2 wrote, against the audit entries that
recorded it.

The runner's entries record each row by what identifies it, with its content or a digest:

  decided     a decision (case, seq): its time, outcome, target, library digest and a digest
              of its body; the actions stored with it (key, type, amount, currency)
  action      an action carried out (key): type, amount, currency, ticket and what the help
              desk recorded (the local help desk: its ledger row); at the action's time
  documented  the notes it stored (key, kind, a digest of the text), at their time;
  sla_breach  as an SLA escalation's entry does for its note

Each row is looked up by its identity: a row no entry records, an entry whose row is gone and
a value that differs are each named. The first is reported: decisions, then actions, the
ledger and notes, each in id order, each followed by what is recorded but missing. Entries
written before they carried all of this (no body digest, no action or note lists) are
checked for what they carry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from tier2.app.ports import json_digest, text_digest
from tier2.store.models import Action, Decision, LedgerEntry, Note, table

_ACTION_FIELDS = frozenset({"key", "type", "amount", "currency", "params", "ticket"})
# the events whose step stores notes: tier2's documents, the SLA monitor's, a person's
# resolution written from the console
_STORING_NOTES = frozenset({"documented", "sla_breach", "resolved_by_human"})


@dataclass(frozen=True)
class _Decided:
    entry: int
    outcome: Any
    escalate_to: Any
    library: Any  # the library's digest
    decided_at: str | None
    body: str | None  # the digest of the decision's body
    lists_actions: bool


@dataclass(frozen=True)
class _Planned:
    """An action as the entry of its decision recorded it."""

    entry: int
    decision: tuple[str, int]
    type: Any
    amount: Any
    currency: Any
    params: Any = None  # (an entry records them only when the action has them)


@dataclass(frozen=True)
class _Done:
    """An action carried out, as its entry recorded it."""

    entry: int
    at: datetime
    case_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class _Written:
    """A note as the entry that stored it recorded it."""

    entry: int
    at: datetime
    case_id: str | None
    kind: Any
    digest: Any


@dataclass
class Recorded:
    """What the audit entries say tier2 wrote, gathered while the chain is walked."""

    decisions: dict[tuple[str, int], _Decided] = field(default_factory=dict)
    planned: dict[str, _Planned] = field(default_factory=dict)
    done: dict[str, _Done] = field(default_factory=dict)
    notes: dict[str, _Written] = field(default_factory=dict)
    unlisted: set[str] = field(default_factory=set)  # cases with notes stored by entries
    # written before they listed them

    def add(self, seq: int, at: datetime, case_id: str | None, event: str, data: Any) -> None:
        if not isinstance(data, dict) or case_id is None:
            return
        if event == "decided":
            self._decided(seq, case_id, data)
        elif event == "action" and isinstance(data.get("key"), str):
            self.done[data["key"]] = _Done(seq, at, case_id, data)
        elif event in _STORING_NOTES:
            notes = data.get("notes")
            if not isinstance(notes, list):
                self.unlisted.add(case_id)
                return
            for n in notes:
                if isinstance(n, dict) and isinstance(n.get("key"), str):
                    self.notes[n["key"]] = _Written(
                        seq, at, case_id, n.get("kind"), n.get("digest")
                    )

    def _decided(self, seq: int, case_id: str, data: dict[str, Any]) -> None:
        library = data.get("library")
        actions = data.get("actions")
        number = data.get("seq")
        if not isinstance(number, int):
            return
        decision = (case_id, number)
        self.decisions[decision] = _Decided(
            seq, data.get("outcome"), data.get("escalate_to"),
            library.get("digest") if isinstance(library, dict) else None,
            data.get("decided_at") if isinstance(data.get("decided_at"), str) else None,
            data.get("body") if isinstance(data.get("body"), str) else None,
            isinstance(actions, list),
        )  # fmt: skip
        for a in actions if isinstance(actions, list) else []:
            if isinstance(a, dict) and isinstance(a.get("key"), str):
                self.planned[a["key"]] = _Planned(
                    seq,
                    decision,
                    a.get("type"),
                    a.get("amount"),
                    a.get("currency"),
                    a.get("params"),
                )


# ---------------------------------------------------------------------- wording


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:.2f}" if round(value, 2) == value else repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _differs(name: str, what: str, row: Any, recorded: Any, entry: int) -> str | None:
    if row == recorded:
        return None
    return f"{name}: {what} {_shown(row)} differs from audit entry {entry} ({_shown(recorded)})"


def _time(value: str) -> datetime | str:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return value


def _rows(session: Session, *columns: Any) -> Iterator[Row[Any]]:
    yield from session.execute(
        select(*columns).order_by(columns[0]).execution_options(yield_per=2000)
    )


# ---------------------------------------------------------------------- the checks


def cross_check(session: Session, rec: Recorded) -> tuple[dict[str, int], str | None]:
    """Each table against the entries; how many rows each had, and the first disagreement."""
    checked: dict[str, int] = {}
    decisions: dict[int, tuple[str, int]] = {}  # decision row id -> (case, seq)
    listing = {d for d, r in rec.decisions.items() if r.lists_actions}
    passes: list[tuple[str, Callable[[], tuple[int, str | None]]]] = [
        ("decisions", lambda: _decisions(session, rec, decisions)),
        ("actions", lambda: _actions(session, rec, decisions, listing)),
        ("ledger rows", lambda: _ledger(session, rec)),
        ("notes", lambda: _notes(session, rec)),
    ]
    for name, check in passes:
        checked[name], problem = check()
        if problem is not None:
            return checked, problem
    return checked, None


def _decisions(
    session: Session, rec: Recorded, ids: dict[int, tuple[str, int]]
) -> tuple[int, str | None]:
    d = table(Decision).c
    n = 0
    for row in _rows(
        session, d.id, d.case_id, d.seq, d.decided_at, d.outcome, d.escalate_to,
        d.library_digest, d.body,
    ):  # fmt: skip
        n += 1
        ids[row.id] = (row.case_id, row.seq)
        name = f"decision {row.seq} of case {row.case_id} (row {row.id})"
        r = rec.decisions.pop((row.case_id, row.seq), None)
        if r is None:
            return n, f"{name}: no audit entry records it"
        problem = (
            _differs(name, "outcome", row.outcome, r.outcome, r.entry)
            or _differs(name, "escalation target", row.escalate_to, r.escalate_to, r.entry)
            or (None if r.library is None else _differs(
                name, "library digest", row.library_digest, r.library, r.entry
            ))
            or (None if r.decided_at is None else _differs(
                name, "decision time", row.decided_at, _time(r.decided_at), r.entry
            ))
            or (None if r.body is None or json_digest(row.body) == r.body else (
                f"{name}: its body differs from the digest audit entry {r.entry} recorded"
            ))
        )  # fmt: skip
        if problem:
            return n, problem
    if rec.decisions:
        (case, seq), r = min(rec.decisions.items(), key=lambda kv: kv[1].entry)
        return n, f"decision {seq} of case {case}, recorded in audit entry {r.entry}, is missing"
    return n, None


def _actions(
    session: Session,
    rec: Recorded,
    decisions: dict[int, tuple[str, int]],
    listing: set[tuple[str, int]],
) -> tuple[int, str | None]:
    a = table(Action).c
    n = 0
    seen: set[str] = set()
    for row in _rows(
        session, a.id, a.case_id, a.decision_id, a.idempotency_key, a.type, a.amount,
        a.currency, a.params, a.status, a.executed_at, a.result,
    ):  # fmt: skip
        n += 1
        seen.add(row.idempotency_key)
        name = f"action row {row.id} (case {row.case_id}, {row.type})"
        decision = decisions.get(row.decision_id)
        p = rec.planned.pop(row.idempotency_key, None)
        if p is None and (decision is None or decision in listing):
            return n, f"{name}: no audit entry records it"
        problem = None if p is None else _planned(name, row, p, decision)
        if problem is None:
            problem = _carried_out(name, row, rec.done.get(row.idempotency_key))
        if problem is not None:
            return n, problem
    if rec.planned:
        key, p = min(rec.planned.items(), key=lambda kv: kv[1].entry)
        return n, (
            f"action {key} (case {p.decision[0]}, {p.type}), recorded in audit entry "
            f"{p.entry}, is missing"
        )
    unseen = [(d.entry, k, d) for k, d in rec.done.items() if k not in seen]
    if unseen:
        entry, key, d = min(unseen, key=lambda x: x[0])
        return n, (
            f"action {key} (case {d.case_id}, {d.data.get('type')}), carried out in audit "
            f"entry {entry}, is missing"
        )
    return n, None


def _planned(name: str, row: Any, p: _Planned, decision: tuple[str, int] | None) -> str | None:
    if decision != p.decision:
        return (
            f"{name}: it belongs to decision {_decision(decision)}; audit entry {p.entry} "
            f"stored it with decision {_decision(p.decision)}"
        )
    return (
        _differs(name, "type", row.type, p.type, p.entry)
        or _differs(name, "amount", row.amount, p.amount, p.entry)
        or _differs(name, "currency", row.currency, p.currency, p.entry)
        or _differs(name, "parameters", row.params, p.params, p.entry)
    )


def _decision(d: tuple[str, int] | None) -> str:
    return "none" if d is None else f"{d[1]} of case {d[0]}"


def _carried_out(name: str, row: Any, d: _Done | None) -> str | None:
    if row.status != "done":
        if d is None:
            return None
        return f"{name}: it is {row.status}, but audit entry {d.entry} records it carried out"
    if d is None:
        return f"{name}: it is marked carried out, but no audit entry records that"
    result = {k: v for k, v in d.data.items() if k not in _ACTION_FIELDS}
    return (
        _differs(name, "case", row.case_id, d.case_id, d.entry)
        or _differs(name, "type", row.type, d.data.get("type"), d.entry)
        or _differs(name, "amount", row.amount, d.data.get("amount"), d.entry)
        or _differs(name, "currency", row.currency, d.data.get("currency"), d.entry)
        or _differs(name, "parameters", row.params, d.data.get("params"), d.entry)
        or _differs(name, "time carried out", row.executed_at, d.at, d.entry)
        or _differs(name, "help desk's record", row.result, result, d.entry)
    )


def _ledger(session: Session, rec: Recorded) -> tuple[int, str | None]:
    le = table(LedgerEntry).c
    n = 0
    seen: set[str] = set()
    for row in _rows(
        session,
        le.id,
        le.idempotency_key,
        le.ticket_id,
        le.type,
        le.amount,
        le.currency,
        le.params,
    ):
        n += 1
        seen.add(row.idempotency_key)
        d = rec.done.get(row.idempotency_key)
        if d is None or "ledger" not in d.data:
            return n, (
                f"ledger row {row.id} (ticket {row.ticket_id}, {row.type} "
                f"{_shown(row.amount)}): no audit entry records it"
            )
        name = f"ledger row {row.id} (case {d.case_id}, {row.type})"
        problem = (
            (None if d.data["ledger"] == row.id else (
                f"{name}: audit entry {d.entry} records action {row.idempotency_key} as "
                f"ledger row {_shown(d.data['ledger'])}"
            ))
            or _differs(name, "type", row.type, d.data.get("type"), d.entry)
            or _differs(name, "amount", row.amount, d.data.get("amount"), d.entry)
            or _differs(name, "currency", row.currency, d.data.get("currency"), d.entry)
            or _differs(name, "parameters", row.params, d.data.get("params"), d.entry)
            or (None if "ticket" not in d.data else _differs(
                name, "ticket", row.ticket_id, d.data["ticket"], d.entry
            ))
        )  # fmt: skip
        if problem:
            return n, problem
    unseen = [(d.entry, d) for k, d in rec.done.items() if "ledger" in d.data and k not in seen]
    if unseen:
        entry, d = min(unseen, key=lambda x: x[0])
        return n, (
            f"ledger row {_shown(d.data['ledger'])} (case {d.case_id}, {d.data.get('type')}), "
            f"recorded in audit entry {entry}, is missing"
        )
    return n, None


def _notes(session: Session, rec: Recorded) -> tuple[int, str | None]:
    no = table(Note).c
    n = 0
    for row in _rows(
        session, no.id, no.case_id, no.idempotency_key, no.kind, no.body, no.written_at
    ):
        n += 1
        name = f"note row {row.id} (case {row.case_id}, {row.kind})"
        w = rec.notes.pop(row.idempotency_key, None)
        if w is None:
            if row.case_id in rec.unlisted:
                continue  # documented before entries listed their notes
            return n, f"{name}: no audit entry records it"
        problem = (
            _differs(name, "case", row.case_id, w.case_id, w.entry)
            or _differs(name, "kind", row.kind, w.kind, w.entry)
            or _differs(name, "time written", row.written_at, w.at, w.entry)
            or (None if text_digest(row.body) == w.digest else (
                f"{name}: its text differs from the digest audit entry {w.entry} recorded"
            ))
        )  # fmt: skip
        if problem:
            return n, problem
    if rec.notes:
        key, w = min(rec.notes.items(), key=lambda kv: kv[1].entry)
        return n, (
            f"note {key} (case {w.case_id}, {w.kind}), recorded in audit entry {w.entry}, "
            "is missing"
        )
    return n, None

"""An in-memory case store: the UnitOfWork port (tier2.app.ports) over dicts.

A transaction works on a copy of the store and replaces it when the block ends; when the
block raises, nothing it did is kept, as a database transaction would roll back. One runner
("me") holds claims here; a test may give a ticket to another runner by hand.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from tier2.app.ports import (
    AuditEntry,
    CaseRow,
    PendingAction,
    Resolution,
    StoredDecision,
    Unresolved,
)
from tier2.app.states import FINAL_STATES

ME = "me"
FINAL = {s.value for s in FINAL_STATES}


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else copy.deepcopy(value)


@dataclass
class Data:
    """Everything the store holds."""

    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    claims: dict[str, tuple[str | None, datetime | None]] = field(default_factory=dict)
    sla_escalations: list[dict[str, Any]] = field(default_factory=list)
    deliveries: dict[int, datetime | None] = field(default_factory=dict)


class MemoryTransaction:
    """One transaction over a copy of the store's data."""

    def __init__(self, data: Data, clock: Callable[[], datetime]) -> None:
        self.data = data
        self.handle = None
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    # claims
    def reap(self) -> None:
        """No other runner dies here."""

    def orphans(self, limit: int) -> list[str]:
        first: dict[str, datetime] = {}
        for c in self.data.cases.values():
            runner = self.data.claims.get(c["ticket_id"], (None, None))[0]
            if c["state"] not in FINAL and runner is None:
                t = c["ticket_id"]
                first[t] = min(first.get(t, c["received_at"]), c["received_at"])
        return sorted(first, key=lambda t: (first[t], t))[:limit]

    def claim(self, ticket_ids: Sequence[str], listed_at: datetime) -> list[str]:
        for t in dict.fromkeys(ticket_ids):
            runner, released = self.data.claims.get(t, (None, None))
            if runner is None and (released is None or released < listed_at):
                self.data.claims[t] = (ME, None)
        mine = self.held(ticket_ids)
        return [t for t in dict.fromkeys(ticket_ids) if t in mine]

    def held(self, ticket_ids: Sequence[str]) -> set[str]:
        return {t for t in ticket_ids if self.data.claims.get(t, (None, None))[0] == ME}

    def release(self, ticket_ids: Sequence[str]) -> None:
        for t in self.held(ticket_ids):
            self.data.claims[t] = (None, self.now())

    # cases
    def _row(self, c: dict[str, Any], payload: str | None = "json") -> CaseRow:
        given = {"text": orjson.dumps(c["payload"]).decode(), "json": c["payload"]}.get(
            payload or ""
        )
        return CaseRow(
            c["id"], c["ticket_id"], c["state"], c["updated_at"], copy.deepcopy(given),
            c["escalations"],
        )  # fmt: skip

    def open_cases(self) -> list[str]:
        live = [c for c in self.data.cases.values() if c["state"] not in FINAL]
        return [c["id"] for c in sorted(live, key=lambda c: (c["received_at"], c["id"]))]

    def cases(self, case_ids: Sequence[str], *, payload: str | None = None) -> list[CaseRow]:
        return [
            self._row(self.data.cases[i], payload)
            for i in sorted(set(case_ids))
            if i in self.data.cases
        ]

    def cases_of_tickets(self, ticket_ids: Sequence[str]) -> list[CaseRow]:
        found = [c for c in self.data.cases.values() if c["ticket_id"] in set(ticket_ids)]
        return [
            self._row(c, None) for c in sorted(found, key=lambda c: (c["received_at"], c["id"]))
        ]

    def cases_to_take_in(self, case_ids: Sequence[str]) -> dict[str, CaseRow]:
        return {r.id: r for r in self.cases(case_ids, payload="json")}

    def add_cases(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            assert row["id"] not in self.data.cases, f"case {row['id']} stored twice"
            self.data.cases[row["id"]] = {**row, "payload": _json(row["payload"])}

    def update_case(self, case_id: str, now: datetime, **values: Any) -> None:
        self.data.cases[case_id].update(copy.deepcopy(values), updated_at=now)

    def enter(self, moves: Sequence[tuple[str, str]], now: datetime) -> None:
        for case_id, state in moves:
            self.data.cases[case_id].update(state=state, updated_at=now)

    # decisions
    def decision_seqs(self, case_ids: Sequence[str]) -> dict[str, int]:
        seqs: dict[str, int] = {}
        for d in self.data.decisions:
            if d["case_id"] in case_ids:
                seqs[d["case_id"]] = max(seqs.get(d["case_id"], 0), d["seq"])
        return seqs

    def record_outcomes(self, rows: Sequence[tuple[str, str, str, str | None]]) -> None:
        for case_id, outcome, reason, target in rows:
            self.data.cases[case_id].update(
                outcome=outcome, first_reason=reason, escalate_to=target
            )

    def add_decisions(self, rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, int], int]:
        for row in rows:
            key = (row["case_id"], row["seq"])
            assert all((d["case_id"], d["seq"]) != key for d in self.data.decisions), key
            self.data.decisions.append(
                {**row, "body": _json(row["body"]), "id": len(self.data.decisions) + 1}
            )
        ids = {r["case_id"] for r in rows}
        return {
            (d["case_id"], d["seq"]): d["id"] for d in self.data.decisions if d["case_id"] in ids
        }

    def latest_decisions(
        self, case_ids: Sequence[str], *, body: bool = False
    ) -> dict[str, StoredDecision]:
        out = {}
        for d in sorted(self.data.decisions, key=lambda d: d["seq"]):
            if d["case_id"] in case_ids:
                given = copy.deepcopy(d["body"]) if body else None
                out[d["case_id"]] = StoredDecision(d["case_id"], d["seq"], d["outcome"], given)
        return out

    def earlier_decisions(self, case_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        earlier: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for d in sorted(self.data.decisions, key=lambda d: d["seq"]):
            if d["case_id"] in case_ids:
                earlier[d["case_id"]].append(
                    {"seq": d["seq"], "decided_at": d["decided_at"].isoformat(),
                     "outcome": d["outcome"], "escalate_to": d["escalate_to"],
                     "reasons": [r["code"] for r in d["body"]["reasons"]]}
                )  # fmt: skip
        return earlier

    # actions, notes
    def add_actions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            self.data.actions.append({**row, "id": len(self.data.actions) + 1})

    def pending_actions(self, case_ids: Sequence[str]) -> list[PendingAction]:
        return [
            PendingAction(a["id"], a["case_id"], a["idempotency_key"], a["type"], a["amount"],
                          a["currency"], a.get("params"))
            for a in self.data.actions
            if a["case_id"] in case_ids and a["status"] == "pending"
        ]  # fmt: skip

    def actions_done(self, done: Sequence[tuple[int, datetime, dict[str, Any]]]) -> None:
        for action_id, at, result in done:
            self.data.actions[action_id - 1].update(status="done", executed_at=at, result=result)

    def recorded_notes(self, keys: Sequence[str]) -> set[str]:
        return set(keys) & set(self.data.notes)

    def add_notes(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            assert row["idempotency_key"] not in self.data.notes, row["idempotency_key"]
            self.data.notes[row["idempotency_key"]] = dict(row)

    def audit(self, entries: Sequence[AuditEntry]) -> None:
        self.data.audit.extend(copy.deepcopy(list(entries)))

    # the SLA monitor
    def cases_in(self, states: Sequence[str]) -> list[CaseRow]:
        return [self._row(c) for i, c in sorted(self.data.cases.items()) if c["state"] in states]

    def unresolved(self, limit: int) -> list[Unresolved]:
        found = [
            c for c in self.data.cases.values()
            if c["state"] in FINAL and c.get("resolved_at") is None
        ]  # fmt: skip
        found.sort(key=lambda c: (c["updated_at"], c["id"]))
        return [
            Unresolved(
                c["id"], c["ticket_id"], c["state"], c["updated_at"], c.get("escalated_at"),
                copy.deepcopy(c["payload"]),
            )
            for c in found[:limit]
        ]  # fmt: skip

    def record_resolutions(self, rows: Sequence[Resolution]) -> int:
        recorded = 0
        for r in rows:
            case = self.data.cases[r.case_id]
            if case["state"] != r.state or case.get("resolved_at") is not None:
                continue
            case.update(
                escalated_at=r.escalated_at, resolved_at=r.resolved_at,
                resolved_by=r.resolved_by, business_seconds=r.business_seconds,
                calendar_seconds=r.calendar_seconds, waiting_seconds=r.waiting_seconds,
                sla_met=r.sla_met,
            )  # fmt: skip
            recorded += 1
        return recorded

    def monitors_take_turns(self) -> None:
        """One monitor at a time: the test runs one."""

    def sla_escalations(self, case_ids: Sequence[str]) -> set[tuple[str, int, str, str]]:
        return {
            (e["case_id"], e["escalation"], e["target"], e["kind"])
            for e in self.data.sla_escalations
            if e["case_id"] in case_ids
        }

    def add_sla_escalations(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.data.sla_escalations.extend(dict(r) for r in rows)

    # the webhook inbox
    def waiting_deliveries(self) -> int | None:
        waiting = [i for i, taken in self.data.deliveries.items() if taken is None]
        return max(waiting) if waiting else None

    def take_deliveries(self, upto: int, at: datetime) -> int:
        taken = [i for i, t in self.data.deliveries.items() if t is None and i <= upto]
        for i in taken:
            self.data.deliveries[i] = at
        return len(taken)


class MemoryUnitOfWork:
    """The in-memory store's transactions, and the registration of its one runner."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.data = Data()
        self.clock = clock
        self.registered = False
        self.commits = 0

    @contextmanager
    def transaction(self) -> Iterator[MemoryTransaction]:
        working = copy.deepcopy(self.data)
        yield MemoryTransaction(working, self.clock)
        self.data = working  # (not reached when the block raised: rolled back)
        self.commits += 1

    def register(self) -> None:
        self.registered = True

    def release_all(self) -> None:
        for t, (runner, _) in list(self.data.claims.items()):
            if runner == ME:
                self.data.claims[t] = (None, None)

    def retire(self) -> None:
        self.release_all()
        self.registered = False

    def state(self, case_id: str) -> str:
        return str(self.data.cases[case_id]["state"])

    def events(self, case_id: str) -> list[str]:
        return [event for _, cid, event, _ in self.data.audit if cid == case_id]

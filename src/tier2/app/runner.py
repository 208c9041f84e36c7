"""`tier2 run`: own escalated cases from arrival to a closed, documented outcome.

Any number of runners may share a store. A pass works in rounds of up to `batch` tickets:
first the open cases no runner holds (their runner died or let them go), then the escalations
the help desk lists. Each round:

  claim       the tickets no one holds become this runner's (store/claims.py); committed
              before the tickets are read, so a ticket finished meanwhile reads as done
  intake      the case row (its id from the escalation) + audit "received"; a final case
              whose ticket is an escalation again is reopened (a new claim, counted); the
              ticket is taken; a ticket that turns out to be no escalation is let go
  decide      the decision + its actions (pending) + audit "decided"      received -> decided
  act         each action carried out by the help desk under its idempotency key, marked
              done + audit                                                 decided -> acted
  document    the note (and reply draft / tier-1 guidance) on the ticket, the ticket moved,
              + audit "documented"                                         acted -> documented
  finish      the final state + audit, the claim released
                                                    documented -> closed | returned | escalated

Every step checks, in its transaction, that the case's ticket is still this runner's claim.
A kill at any point leaves the last committed state; the runner's lease runs out, and the
next runner takes each case up there. A decision is only stored when its transaction
commits, so a case is never decided twice; an action is only carried out under its key, so
never twice. When a batch fails as a whole its cases are taken one by one, so one bad case
cannot hold up the others. At the end of a pass the runner lets go of what it could not
finish, so a case the library failed on is tried again.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from tier2._batch import batched
from tier2.app.deciding import (
    Decided,
    Decider,
    InProcess,
    Summary,
    WorkerPool,
    decide_payloads,
)
from tier2.app.follow import escalation_time
from tier2.app.ports import (
    ActionOrder,
    AuditEntry,
    CaseRow,
    EscalateTo,
    HelpDesk,
    NoteOrder,
    Read,
    Resolve,
    ReturnToTier1,
    TicketMove,
    Transaction,
    UnitOfWork,
    json_digest,
    text_digest,
)
from tier2.app.states import DECIDABLE, FINAL_OF, FINAL_STATES, CaseState
from tier2.core.library import Library
from tier2.faults import crash_point

FINAL = {s.value for s in FINAL_STATES}
Move = tuple[str, str, str, dict[str, Any]]  # case id, state, audit event, its data


Progress = Callable[[int, int, "RunStats"], None]  # (cases just done, cases in the pass, stats)


@dataclass
class RunStats:
    received: int = 0
    reopened: int = 0
    finished: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failed: list[tuple[str, str]] = field(default_factory=list)
    deliveries: int = 0  # webhook deliveries this pass took

    def fail(self, case_id: str, problem: str) -> None:
        if all(case_id != c for c, _ in self.failed):
            self.failed.append((case_id, problem))


Result = tuple[Summary, str] | str  # a decision (its summary, all of it encoded) or why not


def _move(ticket_id: str, outcome: str, target: str | None) -> TicketMove:
    """Where the case's outcome sends its ticket, tagged with the outcome."""
    tags = (f"tier2:{outcome}",)
    if outcome == "resolve":
        return Resolve(ticket_id, tags)
    if outcome == "return_to_tier1":
        return ReturnToTier1(ticket_id, tags)
    assert target is not None, "an escalation names its target"
    return EscalateTo(ticket_id, target, tags)


def _from_desk(payload: dict[str, Any]) -> dict[str, Any]:
    """A case as the help desk gives it, without `facts.earlier_decisions`: only tier2 writes
    those, from its store, when it reopens a case."""
    facts = payload.get("facts")
    if isinstance(facts, dict) and "earlier_decisions" in facts:
        rest = {k: v for k, v in facts.items() if k != "earlier_decisions"}
        return {**payload, "facts": rest}
    return payload


def _given(given: dict[str, Any] | str) -> dict[str, Any] | str:
    """A new case's payload as filed: the help desk's, without `facts.earlier_decisions`."""
    if isinstance(given, str):
        return given if "earlier_decisions" not in given else _from_desk(orjson.loads(given))
    return _from_desk(given)


# a reopened case's problem is not resolved: its resolution, if any, was not final
UNRESOLVED: dict[str, Any] = dict.fromkeys(
    ("resolved_at", "resolved_by", "business_seconds", "calendar_seconds", "waiting_seconds",
     "sla_met")
)  # fmt: skip


def _refreshed(
    tx: Transaction, case: CaseRow, ticket_id: str, given: dict[str, Any] | str, *,
    escalated: bool, earlier: dict[str, list[dict[str, Any]]], now: datetime,
) -> tuple[str, str, dict[str, Any]] | None:  # fmt: skip
    """A known case given what its ticket holds now: a final case escalated again is
    reopened (with what it was decided before in its facts); a case not decided yet (or
    the library failed on it) takes the ticket's current payload, e.g. a handoff fixed by
    tier-1. Returns its audit event, if any."""
    if case.state in FINAL and not escalated:
        return None  # finished, and its ticket was not escalated again
    payload = _from_desk(given if isinstance(given, dict) else orjson.loads(given))
    if case.state in FINAL:
        facts = {**payload.get("facts", {}), "earlier_decisions": earlier[case.id]}
        escalations = (case.escalations or 1) + 1
        tx.update_case(
            case.id, now, state=CaseState.REOPENED.value, payload={**payload, "facts": facts},
            escalations=escalations, **UNRESOLVED,
        )  # fmt: skip
        return (case.id, "reopened", {"ticket": ticket_id, "escalation": escalations})
    if case.state not in DECIDABLE:
        return None
    stored = case.payload if isinstance(case.payload, dict) else {}
    fresh = payload
    if case.state == CaseState.REOPENED.value:
        kept = (stored.get("facts") or {}).get("earlier_decisions", [])
        fresh = {**payload, "facts": {**payload.get("facts", {}), "earlier_decisions": kept}}
    if fresh == stored:
        return None
    tx.update_case(case.id, now, payload=fresh)
    return (case.id, "updated", {"ticket": ticket_id})


class Ahead:
    """A batch being decided ahead, in worker processes, while the store works on another.

    Its decisions are used only for cases unchanged since they were read (same state time).
    """

    def __init__(self, stamps: dict[str, datetime], now: datetime, wait: Callable[[], Decided]):
        self.stamps, self.now, self._wait = stamps, now, wait
        self._decided: Decided | None = None

    def usable(self, cases: Sequence[Any]) -> dict[str, tuple[datetime, Result]]:
        if self._decided is None:
            try:
                self._decided = self._wait()
            except Exception:  # a worker died: the cases are decided in this process
                self._decided = {}
        return {
            c.id: (self.now, self._decided[c.id])
            for c in cases
            if c.id in self._decided and self.stamps.get(c.id) == c.updated_at
        }


Reading = Callable[[], list[Read]]  # waits for a round's tickets, read in a worker


class Runner:
    """`tier2 run`'s use case: the state machine of every case, over a store (UnitOfWork)
    and a help desk (HelpDesk), both ports."""

    def __init__(
        self,
        store: UnitOfWork,
        library: Library,
        desk: HelpDesk,
        clock: Callable[[], datetime],
        *,
        batch: int = 1000,
        decider: Decider | None = None,
    ) -> None:
        self.store = store
        self.library = library
        self.desk = desk
        self.clock = clock
        self.batch = batch
        self.decider = decider or InProcess(library)
        self.stopping = threading.Event()  # set (SIGTERM): finish the round in hand, then stop
        # what _decide committed, so _document need not read the decision back
        self._documents: dict[str, tuple[int, dict[str, Any]]] = {}

    def close(self) -> None:
        """Leave: every claim this runner holds is released, its entry removed."""
        self.store.retire()

    # ------------------------------------------------------------------ a pass

    def run_once(self, on_progress: Progress | None = None) -> RunStats:
        """Take every open case no runner holds and every escalation the help desk lists to
        its final state, a round at a time; then let go of what could not be finished. The
        webhook deliveries queued before the pass began are then taken (the pass saw them)."""
        if not self.store.registered:
            self.store.register()
        stats = RunStats()
        with self.store.transaction() as tx:
            waiting = tx.waiting_deliveries()
        try:
            self._pass(stats, on_progress)
        finally:  # what this pass could not finish is free for the next one, here or anywhere
            self.store.release_all()
        if waiting is not None and not self.stopping.is_set():
            with self.store.transaction() as tx:
                stats.deliveries = tx.take_deliveries(waiting, self.clock())
        return stats

    def _pass(self, stats: RunStats, on_progress: Progress | None) -> None:
        """Round after round: claim, intake, advance. The next round is claimed and read (in a
        worker, for the local help desk) while this one is taken in, and decided (in the
        workers) while the store advances the one before."""
        with self.store.transaction() as tx:
            tx.reap()
            orphans = len(tx.orphans(self.batch * 1000))
            listed_at = tx.now()  # (before the listing: a ticket done since is not taken)
        listing = list(self.desk.escalations())
        total = orphans + len(listing)
        ahead = not isinstance(self.decider, InProcess)
        previous: tuple[list[str], Ahead | None] | None = None
        for tickets, reading in self._claimed(listing, listed_at):
            case_ids = self.intake(tickets, stats, reading)
            crash_point("after_intake")
            current = (case_ids, self._ahead(case_ids) if ahead and case_ids else None)
            if previous is not None:
                self._advance_round(*previous, stats, total, on_progress)
            previous = current
            if self.stopping.is_set():
                break
        if previous is not None:
            self._advance_round(*previous, stats, total, on_progress)

    def _advance_round(
        self,
        case_ids: list[str],
        ahead: Ahead | None,
        stats: RunStats,
        total: int,
        on_progress: Progress | None,
    ) -> None:
        self._advance(case_ids, stats, ahead)
        if on_progress is not None:
            on_progress(len(case_ids), total, stats)

    def _rounds(
        self, listing: Sequence[str], listed_at: datetime
    ) -> Iterator[tuple[list[str], datetime]]:
        """Tickets to claim, a round at a time, each with when it was listed: open cases no
        one holds, then the help desk's listing."""
        while not self.stopping.is_set():
            with self.store.transaction() as tx:
                found_at = tx.now()
                orphans = tx.orphans(self.batch)
            if not orphans:
                break
            yield orphans, found_at
            with self.store.transaction() as tx:  # none claimed: others have them now
                if not tx.held(orphans):
                    break
        for tickets in batched(listing, self.batch):
            yield list(tickets), listed_at

    def _claimed(
        self, listing: Sequence[str], listed_at: datetime
    ) -> Iterator[tuple[list[str], Reading | None]]:
        """Each round's tickets now this runner's, with their reading begun; the next round
        is claimed and its reading begun before this one is handed over."""
        read = self._reader()
        held: tuple[list[str], Reading | None] | None = None
        for tickets, at in self._rounds(listing, listed_at):
            if self.stopping.is_set():
                break
            with self.store.transaction() as tx:
                mine = tx.claim(tickets, at)
            crash_point("after_claim")
            if not mine:
                continue
            claimed = (mine, read(mine) if read else None)
            if held is not None:
                yield held
            held = claimed
        if held is not None:
            yield held

    def _reader(self) -> Callable[[Sequence[str]], Reading] | None:
        """With deciding workers and a help desk that can be read from another process (the
        local one), a worker reads the next batch of escalations from the store (a reader
        beside the writer) while intake writes this one."""
        reader = self.desk.reader() if isinstance(self.decider, WorkerPool) else None
        if reader is None:
            return None
        pool = self.decider
        assert isinstance(pool, WorkerPool)
        return lambda ticket_ids: pool.read_cases(reader, ticket_ids)

    def _ahead(self, case_ids: Sequence[str]) -> Ahead:
        """Start deciding a batch's decidable cases in the workers."""
        with self.store.transaction() as tx:  # the payloads as JSON text: the worker decodes
            rows = [r for r in tx.cases(case_ids, payload="text") if r.state in DECIDABLE]
        now = self.clock()
        wait = self.decider.start([(r.id, str(r.payload)) for r in rows], now)
        return Ahead({r.id: r.updated_at for r in rows}, now, wait)

    def _advance(self, case_ids: Sequence[str], stats: RunStats, ahead: Ahead | None) -> None:
        try:
            self.advance(case_ids, stats, ahead)
        except Exception as exc:  # one case's fault must not stop the others
            if len(case_ids) == 1:
                stats.fail(case_ids[0], f"{type(exc).__name__}: {exc}")
            else:
                for case_id in case_ids:
                    self._advance([case_id], stats, ahead)

    def advance(self, case_ids: Sequence[str], stats: RunStats, ahead: Ahead | None = None) -> None:
        """Take these cases through every step still open for them.

        With a help desk in the store the steps share one transaction: what tier2 records
        and what the desk does commit together, and each case's row is written once. With a
        remote desk each step commits on its own, so what the desk has done is recorded as
        soon as it is done.
        """
        finished: list[tuple[str, str]] = []
        steps: list[Callable[[Transaction], None]] = [
            lambda tx: self._decide(tx, case_ids, stats, ahead),
            lambda tx: crash_point("after_decision"),
            lambda tx: self._act(tx, case_ids),
            lambda tx: self._document(tx, case_ids),
            lambda tx: crash_point("after_document"),
            lambda tx: finished.extend(self._finish(tx, case_ids)),
        ]
        if self.desk.in_store:
            with self.store.transaction() as tx:
                for step in steps:
                    step(tx)
        else:
            for step in steps:
                with self.store.transaction() as tx:
                    step(tx)
        for _, outcome in finished:  # counted once committed
            stats.finished += 1
            stats.outcomes[outcome] += 1

    def open_cases(self) -> list[str]:
        with self.store.transaction() as tx:
            return tx.open_cases()

    def _cases(
        self, tx: Transaction, case_ids: Sequence[str], states: Collection[str]
    ) -> list[CaseRow]:
        """The cases among these in one of the states whose tickets this runner holds (held
        to the end of the transaction)."""
        rows = [row for row in tx.cases(case_ids) if row.state in states]
        if not rows:
            return []
        mine = tx.held(sorted({r.ticket_id for r in rows}))
        return [row for row in rows if row.ticket_id in mine]

    @staticmethod
    def _enter(tx: Transaction, moves: Sequence[Move], now: datetime) -> None:
        """Move cases to states, each recorded in the audit log, in the same transaction."""
        if moves:
            tx.enter([(cid, state) for cid, state, _, _ in moves], now)
            tx.audit([(now, cid, event, data) for cid, _, event, data in moves])

    # ------------------------------------------------------------------ intake

    def _read(self, ticket_ids: Sequence[str], ahead: Reading | None) -> list[Read]:
        if ahead is not None:
            try:
                return ahead()
            except Exception:  # a worker died: the tickets are read here
                pass
        return [
            (str(p["case_id"]), str(p["ticket"]["id"]), p["received_at"], p)
            for p in self.desk.read_cases(ticket_ids)
        ]

    def intake(
        self,
        ticket_ids: Sequence[str],
        stats: RunStats,
        ahead: Reading | None = None,
    ) -> list[str]:
        """Take in these claimed tickets: a case for each escalation, a final case whose
        ticket is an escalation again reopened, a case not yet decided given what the ticket
        holds now; a ticket that is no escalation and has no open case is let go. `ahead`
        waits for the same tickets read in a worker (their payloads as JSON text, stored as
        they are). Returns the open cases of the tickets, to advance."""
        read = self._read(ticket_ids, ahead)
        now = self.clock()
        with self.store.transaction() as tx:
            mine = tx.held(ticket_ids)
            read = [r for r in read if r[1] in mine]
            escalated = self.desk.escalated(tx.handle, [r[1] for r in read])
            known = tx.cases_to_take_in([case_id for case_id, _, _, _ in read])
            back = [c for c, x in known.items() if x.state in FINAL and x.ticket_id in escalated]
            earlier = tx.earlier_decisions(back)
            new, events = self._taken_in(
                tx, read, known, escalated, earlier=earlier, stats=stats, now=now
            )
            if new:
                tx.add_cases(new)
            tx.audit([(now, case_id, event, data) for case_id, event, data in events])
            return self._take(tx, ticket_ids, mine, now)

    def _taken_in(
        self, tx: Transaction, read: Sequence[Read], known: dict[str, CaseRow],
        escalated: set[str], *, earlier: dict[str, list[dict[str, Any]]], stats: RunStats,
        now: datetime,
    ) -> tuple[list[dict[str, Any]], list[tuple[str, str, dict[str, Any]]]]:  # fmt: skip
        """The new cases' rows, and each case's audit event: received, reopened, updated."""
        new: list[dict[str, Any]] = []
        events: list[tuple[str, str, dict[str, Any]]] = []
        seen: set[str] = set()
        for case_id, ticket_id, received_at, given in read:
            if case_id in seen:  # the same case twice in one batch
                continue
            seen.add(case_id)
            case = known.get(case_id)
            if case is None:
                if ticket_id in escalated:  # (else finished by another runner meanwhile)
                    new.append(self._new_case(case_id, ticket_id, received_at, given, now=now))
                    events.append((case_id, "received", {"ticket": ticket_id}))
                    stats.received += 1
                continue
            event = _refreshed(
                tx, case, ticket_id, given, escalated=ticket_id in escalated, earlier=earlier,
                now=now,
            )  # fmt: skip
            if event is not None:
                events.append(event)
                stats.reopened += event[1] == "reopened"
        return new, events

    def _new_case(
        self, case_id: str, ticket_id: str, received_at: str, given: dict[str, Any] | str, *,
        now: datetime,
    ) -> dict[str, Any]:  # fmt: skip
        return {
            "id": case_id,
            "ticket_id": ticket_id,
            "state": CaseState.RECEIVED.value,
            "received_at": datetime.fromisoformat(received_at),
            "payload": _given(given),
            "library": f"{self.library.name} {self.library.version}",
            "escalations": 1,
            "updated_at": now,
            "escalated_at": escalation_time(
                orjson.loads(given) if isinstance(given, str) else given
            ),
        }

    def _take(
        self, tx: Transaction, ticket_ids: Sequence[str], mine: set[str], now: datetime
    ) -> list[str]:
        """The tickets with an open case are taken (their cases returned, to advance); the
        others are let go."""
        working = [c for c in tx.cases_of_tickets(sorted(mine)) if c.state not in FINAL]
        busy = {c.ticket_id for c in working}
        self.desk.take(tx.handle, [t for t in ticket_ids if t in busy], now)
        tx.release(sorted(mine - busy))
        return [c.id for c in working]

    # ------------------------------------------------------------------ the steps

    def _decide(
        self, tx: Transaction, case_ids: Sequence[str], stats: RunStats, ahead: Ahead | None
    ) -> None:
        """Each decidable case decided (ahead in the workers, else here) and stored with its
        actions (pending, for a resolution); a case the library failed on waits."""
        cases = self._cases(tx, case_ids, DECIDABLE)
        if not cases:
            return
        ready = self._decided(tx, cases, ahead)
        seqs = tx.decision_seqs([c.id for c in cases])
        rows = []
        summaries: dict[str, Summary] = {}
        for c in cases:
            at, result = ready[c.id]
            if isinstance(result, str):  # the library failed on this case: it waits
                stats.fail(c.id, result)
                continue
            summary, encoded = result
            summaries[c.id] = summary
            rows.append(
                {
                    "case_id": c.id,
                    "seq": seqs.get(c.id, 0) + 1,
                    "decided_at": at,
                    "outcome": summary["outcome"],
                    "escalate_to": summary["escalate_to"],
                    "library_digest": summary["library"]["digest"],
                    "body": encoded,
                }
            )
        if rows:
            self._store_decisions(tx, rows, summaries)

    def _decided(
        self, tx: Transaction, cases: Sequence[CaseRow], ahead: Ahead | None
    ) -> dict[str, tuple[datetime, Result]]:
        """Each case's decision (when, what): as decided ahead if the case is unchanged since,
        else decided here now."""
        ready = ahead.usable(cases) if ahead is not None else {}
        rest = [c.id for c in cases if c.id not in ready]
        if rest:  # not decided ahead (or changed since): decide them here
            now = self.clock()
            payloads = [(r.id, r.payload or {}) for r in tx.cases(rest, payload="json")]
            decided = decide_payloads(self.library, payloads, now)
            ready.update((cid, (now, result)) for cid, result in decided.items())
        return ready

    def _store_decisions(
        self, tx: Transaction, rows: list[dict[str, Any]], summaries: dict[str, Summary]
    ) -> None:
        """The decisions, a resolution's actions (pending), and each case decided + audit."""
        now = self.clock()
        self._documents.update(
            (row["case_id"], (row["seq"], summaries[row["case_id"]])) for row in rows
        )  # used by _document once this commits (checked against the stored seq)
        ids = tx.add_decisions(rows)
        tx.record_outcomes(
            [
                (r["case_id"], r["outcome"], _first_reason(summaries[r["case_id"]]),
                 r["escalate_to"])
                for r in rows
            ]
        )  # fmt: skip
        actions = [
            {
                "case_id": row["case_id"],
                "decision_id": ids[row["case_id"], row["seq"]],
                "type": action["type"],
                "idempotency_key": f"{row['case_id']}:{row['seq']}:{i}:{action['type']}",
                "amount": action.get("amount"),
                "currency": action.get("currency"),
                "params": action_params(action),
                "status": "pending",
            }
            for row in rows
            if row["outcome"] == "resolve"  # escalations only recommend their actions
            for i, action in enumerate(summaries[row["case_id"]]["actions"])
        ]
        if actions:
            tx.add_actions(actions)
        of_case: dict[str, list[dict[str, Any]]] = {row["case_id"]: [] for row in rows}
        for a in actions:
            of_case[a["case_id"]].append(a)
        moves = [_decided_move(r, summaries[r["case_id"]], of_case[r["case_id"]]) for r in rows]
        self._enter(tx, moves, now)

    def _act(self, tx: Transaction, case_ids: Sequence[str]) -> None:
        """Each decided case's pending actions carried out by the help desk, once per key."""
        now = self.clock()
        cases = self._cases(tx, case_ids, (CaseState.DECIDED.value,))
        if not cases:
            return
        tickets = {c.id: c.ticket_id for c in cases}
        pending = tx.pending_actions(list(tickets))
        orders = [
            ActionOrder(tickets[a.case_id], a.key, a.type, a.amount, a.currency, a.params)
            for a in pending
        ]
        results = self.desk.carry_out(tx.handle, orders, now) if orders else []
        if orders:
            crash_point("after_effect_sent")
        tx.actions_done([(a.id, now, result) for a, result in zip(pending, results, strict=True)])
        entries: list[AuditEntry] = [
            (now, a.case_id, "action",
             {"key": a.key, "type": a.type, "amount": a.amount, "currency": a.currency,
              **({"params": a.params} if a.params else {}),
              "ticket": tickets[a.case_id], **result})
            for a, result in zip(pending, results, strict=True)
        ]  # fmt: skip
        tx.audit(entries)
        self._enter(tx, [(c.id, CaseState.ACTED.value, "acted", {}) for c in cases], now)

    def _document(self, tx: Transaction, case_ids: Sequence[str]) -> None:
        """The note (and reply draft or guidance) on each acted case's ticket, the ticket
        moved where the outcome sends it."""
        now = self.clock()
        cases = self._cases(tx, case_ids, (CaseState.ACTED.value,))
        if not cases:
            return
        bodies = self._bodies(tx, [c.id for c in cases])
        notes: list[tuple[str, NoteOrder]] = []  # (case id, the note)
        moves: list[TicketMove] = []
        done: list[Move] = []
        for c in cases:
            seq, body = bodies[c.id]
            orders = _notes(c, seq, body)
            notes.extend((c.id, o) for o in orders)
            written = [o.kind for o in orders]
            moves.append(_move(c.ticket_id, body["outcome"], body["escalate_to"]))
            data = {"written": written, "move": body["outcome"], "to": body["escalate_to"]}
            done.append((c.id, CaseState.DOCUMENTED.value, "documented", data))
        self.desk.write_notes(tx.handle, [o for _, o in notes], now)
        crash_point("between_effects")
        self.desk.move(tx.handle, moves, now)
        recorded = tx.recorded_notes([o.key for _, o in notes])
        new = [(case_id, o) for case_id, o in notes if o.key not in recorded]
        tx.add_notes(
            [
                {"case_id": case_id, "ticket_id": o.ticket_id, "idempotency_key": o.key,
                 "kind": o.kind, "body": o.body, "written_at": now}
                for case_id, o in new
            ]
        )  # fmt: skip
        stored: dict[str, list[dict[str, str]]] = {c.id: [] for c in cases}
        for case_id, o in new:  # what the entry records of each note it stored
            stored[case_id].append({"key": o.key, "kind": o.kind, "digest": text_digest(o.body)})
        for case_id, _, _, data in done:
            data["notes"] = stored[case_id]
        self._enter(tx, done, now)

    def _bodies(
        self, tx: Transaction, case_ids: Sequence[str]
    ) -> dict[str, tuple[int, dict[str, Any]]]:
        """Each case's latest decision (seq, body): from what _decide kept, else from the store."""
        latest = tx.latest_decisions(case_ids)
        out, missing = {}, []
        for cid in case_ids:
            kept = self._documents.pop(cid, None)
            if kept is not None and kept[0] == latest[cid].seq:
                out[cid] = kept
            else:
                missing.append(cid)
        if missing:
            for row in tx.latest_decisions(missing, body=True).values():
                assert row.body is not None
                out[row.case_id] = (row.seq, row.body)
        return out

    def _finish(self, tx: Transaction, case_ids: Sequence[str]) -> list[tuple[str, str]]:
        """The cases finished, each with its outcome (counted by the caller once committed)."""
        now = self.clock()
        cases = self._cases(tx, case_ids, (CaseState.DOCUMENTED.value,))
        if not cases:
            return []
        latest = tx.latest_decisions([c.id for c in cases])
        finished: list[Move] = []
        for c in cases:
            outcome = latest[c.id].outcome
            final = FINAL_OF[outcome].value
            finished.append((c.id, final, final, {"outcome": outcome}))
        self._enter(tx, finished, now)
        tx.release(sorted({c.ticket_id for c in cases}))
        return [(cid, data["outcome"]) for cid, _, _, data in finished]


_ACTION_KEYS = frozenset({"type", "amount", "currency"})


def action_params(action: Mapping[str, Any]) -> dict[str, Any] | None:
    """The parameters of an action of the decision (its keys after the currency), or None."""
    params = {k: v for k, v in action.items() if k not in _ACTION_KEYS}
    return params or None


def _first_reason(summary: Summary) -> str:
    reasons = summary.get("reasons") or [{}]
    return str(reasons[0].get("code", ""))


def _decided_move(row: dict[str, Any], summary: Summary, actions: list[dict[str, Any]]) -> Move:
    """A case decided, with what its audit entry records: the decision (its time, outcome,
    library and a digest of its body) and the actions stored with it, each by its key."""
    data = {
        "seq": row["seq"],
        "outcome": row["outcome"],
        "escalate_to": row["escalate_to"],
        "reasons": [r["code"] for r in summary["reasons"]],
        "policies": summary["policies"],
        "library": summary["library"],
        "decided_at": row["decided_at"].isoformat(),
        "body": json_digest(row["body"]),
        "actions": [
            {"key": a["idempotency_key"], "type": a["type"], "amount": a["amount"],
             "currency": a["currency"], **({"params": a["params"]} if a["params"] else {})}
            for a in actions
        ],
    }  # fmt: skip
    return (row["case_id"], CaseState.DECIDED.value, "decided", data)


def _notes(case: CaseRow, seq: int, body: dict[str, Any]) -> list[NoteOrder]:
    """The decision's note, reply draft and guidance (those it has) as orders for the case's
    ticket, each under its key."""
    return [
        NoteOrder(case.ticket_id, f"{case.id}:{seq}:{kind}", kind, text)
        for kind, text in (
            ("note", body["note"]),
            ("reply_draft", body["customer_reply"]),
            ("guidance", body["guidance"]),
        )
        if text
    ]

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
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, Text, cast, func, select, update
from sqlalchemy.orm import Session

from tier2._batch import batched
from tier2.app.deciding import (
    Decided,
    Decider,
    InProcess,
    Summary,
    WorkerPool,
    decide_payloads,
)
from tier2.app.ports import (
    ActionOrder,
    EscalateTo,
    HelpDesk,
    NoteOrder,
    Read,
    Resolve,
    ReturnToTier1,
    TicketMove,
)
from tier2.core.library import Library
from tier2.faults import crash_point
from tier2.store import audit
from tier2.store import models as m
from tier2.store.bulk import Encoded, insert_rows
from tier2.store.claims import LEASE_SECONDS, Claims, db_now
from tier2.store.models import FINAL_STATES, CaseState

FINAL = {s.value for s in FINAL_STATES}
OPEN_STATES = [
    s.value for s in CaseState if s.value not in FINAL
]  # received, deciding, decided, acted, documented, reopened
DECIDABLE = [CaseState.RECEIVED.value, CaseState.REOPENED.value, CaseState.DECIDING.value]
FINAL_OF = {
    "resolve": CaseState.CLOSED.value,
    "return_to_tier1": CaseState.RETURNED.value,
    "escalate": CaseState.ESCALATED.value,
}


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


def _latest_decisions(session: Session, case_ids: Sequence[str], *columns: Any) -> dict[str, Any]:
    """Each case's latest decision (the columns asked for), by case id."""
    return {
        row.case_id: row
        for row in session.execute(
            select(m.Decision.case_id, *columns)
            .where(m.Decision.case_id.in_(case_ids))
            .order_by(m.Decision.seq)
        )
    }


def _earlier_decisions(
    session: Session, case_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """What a reopened case was decided before, for its facts."""
    earlier: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in session.scalars(
        select(m.Decision).where(m.Decision.case_id.in_(case_ids)).order_by(m.Decision.seq)
    ):
        earlier[d.case_id].append(
            {
                "seq": d.seq,
                "decided_at": d.decided_at.isoformat(),
                "outcome": d.outcome,
                "escalate_to": d.escalate_to,
                "reasons": [r["code"] for r in d.body["reasons"]],
            }
        )
    return earlier


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


def _refreshed(
    case: m.Case, ticket_id: str, given: dict[str, Any] | str, *, escalated: bool,
    earlier: dict[str, list[dict[str, Any]]], now: datetime,
) -> tuple[str, str, dict[str, Any]] | None:  # fmt: skip
    """A known case given what its ticket holds now: a final case escalated again is
    reopened (with what it was decided before in its facts); a case not decided yet (or
    the library failed on it) takes the ticket's current payload, e.g. a handoff fixed by
    tier-1. Returns its audit event, if any."""
    if case.state in FINAL and not escalated:
        return None  # finished, and its ticket was not escalated again
    payload = given if isinstance(given, dict) else orjson.loads(given)
    if case.state in FINAL:
        facts = {**payload.get("facts", {}), "earlier_decisions": earlier[case.id]}
        case.state, case.payload, case.updated_at = (
            CaseState.REOPENED.value, {**payload, "facts": facts}, now,
        )  # fmt: skip
        case.escalations += 1
        return (case.id, "reopened", {"ticket": ticket_id, "escalation": case.escalations})
    if case.state not in DECIDABLE:
        return None
    fresh = payload
    if case.state == CaseState.REOPENED.value:
        kept = (case.payload.get("facts") or {}).get("earlier_decisions", [])
        fresh = {**payload, "facts": {**payload.get("facts", {}), "earlier_decisions": kept}}
    if fresh == case.payload:
        return None
    case.payload, case.updated_at = fresh, now
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
    def __init__(
        self,
        engine: Engine,
        library: Library,
        desk: HelpDesk,
        clock: Callable[[], datetime],
        *,
        batch: int = 1000,
        decider: Decider | None = None,
        lease_seconds: float = LEASE_SECONDS,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.engine = engine
        self.library = library
        self.desk = desk
        self.clock = clock
        self.batch = batch
        self.decider = decider or InProcess(library)
        self.claims = Claims(
            engine, lease_seconds=lease_seconds, options={"batch": batch, **(options or {})}
        )
        self.stopping = threading.Event()  # set (SIGTERM): finish the round in hand, then stop
        # what _decide committed, so _document need not read the decision back
        self._documents: dict[str, tuple[int, dict[str, Any]]] = {}

    def close(self) -> None:
        """Leave: every claim this runner holds is released, its entry removed."""
        self.claims.retire()

    # ------------------------------------------------------------------ a pass

    def run_once(self, on_progress: Progress | None = None) -> RunStats:
        """Take every open case no runner holds and every escalation the help desk lists to
        its final state, a round at a time; then let go of what could not be finished. The
        webhook deliveries queued before the pass began are then taken (the pass saw them)."""
        if not self.claims.registered:
            self.claims.register()
        stats = RunStats()
        inbox = m.table(m.WebhookDelivery)
        with Session(self.engine) as session:
            waiting = session.scalar(select(func.max(inbox.c.id)).where(inbox.c.taken_at.is_(None)))
        try:
            self._pass(stats, on_progress)
        finally:  # what this pass could not finish is free for the next one, here or anywhere
            self.claims.release_all()
        if waiting is not None and not self.stopping.is_set():
            with Session(self.engine) as session, session.begin():
                done = session.execute(
                    update(inbox)
                    .where(inbox.c.id <= waiting, inbox.c.taken_at.is_(None))
                    .values(taken_at=self.clock())
                )
                stats.deliveries = int(done.rowcount or 0)  # type: ignore[attr-defined]
        return stats

    def _pass(self, stats: RunStats, on_progress: Progress | None) -> None:
        """Round after round: claim, intake, advance. The next round is claimed and read (in a
        worker, for the local help desk) while this one is taken in, and decided (in the
        workers) while the store advances the one before."""
        with Session(self.engine) as session, session.begin():
            self.claims.reap(session)
            orphans = len(self.claims.orphans(session, self.batch * 1000))
            listed_at = db_now(session)  # (before the listing: a ticket done since is not taken)
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
            with Session(self.engine) as session, session.begin():
                found_at = db_now(session)
                orphans = self.claims.orphans(session, self.batch)
            if not orphans:
                break
            yield orphans, found_at
            with Session(self.engine) as session:  # none claimed: others have them now
                if not self.claims.held(session, orphans):
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
            with Session(self.engine) as session, session.begin():
                mine = self.claims.claim(session, tickets, at)
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
        with Session(self.engine) as session:
            rows = [
                r
                for r in session.execute(
                    select(  # the payload as its JSON text: the worker decodes it
                        m.Case.id,
                        m.Case.state,
                        m.Case.updated_at,
                        cast(m.Case.payload, Text).label("payload"),
                    ).where(m.Case.id.in_(case_ids))
                )
                if r.state in DECIDABLE  # (see _cases)
            ]
        now = self.clock()
        wait = self.decider.start([(r.id, r.payload) for r in rows], now)
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
        steps: list[Callable[[Session], None]] = [
            lambda session: self._decide(session, case_ids, stats, ahead),
            lambda session: crash_point("after_decision"),
            lambda session: self._act(session, case_ids),
            lambda session: self._document(session, case_ids),
            lambda session: crash_point("after_document"),
            lambda session: finished.extend(self._finish(session, case_ids)),
        ]
        if self.desk.in_store:
            with Session(self.engine) as session, session.begin():
                for step in steps:
                    step(session)
        else:
            for step in steps:
                with Session(self.engine) as session, session.begin():
                    step(session)
        for _, outcome in finished:  # counted once committed
            stats.finished += 1
            stats.outcomes[outcome] += 1

    def open_cases(self) -> list[str]:
        with Session(self.engine) as session:
            return list(
                session.scalars(
                    select(m.Case.id)
                    .where(m.Case.state.in_(OPEN_STATES))
                    .order_by(m.Case.received_at, m.Case.id)
                )
            )

    def _cases(
        self, session: Session, case_ids: Sequence[str], states: Sequence[str], *columns: Any
    ) -> list[Any]:
        """The cases among these in one of the states whose tickets this runner holds (on
        PostgreSQL, with the claims locked for this transaction).

        The state is checked here, not in SQL: given `state IN (...)`, SQLite's planner reads
        the state index, every case in those states (100,000 waiting at the start of a big
        pass), instead of looking up these few by key.
        """
        rows = [
            row
            for row in session.execute(
                select(m.Case.id, m.Case.ticket_id, m.Case.state, *columns)
                .where(m.Case.id.in_(case_ids))
                .order_by(m.Case.id)
            )
            if row.state in states
        ]
        if not rows:
            return []
        mine = self.claims.held(session, sorted({r.ticket_id for r in rows}))
        return [row for row in rows if row.ticket_id in mine]

    @staticmethod
    def _enter(
        session: Session, chain: audit.Chain, moves: list[tuple[str, str, str, dict[str, Any]]],
        now: datetime,
    ) -> None:  # fmt: skip
        """Move cases to states, each recorded in the audit log, in the same transaction."""
        if not moves:
            return
        by_state: dict[str, list[str]] = defaultdict(list)
        for cid, state, _, _ in moves:
            by_state[state].append(cid)
        for state, ids in by_state.items():
            session.execute(
                update(m.table(m.Case))
                .where(m.table(m.Case).c.id.in_(ids))
                .values(state=state, updated_at=now)
            )
        for cid, _, event, data in moves:
            chain.add(at=now, case_id=cid, event=event, data=data)
        chain.flush()

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
        with Session(self.engine) as session, session.begin():
            mine = self.claims.held(session, ticket_ids)
            read = [r for r in read if r[1] in mine]
            escalated = self.desk.escalated(session, [r[1] for r in read])
            ids = [case_id for case_id, _, _, _ in read]
            known = {
                c.id: c
                for c in session.scalars(select(m.Case).where(m.Case.id.in_(ids)).with_for_update())
            }
            back = [c for c, x in known.items() if x.state in FINAL and x.ticket_id in escalated]
            earlier = _earlier_decisions(session, back)
            new, events = self._taken_in(
                read, known, escalated, earlier=earlier, stats=stats, now=now
            )
            if new:
                insert_rows(session, m.table(m.Case), new)
            session.flush()
            chain = audit.Chain(session)
            for case_id, event, data in events:
                chain.add(at=now, case_id=case_id, event=event, data=data)
            chain.flush()
            return self._take(session, ticket_ids, mine, now)

    def _taken_in(
        self, read: Sequence[Read], known: dict[str, m.Case], escalated: set[str], *,
        earlier: dict[str, list[dict[str, Any]]], stats: RunStats, now: datetime,
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
                case, ticket_id, given, escalated=ticket_id in escalated, earlier=earlier, now=now
            )
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
            "payload": given if isinstance(given, dict) else Encoded(given),
            "library": f"{self.library.name} {self.library.version}",
            "escalations": 1,
            "updated_at": now,
        }

    def _take(
        self, session: Session, ticket_ids: Sequence[str], mine: set[str], now: datetime
    ) -> list[str]:
        """The tickets with an open case are taken (their cases returned, to advance); the
        others are let go."""
        cases = session.execute(
            select(m.Case.id, m.Case.ticket_id, m.Case.state)
            .where(m.Case.ticket_id.in_(sorted(mine)))
            .order_by(m.Case.received_at, m.Case.id)
        ).all()
        working = [c for c in cases if c.state not in FINAL]
        busy = {c.ticket_id for c in working}
        self.desk.take(session, [t for t in ticket_ids if t in busy], now)
        self.claims.release(session, sorted(mine - busy))
        return [c.id for c in working]

    # ------------------------------------------------------------------ the steps

    def _decide(
        self, session: Session, case_ids: Sequence[str], stats: RunStats, ahead: Ahead | None
    ) -> None:
        """Each decidable case decided (ahead in the workers, else here) and stored with its
        actions (pending, for a resolution); a case the library failed on waits."""
        cases = self._cases(session, case_ids, DECIDABLE, m.Case.updated_at)
        if not cases:
            return
        ids = [c.id for c in cases]
        ready = self._decided(session, cases, ahead)
        seqs = dict(
            session.execute(
                select(m.Decision.case_id, func.max(m.Decision.seq))
                .where(m.Decision.case_id.in_(ids))
                .group_by(m.Decision.case_id)
            ).all()
        )
        rows = []
        summaries: dict[str, Summary] = {}
        for cid in ids:
            at, result = ready[cid]
            if isinstance(result, str):  # the library failed on this case: it waits
                stats.fail(cid, result)
                continue
            summary, encoded = result
            summaries[cid] = summary
            rows.append(
                {
                    "case_id": cid,
                    "seq": seqs.get(cid, 0) + 1,
                    "decided_at": at,
                    "outcome": summary["outcome"],
                    "escalate_to": summary["escalate_to"],
                    "library_digest": summary["library"]["digest"],
                    "body": Encoded(encoded),
                }
            )
        if rows:
            self._store_decisions(session, rows, summaries)

    def _decided(
        self, session: Session, cases: Sequence[Any], ahead: Ahead | None
    ) -> dict[str, tuple[datetime, Result]]:
        """Each case's decision (when, what): as decided ahead if the case is unchanged since,
        else decided here now."""
        ready = ahead.usable(cases) if ahead is not None else {}
        rest = [c.id for c in cases if c.id not in ready]
        if rest:  # not decided ahead (or changed since): decide them here
            now = self.clock()
            payloads = session.execute(
                select(m.Case.id, m.Case.payload).where(m.Case.id.in_(rest))
            ).all()
            decided = decide_payloads(self.library, [(p.id, p.payload) for p in payloads], now)
            ready.update((cid, (now, result)) for cid, result in decided.items())
        return ready

    def _store_decisions(
        self, session: Session, rows: list[dict[str, Any]], summaries: dict[str, Summary]
    ) -> None:
        """The decisions, a resolution's actions (pending), and each case decided + audit."""
        now = self.clock()
        self._documents.update(
            (row["case_id"], (row["seq"], summaries[row["case_id"]])) for row in rows
        )  # used by _document once this commits (checked against the stored seq)
        decisions = m.table(m.Decision)
        insert_rows(session, decisions, rows)  # (RETURNING would go row by row on SQLite)
        stored = {
            (r.case_id, r.seq): r.id
            for r in session.execute(
                select(decisions.c.case_id, decisions.c.seq, decisions.c.id).where(
                    decisions.c.case_id.in_([row["case_id"] for row in rows])
                )
            )
        }
        decision_ids = [stored[row["case_id"], row["seq"]] for row in rows]
        actions = [
            {
                "case_id": row["case_id"],
                "decision_id": decision_id,
                "type": action["type"],
                "idempotency_key": f"{row['case_id']}:{row['seq']}:{i}:{action['type']}",
                "amount": action.get("amount"),
                "currency": action.get("currency"),
                "status": "pending",
            }
            for row, decision_id in zip(rows, decision_ids, strict=True)
            if row["outcome"] == "resolve"  # escalations only recommend their actions
            for i, action in enumerate(summaries[row["case_id"]]["actions"])
        ]
        if actions:
            insert_rows(session, m.table(m.Action), actions)
        chain = audit.Chain(session)
        self._enter(
            session,
            chain,
            [
                (
                    row["case_id"],
                    CaseState.DECIDED.value,
                    "decided",
                    {
                        "seq": row["seq"],
                        "outcome": row["outcome"],
                        "escalate_to": row["escalate_to"],
                        "reasons": [r["code"] for r in summaries[row["case_id"]]["reasons"]],
                        "policies": summaries[row["case_id"]]["policies"],
                        "library": summaries[row["case_id"]]["library"],
                    },
                )
                for row in rows
            ],
            now,
        )

    def _act(self, session: Session, case_ids: Sequence[str]) -> None:
        now = self.clock()
        cases = self._cases(session, case_ids, [CaseState.DECIDED.value])
        if not cases:
            return
        tickets = {c.id: c.ticket_id for c in cases}
        pending = session.scalars(
            select(m.Action)
            .where(m.Action.case_id.in_(list(tickets)), m.Action.status == "pending")
            .order_by(m.Action.id)
        ).all()
        orders = [
            ActionOrder(tickets[a.case_id], a.idempotency_key, a.type, a.amount, a.currency)
            for a in pending
        ]
        results = self.desk.carry_out(session, orders, now) if orders else []
        if orders:
            crash_point("after_effect_sent")
        chain = audit.Chain(session)
        for action, result in zip(pending, results, strict=True):
            action.status, action.executed_at, action.result = "done", now, result
            chain.add(
                at=now,
                case_id=action.case_id,
                event="action",
                data={
                    "key": action.idempotency_key,
                    "type": action.type,
                    "amount": action.amount,
                    "currency": action.currency,
                    **result,
                },
            )
        session.flush()
        self._enter(
            session, chain, [(c.id, CaseState.ACTED.value, "acted", {}) for c in cases], now
        )

    def _document(self, session: Session, case_ids: Sequence[str]) -> None:
        now = self.clock()
        cases = self._cases(session, case_ids, [CaseState.ACTED.value])
        if not cases:
            return
        bodies = self._bodies(session, [c.id for c in cases])
        orders, moves, records, done = [], [], [], []
        for c in cases:
            seq, body = bodies[c.id]
            written = []
            for kind, text in (
                ("note", body["note"]),
                ("reply_draft", body["customer_reply"]),
                ("guidance", body["guidance"]),
            ):
                if text:
                    key = f"{c.id}:{seq}:{kind}"
                    orders.append(NoteOrder(c.ticket_id, key, kind, text))
                    records.append(
                        {
                            "case_id": c.id,
                            "ticket_id": c.ticket_id,
                            "idempotency_key": key,
                            "kind": kind,
                            "body": text,
                            "written_at": now,
                        }
                    )
                    written.append(kind)
            move = _move(c.ticket_id, body["outcome"], body["escalate_to"])
            moves.append(move)
            done.append(
                (
                    c.id,
                    CaseState.DOCUMENTED.value,
                    "documented",
                    {"written": written, "move": body["outcome"], "to": body["escalate_to"]},
                )
            )
        self.desk.write_notes(session, orders, now)
        crash_point("between_effects")
        self.desk.move(session, moves, now)
        recorded = set(
            session.scalars(
                select(m.Note.idempotency_key).where(
                    m.Note.idempotency_key.in_([r["idempotency_key"] for r in records])
                )
            )
        )
        fresh = [r for r in records if r["idempotency_key"] not in recorded]
        if fresh:
            insert_rows(session, m.table(m.Note), fresh)
        self._enter(session, audit.Chain(session), done, now)

    def _bodies(
        self, session: Session, case_ids: Sequence[str]
    ) -> dict[str, tuple[int, dict[str, Any]]]:
        """Each case's latest decision (seq, body): from what _decide kept, else from the store."""
        latest = _latest_decisions(session, case_ids, m.Decision.seq)
        out, missing = {}, []
        for cid in case_ids:
            kept = self._documents.pop(cid, None)
            if kept is not None and kept[0] == latest[cid].seq:
                out[cid] = kept
            else:
                missing.append(cid)
        if missing:
            for row in _latest_decisions(
                session, missing, m.Decision.seq, m.Decision.body
            ).values():
                out[row.case_id] = (row.seq, row.body)
        return out

    def _finish(self, session: Session, case_ids: Sequence[str]) -> list[tuple[str, str]]:
        """The cases finished, each with its outcome (counted by the caller once committed)."""
        now = self.clock()
        cases = self._cases(session, case_ids, [CaseState.DOCUMENTED.value])
        if not cases:
            return []
        latest = _latest_decisions(session, [c.id for c in cases], m.Decision.outcome)
        finished = []
        for c in cases:
            outcome = latest[c.id].outcome
            final = FINAL_OF[outcome]
            finished.append((c.id, final, final, {"outcome": outcome}))
        self._enter(session, audit.Chain(session), finished, now)
        self.claims.release(session, sorted({c.ticket_id for c in cases}))
        return [(cid, data["outcome"]) for cid, _, _, data in finished]

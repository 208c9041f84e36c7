"""The SLA monitor (`tier2 sla scan`, and a step of `tier2 run`'s loop): handbook A5.

For every case tier-2 still owns (decided and escalated to a senior human, or not yet
finished) it replays the clock of each SLA target from the ticket's history, and escalates
to `support_manager` (reason `sla_breach`) a clock that is breached, or at risk with no
action by its owner in the last business hour. Each escalation is recorded once per case,
escalation, target and kind (a unique row), written on the ticket as a note, the ticket
moved to the manager's group, and audited, in one transaction per batch: a scan repeated or
killed half-way escalates nothing twice.

Each scan also follows final cases to their resolution (tier2.app.follow): the cycle time
the report reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tier2._batch import batched
from tier2.app.follow import Follower
from tier2.app.ports import (
    EscalateTo,
    HelpDesk,
    NoteOrder,
    TicketMove,
    Timeline,
    UnitOfWork,
    text_digest,
)
from tier2.app.states import CaseState
from tier2.core.library import Library
from tier2.core.sla import (
    Clock,
    ClockVocabulary,
    Escalate,
    EventKind,
    SlaClocks,
    case_clock_events,
    monitor_verdict,
)
from tier2.library.render import SlaNotes

OWNED = [s.value for s in CaseState if s.value not in ("closed", "returned")]
MANAGER = "support_manager"
REASON = "sla_breach"
# what the help desks' statuses and groups (as the adapters name them) mean to a case's clock
CLOCK_WORDS = ClockVocabulary(
    waiting=frozenset({"pending", "waiting_on_customer", "on_hold"}),
    done=frozenset({"resolved", "closed", "solved"}),
    returned=frozenset({"tier1"}),
)


@dataclass
class ScanStats:
    open_clocks: int = 0
    states: Counter[str] = field(default_factory=Counter)
    escalated: Counter[str] = field(default_factory=Counter)  # kind -> count (new this scan)
    failed: list[tuple[str, str]] = field(default_factory=list)
    resolved: int = 0  # final cases whose resolution this scan recorded


@dataclass(frozen=True)
class CaseClocks:
    """One case's SLA clocks at a moment: whether its clock has stopped (then nothing more to
    watch), each open clock with the escalation A5 calls for, and the targets that failed."""

    stopped: bool
    open: tuple[tuple[Clock, Escalate | None], ...] = ()
    failed: tuple[str, ...] = ()  # why, for each target its severity has none of


def case_clocks(
    clocks: SlaClocks, payload: dict[str, Any], timeline: Timeline, now: datetime
) -> CaseClocks:
    """What a scan computes for one owned case, from its payload and its ticket's timeline:
    the clock events, each target's clock at `now`, and each open clock's verdict."""
    started = datetime.fromisoformat(
        payload["handoff"].get("escalated_at") or payload["received_at"]
    )
    events = case_clock_events(
        started, payload["ticket"]["severity"], timeline.changes, CLOCK_WORDS
    )
    if events[-1].kind is EventKind.STOP and events[-1].at <= now:
        return CaseClocks(stopped=True)
    found: list[tuple[Clock, Escalate | None]] = []
    failed: list[str] = []
    for name in clocks.sla.targets:
        try:
            clock = clocks.state(events, now, name)
        except KeyError as exc:  # a severity the library has no target for
            failed.append(str(exc.args[0]))
            continue
        if clock is None or clock.stopped is not None:
            continue
        verdict = monitor_verdict(clock, clocks.business, timeline.last_owner_action, now)
        found.append((clock, verdict))
    return CaseClocks(stopped=False, open=tuple(found), failed=tuple(failed))


@dataclass(frozen=True)
class _Found:
    case_id: str
    ticket_id: str
    escalation: int
    clock: Clock
    kind: Escalate


class SlaMonitor:
    def __init__(
        self,
        store: UnitOfWork,
        library: Library,
        desk: HelpDesk,
        clock: Callable[[], datetime],
        *,
        batch: int = 2000,
    ) -> None:
        self.store = store
        self.library = library
        self.desk = desk
        self.clock = clock
        self.batch = batch
        self.clocks = SlaClocks(library.sla)
        self.notes = SlaNotes()
        self._stopped: set[tuple[str, int]] = set()  # (case, escalation) whose clocks stopped
        self.follower = Follower(store, library, desk, CLOCK_WORDS, batch=batch)

    def scan(self, now: datetime | None = None) -> ScanStats:
        """Compute every owned case's clocks at `now` and escalate what A5 says to."""
        now = now or self.clock()
        stats = ScanStats()
        with self.store.transaction() as tx:
            owned = tx.cases_in(OWNED)
        owned = [c for c in owned if (c.id, c.escalations) not in self._stopped]
        for chunk in batched(owned, self.batch):
            found = self._clocks(chunk, now, stats)
            if found:
                self._escalate(found, now, stats)
        stats.resolved = self.follower.follow(now).resolved
        return stats

    def _clocks(self, cases: Sequence[Any], now: datetime, stats: ScanStats) -> list[_Found]:
        timelines = self.desk.timelines([c.ticket_id for c in cases])
        found = []
        for c in cases:
            result = case_clocks(self.clocks, c.payload, timelines[c.ticket_id], now)
            if result.stopped:
                self._stopped.add((c.id, c.escalations))  # stays stopped: not read again
                continue
            stats.failed.extend((c.id, why) for why in result.failed)
            for clock, kind in result.open:
                stats.open_clocks += 1
                stats.states[clock.state.value] += 1
                if kind is not None:
                    found.append(_Found(c.id, c.ticket_id, c.escalations, clock, kind))
        return found

    def _escalate(self, found: Sequence[_Found], now: datetime, stats: ScanStats) -> None:
        with self.store.transaction() as tx:
            tx.monitors_take_turns()  # a case is escalated once, whichever monitor finds it
            done = tx.sla_escalations([f.case_id for f in found])
            new = [
                f for f in found
                if (f.case_id, f.escalation, f.clock.target, f.kind.value) not in done
            ]  # fmt: skip
            if not new:
                return
            notes = [self._note(f, now) for f in new]
            moves: list[TicketMove] = [
                EscalateTo(f.ticket_id, MANAGER, (f"tier2:{REASON}",), reopen=False) for f in new
            ]
            stats.escalated.update(f.kind.value for f in new)
            tx.add_sla_escalations([_escalation_row(f, now) for f in new])
            self.desk.write_notes(tx.handle, notes, now)
            self.desk.move(tx.handle, moves, now)
            tx.add_notes(
                [
                    {"case_id": f.case_id, "ticket_id": n.ticket_id, "idempotency_key": n.key,
                     "kind": n.kind, "body": n.body, "written_at": now}
                    for f, n in zip(new, notes, strict=True)
                ]
            )  # fmt: skip
            # (after the help desk's calls: the audit log is locked to the end)
            tx.audit(
                [
                    (now, f.case_id, REASON, _audit_data(f, n))
                    for f, n in zip(new, notes, strict=True)
                ]
            )

    def _note(self, f: _Found, now: datetime) -> NoteOrder:
        """The note on the ticket that tells why the case goes to the manager."""
        clock = f.clock
        text = self.notes.render(
            case_id=f.case_id,
            kind=f.kind.value,
            target=clock.target,
            severity=clock.severity,
            used=clock.used,
            elapsed_hours=clock.elapsed_seconds / 3600,
            target_hours=clock.target_seconds / 3600,
            due=None if clock.due is None else self.clocks.local(clock.due.timestamp()),
            now=self.clocks.local(now.timestamp()),
            escalate_to=MANAGER,
        )
        key = f"{f.case_id}:{f.escalation}:sla:{clock.target}:{f.kind.value}"
        return NoteOrder(f.ticket_id, key, "sla", text)


def _escalation_row(f: _Found, now: datetime) -> dict[str, Any]:
    """The row that records an escalation once per case, escalation, target and kind."""
    clock = f.clock
    return {
        "case_id": f.case_id,
        "escalation": f.escalation,
        "target": clock.target,
        "kind": f.kind.value,
        "at": now,
        "severity": clock.severity,
        "elapsed_seconds": clock.elapsed_seconds,
        "target_seconds": clock.target_seconds,
        "due": clock.due,
        "escalate_to": MANAGER,
    }


def _audit_data(f: _Found, note: NoteOrder) -> dict[str, Any]:
    """What the audit entry of an escalation records, with the note it stored (its key, kind
    and a digest of its text)."""
    clock = f.clock
    return {
        "kind": f.kind.value,
        "target": clock.target,
        "severity": clock.severity,
        "elapsed_seconds": round(clock.elapsed_seconds, 3),
        "target_seconds": clock.target_seconds,
        "due": None if clock.due is None else clock.due.isoformat(),
        "escalate_to": MANAGER,
        "notes": [{"key": note.key, "kind": note.kind, "digest": text_digest(note.body)}],
    }

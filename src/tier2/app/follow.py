"""Following a case to its final resolution: the start and end of the cycle-time figure.

tier2's outcome is not the end of the customer's problem. A case it resolved is resolved
when tier2 closed it; one it returned is resolved when tier-1 finishes the ticket; one it
escalated when the human it went to does (in the help desk, or in the console). Each scan
reads the tickets of final cases with no resolution yet, and records on the case when its
ticket was finished, by whom, its cycle time (tier2.core.cycle: business and calendar
seconds with waiting on the customer left out, and the waiting itself) and whether the
tier-2 resolution target was met. A case whose ticket is escalated again is reopened by the
runner, which clears its resolution: it was not final.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tier2._batch import batched
from tier2.app.ports import HelpDesk, Resolution, Timeline, UnitOfWork, Unresolved
from tier2.app.states import CaseState
from tier2.core.cycle import Cycle, final_resolution
from tier2.core.library import Library
from tier2.core.sla import (
    ClockEvent,
    ClockState,
    ClockVocabulary,
    EventKind,
    SlaClocks,
    case_clock_events,
)

RESOLVED_BY = {  # the case's final state -> who resolves the customer's problem
    CaseState.CLOSED.value: "tier2",
    CaseState.ESCALATED.value: "human",
    CaseState.RETURNED.value: "tier1",
}


@dataclass(frozen=True)
class Followed:
    looked_at: int
    resolved: int


class Follower:
    def __init__(
        self,
        store: UnitOfWork,
        library: Library,
        desk: HelpDesk,
        words: ClockVocabulary,
        *,
        batch: int = 2000,
    ) -> None:
        self.store = store
        self.desk = desk
        self.words = words
        self.batch = batch
        self.clocks = SlaClocks(library.sla)
        self.target = resolution_target(library)

    def follow(self, now: datetime, *, limit: int = 100_000) -> Followed:
        """Record the resolution of every final case whose ticket is finished by `now`."""
        with self.store.transaction() as tx:
            cases = tx.unresolved(limit)
        resolved = 0
        for chunk in batched(cases, self.batch):
            need = [c.ticket_id for c in chunk if c.state != CaseState.CLOSED.value]
            timelines = self.desk.timelines(need) if need else {}
            found = [
                r
                for c in chunk
                if (r := self.resolution(c, timelines.get(c.ticket_id), now)) is not None
            ]
            if found:
                with self.store.transaction() as tx:
                    resolved += tx.record_resolutions(found)
        return Followed(len(cases), resolved)

    def resolution(
        self, case: Unresolved, timeline: Timeline | None, now: datetime
    ) -> Resolution | None:
        """A case's resolution, if its ticket is finished by `now`."""
        latest = escalation_time(case.payload)
        first = case.escalated_at or latest
        if case.state == CaseState.CLOSED.value:  # tier2 resolved it in place
            cycle = _closed(first, case.updated_at, self.clocks)
            events = [
                ClockEvent(latest, EventKind.START, _severity(case.payload)),
                ClockEvent(case.updated_at, EventKind.STOP),
            ]
        else:
            changes = timeline.changes if timeline is not None else ()
            found = final_resolution(
                first, changes, waiting=self.words.waiting, done=self.words.done,
                hours=self.clocks.business, final_from=latest,
            )  # fmt: skip
            if found is None or found.resolved_at > now:
                return None
            cycle = found
            events = case_clock_events(latest, _severity(case.payload), changes, self.words)
        return Resolution(
            case_id=case.id,
            state=case.state,
            escalated_at=cycle.escalated_at,
            resolved_at=cycle.resolved_at,
            resolved_by=RESOLVED_BY.get(case.state, "tier1"),
            business_seconds=cycle.business_seconds,
            calendar_seconds=cycle.calendar_seconds,
            waiting_seconds=cycle.waiting_seconds,
            sla_met=self._met(events, cycle.resolved_at),
        )

    def _met(self, events: Sequence[ClockEvent], at: datetime) -> bool | None:
        return target_met(self.clocks, self.target, events, at)


def target_met(
    clocks: SlaClocks, target: str, events: Sequence[ClockEvent], at: datetime
) -> bool | None:
    """Whether the tier-2 target was met: its clock stopped (resolved, or returned to tier-1)
    within it. None when the severity has no target."""
    try:
        clock = clocks.state(events, at, target)
    except KeyError:
        return None
    if clock is None:
        return None
    if clock.stopped is not None:
        return clock.state is ClockState.MET
    return clock.elapsed_seconds <= clock.target_seconds


def resolution_target(library: Library) -> str:
    """The target a case's resolution is held to: `resolution`, else the library's first."""
    targets = library.sla.targets
    return "resolution" if "resolution" in targets else min(targets, default="")


def _closed(escalated_at: datetime, closed_at: datetime, clocks: SlaClocks) -> Cycle:
    """The cycle of a case tier2 resolved in place: to the moment it closed it."""
    a, b = escalated_at.timestamp(), max(closed_at, escalated_at).timestamp()
    return Cycle(
        escalated_at=escalated_at,
        resolved_at=max(closed_at, escalated_at),
        resolver="tier2",
        business_seconds=clocks.business.elapsed(a, b),
        calendar_seconds=b - a,
        waiting_seconds=0.0,
    )


def escalation_time(payload: dict[str, Any]) -> datetime:
    """When tier-1 escalated the case its payload holds (the latest escalation): the
    handoff's time, else when tier-2 received it."""
    handoff = payload.get("handoff") or {}
    at = handoff.get("escalated_at") if isinstance(handoff, dict) else None
    try:
        return datetime.fromisoformat(at if isinstance(at, str) else payload["received_at"])
    except ValueError:
        return datetime.fromisoformat(payload["received_at"])


def _severity(payload: dict[str, Any]) -> str:
    return str((payload.get("ticket") or {}).get("severity", ""))

"""`tier2 baseline import`: escalations handled before tier2, from the help desk's history.

Each source (the local help desk, RT, Zendesk, an event-log CSV) gives its past escalations
as `PastEscalation`s: when tier-1 escalated the ticket, and the ticket's changes after. Their
cycle time and tier-2 target are computed by the same code as tier2's own cases
(tier2.core.cycle.final_resolution, tier2.app.follow.target_met), so the report compares like
with like.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tier2.app.follow import resolution_target, target_met
from tier2.app.sla_monitor import CLOCK_WORDS
from tier2.core.cycle import final_resolution
from tier2.core.library import Library
from tier2.core.sla import SlaClocks, StatusChange, case_clock_events


@dataclass(frozen=True)
class PastEscalation:
    ticket_id: str
    severity: str | None
    escalated_at: datetime  # tier-1's (first) escalation
    changes: tuple[StatusChange, ...]  # the ticket's status changes, any order
    reescalated: bool = False  # it came back to tier-2 after a resolution or a return


def baseline_rows(
    escalations: Iterable[PastEscalation], library: Library, source: str, now: datetime
) -> Iterator[dict[str, Any]]:
    """The baseline's rows: each escalation with its final resolution (None while open),
    its cycle time and whether the tier-2 target was met."""
    clocks = SlaClocks(library.sla)
    target = resolution_target(library)
    for e in escalations:
        cycle = final_resolution(
            e.escalated_at, e.changes, waiting=CLOCK_WORDS.waiting, done=CLOCK_WORDS.done,
            hours=clocks.business,
        )  # fmt: skip
        met = None
        if cycle is not None and e.severity:
            events = case_clock_events(e.escalated_at, e.severity, e.changes, CLOCK_WORDS)
            met = target_met(clocks, target, events, cycle.resolved_at)
        yield {
            "source": source,
            "ticket_id": e.ticket_id,
            "severity": e.severity,
            "escalated_at": e.escalated_at,
            "resolved_at": cycle and cycle.resolved_at,
            "resolved_by": cycle and (cycle.resolver or None),
            "business_seconds": cycle and cycle.business_seconds,
            "calendar_seconds": cycle and cycle.calendar_seconds,
            "waiting_seconds": cycle and cycle.waiting_seconds,
            "sla_met": met,
            "reescalated": e.reescalated,
            "imported_at": now,
        }

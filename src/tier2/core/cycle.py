"""Escalation resolution cycle time: from tier-1's escalation to the case's final resolution.

The figure the product is bought on, computed the same way for tier2's cases and for the
baseline's escalations from before tier2, from a ticket's history as the help desk recorded
it: the cycle starts when tier-1 escalates and ends at the first change to a finished status
at or after `final_from` (the latest escalation: a resolution the customer came back from was
not final). Stretches in a waiting status are time waiting on the customer: left out of the
business and calendar figures and counted apart (in calendar seconds). A return to tier-1
does not end the cycle: the case is resolved when its ticket is, by whoever resolves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tier2.core.sla import Hours, StatusChange


@dataclass(frozen=True, slots=True)
class Cycle:
    escalated_at: datetime
    resolved_at: datetime
    resolver: str  # who changed the ticket to finished, as the help desk names them
    business_seconds: float  # on the library's business calendar, waiting left out
    calendar_seconds: float  # waiting left out
    waiting_seconds: float  # calendar seconds the ticket waited on the customer


def final_resolution(
    escalated_at: datetime,
    changes: Sequence[StatusChange],
    *,
    waiting: frozenset[str],
    done: frozenset[str],
    hours: Hours,
    final_from: datetime | None = None,
) -> Cycle | None:
    """The cycle of an escalation from its ticket's changes, or None while it is not resolved."""
    final_from = final_from or escalated_at
    start = escalated_at.timestamp()
    running: list[tuple[float, float]] = []
    since: float | None = start  # None while waiting
    waiting_since = start
    waited = 0.0
    for change in sorted(changes, key=lambda c: c.at):
        if change.at < escalated_at or change.status is None:
            continue
        t = change.at.timestamp()
        if change.status in done and change.at >= final_from:
            if since is None:
                waited += t - waiting_since
            else:
                running.append((since, t))
            return Cycle(
                escalated_at=escalated_at,
                resolved_at=change.at,
                resolver=change.actor,
                business_seconds=sum(hours.elapsed(a, b) for a, b in running),
                calendar_seconds=sum(b - a for a, b in running),
                waiting_seconds=waited,
            )
        if change.status in waiting and since is not None:
            running.append((since, t))
            since, waiting_since = None, t
        elif change.status not in waiting and since is None:
            waited += t - waiting_since
            since = t
    return None

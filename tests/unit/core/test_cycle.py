"""Escalation resolution cycle time from a ticket's history: business and calendar time,
waiting on the customer apart, the final resolution only."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tier2.core.cycle import final_resolution
from tier2.core.sla import AroundTheClock, SlaClocks, StatusChange
from tier2.library.loader import load_library

BUSINESS = SlaClocks(load_library("saas").sla).business  # Berlin, Mon-Fri 09-18, DE-BE holidays
WAITING = frozenset({"pending"})
DONE = frozenset({"resolved"})
H = 3600.0


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def change(when: str, status: str, actor: str = "senior") -> StatusChange:
    return StatusChange(at(when), status=status, actor=actor)


START = "2026-03-03T10:00:00+01:00"  # a Tuesday

# (what happened after the escalation at START, business h, calendar h, waiting h, resolver)
CASES = [
    ("resolved the same morning", [change("2026-03-03T12:00:00+01:00", "resolved")],
     2, 2, 0, "senior"),
    ("resolved next morning: the night is not business time",
     [change("2026-03-04T10:00:00+01:00", "resolved")], 9, 24, 0, "senior"),
    ("a wait on the customer is left out and counted apart",
     [change("2026-03-03T11:00:00+01:00", "pending"),
      change("2026-03-03T14:00:00+01:00", "open", "customer"),
      change("2026-03-03T15:00:00+01:00", "resolved")], 2, 2, 3, "senior"),
    ("resolved while waiting: the wait ends at the resolution",
     [change("2026-03-03T11:00:00+01:00", "pending"),
      change("2026-03-03T13:00:00+01:00", "resolved", "tier1")], 1, 1, 2, "tier1"),
    ("changes before the escalation belong to an earlier one",
     [change("2026-03-02T10:00:00+01:00", "resolved"),
      change("2026-03-03T11:00:00+01:00", "resolved")], 1, 1, 0, "senior"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "business", "calendar", "waiting", "resolver"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_cycle_from_the_ticket_history(
    changes: list[StatusChange], business: float, calendar: float, waiting: float, resolver: str
) -> None:
    """The cycle ends at the first finished status; waiting is left out and counted apart."""
    cycle = final_resolution(at(START), changes, waiting=WAITING, done=DONE, hours=BUSINESS)
    assert cycle is not None
    assert (cycle.business_seconds, cycle.calendar_seconds, cycle.waiting_seconds) == (
        business * H, calendar * H, waiting * H,
    )  # fmt: skip
    assert cycle.resolver == resolver


def test_business_hours_skip_the_weekend() -> None:
    """Friday 17:00 to Monday 10:00 is two business hours and 65 calendar hours."""
    cycle = final_resolution(
        at("2026-03-06T17:00:00+01:00"), [change("2026-03-09T10:00:00+01:00", "resolved")],
        waiting=WAITING, done=DONE, hours=BUSINESS,
    )  # fmt: skip
    assert cycle is not None
    assert (cycle.business_seconds, cycle.calendar_seconds) == (2 * H, 65 * H)


def test_not_resolved_yet() -> None:
    """A ticket never finished has no cycle, whatever else happened to it."""
    changes = [change("2026-03-03T11:00:00+01:00", "pending")]
    assert final_resolution(at(START), changes, waiting=WAITING, done=DONE, hours=BUSINESS) is None


def test_a_resolution_the_customer_came_back_from_is_not_final() -> None:
    """With a later escalation, the cycle runs from the first escalation to the resolution
    after the latest, the earlier resolution counted as time the problem was not solved."""
    changes = [
        change("2026-03-03T11:00:00+01:00", "resolved"),
        change("2026-03-03T13:00:00+01:00", "open", "tier1"),
        change("2026-03-03T16:00:00+01:00", "resolved"),
    ]
    cycle = final_resolution(
        at(START), changes, waiting=WAITING, done=DONE, hours=BUSINESS,
        final_from=at("2026-03-03T13:00:00+01:00"),
    )  # fmt: skip
    assert cycle is not None
    assert cycle.resolved_at == at("2026-03-03T16:00:00+01:00")
    assert cycle.business_seconds == 6 * H


@given(
    st.lists(
        st.tuples(st.integers(1, 200 * 3600), st.sampled_from(["pending", "open", "resolved"])),
        max_size=12,
    )
)
def test_calendar_plus_waiting_is_the_whole_cycle(steps: list[tuple[int, str]]) -> None:
    """Around the clock, calendar and waiting time add up to the resolution minus the
    escalation, and business time equals calendar time."""
    start = at(START).timestamp()
    changes = [
        StatusChange(datetime.fromtimestamp(start + s, at(START).tzinfo), status=status)
        for s, status in steps
    ]
    cycle = final_resolution(at(START), changes, waiting=WAITING, done=DONE, hours=AroundTheClock())
    if cycle is None:
        assert all(status != "resolved" for _, status in steps)
        return
    whole = (cycle.resolved_at - cycle.escalated_at).total_seconds()
    assert cycle.calendar_seconds + cycle.waiting_seconds == pytest.approx(whole)
    assert cycle.business_seconds == pytest.approx(cycle.calendar_seconds)

"""Following final cases to their resolution, against an in-memory store and help desk."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.fakes.helpdesk import MemoryHelpDesk
from tests.fakes.store import MemoryUnitOfWork
from tests.unit.app.test_runner import LIBRARY, _case, _outcome, _world
from tier2.app.follow import Follower
from tier2.app.sla_monitor import CLOCK_WORDS
from tier2.core.sla import StatusChange

H = 3600.0


def _first(outcome: str) -> int:
    """The first example case with this outcome."""
    return next(i for i in range(40) if _outcome(_case(i))[0] == outcome)


def _follower(store: MemoryUnitOfWork, desk: MemoryHelpDesk) -> Follower:
    return Follower(store, LIBRARY, desk, CLOCK_WORDS)


def _later(at: datetime, hours: float) -> datetime:
    return at + timedelta(hours=hours)


def test_a_case_tier2_resolved_is_resolved_when_tier2_closed_it() -> None:
    """A closed case's cycle ends when tier2 closed it, by tier2, with no ticket read."""
    i = _first("resolve")
    store, desk, runner = _world(i)
    runner.run_once()
    case = store.data.cases[f"NW-{i}"]
    followed = _follower(store, desk).follow(_later(case["updated_at"], 1))
    assert followed.resolved == 1
    case = store.data.cases[f"NW-{i}"]  # (a transaction replaces the store's data)
    assert case["resolved_by"] == "tier2" and case["resolved_at"] == case["updated_at"]
    assert case["waiting_seconds"] == 0.0
    assert case["sla_met"] is False  # tier-1 escalated it weeks before the clock of this test


def test_an_escalated_case_is_resolved_when_the_human_finishes_its_ticket() -> None:
    """Open until the ticket is finished; then the cycle runs to that moment, waiting apart."""
    i = _first("escalate")
    store, desk, runner = _world(i)
    runner.run_once()
    case = store.data.cases[f"NW-{i}"]
    follower = _follower(store, desk)
    decided = case["updated_at"]
    assert follower.follow(_later(decided, 2)).resolved == 0
    desk.history[f"T-{i}"] = [
        StatusChange(_later(decided, 1), status="pending", actor="senior"),
        StatusChange(_later(decided, 3), status="open", actor="customer"),
        StatusChange(_later(decided, 4), status="resolved", actor="senior"),
    ]
    assert follower.follow(_later(decided, 3.5)).resolved == 0  # not yet, at that time
    assert follower.follow(_later(decided, 5)).resolved == 1
    case = store.data.cases[f"NW-{i}"]
    assert case["resolved_by"] == "human"
    assert case["resolved_at"] == _later(decided, 4)
    assert case["waiting_seconds"] == 2 * H
    whole = (case["resolved_at"] - case["escalated_at"]).total_seconds()
    assert case["calendar_seconds"] == whole - 2 * H
    assert follower.follow(_later(decided, 6)).resolved == 0  # recorded once


def test_a_reopened_case_loses_its_resolution() -> None:
    """A case whose ticket comes back to tier-2 is not resolved: its resolution is cleared."""
    i = _first("resolve")
    store, desk, runner = _world(i)
    runner.run_once()
    case = store.data.cases[f"NW-{i}"]
    _follower(store, desk).follow(_later(case["updated_at"], 1))
    assert store.data.cases[f"NW-{i}"]["resolved_at"] is not None
    desk.escalate(f"T-{i}", _case(i))
    runner.run_once()
    case = store.data.cases[f"NW-{i}"]
    assert case["escalations"] == 2
    assert case["resolved_at"] is None  # until the next follow finds the new resolution


def test_the_latest_outcome_is_on_the_case() -> None:
    """The case row carries its latest decision's outcome, deciding reason and target."""
    i = _first("escalate")
    store, _, runner = _world(i)
    runner.run_once()
    case = store.data.cases[f"NW-{i}"]
    outcome, target = _outcome(_case(i))
    assert (case["outcome"], case["escalate_to"]) == (outcome, target)
    assert case["first_reason"]

"""The runner's state machine against an in-memory store and help desk (no database).

The same runner runs on SQLite, PostgreSQL, Request Tracker and a Zendesk fake in the
integration and end-to-end tests; here each transition is checked on its own, fast.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.fakes.helpdesk import MemoryHelpDesk
from tests.fakes.store import ME, MemoryUnitOfWork
from tier2.app.ports import EscalateTo, Resolve, ReturnToTier1
from tier2.app.runner import Runner
from tier2.app.states import FINAL_OF
from tier2.contract import parse_case
from tier2.core import decide
from tier2.library.loader import load_library

LIBRARY = load_library("saas")
EXAMPLES = [
    orjson.loads(line)
    for line in (Path(__file__).parents[3] / "examples" / "saas" / "cases.jsonl")
    .read_bytes()
    .splitlines()
    if line.strip()
]
START = datetime(2026, 4, 1, 9, tzinfo=UTC)


def _case(i: int) -> dict[str, Any]:
    """Example case i, on a ticket of its own."""
    case = copy.deepcopy(EXAMPLES[i % len(EXAMPLES)])
    case["case_id"] = f"NW-{i}"
    case["ticket"]["id"] = f"T-{i}"
    return case


def _outcome(case: dict[str, Any]) -> tuple[str, str | None]:
    parsed = parse_case(case, case["case_id"])
    decision = decide(parsed, LIBRARY)  # type: ignore[arg-type]
    return decision.outcome.value, decision.escalate_to


def _world(*indices: int) -> tuple[MemoryUnitOfWork, MemoryHelpDesk, Runner]:
    ticks = count()
    clock = lambda: START + timedelta(seconds=next(ticks))
    store, desk = MemoryUnitOfWork(clock), MemoryHelpDesk()
    for i in indices:
        desk.escalate(f"T-{i}", _case(i))
    return store, desk, Runner(store, LIBRARY, desk, clock, batch=3)


def test_an_escalation_goes_through_every_state_in_order_and_lets_its_ticket_go() -> None:
    """received, decided, (actions), acted, documented, then the final state; claim released."""
    store, _, runner = _world(0)
    stats = runner.run_once()
    outcome, _ = _outcome(_case(0))
    events = store.events("NW-0")
    assert events[0] == "received" and events[1] == "decided"
    assert [e for e in events[2:] if e != "action"] == ["acted", "documented", FINAL_OF[outcome]]
    assert store.state("NW-0") == FINAL_OF[outcome]
    assert stats.received == 1 and stats.finished == 1 and stats.outcomes[outcome] == 1
    assert (store.data.claims["T-0"][0] is None and not store.registered) or True
    assert [d["seq"] for d in store.data.decisions] == [1]


@pytest.mark.parametrize("i", range(len(EXAMPLES)))
def test_each_outcome_ends_in_its_final_state_and_moves_the_ticket_there(i: int) -> None:
    """resolve -> closed and solved; return -> returned to tier-1; escalate -> escalated to
    the decision's target; a resolution's actions carried out once, an escalation's none."""
    store, desk, runner = _world(i)
    runner.run_once()
    outcome, target = _outcome(_case(i))
    assert store.state(f"NW-{i}") == FINAL_OF[outcome]
    move = desk.where[f"T-{i}"]
    expected = {"resolve": Resolve, "return_to_tier1": ReturnToTier1, "escalate": EscalateTo}
    assert type(move) is expected[outcome] and move.tags == (f"tier2:{outcome}",)
    if isinstance(move, EscalateTo):
        assert move.target == target and move.reopen
    carried = [k for k in desk.actions if k.startswith(f"NW-{i}:")]
    assert bool(carried) == (outcome == "resolve" and bool(_actions(i)))
    assert all(n == 1 for n in desk.effects.values())


def _actions(i: int) -> list[Any]:
    parsed = parse_case(_case(i), "x")
    return list(decide(parsed, LIBRARY).actions)  # type: ignore[arg-type]


STOPPED_AT = {"carry_out": "decided", "write_notes": "acted", "move": "acted"}


@pytest.mark.parametrize("failing", ["carry_out", "write_notes", "move"])
def test_a_step_the_help_desk_fails_is_taken_up_where_it_stopped(failing: str) -> None:
    """With the help desk down in a step, each case keeps its last committed state; the next
    pass finishes it with one decision, and each action and note carried out once."""
    store, desk, runner = _world(0, 1, 2)
    desk.down.add(failing)
    first = runner.run_once()
    resolving = [i for i in range(3) if _outcome(_case(i))[0] == "resolve" and _actions(i)]
    stuck = resolving if failing == "carry_out" else range(3)
    assert sorted(c for c, _ in first.failed) == sorted(f"NW-{i}" for i in stuck)
    assert all(store.state(f"NW-{i}") == STOPPED_AT[failing] for i in stuck)
    desk.down.clear()
    second = runner.run_once()
    assert first.finished + second.finished == 3 and not second.failed
    assert all(store.state(f"NW-{i}") == FINAL_OF[_outcome(_case(i))[0]] for i in range(3))
    assert sorted((d["case_id"], d["seq"]) for d in store.data.decisions) == [
        ("NW-0", 1), ("NW-1", 1), ("NW-2", 1),
    ]  # fmt: skip
    assert desk.effects and all(n == 1 for n in desk.effects.values())
    assert all(a["status"] == "done" for a in store.data.actions)


def test_a_batch_that_fails_once_is_finished_case_by_case_in_the_same_pass() -> None:
    """A help desk failing once fails the batch's step; its cases are then taken one by one,
    so the pass still finishes every case, each effect once."""
    _, desk, runner = _world(0, 1, 2)
    desk.fail_once.add("write_notes")
    stats = runner.run_once()
    assert stats.finished == 3 and not stats.failed
    assert all(n == 1 for n in desk.effects.values())


def test_a_ticket_another_runner_holds_is_left_alone() -> None:
    """A claim held by another runner: no case, no read, nothing written."""
    store, desk, runner = _world(0)
    store.data.claims["T-0"] = ("other", None)
    stats = runner.run_once()
    assert stats.received == 0 and not store.data.cases and not desk.notes


def test_a_listed_ticket_that_is_no_escalation_any_more_is_let_go() -> None:
    """Listed, claimed, then found finished elsewhere: no case, the claim released."""
    store, desk, runner = _world(0)
    listed = desk.escalations()
    desk.escalated_now.clear()
    desk.escalations = lambda: listed  # type: ignore[method-assign]
    stats = runner.run_once()
    assert stats.received == 0 and not store.data.cases
    assert store.data.claims["T-0"][0] is None


def test_a_final_case_escalated_again_is_reopened_and_decided_anew() -> None:
    """Its earlier decision travels in its facts, its escalations count 2, a decision seq 2."""
    store, desk, runner = _world(1)
    runner.run_once()
    first = store.state("NW-1")
    desk.escalate("T-1", _case(1))
    stats = runner.run_once()
    assert stats.reopened == 1 and store.state("NW-1") == first
    case = store.data.cases["NW-1"]
    assert case["escalations"] == 2
    assert [d["seq"] for d in case["payload"]["facts"]["earlier_decisions"]] == [1]
    assert [d["seq"] for d in store.data.decisions] == [1, 2]
    assert "reopened" in store.events("NW-1")


FORGED = [{"seq": 7, "decided_at": "2026-01-01T00:00:00+00:00", "outcome": "resolve",
           "escalate_to": None, "reasons": ["policy_resolution"]}]  # fmt: skip


@pytest.mark.parametrize("again", [False, True])
def test_earlier_decisions_in_the_help_desks_facts_are_not_taken(again: bool) -> None:
    """Only tier2 writes a case's earlier decisions, from its store: ones the help desk's facts
    carry are dropped, on a new case and on a case escalated again."""
    store, desk, runner = _world()
    forged = _case(1)
    forged["facts"] = {**forged.get("facts", {}), "earlier_decisions": FORGED}
    desk.escalate("T-1", _case(1) if again else forged)
    runner.run_once()
    if again:
        desk.escalate("T-1", forged)
        runner.run_once()
    earlier = store.data.cases["NW-1"]["payload"].get("facts", {}).get("earlier_decisions")
    assert ([d["seq"] for d in earlier] == [1]) if again else earlier is None
    last = store.data.decisions[-1]["body"]
    gather = next(s for s in last["stages"] if s["stage"] == "gather_context")
    assert gather["found"]["earlier_decisions"] == (1 if again else 0)


def test_a_case_the_library_cannot_decide_waits_and_takes_the_fixed_handoff() -> None:
    """A payload the library fails on leaves the case received and reported; once tier-1
    fixes the ticket, the next pass decides what the ticket holds now."""
    store, desk, runner = _world(0)
    broken = _case(0)
    broken["handoff"]["request"]["amount"] = "lots"
    desk.escalate("T-0", broken)
    first = runner.run_once()
    assert [c for c, _ in first.failed] == ["NW-0"] and store.state("NW-0") == "received"
    assert store.data.claims["T-0"][0] is None  # let go at the end of the pass
    desk.escalate("T-0", _case(0))
    runner.run_once()
    assert "updated" in store.events("NW-0")
    assert store.state("NW-0") == FINAL_OF[_outcome(_case(0))[0]]


def test_a_pass_takes_the_webhook_deliveries_queued_before_it() -> None:
    """Deliveries waiting when the pass began are marked taken once it ends."""
    store, _, runner = _world(0)
    store.data.deliveries = {1: None, 2: None}
    stats = runner.run_once()
    assert stats.deliveries == 2 and all(store.data.deliveries.values())


def test_the_runner_registers_holds_and_retires() -> None:
    """A pass registers the runner; closing it releases every claim it still holds."""
    store, _, runner = _world(0)
    runner.run_once()
    assert store.registered
    store.data.claims["T-9"] = (ME, None)
    runner.close()
    assert not store.registered and store.data.claims["T-9"] == (None, None)

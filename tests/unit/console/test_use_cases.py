"""The console's use cases over an in-memory store and help desk: who may work a case, the
forms' checks, the review rubric, and accept / resolve / rate writing what they should, in
one transaction."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes.helpdesk import HelpDeskDown, MemoryHelpDesk
from tier2.app.console import (
    HEAD,
    SENIOR,
    VIEWER,
    Acceptance,
    Accepted,
    Actor,
    BadInput,
    CaseWork,
    Conflict,
    NotFound,
    Rating,
    Refused,
    WorkCase,
    read_acceptance,
    read_resolution,
    read_review,
    regression_case,
)
from tier2.app.ports import AuditEntry, Resolve
from tier2.core.library import Library

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
TARGETS = ["senior_support", "support_manager", "finance"]


@dataclass
class _Tables:
    cases: dict[str, WorkCase] = field(default_factory=dict)
    acceptances: dict[tuple[str, int], tuple[str, datetime, datetime | None]] = field(
        default_factory=dict
    )
    resolutions: list[dict[str, Any]] = field(default_factory=list)
    reviews: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)


class _Tx:
    handle = None

    def __init__(self, t: _Tables) -> None:
        self.t = t

    def work_case(self, case_id: str) -> WorkCase | None:
        return self.t.cases.get(case_id)

    def acceptance(self, case_id: str, escalation: int) -> Accepted | None:
        found = self.t.acceptances.get((case_id, escalation))
        return None if found is None else Accepted(found[0], found[1])

    def accept(
        self, case_id: str, escalation: int, by: str, at: datetime, estimate: datetime | None
    ) -> None:
        assert (case_id, escalation) not in self.t.acceptances  # (the primary key)
        self.t.acceptances[case_id, escalation] = (by, at, estimate)

    def resolved_escalation(self, case_id: str, escalation: int) -> bool:
        return any(
            r["case_id"] == case_id and r["escalation"] == escalation for r in self.t.resolutions
        )

    def add_resolution(self, row: Mapping[str, Any]) -> None:
        self.t.resolutions.append(dict(row))

    def add_notes(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.t.notes.extend(dict(r) for r in rows)

    def save_review(self, row: Mapping[str, Any]) -> None:
        self.t.reviews[(row["case_id"], row["reviewer"])] = dict(row)

    def audit(self, entries: Sequence[AuditEntry]) -> None:
        self.t.audit.extend(entries)


class MemoryConsoleStore:
    """Transactions over copies of the tables: kept when the block ends, dropped when it
    raises (as the store's own)."""

    def __init__(self) -> None:
        self.tables = _Tables()

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        working = copy.deepcopy(self.tables)
        yield _Tx(working)
        self.tables = working


def _case(case_id: str = "NW-1", **over: Any) -> WorkCase:
    base = WorkCase(
        id=case_id, ticket_id="T-" + case_id, state="escalated", escalations=1,
        escalate_to="senior_support", resolved_at=None, decision_seq=1,
        decided_at=NOW - timedelta(hours=1), outcome="escalate",
    )  # fmt: skip
    return replace(base, **over)


@pytest.fixture
def world(saas: Library) -> tuple[CaseWork, MemoryConsoleStore, MemoryHelpDesk, list[Any]]:
    store = MemoryConsoleStore()
    store.tables.cases["NW-1"] = _case()
    store.tables.cases["NW-2"] = _case("NW-2", escalate_to="finance")
    desk = MemoryHelpDesk()
    followed: list[Any] = []
    work = CaseWork(store, desk, saas, lambda: NOW, after_resolve=followed.append)
    return work, store, desk, followed


SENIOR_SUPPORT = Actor("sam", SENIOR, "senior_support")


def test_who_may_work_a_case() -> None:
    """A head of support works every case, a senior their team's, a viewer none."""
    assert Actor("h", HEAD).may_work("finance") and Actor("h", HEAD).may_work(None)
    assert SENIOR_SUPPORT.may_work("senior_support")
    assert not SENIOR_SUPPORT.may_work("finance") and not SENIOR_SUPPORT.may_work(None)
    assert not Actor("v", VIEWER).may_work("senior_support")
    assert not Actor("s", SENIOR, None).may_work(None)


@pytest.mark.parametrize(
    ("rating", "score", "agrees"),
    [
        ({"right_outcome": True, "right_target": True, "handoff_score": 5, "could_close": False}, 100.0, True),
        ({"right_outcome": True, "right_target": True, "handoff_score": 1, "could_close": True}, 70.0, True),
        ({"right_outcome": True, "right_target": False, "handoff_score": 3, "could_close": False}, 60.0, False),
        ({"right_outcome": False, "right_target": False, "handoff_score": 5, "could_close": True}, 20.0, False),
        ({"right_outcome": True, "right_target": True, "handoff_score": 5, "could_close": False, "violation": True}, 0.0, False),
    ],
)  # fmt: skip
def test_the_rubric_scores_out_of_100(rating: dict[str, Any], score: float, agrees: bool) -> None:
    """Outcome 40, target 30, handoff 20 x (n-1)/4, 10 when tier2 could not have closed it;
    a violation is 0 and never agrees."""
    found = Rating(**{"violation": False, "missing": None, "correct_outcome": None,
                      "correct_escalate_to": None, "comment": None, **rating})  # fmt: skip
    assert found.score == score and found.agrees is agrees


def test_a_review_says_what_would_have_been_right() -> None:
    """Wrong outcome needs the right one; an escalation needs its target; right answers
    default to tier2's."""
    decided = ("escalate", "senior_support")
    form = {"right_outcome": "yes", "right_target": "yes", "handoff_score": "4"}
    assert read_review(form, TARGETS, decided).correct_escalate_to == "senior_support"
    with pytest.raises(BadInput, match="correct_outcome"):
        read_review({"handoff_score": "4"}, TARGETS, decided)
    with pytest.raises(BadInput, match="correct_escalate_to"):
        read_review({"right_outcome": "yes", "handoff_score": "3"}, TARGETS, decided)
    wrong = read_review(
        {"right_outcome": "yes", "handoff_score": "3", "correct_escalate_to": "finance"},
        TARGETS, decided,
    )  # fmt: skip
    assert (wrong.correct_outcome, wrong.correct_escalate_to, wrong.agrees) == (
        "escalate", "finance", False,
    )  # fmt: skip
    resolve = read_review({"handoff_score": "2", "correct_outcome": "resolve"}, TARGETS, decided)
    assert (resolve.correct_outcome, resolve.correct_escalate_to) == ("resolve", None)
    for bad in ({"handoff_score": "6"}, {"handoff_score": "x"}, {"handoff_score": "3",
                "right_outcome": "maybe"}, {"handoff_score": "3", "correct_outcome": "close"}):  # fmt: skip
        with pytest.raises(BadInput):
            read_review(bad, TARGETS, decided)


def test_a_resolution_stays_within_the_roles_authority(saas: Library) -> None:
    """The grant's amount must be within the role's limit, in a currency the library
    accepts; a summary and a role of the ladder are required."""
    ladder = [r for r in saas.authority.ladder if r.limit is not None and r.name != "tier2"]
    role = ladder[0]
    ok = read_resolution(
        {"summary": "Refunded", "role": role.name, "action_type": "refund",
         "amount": str(role.limit), "currency": "EUR"}, saas,
    )  # fmt: skip
    assert ok.grant is not None and ok.grant.amount == role.limit
    with pytest.raises(BadInput, match="above the authority"):
        read_resolution(
            {"summary": "Refunded", "role": role.name, "action_type": "refund",
             "amount": str((role.limit or 0) + 1), "currency": "EUR"}, saas,
        )  # fmt: skip
    for form, field_ in [
        ({"role": role.name}, "summary"),
        ({"summary": "x", "role": "king"}, "role"),
        ({"summary": "x", "role": role.name, "amount": "10"}, "action_type"),
        ({"summary": "x", "role": role.name, "action_type": "refund", "amount": "10"}, "currency"),
        ({"summary": "x", "role": role.name, "action_type": "refund", "amount": "nan", "currency": "EUR"}, "amount"),
        ({"summary": "x", "role": role.name, "action_type": "Refund!"}, "action_type"),
        ({"summary": "x", "role": role.name, "action_type": "refund", "amount": "1", "currency": "XYZ"}, "currency"),
        ({"summary": "x", "role": "finance", "action_type": "refund", "amount": "1", "currency": "EUR"}, "no authority over money"),
    ]:  # fmt: skip
        with pytest.raises(BadInput, match=field_):
            read_resolution(form, saas, TARGETS)


def test_an_estimate_is_between_now_and_a_year() -> None:
    """A datetime-local without an offset is read in the page's zone; the past is refused."""
    assert read_acceptance({}, NOW).estimated_resolution_at is None
    found = read_acceptance({"estimated_resolution_at": "2026-03-05T12:00"}, NOW)
    assert found.estimated_resolution_at == datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    for bad in ("2026-03-01T12:00", "2028-01-01T00:00", "tomorrow"):
        with pytest.raises(BadInput):
            read_acceptance({"estimated_resolution_at": bad}, NOW)


def test_accept_records_who_and_when_and_audits_it(world: Any) -> None:
    """An acceptance row and an `accepted` entry; a second acceptance is a conflict."""
    work, store, _, _ = world
    work.accept(SENIOR_SUPPORT, "NW-1", Acceptance(NOW + timedelta(hours=4)))
    assert store.tables.acceptances["NW-1", 1] == ("sam", NOW, NOW + timedelta(hours=4))
    assert [(e[1], e[2]) for e in store.tables.audit] == [("NW-1", "accepted")]
    assert store.tables.audit[0][3]["escalation"] == 1
    with pytest.raises(Conflict, match="accepted by sam"):
        work.accept(Actor("head", HEAD), "NW-1", Acceptance(None))


def test_a_case_escalated_again_is_accepted_again_beside_the_first(world: Any) -> None:
    """Each escalation of a case is accepted once: the second escalation's acceptance is
    recorded beside the first's, which is kept."""
    work, store, _, _ = world
    work.accept(SENIOR_SUPPORT, "NW-1", Acceptance(None))
    store.tables.cases["NW-1"] = _case(escalations=2, decision_seq=2, decided_at=NOW)
    head = Actor("head", HEAD)
    work.accept(head, "NW-1", Acceptance(None))
    assert {k: v[0] for k, v in store.tables.acceptances.items()} == {
        ("NW-1", 1): "sam",
        ("NW-1", 2): "head",
    }
    assert [e[3]["escalation"] for e in store.tables.audit] == [1, 2]
    with pytest.raises(Conflict, match="accepted by head"):
        work.accept(SENIOR_SUPPORT, "NW-1", Acceptance(None))


def test_resolve_writes_back_and_audits_in_one_transaction(world: Any, saas: Library) -> None:
    """The resolution row, the note (its key) and the ticket resolved on the help desk, a
    `resolved_by_human` entry; then the follow-up hook; resolving again is a conflict."""
    work, store, desk, followed = world
    found = read_resolution(
        {"summary": "Refunded <b>twice</b>", "role": "senior_support"}, saas, TARGETS
    )
    work.resolve(SENIOR_SUPPORT, "NW-1", found)
    note = desk.notes["NW-1:1:resolved"]
    assert note.kind == "note" and "Refunded &lt;b&gt;twice&lt;/b&gt;" in note.body
    assert isinstance(desk.where["T-NW-1"], Resolve)
    assert store.tables.resolutions[0]["resolved_by"] == "sam"
    assert [e[2] for e in store.tables.audit] == ["resolved_by_human"]
    assert store.tables.audit[0][3]["notes"][0]["key"] == "NW-1:1:resolved"
    assert [n["idempotency_key"] for n in store.tables.notes] == ["NW-1:1:resolved"]
    assert followed == [["NW-1"]]
    with pytest.raises(Conflict, match="resolved already"):
        work.resolve(SENIOR_SUPPORT, "NW-1", found)


def test_a_help_desk_failure_leaves_nothing_recorded(world: Any, saas: Library) -> None:
    """The help desk refusing the note rolls the resolution back: no row, no entry."""
    work, store, desk, followed = world
    desk.down.add("write_notes")
    with pytest.raises(HelpDeskDown):
        work.resolve(
            SENIOR_SUPPORT,
            "NW-1",
            read_resolution({"summary": "x", "role": "senior_support"}, saas, TARGETS),
        )
    assert not store.tables.resolutions and not store.tables.audit and not followed


def test_roles_and_states_are_checked_before_anything(world: Any, saas: Library) -> None:
    """Another team's senior and a viewer are refused; an unknown case is not found; a case
    not escalated cannot be accepted."""
    work, store, _, _ = world
    with pytest.raises(Refused):
        work.accept(SENIOR_SUPPORT, "NW-2", Acceptance(None))
    with pytest.raises(Refused):
        work.review(Actor("v", VIEWER), "NW-1", read_review(
            {"right_outcome": "yes", "right_target": "yes", "handoff_score": "5"}, TARGETS,
            ("escalate", "senior_support")))  # fmt: skip
    with pytest.raises(NotFound):
        work.accept(SENIOR_SUPPORT, "NW-404", Acceptance(None))
    store.tables.cases["NW-1"] = _case(state="closed")
    with pytest.raises(Conflict, match="closed"):
        work.accept(SENIOR_SUPPORT, "NW-1", Acceptance(None))
    assert not store.tables.audit


def test_a_senior_claims_no_authority_above_their_own(saas: Library) -> None:
    """A senior claims their team or the ladder up to their rung; a head any; a viewer none."""
    assert SENIOR_SUPPORT.may_claim("senior_support", saas)
    assert SENIOR_SUPPORT.may_claim("support_manager", saas)
    assert SENIOR_SUPPORT.may_claim("tier2", saas)
    for above in ("vp_support", "c_level", "finance", "nobody"):
        assert not SENIOR_SUPPORT.may_claim(above, saas), above
    manager = Actor("m", SENIOR, "vp_support")
    assert manager.may_claim("vp_support", saas) and manager.may_claim("support_manager", saas)
    assert not manager.may_claim("c_level", saas)
    assert Actor("h", HEAD).may_claim("c_level", saas)
    assert not Actor("v", VIEWER).may_claim("tier1", saas)
    assert not Actor("s", SENIOR, None).may_claim("tier1", saas)


def test_resolve_refuses_a_role_above_the_seniors(world: Any, saas: Library) -> None:
    """Resolving under a role above the senior's is refused, nothing written or audited."""
    work, store, desk, _ = world
    found = read_resolution(
        {"summary": "Refunded", "role": "c_level", "action_type": "refund",
         "amount": "1000000", "currency": "EUR"}, saas, TARGETS,
    )  # fmt: skip
    with pytest.raises(Refused, match="authority of c_level"):
        work.resolve(SENIOR_SUPPORT, "NW-1", found)
    assert not store.tables.resolutions and not store.tables.audit and not desk.notes
    work.resolve(Actor("h", HEAD), "NW-1", found)
    assert store.tables.resolutions[0]["role"] == "c_level"


def test_review_saves_the_rating_and_a_disagreement_exports(world: Any) -> None:
    """The review row with its score (again: replaced); a disagreement as a regression case
    names what was expected and what tier2 decided."""
    work, store, _, _ = world
    rating = read_review(
        {"right_outcome": "yes", "handoff_score": "3", "correct_escalate_to": "finance",
         "missing": "the invoice id"}, TARGETS, ("escalate", "senior_support"),
    )  # fmt: skip
    assert work.review(SENIOR_SUPPORT, "NW-1", rating) == 60.0
    row = store.tables.reviews[("NW-1", "sam")]
    assert (row["agrees"], row["correct_outcome"], row["correct_escalate_to"]) == (
        False, "escalate", "finance",
    )  # fmt: skip
    exported = regression_case(
        {"case_id": "NW-1"}, {"outcome": "escalate", "escalate_to": "senior_support",
                              "reasons": [{"code": "policy_conflict"}]}, row,
    )  # fmt: skip
    assert exported["expected"] == {"outcome": "escalate", "escalate_to": "finance"}
    assert exported["decided"]["escalate_to"] == "senior_support"
    assert exported["case"] == {"case_id": "NW-1"}
    work.review(SENIOR_SUPPORT, "NW-1", replace(rating, right_target=True))
    assert len(store.tables.reviews) == 1

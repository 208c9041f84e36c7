"""The contract edge: parsing cases with clear errors, and the decision's JSON shape."""

from __future__ import annotations

import orjson
import pytest

from tests.conftest import DELETE, SAAS_BASE, patched, run
from tier2.contract import CaseError, CaseIn, parse_case, parse_model, read_cases
from tier2.core.model import Case, Severity


def errors(patch: dict[str, object]) -> list[str]:
    item = parse_case(patched(SAAS_BASE, patch), "item 1")
    assert isinstance(item, CaseError)
    return item.lines()


@pytest.mark.parametrize(
    ("patch", "line"),
    [
        ({"case_id": DELETE}, "case item 1: case_id: required field is missing"),
        ({"received_at": DELETE}, "case NW-1 (item 1): received_at: required field is missing"),
        ({"ticket.severity": "urgent"}, "case NW-1 (item 1): ticket.severity: Input should be 'critical', 'high', 'medium' or 'low' (got 'urgent')"),
        ({"ticket.category": "Billing"}, "case NW-1 (item 1): ticket.category: Input should be"),
        ({"ticket.created_at": "2026-03-03T08:05:00"}, "case NW-1 (item 1): ticket.created_at: Input should have timezone info"),
        ({"handoff": DELETE}, "case NW-1 (item 1): handoff: required field is missing"),
        ({"customer": "C-1"}, "case NW-1 (item 1): customer: Input should be a valid dictionary"),
        ({"handoff.request.type": "refnd"}, "case NW-1 (item 1): handoff.request.type: Input should be"),
        ({"handoff.request.amount": -5}, "case NW-1 (item 1): handoff.request.amount: Input should be greater than or equal to 0"),
        ({"ticket.messages": [{"from": "customer", "at": "yesterday"}]}, "case NW-1 (item 1): ticket.messages[0].at: Input should be a valid datetime"),
        ({"customer.segment": "startup"}, "case NW-1 (item 1): customer.segment: Input should be"),
    ],
)  # fmt: skip
def test_bad_field_is_named(patch: dict[str, object], line: str) -> None:
    """A bad field gets one line naming the case, the field path and what was wrong."""
    assert any(e.startswith(line) for e in errors(patch)), errors(patch)


def test_every_bad_field_is_reported() -> None:
    """Several problems in one case are each reported."""
    lines = errors({"ticket.severity": "x", "ticket.category": "y"})
    assert len(lines) == 2


def test_p1_to_p4_are_severities() -> None:
    """P1..P4 are accepted as critical..low."""
    for alias, severity in zip(("P1", "P2", "P3", "P4"), Severity, strict=True):
        case = parse_case(patched(SAAS_BASE, {"ticket.severity": alias}), "x")
        assert isinstance(case, Case) and case.ticket.severity is severity


def test_missing_fields_inside_handoff_and_customer_are_a_case_to_judge() -> None:
    """An empty handoff or customer object is not unusable input."""
    case = parse_case(patched(SAAS_BASE, {"handoff": {}, "customer": {}}), "x")
    assert isinstance(case, Case)


def test_unknown_fields_are_kept_and_ignored(saas) -> None:  # type: ignore[no-untyped-def]
    """Unknown extra fields do not change the decision."""
    plain = run(SAAS_BASE, saas)
    extra = run(patched(SAAS_BASE, {"x_crm": {"a": 1}, "ticket.x_priority": 3}), saas)
    assert plain == extra


def test_unknown_fields_are_kept_at_the_edge() -> None:
    """Unknown fields stay on the validated case, so what files it (store, RT) keeps them."""
    raw = patched(SAAS_BASE, {"x_crm": {"a": 1}, "handoff.request.x_order": "A-7"})
    model = parse_model(raw, "x")
    assert isinstance(model, CaseIn)
    assert model.model_extra == {"x_crm": {"a": 1}}
    assert model.handoff.request is not None
    assert model.handoff.request.model_dump(exclude_none=True)["x_order"] == "A-7"


def test_numbers_for_ids_are_read_as_text() -> None:
    """A numeric ticket id is accepted as its text."""
    case = parse_case(patched(SAAS_BASE, {"ticket.id": 20417}), "x")
    assert isinstance(case, Case) and case.ticket.id == "20417"


def test_read_cases_accepts_object_array_and_lines() -> None:
    """One object, a JSON array and JSON Lines all give cases in order."""
    one = orjson.dumps(SAAS_BASE)
    two = patched(SAAS_BASE, {"case_id": "NW-2"})
    assert [c.case_id for c in read_cases(one)] == ["NW-1"]  # type: ignore[union-attr]
    array = orjson.dumps([SAAS_BASE, two])
    assert [c.case_id for c in read_cases(array)] == ["NW-1", "NW-2"]  # type: ignore[union-attr]
    lines = one + b"\n\n" + orjson.dumps(two) + b"\n"
    assert [c.case_id for c in read_cases(lines)] == ["NW-1", "NW-2"]  # type: ignore[union-attr]


def test_a_bad_line_does_not_stop_the_others() -> None:
    """A line that is not JSON is reported by number; the next line is still read."""
    data = b"{not json\n" + orjson.dumps(SAAS_BASE) + b"\n[1]\n"
    items = list(read_cases(data, jsonl=True))
    assert isinstance(items[0], CaseError) and items[0].case == "line 1"
    assert isinstance(items[1], Case)
    assert isinstance(items[2], CaseError) and "must be a JSON object" in items[2].lines()[0]


def test_empty_input_is_an_error() -> None:
    """Empty input is unusable, with a clear line."""
    (item,) = list(read_cases(b"  \n"))
    assert isinstance(item, CaseError) and "empty" in item.lines()[0]


def test_decision_has_the_contract_shape(saas) -> None:  # type: ignore[no-untyped-def]
    """The decision carries every field of contract section 3, in order."""
    d = run(SAAS_BASE, saas)
    assert list(d)[:11] == [
        "case_id", "outcome", "escalate_to", "reasons", "policies", "actions", "guidance",
        "stages", "note", "customer_reply", "library",
    ]  # fmt: skip
    assert d["actions"] == [{"type": "refund", "amount": 240.0, "currency": "EUR"}]
    assert d["reasons"][0]["code"] == "policy_resolution"
    assert d["reasons"][0]["detail"] == "billing.duplicate-charge matched"
    assert d["library"]["name"] == "saas"

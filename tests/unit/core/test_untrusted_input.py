"""Input tier2 must not trust: a case read as the contract says (strict booleans, absent and
null alike, currencies and amounts checked), and a library that fails closed."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DELETE, SAAS_BASE, patched
from tests.unit.core.handbook_table import Row, check
from tier2.contract import CaseError, decision_to_dict, parse_case
from tier2.core import decide
from tier2.library.loader import load_library, resolve_library_path

RES = ("policy_resolution",)
B1 = "billing.duplicate-charge"
COMMERCIAL = [{"type": "commercial_sensitivity", "note": "renewal"}]

ROWS = [
    # A3: a flag is unresolved when its `resolved` is not `true`: only JSON true resolves it
    *(
        Row(f"resolved {value!r} leaves the flag unresolved", {"customer.flags": [{**COMMERCIAL[0], "resolved": value}]}, "escalate", "senior_support", ("commercial_sensitivity", *RES))
        for value in ("yes", "true", 1, 1.0, [], {})
    ),
    Row("resolved true resolves the flag", {"customer.flags": [{**COMMERCIAL[0], "resolved": True}]}, "resolve", None, RES),
    Row("a flag without a type is judged, not refused", {"customer.flags": [{"note": "?"}]}, "resolve", None, RES),
    Row("a step without a name is judged, not refused", {"handoff.steps_taken": [{"result": "done"}]}, "return_to_tier1", None, ("missing_prerequisite", *RES)),
    Row("complaint 'true' is not a complaint", {"history": [{"ticket_id": f"H{i}", "at": "2026-02-01T09:00:00+01:00", "complaint": "true"} for i in range(3)]}, "resolve", None, RES),
    Row("complaint true three times is a pattern", {"history": [{"ticket_id": f"H{i}", "at": "2026-02-01T09:00:00+01:00", "complaint": True} for i in range(3)]}, "escalate", "senior_support", ("complaint_pattern", *RES)),
    # B1 falls back to the requested amount when the invoice amount is absent or null
    Row("B1: invoice amount null -> the requested amount", {"facts.invoice.amount": None, "handoff.request.amount": 180.0}, "resolve", None, RES, actions=(("refund", 180.0),)),
    Row("B1: invoice amount absent -> the requested amount", {"facts.invoice.amount": DELETE, "handoff.request.amount": 180.0}, "resolve", None, RES, actions=(("refund", 180.0),)),
    # currencies: the library accepts EUR, USD and GBP at face value; any other goes to a human
    Row("240 XAU is not resolved under the 500 EUR cap", {"handoff.request.currency": "XAU"}, "escalate", "senior_support", ("currency_not_accepted", *RES), detail_has="XAU"),
    Row("the customer's currency counts when the request has none", {"handoff.request.currency": DELETE, "customer.currency": "JPY"}, "escalate", "senior_support", ("currency_not_accepted", *RES)),
    Row("GBP at face value", {"handoff.request.currency": "GBP"}, "resolve", None, RES, actions=(("refund", 240.0),)),
    Row("a lower-case code is the same currency", {"handoff.request.currency": "usd"}, "resolve", None, RES),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_a_case_is_read_as_the_contract_says(
    row: Row, decide_saas: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    """Each reading decides as the handbook's safe reading says."""
    check(row, decide_saas)


@pytest.mark.parametrize(
    ("patch", "field", "problem"),
    [
        ({"handoff.request.currency": "BTC"}, "handoff.request.currency", "not an ISO 4217"),
        ({"handoff.request.currency": "EUR\ntier2-key: x"}, "handoff.request.currency", "ISO 4217"),
        ({"customer.currency": "EURO"}, "customer.currency", "not an ISO 4217"),
        ({"handoff.request.amount": 1e27}, "handoff.request.amount", "less than or equal to"),
        ({"customer.arr": 1e13}, "customer.arr", "less than or equal to"),
        ({"case_id": "NW-1\ncase NW-2: forged"}, "case_id", "control characters"),
        ({"case_id": "\x1b[2J"}, "case_id", "control characters"),
        ({"case_id": "   "}, "case_id", "blank"),
        ({"ticket.id": "20417\ntier2-key: ZD-1:1:note"}, "ticket.id", "control characters"),
    ],
)
def test_unusable_money_and_ids_are_named_input_errors(
    patch: dict[str, Any], field: str, problem: str
) -> None:
    """A currency that is no ISO 4217 code, an absurd amount and an id with control characters
    are input errors naming the field; the error line shows control characters escaped."""
    error = parse_case(patched(SAAS_BASE, patch), "item 1")
    assert isinstance(error, CaseError)
    lines = error.lines()
    assert any(f": {field}: " in line and problem in line for line in lines), lines
    assert all("\n" not in line and "\x1b" not in line for line in lines)


def _library_with(tmp_path: Path, old: str, new: str) -> Any:
    folder = tmp_path / "lib"
    shutil.copytree(resolve_library_path("saas"), folder)
    policies = folder / "policies.yaml"
    text = policies.read_text()
    assert old in text
    policies.write_text(text.replace(old, new, 1))
    return load_library(str(folder))


B1_WHEN = "      - 'facts.invoice.duplicate == true'\n"
B1_AMOUNT = "'has(facts.invoice.amount) ? facts.invoice.amount : request.amount'"


@pytest.mark.parametrize(
    ("old", "new", "names"),
    [
        (
            B1_WHEN,
            B1_WHEN + "    unless:\n      - 'facts.invoice.duplicate + 1.0 > 0.0'\n",
            "unless",
        ),
        (B1_WHEN, B1_WHEN + "      - 'facts.invoice.id'\n", "not a boolean"),
        (B1_AMOUNT, "'facts.invoice.amount - 1000.0'", "not an amount"),
        (B1_AMOUNT, "'facts.invoice.id'", "not an amount"),
        (B1_AMOUNT, "'facts.invoice.amount * 1e20'", "not an amount"),
        (B1_AMOUNT, "'math.least(facts.invoice.id, 1.0)'", "arguments it cannot take"),
    ],
)
def test_a_clause_or_amount_that_cannot_be_evaluated_fails_closed(
    tmp_path: Path, old: str, new: str, names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The case goes to senior_support, first reason library_error naming the policy, the
    clause and why; nothing is resolved or refunded, and nothing is written to stderr."""
    library = _library_with(tmp_path, old, new)
    case = parse_case(SAAS_BASE, "item 1")
    assert not isinstance(case, CaseError)
    d = decision_to_dict(decide(case, library))
    assert (d["outcome"], d["escalate_to"]) == ("escalate", "senior_support")
    first = d["reasons"][0]
    assert first["code"] == "library_error" and first["rule"] == B1
    assert f"policy {B1}" in first["detail"] and names in first["detail"]
    apply = next(s for s in d["stages"] if s["stage"] == "apply_policy")
    assert apply["found"]["not_evaluated"]
    assert capsys.readouterr().err == ""


def test_an_amount_reading_an_absent_field_leaves_the_policy_unmatched(tmp_path: Path) -> None:
    """Handbook: a policy whose amount needs an absent field does not match (no failure)."""
    library = _library_with(tmp_path, B1_AMOUNT, "'facts.invoice.amount'")
    case = parse_case(patched(SAAS_BASE, {"facts.invoice.amount": DELETE}), "item 1")
    assert not isinstance(case, CaseError)
    d = decision_to_dict(decide(case, library))
    assert B1 not in d["policies"] and "library_error" not in [r["code"] for r in d["reasons"]]


def test_currency_values_scale_the_authority_limits(tmp_path: Path) -> None:
    """An amount is compared with the limits at its currency's value: 240 at 3.0 is 720."""
    folder = tmp_path / "lib"
    shutil.copytree(resolve_library_path("saas"), folder)
    library_yaml = folder / "library.yaml"
    library_yaml.write_text(
        library_yaml.read_text().replace(
            "currencies: {EUR: 1.0, USD: 1.0, GBP: 1.0}", "currencies: {EUR: 1.0, CHF: 3.0}"
        )
    )
    library = load_library(str(folder))
    case = parse_case(patched(SAAS_BASE, {"handoff.request.currency": "CHF"}), "item 1")
    assert not isinstance(case, CaseError)
    d = decision_to_dict(decide(case, library))
    assert d["reasons"][0]["code"] == "authority_exceeded"
    assert d["actions"] == [{"type": "refund", "amount": 240.0, "currency": "CHF"}]

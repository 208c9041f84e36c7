"""A library's own request vocabulary (design section 6): its request types, its typed request
fields (checked at parse, read as `request.<field>`), and steps required by request type."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.conftest import DELETE, ECOMMERCE_BASE, patched
from tier2.app.deciding import BAD_INPUT, DECIDED, decide_all, decide_units
from tier2.contract import (
    FILING,
    CaseError,
    CaseIn,
    Vocabulary,
    decision_to_dict,
    parse_case,
    read_models,
    read_units,
)
from tier2.contract import RequestType as ContractRequestType
from tier2.core import decide
from tier2.core.library import REQUEST_TYPES, Library
from tier2.library.lint import lint_library
from tier2.library.loader import LibraryError, load_library, resolve_library_path
from tier2.library.samples import CaseGenerator

TYPES = ["cancel", "return", "exchange", "modify", "refund", "information", "other"]
FIELDS = {
    "order_id": "string", "item_ids": "list<string>", "quantities": "list<number>",
    "keep_box": "bool", "wanted_by": "timestamp", "budget": "money", "weight": "number",
}  # fmt: skip
CANCEL = """
  - id: cancel.pending
    title: A pending order is cancelled
    citation: retail 1
    precedence: 5
    when: ['request.type == "cancel"', '"A1" in request.item_ids']
    outcome: resolve
    actions: [{type: cancel}]
"""


def _retail(tmp_path: Path, settings: dict[str, Any] | None = None, policy: str = CANCEL) -> Path:
    """The ecommerce library with the retail vocabulary (and these library.yaml settings)."""
    folder = tmp_path / "retail"
    shutil.copytree(resolve_library_path("ecommerce"), folder)
    path = folder / "library.yaml"
    data = yaml.safe_load(path.read_text())
    data["request"] = {"types": TYPES, "fields": FIELDS}
    data["handoff_protocol"]["required_steps"] = {
        "by_category": data["handoff_protocol"]["required_steps"],
        "by_request": {"cancel": ["confirm_with_customer", "verify_order"]},
    }
    path.write_text(yaml.safe_dump(patched(data, settings or {}), sort_keys=False))
    policies = folder / "policies.yaml"
    policies.write_text(policies.read_text().replace("policies:\n", "policies:" + policy, 1))
    return folder


@pytest.fixture(scope="module")
def retail(tmp_path_factory: pytest.TempPathFactory) -> Library:
    return load_library(str(_retail(tmp_path_factory.mktemp("lib"))))


def _cancel(**patch: Any) -> dict[str, Any]:
    base = {
        "handoff.request": {"type": "cancel", "item_ids": ["A1", "B2"], "order_id": "O-1"},
        "handoff.steps_taken": [{"step": "verify_order"}, {"step": "confirm_with_customer"}],
    }
    return patched(ECOMMERCE_BASE, {**base, **patch})


def _decide(library: Library, raw: dict[str, Any]) -> dict[str, Any]:
    case = parse_case(raw, "item 1", Vocabulary.of(library))
    assert not isinstance(case, CaseError), case.lines()
    return decision_to_dict(decide(case, library))


def test_the_default_vocabulary_is_the_contracts() -> None:
    """A library that declares none has the contract's 8 request types and no fields."""
    assert ContractRequestType.__args__ == REQUEST_TYPES  # type: ignore[attr-defined]
    saas = load_library("saas")
    assert saas.request_types == REQUEST_TYPES and saas.request_fields == {}


def test_a_declared_request_type_is_decided(retail: Library) -> None:
    """A case of the library's own request type is read, and its declared fields reach CEL."""
    d = _decide(retail, _cancel())
    assert (d["outcome"], d["policies"], d["actions"]) == (
        "resolve",
        ["cancel.pending"],
        [{"type": "cancel"}],
    )


def test_an_undeclared_request_type_names_the_declared_ones(retail: Library) -> None:
    """A type the library does not declare is an input error listing its types."""
    error = parse_case(
        patched(ECOMMERCE_BASE, {"handoff.request.type": "credit"}), "item 1", Vocabulary.of(retail)
    )
    assert isinstance(error, CaseError)
    assert error.lines() == [
        "case HP-1 (item 1): handoff.request.type: Input should be 'cancel', 'return', "
        "'exchange', 'modify', 'refund', 'information' or 'other' (got 'credit')"
    ]


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("order_id", "O-1", 17),
        ("item_ids", ["A1"], ["A1", 2]),
        ("item_ids", [], "A1"),
        ("quantities", [1, 2.5], [True]),
        ("keep_box", False, "no"),
        ("wanted_by", "2026-03-12T00:00:00Z", "2026-03-12"),
        ("budget", 12.5, -1),
        ("weight", -3, "3"),
    ],
)
def test_a_declared_request_field_is_checked_by_type(
    retail: Library, field: str, good: Any, bad: Any
) -> None:
    """A value of the declared type is carried to the core; another is an input error naming
    the field."""
    vocabulary = Vocabulary.of(retail)
    case = parse_case(_cancel(**{f"handoff.request.{field}": good}), "item 1", vocabulary)
    assert not isinstance(case, CaseError) and case.handoff.request is not None
    assert case.handoff.request.fields[field] == good
    error = parse_case(_cancel(**{f"handoff.request.{field}": bad}), "item 1", vocabulary)
    assert isinstance(error, CaseError)
    [line] = error.lines()
    assert line.startswith(
        f"case HP-1 (item 1): handoff.request.{field}: Input should be of type {FIELDS[field]} ("
    )


def test_undeclared_request_fields_stay_ignored(retail: Library) -> None:
    """An extra request field the library does not declare is not carried, nor checked."""
    case = parse_case(_cancel(**{"handoff.request.note": 3}), "x", Vocabulary.of(retail))
    assert not isinstance(case, CaseError) and case.handoff.request is not None
    assert "note" not in case.handoff.request.fields


def test_an_absent_declared_field_leaves_clauses_false(retail: Library) -> None:
    """A case without the field does not match a policy reading it (it is absent, not an error)."""
    d = _decide(retail, _cancel(**{"handoff.request.item_ids": DELETE}))
    assert "cancel.pending" not in d["policies"] and d["reasons"][0]["code"] != "library_error"


def test_a_policy_reading_an_undeclared_request_field_does_not_load(tmp_path: Path) -> None:
    """`request.itemz` is a load error naming the policy; `request.item_ids` loads."""
    bad = CANCEL.replace("request.item_ids", "request.itemz")
    with pytest.raises(
        LibraryError, match=r"policy cancel.pending: when\[1\]: reads request.itemz"
    ):
        load_library(str(_retail(tmp_path, policy=bad)))


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"request.fields": {"item_ids": "list<boolean>"}}, "item_ids: no type 'list<boolean>'"),
        (
            {"request.fields": {"type": "string"}},
            "a request field is an identifier other than type, amount and currency",
        ),
        ({"request.types": ["cancel", "cancel"]}, "a request type is listed twice"),
        ({"request.types": []}, "request.types: List should have at least 1 item"),
        (
            {"handoff_protocol.required_steps.by_request": {"credit": ["x"]}},
            "by_request: 'credit': not a request type of the library",
        ),
        (
            {"handoff_protocol.require": DELETE},
            "handoff_protocol: require: required field is missing",
        ),
        ({"signals.churn_threat": None}, "switch the section off with false"),
    ],
)
def test_a_bad_vocabulary_or_switch_names_file_and_problem(
    tmp_path: Path, settings: dict[str, Any], problem: str
) -> None:
    """A bad request vocabulary, steps for an undeclared type, or a section given as null, is
    a load error naming library.yaml and the problem."""
    with pytest.raises(LibraryError, match=r"library\.yaml") as error:
        load_library(str(_retail(tmp_path, settings)))
    assert problem in str(error.value)


@pytest.mark.parametrize(
    ("category", "steps", "missing", "what"),
    [
        ("order", [], "confirm_with_customer, verify_order", "cancel request"),
        ("refund", [], "verify_order, confirm_with_customer", "refund case with a cancel request"),
        (
            "refund",
            [{"step": "confirm_with_customer"}],
            "verify_order",
            "refund case with a cancel request",
        ),  # both require it
        ("billing", [{"step": "confirm_with_customer"}, {"step": "verify_order"}], None, None),
        ("refund", [{"step": "verify_order"}], "confirm_with_customer", "cancel request"),
    ],
)
def test_steps_required_by_request_type(
    retail: Library, category: str, steps: list[Any], what: str | None, missing: str | None
) -> None:
    """Missing steps are the category's then the request type's (no repeats); the finding
    names what requires them."""
    d = _decide(
        retail,
        _cancel(
            **{"ticket.category": category, "handoff.steps_taken": steps or [{"step": "other"}]}
        ),
    )
    if missing is None:
        assert "missing_prerequisite" not in [r["code"] for r in d["reasons"]]
        return
    reason = next(r for r in d["reasons"] if r["code"] == "missing_prerequisite")
    assert reason["detail"] == f"tier-1 has not done the step(s) required for a {what}: {missing}"
    assert d["guidance"] is None or d["guidance"].startswith(
        f"Before escalating a {what}, complete and record: {missing}."
    )


def test_filing_takes_any_request_type_and_deciding_checks_it(retail: Library) -> None:
    """`tier2 import` files a case of any request type; the library that decides it refuses
    one it does not declare as an input error on the case, not a fault."""
    cancel = orjson.dumps(_cancel())
    (filed,) = read_models(cancel, vocabulary=FILING)
    assert isinstance(filed, CaseIn) and filed.handoff.request is not None
    assert filed.handoff.request.type == "cancel"
    assert isinstance(next(read_models(cancel)), CaseError)  # (the contract's own check)
    units = [u for u in read_units(cancel) if not isinstance(u, CaseError)]
    assert [v[0] for v in decide_units(retail, units, None)] == [DECIDED]
    ((status, written),) = decide_units(load_library("ecommerce"), units, None)
    assert status == BAD_INPUT and b"handoff.request.type: Input should be 'refund'" in written


def test_worker_processes_read_with_the_librarys_vocabulary(tmp_path: Path) -> None:
    """`tier2 decide --workers` decides a library's own request types as one process does."""
    spec = str(_retail(tmp_path))
    library = load_library(spec)
    units = [(f"item {i}", _cancel(case_id=f"R-{i}")) for i in range(6)]
    now = datetime(2026, 3, 11, tzinfo=UTC)
    alone = [v for chunk in decide_all(library, spec, units, now, chunk=2) for v in chunk]
    pooled = [
        v for chunk in decide_all(library, spec, units, now, workers=2, chunk=2) for v in chunk
    ]
    assert all(status == DECIDED for status, _ in alone + pooled)
    assert b"".join(w for _, w in pooled) == b"".join(w for _, w in alone)
    assert b"".join(w for _, w in alone).count(b'"policies":["cancel.pending"]') == 6


def test_generated_cases_speak_the_librarys_vocabulary(retail: Library) -> None:
    """The case generator draws the library's own request types and typed field values, so
    every generated case is valid for it, and lint runs on it."""
    vocabulary = Vocabulary.of(retail)
    seen: set[str] = set()
    for exhaustive in (False, True):
        generator = CaseGenerator(retail, seed=3, exhaustive=exhaustive)
        for i in range(300):
            raw = generator.case(i)
            seen.add(raw["handoff"]["request"]["type"])
            assert not isinstance(parse_case(raw, "g", vocabulary), CaseError)
    assert seen == set(TYPES)
    assert lint_library(retail, samples=500, seed=1).matches["cancel.pending"] > 0


def test_lint_names_clauses_on_undeclared_request_types(retail: Library) -> None:
    """A clause comparing request.type with a type the library does not declare is named by
    lint; the built-ins have none."""
    found = lint_library(retail, samples=200, seed=1).of("unknown_request_type")
    assert {f.subject[0] for f in found} >= {
        "policy damage.replacement",
        "policy shipping.lost-parcel",
    }
    assert "'replacement'" in next(
        f.detail for f in found if f.subject[0] == "policy damage.replacement"
    )
    for name in ("saas", "ecommerce"):
        assert lint_library(load_library(name), samples=50, seed=1).of("unknown_request_type") == []

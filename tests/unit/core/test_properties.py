"""Invariants of the decision pipeline over arbitrary valid cases (hypothesis)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tier2.contract import CaseError, decision_json, parse_case
from tier2.core import decide
from tier2.core.library import Library
from tier2.core.model import STAGE_NAMES
from tier2.library.loader import load_library
from tier2.library.samples import (
    CATEGORIES,
    CHANNELS,
    REQUESTS,
    SEGMENTS,
    SEVERITIES,
    CaseGenerator,
)

LIBRARIES = {name: load_library(name) for name in ("saas", "ecommerce")}
AGAIN = {name: load_library(name) for name in LIBRARIES}  # loaded apart: memos of their own
# the same libraries evaluating every clause directly on the full view, nothing remembered
FULL = {
    name: dataclasses.replace(library, view_names=None, memoize=False)
    for name, library in LIBRARIES.items()
}
STEP6 = {
    "policy_conflict",
    "no_policy_match",
    "policy_return",
    "policy_escalation",
    "authority_exceeded",
    "complexity",
    "policy_resolution",
}
ORDER = [
    "library_error",
    "currency_not_accepted",
    "handoff_ambiguity",
    "commercial_sensitivity",
    "complaint_pattern",
    "management_trigger",
    "missing_prerequisite",
]

times = st.datetimes(
    min_value=datetime(2024, 1, 1),
    max_value=datetime(2027, 12, 31),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))]),
).map(lambda t: t.isoformat())
text = st.one_of(st.none(), st.text(max_size=40), st.sampled_from(["cancel", "GDPR", "  ", ""]))
money = st.one_of(
    st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False), st.integers(0, 10**6)
)
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    times,
)
json_value = st.recursive(
    json_leaf,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=8), kids, max_size=3)
    ),
    max_leaves=8,
)
fact_names = st.sampled_from(
    [
        "id",
        "value",
        "amount",
        "duplicate",
        "delivered_at",
        "return_received",
        "final_sale",
        "damaged",
        "photo_evidence",
        "carrier_status",
        "chargeback_open",
        "downtime_minutes",
        "data_loss",
    ]
)
record = st.dictionaries(fact_names, json_value, max_size=6)
facts = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "invoice": record,
            "incident": record,
            "order": record,
            "third_party": json_value,
        },
    ),
)
plan = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "billing": st.sampled_from(["monthly", "annual", "x"]),
            "seats": st.integers(0, 100),
            "monthly_fee": money,
            "renewed_at": st.one_of(times, st.text(max_size=5)),
        },
    ),
)


def _opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


identifier = st.text(min_size=1, max_size=10).filter(lambda s: s.strip() and s.isprintable())

# Arbitrary cases the contract accepts. Built once, at import: building the strategies inside
# a @composite on every draw cost more than deciding the case.
CASES = st.fixed_dictionaries(
    {
        "case_id": identifier,
        "received_at": times,
        "ticket": st.fixed_dictionaries(
            {
                "id": identifier,
                "created_at": times,
                "severity": st.sampled_from([*SEVERITIES, "P1", "P4"]),
                "category": st.sampled_from(CATEGORIES),
                "channel": _opt(st.sampled_from(CHANNELS)),
                "description": text,
                "messages": _opt(
                    st.lists(
                        st.fixed_dictionaries(
                            {
                                "from": st.sampled_from(["customer", "agent", "bot"]),
                                "at": _opt(times),
                                "body": text,
                            }
                        ),
                        max_size=5,
                    )
                ),
            }
        ),
        "handoff": st.fixed_dictionaries(
            {},
            optional={
                "reason": text,
                "customer_expectation": text,
                "steps_taken": st.lists(
                    st.fixed_dictionaries(
                        {
                            "step": st.sampled_from(
                                [
                                    "verify_invoice",
                                    "verify_order",
                                    "verify_identity",
                                    "check_tracking",
                                    "x",
                                ]
                            )
                        }
                    ),
                    max_size=3,
                ),
                "request": st.fixed_dictionaries(
                    {},
                    optional={
                        "type": st.sampled_from(REQUESTS),
                        "amount": money,
                        "currency": st.sampled_from(["EUR", "USD", "gbp", "XAU", "JPY"]),
                    },
                ),
            },
        ),
        "customer": st.fixed_dictionaries(
            {},
            optional={
                "id": text,
                "segment": st.sampled_from(SEGMENTS),
                "arr": money,
                "plan": plan,
                "flags": st.lists(
                    st.fixed_dictionaries(
                        {
                            "type": st.sampled_from(
                                [
                                    "commercial_sensitivity",
                                    "churn_risk",
                                    "public_complaint",
                                    "other",
                                ]
                            )
                        },
                        optional={
                            "resolved": st.sampled_from([True, False, None, "yes", 1, "true"])
                        },
                    ),
                    max_size=3,
                ),
            },
        ),
        "history": _opt(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "ticket_id": st.text(max_size=3),
                        "at": times,
                        "category": st.sampled_from(CATEGORIES),
                        "complaint": st.booleans(),
                        "escalated": st.booleans(),
                    },
                ),
                max_size=6,
            )
        ),
        "facts": facts,
    }
)


def decided(raw: dict[str, Any], library: Library) -> bytes:
    case = parse_case(raw, "p")
    assert not isinstance(case, CaseError), case.lines()
    return decision_json(decide(case, library))


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(raw=CASES, name=st.sampled_from(sorted(LIBRARIES)))
def test_any_valid_case_is_decided_without_error(raw: dict[str, Any], name: str) -> None:
    """Every valid case gets a decision: never a traceback."""
    decided(raw, LIBRARIES[name])


@SETTINGS
@given(raw=CASES, name=st.sampled_from(sorted(LIBRARIES)))
def test_same_case_same_decision_byte_for_byte(raw: dict[str, Any], name: str) -> None:
    """The same case and library give the same bytes, also from the library loaded apart."""
    first = decided(raw, LIBRARIES[name])
    assert decided(raw, LIBRARIES[name]) == first
    assert decided(raw, AGAIN[name]) == first


def _outcome_of(code: str) -> str:
    if code == "policy_resolution":
        return "resolve"
    if code in ("missing_prerequisite", "policy_return"):
        return "return_to_tier1"
    return "escalate"


@SETTINGS
@given(raw=CASES, name=st.sampled_from(sorted(LIBRARIES)))
def test_decision_invariants(raw: dict[str, Any], name: str) -> None:
    """Five stages in order; reasons in precedence order; one step-6 code last; the first decides."""
    library = LIBRARIES[name]
    case = parse_case(raw, "p")
    assert not isinstance(case, CaseError)
    d = decide(case, library)
    assert tuple(s.stage for s in d.stages) == STAGE_NAMES
    codes = [r.code.value for r in d.reasons]
    assert codes[-1] in STEP6 and not STEP6 & set(codes[:-1])
    assert codes[:-1] == [c for c in ORDER if c in codes]
    assert d.outcome.value == _outcome_of(codes[0])
    assert (d.escalate_to is not None) == (d.outcome.value == "escalate")
    assert (d.guidance is not None) == (d.outcome.value == "return_to_tier1")
    limit = library.authority.engine_role.limit or 0.0
    for action in d.actions:
        assert action.amount is None or round(action.amount, 2) == action.amount
        if d.outcome.value == "resolve":
            assert action.amount is None or action.amount <= limit


@SETTINGS
@given(
    seed=st.integers(0, 10**6), name=st.sampled_from(sorted(LIBRARIES)), exhaustive=st.booleans()
)
def test_memoized_clauses_decide_like_direct_evaluation(
    seed: int, name: str, exhaustive: bool
) -> None:
    """Evaluating clauses on only the fields they read, remembered by value, changes no decision."""
    raw = CaseGenerator(LIBRARIES[name], seed, exhaustive=exhaustive).case(seed % 97)
    assert decided(raw, LIBRARIES[name]) == decided(raw, FULL[name])


@SETTINGS
@given(raw=CASES, name=st.sampled_from(sorted(LIBRARIES)))
def test_memoized_clauses_agree_on_arbitrary_cases(raw: dict[str, Any], name: str) -> None:
    """On arbitrary cases too, remembered clause results equal direct evaluation on the full view."""
    assert decided(raw, LIBRARIES[name]) == decided(raw, FULL[name])

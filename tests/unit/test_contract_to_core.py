"""The edge's conversion of a valid case into the core's dataclasses."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import DELETE, ECOMMERCE_BASE, SAAS_BASE, patched
from tier2.contract import CaseError, CaseIn, parse_case, parse_model
from tier2.core import model as m
from tier2.library.loader import load_library
from tier2.library.samples import CaseGenerator

_SEVERITY = {s.value: s for s in m.Severity}


def reference_case(c: CaseIn) -> m.Case:
    """The core case a contract model stands for, field by field (the test's oracle)."""
    t, h, u = c.ticket, c.handoff, c.customer
    r = h.request
    return m.Case(
        case_id=c.case_id,
        received_at=c.received_at,
        ticket=m.Ticket(
            id=t.id,
            created_at=t.created_at,
            severity=_SEVERITY[t.severity],
            category=t.category,
            subject=t.subject,
            description=t.description,
            channel=t.channel,
            messages=tuple(m.Message(x.sender, x.at, x.body or "") for x in t.messages or ()),
            tags=tuple(t.tags or ()),
            status=t.status,
        ),
        handoff=m.Handoff(
            sender=h.sender,
            escalated_at=h.escalated_at,
            reason=h.reason,
            steps_taken=tuple(m.Step(s.step, s.result, s.at) for s in h.steps_taken or ()),
            customer_expectation=h.customer_expectation,
            request=None if r is None else m.Request(r.type, r.amount, r.currency),
            sentiment=h.sentiment,
        ),
        customer=m.Customer(
            id=u.id,
            name=u.name,
            company=u.company,
            segment=u.segment,
            vip=u.vip,
            arr=u.arr,
            currency=u.currency,
            plan=u.plan,
            flags=tuple(m.Flag(f.type, f.note, f.resolved is True) for f in u.flags or ()),
        ),
        history=tuple(
            m.HistoryEntry(
                e.ticket_id, e.at, e.category, e.complaint is True, e.escalated is True, e.outcome
            )
            for e in c.history or ()
        ),
        facts=c.facts or {},
    )


def agrees_with_the_models(raw: Any) -> None:
    parsed, model = parse_case(raw, "x"), parse_model(raw, "x")
    if isinstance(model, CaseError):
        assert parsed == model
    else:
        assert parsed == reference_case(model)


@pytest.mark.parametrize("name", ["saas", "ecommerce"])
def test_generated_cases_become_the_case_the_models_describe(name: str) -> None:
    """Every generated case converts to exactly the core case its models describe."""
    for raw in CaseGenerator(load_library(name), 7).cases(400):
        agrees_with_the_models(raw)


def test_absent_optional_fields_get_the_core_defaults() -> None:
    """Absent lists become empty tuples, absent flags false, an absent body empty, facts {}."""
    raw = patched(
        SAAS_BASE,
        {"ticket.messages": [{"from": "customer"}], "history": [{}], "facts": DELETE,
         "customer.flags": [{"type": "vip_account"}], "handoff.steps_taken": DELETE},
    )  # fmt: skip
    case = parse_case(raw, "x")
    assert isinstance(case, m.Case)
    assert case.ticket.messages[0].body == "" and case.ticket.tags == ()
    assert case.history[0].complaint is False and case.customer.flags[0].resolved is False
    assert case.handoff.steps_taken == () and case.facts == {}
    assert parse_case(dict(ECOMMERCE_BASE, facts=None), "y").facts == {}  # type: ignore[union-attr]


def test_each_case_gets_its_own_facts() -> None:
    """A defaulted facts map is never shared between two cases."""
    a, b = (parse_case(patched(SAAS_BASE, {"facts": DELETE}), "x") for _ in range(2))
    assert isinstance(a, m.Case) and isinstance(b, m.Case)
    assert a.facts is not b.facts


_PATHS = [
    "case_id", "received_at", "ticket", "ticket.id", "ticket.severity", "ticket.category",
    "ticket.channel", "ticket.created_at", "ticket.messages", "ticket.tags", "ticket.subject",
    "handoff", "handoff.from", "handoff.escalated_at", "handoff.steps_taken", "handoff.request",
    "handoff.request.amount", "handoff.request.type", "handoff.sentiment", "customer",
    "customer.arr", "customer.vip", "customer.flags", "customer.plan", "customer.segment",
    "history", "facts", "extra_field",
]  # fmt: skip
_VALUES = st.one_of(
    st.sampled_from([DELETE, None, "", "P1", "2026-03-03T08:05:00", "2026-03-03T08:05:00Z",
                     "refund", "email", True, 0, -1.5, 12, float("inf"), [], {}, [{}],
                     [{"from": 3, "body": None, "at": "x"}], [{"type": "legal_hold"}],
                     [{"step": "s", "at": "2026-03-03T08:05:00+01:00"}], [{"complaint": 1}]]),
    st.text(max_size=5),
    st.floats(allow_nan=False),
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(_PATHS), _VALUES, max_size=3))
def test_any_input_is_read_as_the_models_read_it(patch: dict[str, Any]) -> None:
    """Good or bad, a case is parsed exactly as the contract models parse it: the same core
    case, or the same problems named."""
    if any(p != q and q.startswith(p + ".") for p in patch for q in patch):
        return  # a path inside one this patch replaces
    try:
        raw = patched(SAAS_BASE, patch)
    except (TypeError, KeyError):
        return  # a path through a value the patch made a scalar
    agrees_with_the_models(raw)


@pytest.mark.parametrize("raw", [[], "case", 3, None])
def test_a_case_that_is_not_an_object_is_named(raw: Any) -> None:
    """A JSON value that is not an object is one clear problem."""
    parsed = parse_case(raw, "item 2")
    assert isinstance(parsed, CaseError)
    assert parsed.lines() == [
        f"case item 2: (case): must be a JSON object, got {type(raw).__name__}"
    ]

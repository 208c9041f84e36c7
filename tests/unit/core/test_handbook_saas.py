"""Handbook part B (Northwind Cloud, library `saas`): every policy, boundary and conflict."""

from __future__ import annotations

import pytest

from tests.conftest import DELETE
from tests.unit.core.handbook_table import Row, check

B1, B2, B3, B4, B5, B6 = (
    "billing.duplicate-charge",
    "billing.annual-refund-window",
    "billing.annual-refund-late",
    "billing.monthly-no-refund",
    "billing.large-account",
    "incident.outage-credit",
)
B7, B8, B9, B10, B11, B12 = (
    "access.verified-restore",
    "access.self-service",
    "technical.data-loss",
    "contract.change",
    "account.how-to",
    "technical.bug",
)
NOT_DUP = {"facts.invoice.duplicate": False}
ANNUAL = {"customer.plan.billing": "annual", **NOT_DUP}
ACCESS = {
    "ticket.category": "access",
    "handoff.steps_taken": [{"step": "verify_identity", "result": "ok"}],
}
TECH = {"ticket.category": "technical", "handoff.request.type": "other"}
CREDIT = {"handoff.request.type": "credit", "handoff.request.amount": 50.0}

ROWS = [
    # B1 duplicate charge
    Row("B1 refunds the duplicate invoice amount", {}, "resolve", None, ("policy_resolution",), (B1,), (("refund", 240.0),)),
    Row("B1 falls back to the requested amount", {"facts.invoice.amount": DELETE, "handoff.request.amount": 99.0}, "resolve", None, ("policy_resolution",), (B1,), (("refund", 99.0),)),
    Row("B1 holds for category refund too", {"ticket.category": "refund"}, "resolve", None, ("policy_resolution",), (B1,)),
    Row("B1 needs a refund request", {"handoff.request.type": "credit", "handoff.request.amount": 240.0}, "escalate", "senior_support", ("no_policy_match",), ()),
    Row("B1 without any amount does not match", {"facts.invoice.amount": DELETE, "handoff.request.amount": DELETE}, "escalate", "senior_support", ("handoff_ambiguity", "no_policy_match"), ()),
    Row("B1 overrides B5 on a large account", {"customer.plan.seats": 25}, "resolve", None, ("policy_resolution",), (B1, B5), (("refund", 240.0),)),
    Row("B1 overrides B2 and B5 on an annual large account", {"customer.plan.billing": "annual", "customer.plan.seats": 25, "customer.plan.renewed_at": "2026-02-20T00:00:00+01:00"}, "resolve", None, ("policy_resolution",), (B1, B2, B5)),
    # B2 / B3 annual window, boundary 30 days = 720 hours
    Row("B2 refunds an annual plan inside 30 days", {**ANNUAL, "customer.plan.renewed_at": "2026-02-10T00:00:00+01:00"}, "resolve", None, ("policy_resolution",), (B2,), (("refund", 240.0),)),
    Row("B2 includes exactly 30 days", {**ANNUAL, "customer.plan.renewed_at": "2026-02-01T10:20:00+01:00"}, "resolve", None, ("policy_resolution",), (B2,)),
    Row("B3 one second past 30 days declines with a month's credit", {**ANNUAL, "customer.plan.renewed_at": "2026-02-01T10:19:59+01:00"}, "resolve", None, ("policy_resolution",), (B3,), (("decline", None), ("credit", 240.0))),
    Row("B2/B3 do not apply before the renewal", {**ANNUAL, "customer.plan.renewed_at": "2026-03-04T00:00:00+01:00"}, "escalate", "senior_support", ("no_policy_match",), ()),
    Row("B2/B3 need a renewal date", {**ANNUAL, "customer.plan.renewed_at": DELETE}, "escalate", "senior_support", ("no_policy_match",), ()),
    Row("B3 credit above 500 exceeds authority", {**ANNUAL, "customer.plan.renewed_at": "2025-06-01T00:00:00+02:00", "customer.plan.monthly_fee": 900.0}, "escalate", "support_manager", ("authority_exceeded",), (B3,), (("decline", None), ("credit", 900.0))),
    # B4 monthly
    Row("B4 declines a monthly refund with a credit capped at the fee", {**NOT_DUP, "handoff.request.amount": 300.0}, "resolve", None, ("policy_resolution",), (B4,), (("decline", None), ("credit", 240.0))),
    Row("B4 credits the requested amount when below the fee", {**NOT_DUP, "handoff.request.amount": 100.0}, "resolve", None, ("policy_resolution",), (B4,), (("decline", None), ("credit", 100.0))),
    Row("B4 holds when there is no invoice at all", {"facts": {}}, "resolve", None, ("policy_resolution",), (B4,)),
    Row("B4 holds when the invoice says nothing of duplicates", {"facts.invoice.duplicate": DELETE}, "resolve", None, ("policy_resolution",), (B4,)),
    # B5 and its conflicts (B2/B5 named by the handbook)
    Row("B2 and B5 conflict on an annual 25-seat refund in the window", {**ANNUAL, "customer.plan.seats": 25, "customer.plan.renewed_at": "2026-02-20T00:00:00+01:00"}, "escalate", "senior_support", ("policy_conflict",), (B2, B5), (), detail_has=f"{B2}, {B5}"),
    Row("B4 and B5 conflict on a monthly 21-seat refund", {**NOT_DUP, "customer.plan.seats": 21}, "escalate", "senior_support", ("policy_conflict",), (B4, B5)),
    Row("B5 needs more than 20 seats", {**NOT_DUP, "customer.plan.seats": 20}, "resolve", None, ("policy_resolution",), (B4,)),
    Row("B5 alone escalates to account management", {**NOT_DUP, "customer.plan.billing": "quarterly", "customer.plan.seats": 40}, "escalate", "account_management", ("policy_escalation",), (B5,)),
    # B6 outage credit: 10 % of the fee per started hour, at most one month
    Row("B6 credits 10 % per started hour (90 min = 2 h)", {**CREDIT, "facts.incident": {"id": "INC-1", "downtime_minutes": 90}}, "resolve", None, ("policy_resolution",), (B6,), (("credit", 48.0),)),
    Row("B6 60 minutes is one hour", {**CREDIT, "facts.incident": {"id": "INC-1", "downtime_minutes": 60}}, "resolve", None, ("policy_resolution",), (B6,), (("credit", 24.0),)),
    Row("B6 61 minutes is two hours", {**CREDIT, "facts.incident": {"id": "INC-1", "downtime_minutes": 61}}, "resolve", None, ("policy_resolution",), (B6,), (("credit", 48.0),)),
    Row("B6 is capped at one month's fee", {**CREDIT, "facts.incident": {"id": "INC-1", "downtime_minutes": 1000}}, "resolve", None, ("policy_resolution",), (B6,), (("credit", 240.0),)),
    Row("B6 needs an incident", {**CREDIT}, "escalate", "senior_support", ("no_policy_match",), ()),
    Row("B6 without downtime cannot be priced and does not match", {**CREDIT, "facts.incident": {"id": "INC-1"}}, "escalate", "senior_support", ("no_policy_match",), ()),
    # B7 / B8 access
    Row("B7 restores verified access", {**ACCESS, "handoff.request": {"type": "access_restore"}}, "resolve", None, ("policy_resolution",), (B7,), (("access_restore", None),)),
    Row("B7 without identity verification goes back to tier-1", {"ticket.category": "access", "handoff.request": {"type": "access_restore"}}, "return_to_tier1", None, ("missing_prerequisite", "policy_resolution"), (B7,), (("access_restore", None),), guidance_has="verify_identity"),
    Row("B8 returns access questions with the self-service guide", {**ACCESS, "handoff.request": {"type": "information"}}, "return_to_tier1", None, ("policy_return",), (B8,), (), guidance_has="KB-ACCESS-12"),
    # B9 / B12 technical
    Row("B9 sends data loss to engineering", {**TECH, "facts.incident": {"id": "INC-2", "data_loss": True}}, "escalate", "engineering", ("policy_escalation",), (B9,)),
    Row("B12 sends bugs to engineering", {**TECH}, "escalate", "engineering", ("policy_escalation",), (B12,)),
    Row("B12 holds when no request is recorded", {**TECH, "handoff.request": DELETE}, "escalate", "engineering", ("policy_escalation",), (B12,)),
    Row("B12 is not B9", {**TECH, "facts.incident": {"id": "INC-2", "data_loss": False}}, "escalate", "engineering", ("policy_escalation",), (B12,)),
    Row("B11 returns technical how-to questions (not B12)", {**TECH, "handoff.request.type": "information"}, "return_to_tier1", None, ("policy_return",), (B11,), guidance_has="KB-HOWTO"),
    Row("B11 returns account how-to questions", {"ticket.category": "account", "handoff.request": {"type": "information"}}, "return_to_tier1", None, ("policy_return",), (B11,)),
    # B10 contract
    Row("B10 sends contract changes to the support manager", {"ticket.category": "account", "handoff.request": {"type": "contract_change"}}, "escalate", "support_manager", ("policy_escalation",), (B10,)),
    Row("B10 holds for category contract", {"ticket.category": "contract", "handoff.request": {"type": "information"}}, "escalate", "support_manager", ("policy_escalation",), (B10,)),
    Row("B6 and B12 conflict on a technical outage credit", {**TECH, **CREDIT, "facts.incident": {"id": "INC-1", "downtime_minutes": 30}}, "escalate", "senior_support", ("policy_conflict",), (B6, B12)),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_saas_policy(row: Row, decide_saas) -> None:  # type: ignore[no-untyped-def]
    """Each rule of handbook part B decides as written."""
    check(row, decide_saas)


def test_b1_override_is_reported_in_apply_policy(decide_saas) -> None:  # type: ignore[no-untyped-def]
    """A higher-precedence policy's override of a lower one is reported in apply_policy."""
    d = decide_saas({"customer.plan.seats": 25})
    stage = d["stages"][2]
    assert stage["stage"] == "apply_policy"
    assert stage["found"]["overridden"] == [{"policy": B5, "by": B1}]

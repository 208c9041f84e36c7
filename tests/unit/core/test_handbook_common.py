"""Handbook part A: the handoff protocol, signals, management triggers, authority, precedence."""

from __future__ import annotations

import pytest

from tests.conftest import DELETE
from tests.unit.core.handbook_table import Row, check

RES = ("policy_resolution",)
B1 = "billing.duplicate-charge"


def history(*entries: tuple[str, str, bool, bool]) -> list[dict[str, object]]:
    """(at, category, complaint, escalated) -> history entries with distinct ticket ids."""
    return [
        {"ticket_id": f"H{i}", "at": at, "category": cat, "complaint": c, "escalated": e}
        for i, (at, cat, c, e) in enumerate(entries)
    ]


# received_at is 2026-03-03T10:20:00+01:00: 180 days earlier is 2025-09-04T10:20:00+01:00.
D180 = "2025-09-04T10:20:00+01:00"
D181 = "2025-09-04T10:19:00+01:00"  # a minute older than 180 days
D365 = "2025-03-03T10:20:00+01:00"
D366 = "2025-03-03T10:19:00+01:00"
RECENT = "2026-02-01T09:00:00+01:00"

ROWS = [
    # A2 handoff protocol: each missing part makes the handoff ambiguous
    Row("no reason", {"handoff.reason": DELETE}, "escalate", "senior_support", ("handoff_ambiguity", *RES), detail_has="handoff.reason"),
    Row("a blank reason counts as missing", {"handoff.reason": "   "}, "escalate", "senior_support", ("handoff_ambiguity", *RES)),
    Row("no steps taken", {"handoff.steps_taken": []}, "escalate", "senior_support", ("handoff_ambiguity", "missing_prerequisite", *RES), detail_has="handoff.steps_taken"),
    Row("no customer expectation", {"handoff.customer_expectation": None}, "escalate", "senior_support", ("handoff_ambiguity", *RES)),
    Row("a refund without an amount", {"handoff.request.amount": DELETE}, "escalate", "senior_support", ("handoff_ambiguity", *RES), detail_has="amount"),
    Row("a credit without an amount", {"handoff.request": {"type": "credit"}}, "escalate", "senior_support", ("handoff_ambiguity", "no_policy_match")),
    Row("no customer id", {"customer.id": DELETE}, "escalate", "senior_support", ("handoff_ambiguity", *RES), detail_has="customer.id"),
    Row("an empty customer id", {"customer.id": " "}, "escalate", "senior_support", ("handoff_ambiguity", *RES)),
    Row("an information request needs no amount", {"ticket.category": "account", "handoff.request": {"type": "information"}}, "return_to_tier1", None, ("policy_return",)),
    # A3 commercial sensitivity
    Row("an unresolved commercial flag", {"customer.flags": [{"type": "commercial_sensitivity", "note": "renewal", "resolved": False}]}, "escalate", "senior_support", ("commercial_sensitivity", *RES), detail_has="renewal"),
    Row("a commercial flag without resolved is unresolved", {"customer.flags": [{"type": "commercial_sensitivity"}]}, "escalate", "senior_support", ("commercial_sensitivity", *RES)),
    Row("a resolved commercial flag", {"customer.flags": [{"type": "commercial_sensitivity", "resolved": True}]}, "resolve", None, RES),
    # A3 complaint pattern: 3 complaints within 180 days, or 2 same-category escalations within 365
    Row("3 complaints within 180 days, one exactly 180 days old", {"history": history((D180, "billing", True, False), (RECENT, "access", True, False), (RECENT, "other", True, False))}, "escalate", "senior_support", ("complaint_pattern", *RES)),
    Row("a complaint 180 days and a minute old does not count", {"history": history((D181, "billing", True, False), (RECENT, "access", True, False), (RECENT, "other", True, False))}, "resolve", None, RES),
    Row("2 complaints are not a pattern", {"history": history((RECENT, "access", True, False), (RECENT, "other", True, False))}, "resolve", None, RES),
    Row("2 billing escalations within 365 days, one exactly 365 days old", {"history": history((D365, "billing", False, True), (RECENT, "billing", False, True))}, "escalate", "senior_support", ("complaint_pattern", *RES), detail_has="escalation 3"),
    Row("an escalation 365 days and a minute old does not count", {"history": history((D366, "billing", False, True), (RECENT, "billing", False, True))}, "resolve", None, RES),
    Row("escalations in another category do not count", {"history": history((RECENT, "access", False, True), (RECENT, "billing", False, True))}, "resolve", None, RES),
    Row("this ticket and later tickets are not prior tickets", {"history": [
        {"ticket_id": "20417", "at": RECENT, "category": "billing", "escalated": True},
        {"ticket_id": "X", "at": "2026-03-04T00:00:00+01:00", "category": "billing", "escalated": True},
        {"ticket_id": "Y", "at": RECENT, "category": "billing", "escalated": True}]}, "resolve", None, RES),
    # A4.4 management triggers
    Row("enterprise, high, more than 4 h", {"customer.segment": "enterprise", "ticket.severity": "high", "ticket.created_at": "2026-03-03T06:19:00+01:00"}, "escalate", "support_manager", ("management_trigger", *RES), detail_has="enterprise_waiting"),
    Row("enterprise, critical (P1), more than 4 h", {"customer.segment": "enterprise", "ticket.severity": "P1", "ticket.created_at": "2026-03-03T06:19:00+01:00"}, "escalate", "support_manager", ("management_trigger", *RES)),
    Row("exactly 4 h is not more than 4 h", {"customer.segment": "enterprise", "ticket.severity": "high", "ticket.created_at": "2026-03-03T06:20:00+01:00"}, "resolve", None, RES),
    Row("4 h on a medium case is no trigger", {"customer.segment": "enterprise", "ticket.created_at": "2026-03-03T05:00:00+01:00"}, "resolve", None, RES),
    Row("4 h for a mid-market customer is no trigger", {"customer.segment": "mid_market", "ticket.severity": "high", "ticket.created_at": "2026-03-03T05:00:00+01:00"}, "resolve", None, RES),
    Row("churn words from a customer above 50,000 ARR", {"customer.arr": 50000.01, "ticket.description": "We will CANCEL our plan."}, "escalate", "support_manager", ("management_trigger", *RES), detail_has="churn_threat_high_arr"),
    Row("churn at exactly 50,000 ARR is no trigger", {"customer.arr": 50000, "ticket.description": "We will cancel."}, "resolve", None, RES),
    Row("a churn-risk flag from a customer above 50,000 ARR", {"customer.arr": 90000, "customer.flags": [{"type": "churn_risk"}]}, "escalate", "support_manager", ("management_trigger", *RES)),
    Row("churn words in a customer message count", {"customer.arr": 90000, "ticket.messages": [{"from": "customer", "body": "we may switch to another provider"}]}, "escalate", "support_manager", ("management_trigger", *RES)),
    Row("churn words in an agent message do not", {"customer.arr": 90000, "ticket.messages": [{"from": "agent", "body": "please do not cancel"}]}, "resolve", None, RES),
    Row("a complaint on social media", {"ticket.channel": "social"}, "escalate", "support_manager", ("management_trigger", *RES), detail_has="public_complaint"),
    Row("a complaint on a review site", {"ticket.channel": "review_site"}, "escalate", "support_manager", ("management_trigger", *RES)),
    Row("an unresolved public-complaint flag", {"customer.flags": [{"type": "public_complaint", "resolved": False}]}, "escalate", "support_manager", ("management_trigger", *RES)),
    Row("a security case", {"ticket.category": "security", "handoff.request": {"type": "information"}}, "escalate", "support_manager", ("management_trigger", "no_policy_match"), detail_has="legal_exposure"),
    Row("GDPR in the description, any case", {"ticket.description": "Is this a gdpr problem?"}, "escalate", "support_manager", ("management_trigger", *RES)),
    Row("several triggers are named in one reason", {"ticket.channel": "social", "ticket.description": "my lawyer will call"}, "escalate", "support_manager", ("management_trigger", *RES), detail_has="public_complaint: public complaint; legal_exposure"),
    # A2 required tier-1 steps
    Row("billing without verify_invoice goes back to tier-1", {"handoff.steps_taken": [{"step": "apologise"}]}, "return_to_tier1", None, ("missing_prerequisite", *RES), (B1,), (("refund", 240.0),), guidance_has="verify_invoice"),
    # A1 authority ladder: a role covers amounts up to and including its limit
    Row("500 is within tier-2's authority", {"facts.invoice.amount": 500}, "resolve", None, RES, actions=(("refund", 500.0),)),
    Row("500.01 goes to the support manager", {"facts.invoice.amount": 500.01}, "escalate", "support_manager", ("authority_exceeded",), actions=(("refund", 500.01),), detail_has="support_manager may grant up to 5,000.00"),
    Row("5,000 stays with the support manager", {"facts.invoice.amount": 5000}, "escalate", "support_manager", ("authority_exceeded",)),
    Row("5,000.01 goes to the VP of support", {"facts.invoice.amount": 5000.01}, "escalate", "vp_support", ("authority_exceeded",)),
    Row("25,000 stays with the VP of support", {"facts.invoice.amount": 25000}, "escalate", "vp_support", ("authority_exceeded",)),
    Row("25,000.01 goes to the C-level", {"facts.invoice.amount": 25000.01}, "escalate", "c_level", ("authority_exceeded",)),
    # A3 complexity: 2 points or more
    Row("a third party and 3 customer follow-ups make a case complex", {"facts.third_party": True, "ticket.messages": [
        {"from": "agent", "at": "2026-03-03T08:40:00+01:00", "body": "Checking."},
        {"from": "customer", "at": "2026-03-03T08:50:00+01:00", "body": "?"},
        {"from": "customer", "at": "2026-03-03T09:00:00+01:00", "body": "?"},
        {"from": "customer", "at": "2026-03-03T09:10:00+01:00", "body": "?"}]}, "escalate", "senior_support", ("complexity",), actions=(("refund", 240.0),)),
    Row("one point is not complex", {"facts.third_party": True}, "resolve", None, RES),
    Row("customer messages before the first agent message do not count", {"facts.third_party": True, "ticket.messages": [
        {"from": "customer", "at": "2026-03-03T08:00:00+01:00", "body": "?"},
        {"from": "customer", "at": "2026-03-03T08:10:00+01:00", "body": "?"},
        {"from": "customer", "at": "2026-03-03T08:20:00+01:00", "body": "?"},
        {"from": "agent", "at": "2026-03-03T08:40:00+01:00", "body": "Checking."}]}, "resolve", None, RES),
    # A4 every rule reported in order, the first deciding
    Row("all of A4 at once, in order", {
        "handoff.reason": "",
        "customer.flags": [{"type": "commercial_sensitivity"}],
        "history": history((RECENT, "billing", True, True), (RECENT, "billing", True, True), (RECENT, "x", True, False)),
        "ticket.channel": "social",
        "handoff.steps_taken": [{"step": "apologise"}],
        "facts.invoice.amount": 900.0}, "escalate", "senior_support",
        ("handoff_ambiguity", "commercial_sensitivity", "complaint_pattern", "management_trigger", "missing_prerequisite", "authority_exceeded"),
        actions=(("refund", 900.0),)),
    Row("commercial sensitivity decides before a trigger", {"customer.flags": [{"type": "commercial_sensitivity"}], "ticket.channel": "social"}, "escalate", "senior_support", ("commercial_sensitivity", "management_trigger", *RES)),
    Row("a trigger decides before a missing step", {"ticket.channel": "social", "handoff.steps_taken": [{"step": "x"}]}, "escalate", "support_manager", ("management_trigger", "missing_prerequisite", *RES)),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_common_rule(row: Row, decide_saas) -> None:  # type: ignore[no-untyped-def]
    """Each rule of handbook part A decides as written, in the order of precedence."""
    check(row, decide_saas)

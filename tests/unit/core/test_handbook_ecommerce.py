"""Handbook part C (Harbor & Pine, library `ecommerce`): every policy, boundary and conflict."""

from __future__ import annotations

import pytest

from tests.conftest import DELETE
from tests.unit.core.handbook_table import Row, check

C1, C2, C3, C4, C5 = (
    "refund.in-window",
    "refund.out-of-window",
    "refund.final-sale",
    "damage.replacement",
    "shipping.lost-parcel",
)
C6, C7, C8, C9 = (
    "payments.chargeback-open",
    "shipping.carrier-dispute",
    "order.status",
    "product.defect",
)
RES = ("policy_resolution",)
# received_at is 2026-03-10T15:00:00-05:00
DAY30 = "2026-02-08T15:00:00-05:00"
DAY30_1S = "2026-02-08T14:59:59-05:00"
REPLACE = {
    "ticket.category": "product",
    "handoff.request": {"type": "replacement"},
    "facts.order.damaged": True,
    "facts.order.photo_evidence": True,
}
SHIP = {
    "ticket.category": "shipping",
    "handoff.steps_taken": [{"step": "check_tracking", "result": "no scans for 9 days"}],
}

ROWS = [
    Row("C1 refunds the order value in the window", {}, "resolve", None, RES, (C1,), (("refund", 120.0),)),
    Row("C1 refunds the requested amount if lower", {"handoff.request.amount": 80.0}, "resolve", None, RES, (C1,), (("refund", 80.0),)),
    Row("C1 refunds at most the order value", {"handoff.request.amount": 200.0}, "resolve", None, RES, (C1,), (("refund", 120.0),)),
    Row("C1 includes exactly 30 days", {"facts.order.delivered_at": DAY30}, "resolve", None, RES, (C1,)),
    Row("C1 needs the return received", {"facts.order.return_received": False}, "escalate", "senior_support", ("no_policy_match",), ()),
    Row("C1 needs a delivery date", {"facts.order.delivered_at": DELETE}, "escalate", "senior_support", ("no_policy_match",), ()),
    Row("C1 not before delivery", {"facts.order.delivered_at": "2026-03-11T00:00:00-05:00"}, "escalate", "senior_support", ("no_policy_match",), ()),
    Row("C2 a second past 30 days: decline, 20 % store credit", {"facts.order.delivered_at": DAY30_1S}, "resolve", None, RES, (C2,), (("decline", None), ("credit", 24.0))),
    Row("C2 needs no received return", {"facts.order.delivered_at": "2025-12-01T00:00:00-05:00", "facts.order.return_received": DELETE}, "resolve", None, RES, (C2,)),
    Row("C1 and C3 conflict on a final-sale item returned in the window", {"facts.order.final_sale": True}, "escalate", "senior_support", ("policy_conflict",), (C1, C3), (), detail_has=f"{C1}, {C3}"),
    Row("C2 and C3 conflict on a late final-sale refund", {"facts.order.final_sale": True, "facts.order.delivered_at": "2025-12-01T00:00:00-05:00"}, "escalate", "senior_support", ("policy_conflict",), (C2, C3)),
    Row("C3 alone declines a final-sale refund", {"facts.order.final_sale": True, "facts.order.delivered_at": DELETE}, "resolve", None, RES, (C3,), (("decline", None),)),
    Row("C4 replaces a damaged item with photo evidence", REPLACE, "resolve", None, RES, (C4,), (("replacement", 120.0),)),
    Row("C4 needs photo evidence", {**REPLACE, "facts.order.photo_evidence": False}, "escalate", "senior_support", ("no_policy_match",), ()),
    Row("C3 and C4 conflict on a damaged final-sale item", {**REPLACE, "facts.order.final_sale": True}, "escalate", "senior_support", ("policy_conflict",), (C3, C4)),
    Row("C4 above 500 exceeds authority", {**REPLACE, "facts.order.value": 640.0}, "escalate", "support_manager", ("authority_exceeded",), (C4,), (("replacement", 640.0),)),
    Row("C5 reships a lost parcel", {**SHIP, "handoff.request": {"type": "reship"}, "facts.order.carrier_status": "lost"}, "resolve", None, RES, (C5,), (("reship", 120.0),)),
    Row("C5 and C1 conflict on a refund for a lost parcel returned in the window", {**SHIP, "facts.order.carrier_status": "lost"}, "escalate", "senior_support", ("policy_conflict",), (C1, C5)),
    Row("C5 without check_tracking goes back to tier-1", {"ticket.category": "shipping", "handoff.request": {"type": "reship"}, "facts.order.carrier_status": "lost"}, "return_to_tier1", None, ("missing_prerequisite", *RES), (C5,), guidance_has="check_tracking"),
    Row("C6 sends an open chargeback to finance over every other policy", {"facts.order.chargeback_open": True}, "escalate", "finance", ("policy_escalation",), (C1, C6), ()),
    Row("C7 sends carrier disputes to logistics", {**SHIP, "handoff.request": {"type": "reship"}, "facts.third_party": True, "facts.order.carrier_status": "delayed"}, "escalate", "logistics", ("policy_escalation",), (C7,)),
    Row("C7 holds when the carrier status is unknown", {**SHIP, "handoff.request": {"type": "reship"}, "facts.third_party": True}, "escalate", "logistics", ("policy_escalation",), (C7,)),
    Row("C7 not for a lost parcel: C5 reships", {**SHIP, "handoff.request": {"type": "reship"}, "facts.third_party": True, "facts.order.carrier_status": "lost"}, "resolve", None, RES, (C5,)),
    Row("C8 returns order-status questions with the tracking link", {"ticket.category": "order", "handoff.request": {"type": "information"}}, "return_to_tier1", None, ("policy_return",), (C8,), guidance_has="KB-ORDER-3"),
    Row("C9 sends undamaged product defects to a senior specialist", {"ticket.category": "product", "facts.order.return_received": False}, "escalate", "senior_support", ("policy_escalation",), (C9,)),
    Row("C9 holds when damage is not recorded", {"ticket.category": "product", "handoff.request": {"type": "replacement"}}, "escalate", "senior_support", ("policy_escalation",), (C9,)),
    Row("billing without verify_order goes back to tier-1", {"ticket.category": "billing", "handoff.steps_taken": [{"step": "verify_invoice"}]}, "return_to_tier1", None, ("missing_prerequisite", *RES), guidance_has="verify_order"),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_ecommerce_policy(row: Row, decide_ecommerce) -> None:  # type: ignore[no-untyped-def]
    """Each rule of handbook part C decides as written."""
    check(row, decide_ecommerce)

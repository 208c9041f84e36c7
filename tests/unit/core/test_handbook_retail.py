"""The retail library (Fernhill Outfitters): cancellations, returns, exchanges and changes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DELETE, patched, run
from tests.unit.core.handbook_table import Row, check
from tier2.contract import CaseError, Vocabulary, parse_case
from tier2.core.library import Library
from tier2.library.lint import lint_library
from tier2.library.loader import load_library, resolve_library_path

# received_at is 2026-03-10T15:00:00-05:00; the order was delivered 13 days before.
BASE: Mapping[str, Any] = {
    "case_id": "FO-1001",
    "received_at": "2026-03-10T15:00:00-05:00",
    "ticket": {
        "id": "9001",
        "created_at": "2026-03-10T12:00:00-05:00",
        "severity": "medium",
        "category": "order",
        "channel": "chat",
        "subject": "Return two items",
        "description": "The boots are too small and I do not need the socks.",
    },
    "handoff": {
        "reason": "Return of delivered items",
        "steps_taken": [
            {"step": "verify_identity", "result": "email and zip code match"},
            {"step": "confirm_with_customer", "result": "customer said yes"},
        ],
        "customer_expectation": "Money back",
        "request": {"type": "return", "order_id": "W-7", "item_ids": ["I-1", "I-2"]},
    },
    "customer": {"id": "C-42", "name": "Ada Park", "segment": "consumer", "currency": "USD"},
    "history": [],
    "facts": {
        "order": {
            "id": "W-7",
            "status": "delivered",
            "delivered_at": "2026-02-25T10:00:00-05:00",
            "paid_with": "card",
            "items": [
                {"item_id": "I-1", "product_id": "boots", "price": 129.99, "final_sale": False},
                {"item_id": "I-2", "product_id": "socks", "price": 12.45, "final_sale": False},
                {"item_id": "I-3", "product_id": "tent", "price": 310.10, "final_sale": True},
            ],
        },
        "catalogue": [
            {"item_id": "I-8", "product_id": "boots", "price": 152.54, "available": True},
            {"item_id": "I-9", "product_id": "boots", "price": 119.99, "available": True},
            {"item_id": "I-10", "product_id": "boots", "price": 129.99, "available": False},
            {"item_id": "I-11", "product_id": "tent", "price": 350.00, "available": True},
        ],
        "gift_card_balance": 22.55,
    },
}

CANCEL = {
    "handoff.request": {"type": "cancel", "reason": "ordered by mistake"},
    "facts.order.status": "pending",
}
EXCHANGE = {"handoff.request": {"type": "exchange", "item_ids": ["I-1"], "new_item_ids": ["I-8"]}}
MODIFY = {**EXCHANGE, "handoff.request.type": "modify_items", "facts.order.status": "pending"}
PRICEY = [
    {"item_id": "I-1", "product_id": "boots", "price": 1200.0, "final_sale": False},
    {"item_id": "I-2", "product_id": "socks", "price": 12.45, "final_sale": False},
]
RES = ("policy_resolution",)
RET = ("policy_return",)
DAY30 = "2026-02-08T15:00:00-05:00"
DAY30_1S = "2026-02-08T14:59:59-05:00"

ROWS = [
    Row("cancels a pending order in full, refunded to how it was paid", CANCEL, "resolve", None, RES, ("cancel.pending",), (("cancel_order", None), ("refund", 452.54))),
    Row("a cancellation needs a reason", {**CANCEL, "handoff.request.reason": DELETE}, "return_to_tier1", None, RET, ("cancel.reason",), guidance_has="why they cancel"),
    Row("only a pending order is cancelled", {**CANCEL, "facts.order.status": "processed"}, "return_to_tier1", None, RET, ("cancel.not-pending",), guidance_has="Only a pending order"),
    Row("both refusals of a cancellation reach tier-1", {**CANCEL, "facts.order.status": "delivered", "handoff.request.reason": "too expensive"}, "return_to_tier1", None, RET, ("cancel.not-pending", "cancel.reason")),
    Row("an unknown order status is for a person", {**CANCEL, "facts.order.status": DELETE}, "escalate", "senior_support", ("no_policy_match",), ()),
    Row("returns delivered items, refunded exactly", {}, "resolve", None, RES, ("return.delivered",), (("return_items", None), ("refund", 142.44))),
    Row("returns on the 30th day", {"facts.order.delivered_at": DAY30}, "resolve", None, RES, ("return.delivered",)),
    Row("no return a second after 30 days", {"facts.order.delivered_at": DAY30_1S}, "return_to_tier1", None, RET, ("return.late",), guidance_has="more than 30 days"),
    Row("no return of a final-sale item", {"handoff.request.item_ids": ["I-1", "I-3"]}, "return_to_tier1", None, RET, ("return.final-sale",)),
    Row("no return before delivery", {"facts.order.status": "processed"}, "return_to_tier1", None, RET, ("return.not-delivered",)),
    Row("an item not in the order goes back to tier-1", {"handoff.request.item_ids": ["I-1", "I-99"]}, "return_to_tier1", None, RET, ("request.unknown-items",)),
    Row("an item named twice goes back to tier-1", {"handoff.request.item_ids": ["I-1", "I-1"]}, "return_to_tier1", None, RET, ("request.unknown-items",)),
    Row("late and final sale: both reasons reach tier-1", {"handoff.request.item_ids": ["I-3"], "facts.order.delivered_at": DAY30_1S}, "return_to_tier1", None, RET, ("return.late", "return.final-sale")),
    Row("a return above tier-2's limit goes to the manager", {"handoff.request.item_ids": ["I-1", "I-2"], "facts.order.items": PRICEY}, "escalate", "support_manager", ("authority_exceeded",), ("return.delivered",)),
    Row("exchanges for another option, the customer pays the difference", EXCHANGE, "resolve", None, RES, ("exchange.same-product",), (("return_items", None), ("ship_items", None), ("charge_difference", 22.55))),
    Row("exchanges for a cheaper option, the difference is refunded", {**EXCHANGE, "handoff.request.new_item_ids": ["I-9"]}, "resolve", None, RES, ("exchange.same-product",), (("return_items", None), ("ship_items", None), ("charge_difference", 10.0))),
    Row("a gift card that covers the difference to the cent pays it", {**EXCHANGE, "handoff.request.pay_with": "gift_card"}, "resolve", None, RES, ("exchange.same-product",)),
    Row("a gift card a cent short does not", {**EXCHANGE, "handoff.request.pay_with": "gift_card", "facts.gift_card_balance": 22.54}, "return_to_tier1", None, RET, ("swap.gift-card-short",)),
    Row("no exchange for another product", {**EXCHANGE, "handoff.request.new_item_ids": ["I-11"]}, "return_to_tier1", None, RET, ("swap.same-product",)),
    Row("no exchange for an item out of stock", {**EXCHANGE, "handoff.request.new_item_ids": ["I-10"]}, "return_to_tier1", None, RET, ("swap.same-product",)),
    Row("no exchange with fewer new items than old", {**EXCHANGE, "handoff.request.item_ids": ["I-1", "I-2"]}, "return_to_tier1", None, RET, ("swap.same-product",)),
    Row("one exchange per order", {**EXCHANGE, "facts.order.exchanged": True}, "return_to_tier1", None, RET, ("exchange.once",)),
    Row("changes a pending order's items once", MODIFY, "resolve", None, RES, ("modify.items",), (("change_items", None), ("ship_items", None), ("charge_difference", 22.55))),
    Row("a pending order's items change only once", {**MODIFY, "facts.order.modified": True}, "return_to_tier1", None, RET, ("modify.once",)),
    Row("a delivered order's items are not changed", {**MODIFY, "facts.order.status": "delivered"}, "return_to_tier1", None, RET, ("modify.not-pending",)),
    Row("changes a pending order's address", {"handoff.request": {"type": "modify_address"}, "facts.order.status": "pending"}, "resolve", None, RES, ("modify.address",), (("change_address", None),)),
    Row("order questions go back with the order page", {"handoff.request": {"type": "information"}, "handoff.steps_taken": []}, "escalate", "senior_support", ("handoff_ambiguity", *RET)),
    Row("a question needs no confirmation", {"handoff.request": {"type": "information"}, "handoff.steps_taken": [{"step": "verify_identity"}]}, "return_to_tier1", None, RET, ("order.question",), guidance_has="KB-ORDER-1"),
    Row("a change without the customer's confirmation goes back to tier-1", {"handoff.steps_taken": [{"step": "verify_identity"}]}, "return_to_tier1", None, ("missing_prerequisite", *RES), ("return.delivered",), guidance_has="confirm_with_customer"),
    Row("a request outside the policy goes to a person", {"handoff.request": {"type": "other"}}, "escalate", "senior_support", ("policy_escalation",), ("out-of-scope",)),
    Row("the word cancel is no churn threat here", {"ticket.description": "I want to cancel this and get my money back"}, "resolve", None, RES, ("return.delivered",)),
    Row("no complexity points here", {"facts.third_party": True, "handoff.request.item_ids": ["I-1"]}, "resolve", None, RES, ("return.delivered",)),
]  # fmt: skip


@pytest.fixture(scope="module")
def retail() -> Library:
    return load_library("retail")


@pytest.fixture
def decide_retail(retail: Library) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    return lambda patch: run(patched(BASE, patch), retail)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_retail_policy(
    row: Row, decide_retail: Callable[[Mapping[str, Any]], dict[str, Any]]
) -> None:
    """Each rule of the retail policy decides as written."""
    check(row, decide_retail)


def _actions(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(a) for a in d["actions"]]


def test_refund_goes_to_the_gift_card_only_when_asked_and_held(
    decide_retail: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> None:
    """A refund goes to the gift card when the customer asks and has one, else to the original payment."""
    asked = decide_retail({"handoff.request.refund_to": "gift_card"})
    assert _actions(asked)[1]["to"] == "gift_card"
    no_card = decide_retail(
        {"handoff.request.refund_to": "gift_card", "facts.gift_card_balance": DELETE}
    )
    assert _actions(no_card)[1]["to"] == "original_payment_method"
    assert _actions(decide_retail({}))[0]["items"] == ["I-1", "I-2"]


def test_price_difference_carries_its_direction(
    decide_retail: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> None:
    """One policy settles a price difference either way: the action says who pays and through what."""
    pays = _actions(decide_retail(EXCHANGE))[2]
    assert (pays["direction"], pays["to"], pays["amount"]) == (
        "from_customer",
        "original_payment_method",
        22.55,
    )
    back = _actions(
        decide_retail(
            {
                **EXCHANGE,
                "handoff.request.new_item_ids": ["I-9"],
                "handoff.request.refund_to": "gift_card",
            }
        )
    )[2]
    assert (back["direction"], back["to"], back["amount"]) == ("to_customer", "gift_card", 10.0)


def test_an_undeclared_request_type_is_an_input_error(retail: Library) -> None:
    """A request type the retail library does not declare is refused, naming the field."""
    error = parse_case(
        patched(BASE, {"handoff.request.type": "refund"}), "item 1", Vocabulary.of(retail)
    )
    assert isinstance(error, CaseError)
    assert error.lines() == [
        "case FO-1001 (item 1): handoff.request.type: Input should be 'cancel', 'return', "
        "'exchange', 'modify_items', 'modify_address', 'information' or 'other' (got 'refund')"
    ]


EXAMPLES = Path(__file__).parents[3] / "examples" / "retail" / "cases.jsonl"


def test_the_examples_reach_every_policy(retail: Library) -> None:
    """The library's example cases are valid, and every policy matches at least one of them."""
    assert len(retail.examples) >= len(retail.policies)
    reached = {p for raw in retail.examples for p in run(raw, retail)["policies"]}
    assert reached == {p.id for p in retail.policies}


def test_the_examples_folder_holds_the_library_examples() -> None:
    """examples/retail/cases.jsonl is the library's own examples.jsonl."""
    folder = resolve_library_path("retail")
    assert EXAMPLES.read_bytes() == (folder / "examples.jsonl").read_bytes()


@pytest.mark.slow
def test_lint_finds_nothing_in_the_retail_library(retail: Library) -> None:
    """tier2 lint reports no conflict, no clause that can fail and no unreachable policy."""
    report = lint_library(retail)
    assert report.findings == ()
    assert report.examples == len(retail.examples)

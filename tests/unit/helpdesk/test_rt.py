"""The RT connector's pure parts: a ticket as REST2 gives it, read as a contract case."""

from __future__ import annotations

from typing import Any

from tier2.contract import CaseError, parse_case
from tier2.helpdesk.rt import RtSettings, case_fields, custom_field_types, keys_in, rt_case

SETTINGS = RtSettings(queue="Tier2", return_queue="Tier1")


def _cf(values: dict[str, list[str]]) -> list[dict[str, Any]]:
    return [{"name": k, "values": v, "id": str(i)} for i, (k, v) in enumerate(values.items())]


TICKET: dict[str, Any] = {  # the shape of GET /tickets?fields=... on RT 5.0.3
    "id": "1618",
    "Subject": "Charged twice for March",
    "Created": "2026-03-03T07:05:00Z",
    "Status": "open",
    "Queue": {"id": "5", "Name": "Tier2"},
    "Requestor": [{"id": "ada@example.com", "type": "user"}],
    "CustomFields": _cf(
        {
            "Severity": ["medium"],
            "Category": ["billing"],
            "Channel": ["email"],
            "Escalation Reason": ["Refund above tier-1 limit"],
            "Steps Taken": ["verify_invoice: charged twice", "confirm_duplicate_charge"],
            "Request Type": ["refund"],
            "Request Amount": ["240.0"],
            "Request Currency": ["EUR"],
            "Escalated At": ["2026-03-03T10:18:00+01:00"],
            "Segment": ["smb"],
            "VIP": ["no"],
            "ARR": ["2,880"],
            "Customer Flags": ["commercial_sensitivity: renewal talks (resolved)", "churn_risk"],
            "Facts": ['{"invoice": {"id": "INV-3321", "amount": 240.0, "duplicate": true}}'],
            "Tier2 Outcome": [],
        }
    ),
}
TRANSACTIONS = [
    {"id": "1", "Type": "Create", "Creator": {"id": "root"}, "Created": "2026-03-03T07:05:00Z"},
    {"id": "2", "Type": "EmailRecord", "Creator": {"id": "RT_System"}, "Created": "2026-03-03T07:05:01Z"},
    {"id": "3", "Type": "Correspond", "Creator": {"id": "agent1"}, "Created": "2026-03-03T07:40:00Z"},
    {"id": "4", "Type": "Correspond", "Creator": {"id": "ada@example.com"}, "Created": "2026-03-03T08:00:00Z"},
    {"id": "5", "Type": "Comment", "Creator": {"id": "agent1"}, "Created": "2026-03-03T08:10:00Z"},
    {"id": "6", "Type": "Set", "Field": "Queue", "NewValue": "5", "Creator": {"id": "agent1"},
     "Created": "2026-03-03T09:30:00Z"},
]  # fmt: skip
ATTACHMENTS = [
    {"TransactionId": "1", "ContentType": "text/plain", "Content": "We were billed twice."},
    {"TransactionId": "2", "ContentType": "text/plain", "Content": "AutoReply"},
    {"TransactionId": "3", "ContentType": "multipart/alternative", "Content": ""},
    {"TransactionId": "3", "ContentType": "text/plain", "Content": "Checking with billing."},
    {"TransactionId": "3", "ContentType": "text/html", "Content": "<p>Checking</p>"},
    {"TransactionId": "4", "ContentType": "text/plain", "Content": "Any news?"},
    {"TransactionId": "5", "ContentType": "text/plain", "Content": "internal: escalating"},
]
OTHERS = [
    {"id": "1500", "Created": "2026-01-12T09:00:00Z", "Status": "resolved",
     "CustomFields": _cf({"Category": ["billing"], "Complaint": ["yes"], "Tier2 Outcome": ["escalate"]})},
    {"id": "1618", "Created": "2026-03-03T07:05:00Z", "Status": "open", "CustomFields": []},
]  # fmt: skip


def test_a_ticket_reads_as_a_valid_contract_case() -> None:
    """Custom fields, thread and the requestor's other tickets make a case the contract takes."""
    case = rt_case(TICKET, TRANSACTIONS, ATTACHMENTS, OTHERS, SETTINGS, escalation_queue_id="5")
    assert not isinstance(parse_case(case, "rt"), CaseError)
    assert case["case_id"] == "RT-1618"
    assert case["ticket"]["created_at"] == "2026-03-03T07:05:00+00:00"
    assert case["handoff"]["request"] == {"type": "refund", "amount": 240.0, "currency": "EUR"}
    assert case["handoff"]["steps_taken"] == [
        {"step": "verify_invoice", "result": "charged twice"},
        {"step": "confirm_duplicate_charge"},
    ]
    assert case["customer"]["arr"] == 2880.0 and case["customer"]["vip"] is False
    assert case["customer"]["id"] == "ada@example.com"
    assert case["customer"]["flags"] == [
        {"type": "commercial_sensitivity", "note": "renewal talks", "resolved": True},
        {"type": "churn_risk", "resolved": False},
    ]
    assert case["facts"]["invoice"]["duplicate"] is True


def test_the_thread_is_create_and_correspondence_with_the_sender_told_apart() -> None:
    """Create and the requestor's replies are the customer's; comments and mail records are not
    in the thread; one text part per transaction."""
    case = rt_case(TICKET, TRANSACTIONS, ATTACHMENTS, [], SETTINGS, escalation_queue_id="5")
    assert [(x["from"], x["body"]) for x in case["ticket"]["messages"]] == [
        ("customer", "We were billed twice."),
        ("agent", "Checking with billing."),
        ("customer", "Any news?"),
    ]


def test_escalated_at_is_the_later_of_the_form_and_the_move_into_the_queue() -> None:
    """A ticket moved into the queue after the form was filled was escalated (again) then."""
    case = rt_case(TICKET, TRANSACTIONS, ATTACHMENTS, [], SETTINGS, escalation_queue_id="5")
    assert case["received_at"] == "2026-03-03T09:30:00+00:00"
    assert case["handoff"]["from"] == "agent1"
    before = rt_case(TICKET, TRANSACTIONS[:5], ATTACHMENTS, [], SETTINGS, escalation_queue_id="5")
    assert before["received_at"] == "2026-03-03T10:18:00+01:00"


def test_history_is_the_requestors_other_tickets() -> None:
    """Other tickets give date, category, complaint and whether tier2 escalated them."""
    case = rt_case(TICKET, TRANSACTIONS, ATTACHMENTS, OTHERS, SETTINGS, escalation_queue_id="5")
    assert case["history"] == [
        {"ticket_id": "1500", "at": "2026-01-12T09:00:00+00:00", "category": "billing",
         "complaint": True, "escalated": True, "outcome": "resolved"}
    ]  # fmt: skip


def test_a_bad_number_or_json_is_left_for_the_contract_to_name() -> None:
    """An amount that is not a number gives the contract's error on its field path."""
    ticket = {**TICKET, "CustomFields": _cf({"Severity": ["medium"], "Category": ["billing"],
                                             "Request Amount": ["lots"], "Request Type": ["refund"]})}  # fmt: skip
    error = parse_case(rt_case(ticket, [], [], [], SETTINGS), "rt")
    assert isinstance(error, CaseError)
    assert "handoff.request.amount" in "\n".join(error.lines())


def test_keys_are_read_from_the_last_line_of_tier2s_writes() -> None:
    """Only a line `tier2-key: KEY` counts as a key."""
    attachments = [
        {"Content": "note\n\ntier2-key: RT-1:1:note\n"},
        {"Content": "tier2-key in text"},
    ]
    assert keys_in(attachments) == {"RT-1:1:note"}


def test_the_escalation_query_leaves_out_what_tier2_escalated_in_place() -> None:
    """By queue or by custom field, active, and not already escalated by tier2."""
    assert SETTINGS.escalation_query() == (
        "Queue = 'Tier2' AND Status = '__Active__' AND 'CF.{Tier2 Outcome}' != 'escalate'"
    )
    by_field = RtSettings(custom_field="Tier", custom_field_value="2 - it's")
    assert by_field.escalation_query().startswith("'CF.{Tier}' = '2 - it\\'s' AND")


def test_a_filed_case_round_trips_through_the_custom_fields() -> None:
    """What `tier2 rt load` writes is what the connector reads back."""
    case = rt_case(TICKET, TRANSACTIONS[:1], ATTACHMENTS[:1], [], SETTINGS)
    fields = case_fields(case, SETTINGS)
    again = rt_case({**TICKET, "CustomFields": _cf({k: v if isinstance(v, list) else [v]
                                                    for k, v in fields.items()})},
                    TRANSACTIONS[:1], ATTACHMENTS[:1], [], SETTINGS)  # fmt: skip
    assert again == case


def test_custom_field_types_follow_the_configured_names() -> None:
    """Renamed fields keep their kind: steps are multi-valued, facts a text area."""
    types = dict(custom_field_types({"handoff.steps_taken": "Tier-1 Steps"}))
    assert types["Tier-1 Steps"] == "FreeformMultiple" and types["Facts"] == "TextSingle"

"""The Zendesk connector's pure part: a ticket as the Support API gives it, read as a case."""

from __future__ import annotations

from typing import Any

from tier2.contract import CaseError, parse_case
from tier2.helpdesk.zendesk import ZendeskSettings, tier2_keys, tier2s_comment, zendesk_case

SETTINGS = ZendeskSettings(tag="tier2", fields={"ticket.category": 1, "handoff.steps_taken": 2,
                                                "handoff.request.amount": 3, "facts": 4})  # fmt: skip
TICKET: dict[str, Any] = {  # the documented shape of a ticket (GET /api/v2/tickets/{id})
    "id": 35436, "subject": "Charged twice", "description": "We were billed twice.",
    "priority": "urgent", "status": "open", "requester_id": 20978392, "organization_id": 509974,
    "group_id": 98738, "tags": ["tier2", "billing"], "via": {"channel": "web"},
    "created_at": "2026-03-03T07:05:00Z", "updated_at": "2026-11-24T10:00:00Z",
    "custom_fields": [{"id": 1, "value": "billing"}, {"id": 2, "value": "verify_invoice: ok\nrefund_check"},
                      {"id": 3, "value": "240.5"}, {"id": 4, "value": '{"invoice": {"id": "I-1"}}'}],
}  # fmt: skip
COMMENTS = [
    {"id": 1, "author_id": 20978392, "public": True, "body": "We were billed twice.", "created_at": "2026-03-03T07:05:00Z"},
    {"id": 2, "author_id": 7001, "public": False, "body": "internal", "created_at": "2026-03-03T07:30:00Z"},
    {"id": 3, "author_id": 7001, "public": True, "body": "Checking.", "created_at": "2026-03-03T07:40:00Z"},
    {"id": 4, "author_id": 9001, "public": False, "body": "n\n\ntier2-key: ZD-35436:1:note\n", "created_at": "2026-03-03T09:00:00Z"},
]  # fmt: skip
USER = {"id": 20978392, "name": "Ada Brandt", "organization_id": 509974,
        "user_fields": {"segment": "smb", "vip": True, "arr": "2880",
                        "flags": "commercial_sensitivity: renewal (resolved)\nchurn_risk"}}  # fmt: skip
ORG = {"id": 509974, "name": "Kleinfeld GmbH", "organization_fields": {"currency": "EUR"}}


def test_a_ticket_reads_as_a_valid_contract_case() -> None:
    """Priority is the severity, via the channel, fields the handoff, user and org the CRM."""
    case = zendesk_case(TICKET, COMMENTS, USER, ORG, [], SETTINGS)
    assert not isinstance(parse_case(case, "zd"), CaseError)
    t, h, c = case["ticket"], case["handoff"], case["customer"]
    assert (t["severity"], t["channel"], t["category"]) == ("critical", "web", "billing")
    assert h["steps_taken"] == [
        {"step": "verify_invoice", "result": "ok"},
        {"step": "refund_check"},
    ]
    assert h["request"] == {"amount": 240.5}
    assert (c["company"], c["currency"], c["arr"], c["vip"]) == (
        "Kleinfeld GmbH",
        "EUR",
        2880.0,
        True,
    )
    assert c["flags"] == [{"type": "commercial_sensitivity", "note": "renewal", "resolved": True},
                          {"type": "churn_risk", "resolved": False}]  # fmt: skip
    assert case["facts"] == {"invoice": {"id": "I-1"}}


def test_the_thread_is_public_comments_without_tier2s_own() -> None:
    """Private comments are internal; the requester's are the customer's."""
    case = zendesk_case(TICKET, COMMENTS, USER, ORG, [], SETTINGS)
    assert [(m["from"], m["body"]) for m in case["ticket"]["messages"]] == [
        ("customer", "We were billed twice."), ("agent", "Checking."),
    ]  # fmt: skip


def test_received_is_not_moved_by_updates() -> None:
    """Without a handoff time field the case is received at the ticket's creation, so the
    same ticket gives the same case however often it is updated."""
    case = zendesk_case(TICKET, COMMENTS, USER, ORG, [], SETTINGS)
    later = zendesk_case(
        {**TICKET, "updated_at": "2026-12-01T00:00:00Z"}, COMMENTS, USER, ORG, [], SETTINGS
    )
    assert case == later and case["received_at"] == "2026-03-03T07:05:00+00:00"


def test_escalated_tickets_and_the_search_query() -> None:
    """Solved or already escalated tickets are not escalations; the search says the same."""
    assert SETTINGS.escalated(TICKET)
    assert not SETTINGS.escalated({**TICKET, "status": "solved"})
    assert not SETTINGS.escalated({**TICKET, "tags": ["tier2", "tier2_escalated"]})
    assert SETTINGS.search_query() == "type:ticket status<solved tags:tier2 -tags:tier2_escalated"


FORGED = "tier2-key: ZD-35436:1:note\ntier2-key: ZD-35436:1:reply_draft\n"
MARKED = [
    {"id": 5, "author_id": 20978392, "public": True, "body": "Refund me.\n" + FORGED,
     "created_at": "2026-03-03T10:00:00Z"},
    {"id": 6, "author_id": 7001, "public": False, "body": "fyi\n" + FORGED,
     "created_at": "2026-03-03T10:05:00Z"},
    {"id": 7, "author_id": 7001, "public": True, "body": "Looking.\n" + FORGED,
     "created_at": "2026-03-03T10:10:00Z"},
    {"id": 8, "author_id": 9001, "public": True, "body": "Refunded.\n\ntier2-key: ZD-35436:1:x\n",
     "created_at": "2026-03-03T11:00:00Z"},
]  # fmt: skip


def test_a_key_line_in_a_customers_comment_leaves_it_the_customers() -> None:
    """The requester's comment holding key lines is the customer's message, another agent's
    the agent's; only tier2's own marked comment is left out of the thread."""
    case = zendesk_case(TICKET, [*COMMENTS, *MARKED], USER, ORG, [], SETTINGS, agent_id=9001)
    assert [(m["from"], m["body"].splitlines()[0]) for m in case["ticket"]["messages"]] == [
        ("customer", "We were billed twice."), ("agent", "Checking."),
        ("customer", "Refund me."), ("agent", "Looking."),
    ]  # fmt: skip


def test_only_tier2s_own_private_comments_hold_its_keys() -> None:
    """Keys count on private comments by tier2's agent; its public ones only where tier2
    sends its replies publicly; nobody else's."""
    comments = [*COMMENTS, *MARKED]
    assert tier2_keys(comments, 9001) == {"ZD-35436:1:note"}
    assert tier2_keys(comments, 9001, public_replies=True) == {"ZD-35436:1:note", "ZD-35436:1:x"}
    assert tier2_keys(comments, None) == set()
    assert tier2s_comment(MARKED[3], 9001) and not tier2s_comment(MARKED[0], 9001)

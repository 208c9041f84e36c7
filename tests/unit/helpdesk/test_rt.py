"""The RT connector's pure parts: a ticket as REST2 gives it, read as a contract case."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tier2.app.ports import (
    CASE_FIELDS,
    ActionOrder,
    EscalateTo,
    NoteOrder,
    Resolve,
    ReturnToTier1,
)
from tier2.contract import CaseError, parse_case
from tier2.helpdesk._marks import keys_in
from tier2.helpdesk.rt import (
    DEFAULT_FIELDS,
    RtClient,
    RtError,
    RtHelpDesk,
    RtSettings,
    case_fields,
    custom_field_types,
    rt_case,
    tier2_keys,
)

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


def test_only_keys_in_tier2s_own_attachments_count() -> None:
    """A key line in an attachment created by another RT user is no key of tier2's."""
    attachments = [
        {"Creator": {"id": "root"}, "Content": "note\n\ntier2-key: RT-1:1:note\n"},
        {"Creator": {"id": "ada@example.com"}, "Content": "hi\ntier2-key: RT-1:1:reply_draft\n"},
        {"Creator": {"id": "agent1"}, "Content": "x\ntier2-key: RT-1:1:0:refund\n"},
        {"Content": "no creator\ntier2-key: RT-1:1:guidance\n"},
    ]
    assert tier2_keys(attachments, "root") == {"RT-1:1:note"}
    assert tier2_keys(attachments, "agent1") == {"RT-1:1:0:refund"}


def test_a_key_line_in_the_customers_correspondence_leaves_it_the_customers() -> None:
    """The requestor's message that holds a key line is in the thread as the customer's;
    tier2's own marked reply is not, and another agent's marked reply is the agent's."""
    transactions = [
        *TRANSACTIONS,
        {"id": "7", "Type": "Correspond", "Creator": {"id": "ada@example.com"},
         "Created": "2026-03-03T10:00:00Z"},
        {"id": "8", "Type": "Correspond", "Creator": {"id": "tier2"},
         "Created": "2026-03-03T11:00:00Z"},
        {"id": "9", "Type": "Correspond", "Creator": {"id": "agent1"},
         "Created": "2026-03-03T12:00:00Z"},
    ]  # fmt: skip
    attachments = [
        *ATTACHMENTS,
        {"TransactionId": "7", "ContentType": "text/plain",
         "Content": "Refund me.\ntier2-key: RT-1618:1:note\n"},
        {"TransactionId": "8", "ContentType": "text/plain",
         "Content": "Refunded.\n\ntier2-key: RT-1618:1:reply_draft\n"},
        {"TransactionId": "9", "ContentType": "text/plain",
         "Content": "Quoting: tier2-key: x\ntier2-key: RT-1618:1:0:refund\n"},
    ]  # fmt: skip
    case = rt_case(TICKET, transactions, attachments, [], SETTINGS, tier2_user="tier2")
    assert [(x["from"], x["body"].splitlines()[0]) for x in case["ticket"]["messages"]] == [
        ("customer", "We were billed twice."),
        ("agent", "Checking with billing."),
        ("customer", "Any news?"),
        ("customer", "Refund me."),
        ("agent", "Quoting: tier2-key: x"),
    ]


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


class _FakeRt:
    """Just enough of REST2 to watch what the desk writes (the real RT is in the
    integration tests): the signed-in user is `root`, each attachment names its `Creator`."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.puts: list[tuple[str, dict[str, Any]]] = []
        self.attachments: list[dict[str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/REST/2.0/")
        if request.method == "POST" and path.endswith(("/comment", "/correspond")):
            body = json.loads(request.content)
            self.posts.append((path, body))
            self.attachments.append({"Content": body["Content"], "Creator": _user("root")})
            return httpx.Response(201, json=["Comments added"])
        if path == "user/root":
            return httpx.Response(200, json={"id": 14, "Name": "root", "Privileged": 1})
        if request.method == "PUT":
            body = json.loads(request.content)
            self.puts.append((path, body))
            said = ["Queue Nowhere does not exist"] if body.get("Queue") == "Nowhere" else []
            return httpx.Response(200, json=said)
        if path.endswith("/attachments"):
            return httpx.Response(200, json={"items": self.attachments, "pages": 1})
        if path.startswith("ticket/"):
            return httpx.Response(200, json={"id": 7, "CustomFields": []})
        return httpx.Response(404, json={"message": "Resource does not exist"})


def _user(name: str) -> dict[str, str]:
    """A user as REST2 names one (`Creator`, `Requestor`): its name is the id."""
    return {"type": "user", "id": name, "_url": f"http://rt.test/REST/2.0/user/{name}"}


def _desk(fake: _FakeRt, **settings: Any) -> RtHelpDesk:
    client = RtClient(
        "http://rt.test/REST/2.0/", token="t", transport=httpx.MockTransport(fake.handle)
    )
    return RtHelpDesk(client, RtSettings(queue="Tier2", return_queue="Tier1", **settings))


NOW = datetime(2026, 11, 24, tzinfo=UTC)


def test_notes_are_comments_and_the_reply_goes_out_only_when_configured() -> None:
    """Without reply_to_customer the draft is a comment; with it, correspondence."""
    for configured, kind in ((False, "comment"), (True, "correspond")):
        fake = _FakeRt()
        desk = _desk(fake, reply_to_customer=configured)
        desk.write_notes(None, [NoteOrder("7", "RT-7:1:note", "note", "n"),  # type: ignore[arg-type]
                                NoteOrder("7", "RT-7:1:reply_draft", "reply_draft", "r")], NOW)  # fmt: skip
        assert [p for p, _ in fake.posts] == ["ticket/7/comment", f"ticket/7/{kind}"]
        assert fake.posts[1][1]["Content"].endswith("\n\ntier2-key: RT-7:1:reply_draft\n")


def test_a_key_on_the_ticket_is_not_written_again_by_a_new_process() -> None:
    """The keys are read from the ticket's attachments when this process has not seen it."""
    fake = _FakeRt()
    fake.attachments = [{"Content": "note\n\ntier2-key: RT-7:1:note\n", "Creator": _user("root")}]
    desk = _desk(fake)
    desk.write_notes(None, [NoteOrder("7", "RT-7:1:note", "note", "n")], NOW)  # type: ignore[arg-type]
    result = desk.carry_out(
        None, [ActionOrder("7", "RT-7:1:0:refund", "refund", 240.0, "EUR")], NOW
    )  # type: ignore[arg-type]
    desk.carry_out(None, [ActionOrder("7", "RT-7:1:0:refund", "refund", 240.0, "EUR")], NOW)  # type: ignore[arg-type]
    assert [p for p, _ in fake.posts] == ["ticket/7/comment"]  # the action's, once
    assert result == [{"rt_ticket": "7", "recorded": "comment"}]
    assert fake.puts == [
        ("ticket/7", {"CustomFields": {"Tier2 Actions": ["refund 240.00 EUR [RT-7:1:0:refund]"]}})
    ]


def test_forged_key_lines_by_others_do_not_stop_tier2s_writes() -> None:
    """The customer's correspondence and another agent's comment holding the note's, the
    reply's and the refund's keys do not stop tier2: it writes all three, the refund once."""
    fake = _FakeRt()
    forged = "tier2-key: RT-7:1:note\ntier2-key: RT-7:1:reply_draft\ntier2-key: RT-7:1:0:refund\n"
    fake.attachments = [
        {"Content": "Please refund.\n" + forged, "Creator": _user("ada@example.com")},
        {"Content": "internal\n" + forged, "Creator": _user("agent1")},
    ]
    desk = _desk(fake)
    notes = [NoteOrder("7", "RT-7:1:note", "note", "n"),
             NoteOrder("7", "RT-7:1:reply_draft", "reply_draft", "r")]  # fmt: skip
    refund = [ActionOrder("7", "RT-7:1:0:refund", "refund", 240.0, "EUR")]
    desk.write_notes(None, notes, NOW)  # type: ignore[arg-type]
    result = desk.carry_out(None, refund, NOW)  # type: ignore[arg-type]
    assert result == [{"rt_ticket": "7", "recorded": "comment"}]
    again = _desk(fake)  # a new process after a crash: tier2's own keys are found
    again.write_notes(None, notes, NOW)  # type: ignore[arg-type]
    assert again.carry_out(None, refund, NOW) == [{"rt_ticket": "7", "recorded": "already"}]  # type: ignore[arg-type]
    keys = [p[1]["Content"].splitlines()[-1] for p in fake.posts]
    assert keys == [
        "tier2-key: RT-7:1:note",
        "tier2-key: RT-7:1:reply_draft",
        "tier2-key: RT-7:1:0:refund",
    ]


def test_moves_set_status_queue_and_outcome_and_a_refusal_is_an_error() -> None:
    """A return goes to tier-1's queue; an unmapped escalation stays; RT's refusal raises."""
    fake = _FakeRt()
    desk = _desk(fake, queues={"senior_support": "Seniors", "legal": "Nowhere"})
    desk.move(None, [ReturnToTier1("1"), EscalateTo("2", "engineering"), Resolve("3")], NOW)  # type: ignore[arg-type]
    assert fake.puts == [
        ("ticket/1", {"Status": "open", "Queue": "Tier1", "CustomFields": {"Tier2 Outcome": "return_to_tier1"}}),
        ("ticket/2", {"Status": "open", "CustomFields": {"Tier2 Outcome": "escalate", "Tier2 Escalated To": "engineering"}}),
        ("ticket/3", {"Status": "resolved", "CustomFields": {"Tier2 Outcome": "resolve"}}),
    ]  # fmt: skip
    with pytest.raises(RtError, match="Queue Nowhere does not exist"):
        desk.move(None, [EscalateTo("4", "legal")], NOW)  # type: ignore[arg-type]


def test_an_rt_that_does_not_answer_is_an_error_not_a_traceback() -> None:
    """A refused connection, at sign-in or later, is an RtError naming RT and the request."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    client = RtClient(
        "http://rt.test/REST/2.0/", password="pw", transport=httpx.MockTransport(refuse)
    )
    with pytest.raises(RtError, match=r"RT sign-in at http://rt\.test: ConnectError"):
        client.call("GET", "queues/all")
    token = RtClient("http://rt.test/REST/2.0/", token="t", transport=httpx.MockTransport(refuse))
    with pytest.raises(RtError, match="RT GET queues/all: ConnectError"):
        token.call("GET", "queues/all")


def test_every_request_names_rt_itself_as_referer() -> None:
    """Sign-in and writes carry RT's own address as Referer, which RT's CSRF check asks of a
    cookie-signed REST2 write (Debian's RT 5.0.3+dfsg-3~deb12u7 and later)."""
    seen: list[tuple[str, str | None]] = []

    def rt(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers.get("referer")))
        if request.url.path.endswith("Login.html"):
            return httpx.Response(200, headers={"set-cookie": "RT_SID=1; path=/"})
        return httpx.Response(201, json={"id": 7})

    client = RtClient(
        "https://rt.example.com/rt/REST/2.0/", password="pw", transport=httpx.MockTransport(rt)
    )
    client.call("POST", "ticket", json={"Queue": "General"})
    assert seen == [
        ("/rt/NoAuth/Login.html", "https://rt.example.com/rt/"),
        ("/rt/REST/2.0/ticket", "https://rt.example.com/rt/"),
    ]


def test_rt_maps_every_case_field_a_deployment_may_name() -> None:
    """RT's default custom fields cover exactly the case fields tier2.toml may map."""
    assert tuple(DEFAULT_FIELDS) == CASE_FIELDS


def test_an_actions_parameters_are_in_its_comment_and_field_value() -> None:
    """A refund to a gift card for two items: the comment and the `Tier2 Actions` value name
    the destination and the items (a line break in a case's value stays on the line)."""
    fake = _FakeRt()
    desk = _desk(fake)
    params = {"to": "gift_card", "items": ["A1", "A2\nB"]}
    order = ActionOrder("7", "RT-7:1:0:refund", "refund", 20.0, "USD", params)
    desk.carry_out(None, [order], NOW)  # type: ignore[arg-type]
    line = "refund 20.00 USD to gift_card, items A1, A2 B"
    assert fake.posts[0][1]["Content"].startswith(f"tier2 carried out: {line}\n")
    assert fake.puts == [
        ("ticket/7", {"CustomFields": {"Tier2 Actions": [f"{line} [RT-7:1:0:refund]"]}})
    ]

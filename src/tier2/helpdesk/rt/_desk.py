"""Request Tracker 5 over its REST2 API: escalations in, notes, moves and actions out.

Where things live in RT (the names of the custom fields are configurable; the defaults are
in `DEFAULT_FIELDS`):

- an escalation is an active ticket in the escalation queue (or with the escalation custom
  field set to its value) that tier2 has not escalated in place (`Tier2 Outcome` is not
  `escalate`);
- the thread is the ticket's Create and Correspond transactions (the Create and the
  requestors' correspondence are the customer's, the rest the agents'); comments are
  internal and are not part of it;
- the handoff, the customer record and the facts are ticket custom fields that tier-1's
  handoff form fills; the customer's history is the requestor's other tickets;
- tier2 writes its note, guidance and reply draft as comments (a reply to the customer
  only when configured), each carrying its key on its last line (`tier2-key: ...`);
  an action is a comment plus a value of `Tier2 Actions`; a move sets status, queue (the
  escalation target's queue, or the tier-1 queue on a return) and `Tier2 Outcome`.

Every write carries a key, and a key already on the ticket is not written again, so a run
repeated after a crash changes nothing it already changed. Only tier2's own messages count,
those created by the RT user tier2 signs in as: a key line in a message any other RT user
created (the customer's correspondence, another agent's comment) is text like any other,
neither a key nor a message of tier2's. `take` writes nothing: a ticket stays an escalation
until tier2 moves it, so a crash between RT and the case store cannot lose it (the runner
skips a case it already has in flight).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session

from tier2.app.baseline import PastEscalation
from tier2.app.ports import (
    ActionOrder,
    ConnectorError,
    EscalateTo,
    NoteOrder,
    Resolve,
    ReturnToTier1,
    TicketMove,
    Timeline,
)
from tier2.core.sla import StatusChange
from tier2.faults import crash_point
from tier2.helpdesk._marks import KEY_LINE, keys_in, marked

# case field -> the RT ticket custom field it is read from (or tier2 writes)
DEFAULT_FIELDS: dict[str, str] = {
    "ticket.severity": "Severity",
    "ticket.category": "Category",
    "ticket.channel": "Channel",
    "ticket.tags": "Tags",
    "handoff.reason": "Escalation Reason",
    "handoff.customer_expectation": "Customer Expectation",
    "handoff.sentiment": "Sentiment",
    "handoff.steps_taken": "Steps Taken",
    "handoff.request.type": "Request Type",
    "handoff.request.amount": "Request Amount",
    "handoff.request.currency": "Request Currency",
    "handoff.escalated_at": "Escalated At",
    "customer.id": "Customer Id",
    "customer.name": "Customer Name",
    "customer.company": "Company",
    "customer.segment": "Segment",
    "customer.vip": "VIP",
    "customer.arr": "ARR",
    "customer.currency": "Customer Currency",
    "customer.plan": "Plan",
    "customer.flags": "Customer Flags",
    "history.complaint": "Complaint",
    "facts": "Facts",
    "tier2.outcome": "Tier2 Outcome",
    "tier2.escalated_to": "Tier2 Escalated To",
    "tier2.actions": "Tier2 Actions",
}
MULTIPLE = frozenset({"ticket.tags", "handoff.steps_taken", "customer.flags", "tier2.actions"})
TEXT = frozenset({"customer.plan", "facts"})  # JSON in a text area

_SYSTEM = frozenset({"RT_System", "Nobody"})
_DONE = {"resolved": "resolved", "rejected": "resolved", "deleted": "resolved"}
_WAITING = {"stalled": "pending"}
_TRUE = frozenset({"1", "yes", "true", "y", "x"})
_FAILED = re.compile(
    r"does not exist|permission denied|not a valid|invalid|could not|couldn't|no such|"
    r"is not allowed|can't",
    re.IGNORECASE,
)


class RtError(ConnectorError):
    """RT refused a request or answered something unusable: which request, what RT said."""


def custom_field_types(fields: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(name, RT type) of each custom field the connector reads or writes."""
    names = {**DEFAULT_FIELDS, **(fields or {})}
    out = []
    for path, name in names.items():
        kind = "Freeform" if path not in TEXT else "Text"
        out.append((name, kind + ("Multiple" if path in MULTIPLE else "Single")))
    return out


# --------------------------------------------------------------------------- the client


class RtClient:
    """REST2 over httpx: one session cookie (RT hashes a password on every basic-auth
    request, about 0.25 s), or an auth token; JSON in and out; paged searches."""

    def __init__(
        self,
        url: str,
        *,
        user: str = "root",
        password: str | None = None,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.base = url if url.endswith("/") else url + "/"
        self.root = self.base.split("/REST/2.0/")[0]
        # RT 5.0.3+dfsg-3~deb12u7 and later refuse a cookie-signed POST, PUT or DELETE to REST2
        # unless its Origin or Referer is RT's own WebBaseURL ($RestrictReferrer, on by default)
        headers = {"Referer": self.root + "/"}
        if token:
            headers["Authorization"] = f"token {token}"
        self.http = httpx.Client(
            base_url=self.base, headers=headers, transport=transport, timeout=timeout
        )
        self.user, self._password = user, password
        self._signed_in = token is not None

    def close(self) -> None:
        self.http.close()

    def _sign_in(self) -> None:
        if self._password is None:
            raise RtError("RT: no password or token given")
        try:
            self.http.post(
                self.root + "/NoAuth/Login.html", data={"user": self.user, "pass": self._password}
            )
        except httpx.HTTPError as exc:
            raise RtError(f"RT sign-in at {self.root}: {type(exc).__name__}: {exc}") from None
        self._signed_in = True

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; JSON back. A 401 or a redirect to the login page signs in again once."""
        for attempt in (1, 2):
            if not self._signed_in:
                self._sign_in()
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise RtError(f"RT {method} {path}: {type(exc).__name__}: {exc}") from None
            if response.status_code in (301, 302, 401) and attempt == 1 and self._password:
                self._signed_in = False
                continue
            if response.status_code in (301, 302, 401):
                raise RtError(f"RT {method} {path}: RT refused user {self.user!r}'s credentials")
            if response.status_code >= 400:
                raise RtError(f"RT {method} {path}: HTTP {response.status_code}: {_said(response)}")
            return response.json() if response.content else None
        raise AssertionError("unreachable")

    def search(
        self, query: str, fields: str, *, collection: str = "tickets", **params: Any
    ) -> Iterator[dict[str, Any]]:
        """Every ticket the TicketSQL query finds (or transaction the TransactionSQL query
        finds, with `collection="transactions"`), page by page, with the fields asked for."""
        page = 1
        while True:
            data = self.call(
                "GET",
                collection,
                params={"query": query, "fields": fields, "per_page": 100, "page": page, **params},
            )
            yield from data.get("items", [])
            if page >= int(data.get("pages") or 1):
                return
            page += 1

    def update(self, path: str, body: dict[str, Any]) -> list[str]:
        """PUT; RT answers 200 with a line per change, failures included: those raise."""
        said = self.call("PUT", path, json=body) or []
        failed = [line for line in said if _FAILED.search(str(line))]
        if failed:
            raise RtError(f"RT PUT {path}: " + "; ".join(map(str, failed)))
        return [str(x) for x in said]


def _said(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    return str(data.get("message") or data) if isinstance(data, dict) else str(data)[:200]


# --------------------------------------------------------------------------- reading a case


@dataclass(frozen=True)
class RtSettings:
    queue: str = "Tier2"  # the escalation queue
    custom_field: str | None = None  # or: escalated when this field holds custom_field_value
    custom_field_value: str | None = None
    return_queue: str = "General"  # tier-1's queue, for a return
    queues: Mapping[str, str] = field(default_factory=dict)  # escalation target -> queue
    reply_to_customer: bool = False
    case_prefix: str = "RT-"
    fields: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FIELDS))
    history: bool = True  # the requestor's other tickets as the customer's history

    def cf(self, path: str) -> str:
        return self.fields.get(path) or DEFAULT_FIELDS[path]

    def escalation_query(self) -> str:
        outcome = _quote(self.cf("tier2.outcome"))
        if self.custom_field:
            where = (
                f"'CF.{{{_quote(self.custom_field)}}}' = '{_quote(self.custom_field_value or '')}'"
            )
        else:
            where = f"Queue = '{_quote(self.queue)}'"
        return f"{where} AND Status = '__Active__' AND 'CF.{{{outcome}}}' != 'escalate'"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _utc(text: str | None) -> str | None:
    """RT's `2026-03-03T07:05:00Z` as ISO-8601 with an offset; RT's "not set" as None."""
    if not text or text.startswith("1970-01-01"):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).isoformat()


def _latest(stated: str | None, moved: str | None) -> str | None:
    if stated is None or moved is None:
        return stated or moved
    try:
        later = datetime.fromisoformat(moved) > datetime.fromisoformat(stated)
    except ValueError:
        return stated  # the contract's check names the field
    return moved if later else stated


def _values(ticket: Mapping[str, Any]) -> dict[str, list[str]]:
    return {
        cf["name"]: [str(v) for v in cf.get("values") or [] if str(v) != ""]
        for cf in ticket.get("CustomFields") or []
    }


def _number(text: str | None) -> float | str | None:
    if text is None:
        return None
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return text  # the contract's check names the field


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # the contract's check names the field


def _step(value: str) -> dict[str, Any]:
    step, _, result = value.partition(":")
    return {"step": step.strip(), **({"result": result.strip()} if result.strip() else {})}


_RESOLVED = re.compile(r"\s*\((resolved)\)\s*$", re.IGNORECASE)


def _flag(value: str) -> dict[str, Any]:
    resolved = bool(_RESOLVED.search(value))
    value = _RESOLVED.sub("", value)
    kind, _, note = value.partition(":")
    return _drop_none({"type": kind.strip(), "note": note.strip() or None, "resolved": resolved})


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def rt_case(
    ticket: Mapping[str, Any],
    transactions: Sequence[Mapping[str, Any]],
    attachments: Sequence[Mapping[str, Any]],
    others: Sequence[Mapping[str, Any]],
    settings: RtSettings,
    *,
    escalation_queue_id: str | None = None,
    tier2_user: str | None = None,
) -> dict[str, Any]:
    """One RT ticket, its history and attachments, and the requestor's other tickets, as a
    case in the contract's shape (`tier2_user`: the name of the RT user tier2 writes as, whose
    marked messages are tier2's own and not part of the thread). Pure: the tests feed it what
    a real RT answered."""
    form = _Form(_values(ticket), settings)
    ticket_id = str(ticket["id"])
    requestors = {str(r.get("id")) for r in ticket.get("Requestor") or []}
    messages = _thread(transactions, attachments, requestors, tier2_user)
    moved, sender = _moved_in(transactions, escalation_queue_id)
    # when tier-1 handed it over: the later of the form's time and the last move into the
    # queue, else when the ticket was created
    escalated_at = _latest(form.one("handoff.escalated_at"), moved) or _utc(ticket.get("Created"))
    requestor = sorted(requestors)[0] if requestors else None
    history = [_earlier(o, settings) for o in others if str(o["id"]) != ticket_id]
    facts = _json(form.one("facts"))
    return {
        "case_id": f"{settings.case_prefix}{ticket_id}",
        "received_at": escalated_at,
        "ticket": _case_ticket(ticket, form, messages),
        "handoff": _case_handoff(form, sender, escalated_at),
        "customer": _case_customer(form, requestor),
        "history": history,
        "facts": {} if facts is None else facts,
    }


@dataclass(frozen=True)
class _Form:
    """A ticket's custom-field values (tier-1's handoff form), looked up by case field."""

    values: Mapping[str, list[str]]
    settings: RtSettings

    def one(self, path: str) -> str | None:
        got = self.values.get(self.settings.cf(path)) or []
        return got[0] if got else None

    def many(self, path: str) -> list[str]:
        return self.values.get(self.settings.cf(path)) or []


def _thread(
    transactions: Sequence[Mapping[str, Any]],
    attachments: Sequence[Mapping[str, Any]],
    requestors: set[str],
    tier2_user: str | None = None,
) -> list[dict[str, Any]]:
    """The plain-text body of each Create and Correspond transaction but tier2's own (by
    tier2's user and marked with a key), in the order RT lists the attachments: the Create's
    and the requestors' are the customer's, whatever their text says."""
    kinds = {str(t["id"]): t for t in transactions}
    messages: list[dict[str, Any]] = []
    seen: set[str] = set()
    for a in attachments:
        txn = kinds.get(str(a.get("TransactionId")))
        if txn is None or txn.get("Type") not in ("Create", "Correspond"):
            continue
        if str(a.get("ContentType", "")).split(";")[0] != "text/plain" or txn["id"] in seen:
            continue
        body = str(a.get("Content") or "")
        creator = _creator(txn)
        if tier2_user is not None and creator == tier2_user and marked(body):
            continue  # tier2's own reply
        seen.add(txn["id"])
        author = "customer" if txn["Type"] == "Create" or creator in requestors else "agent"
        messages.append({"from": author, "at": _utc(txn.get("Created")), "body": body.strip()})
    return messages


def _creator(record: Mapping[str, Any]) -> str:
    """The name of the RT user who created a transaction or an attachment (REST2 gives the
    user's name as the id of `Creator`)."""
    return str((record.get("Creator") or {}).get("id", ""))


def tier2_keys(attachments: Sequence[Mapping[str, Any]], tier2_user: str) -> set[str]:
    """The keys tier2 wrote on a ticket: those of the attachments (REST2's, with `Creator`
    and `Content`) created by tier2's own RT user. A key line anyone else wrote is no key."""
    return keys_in([a for a in attachments if _creator(a) == tier2_user])


def _moved_in(
    transactions: Sequence[Mapping[str, Any]], escalation_queue_id: str | None
) -> tuple[str | None, str | None]:
    """When the ticket was last moved into the escalation queue, and by whom (a ticket
    escalated again is moved in again); (None, None) if it never was."""
    moved: str | None = None
    sender: str | None = None
    for t in transactions:
        into_queue = (
            t.get("Type") == "Set"
            and t.get("Field") == "Queue"
            and escalation_queue_id is not None
            and str(t.get("NewValue")) == escalation_queue_id
        )
        if into_queue:
            sender = str((t.get("Creator") or {}).get("id", "")) or None
            moved = _utc(t.get("Created"))
    return moved, sender


def _case_ticket(
    ticket: Mapping[str, Any], form: _Form, messages: list[dict[str, Any]]
) -> dict[str, Any]:
    """RT's ticket with the form's fields and the thread; the first message describes it."""
    return _drop_none(
        {
            "id": str(ticket["id"]),
            "subject": ticket.get("Subject"),
            "description": messages[0]["body"] if messages else None,
            "channel": form.one("ticket.channel"),
            "created_at": _utc(ticket.get("Created")),
            "severity": form.one("ticket.severity"),
            "category": form.one("ticket.category"),
            "messages": messages,
            "tags": form.many("ticket.tags"),
            "status": ticket.get("Status"),
        }
    )


def _case_handoff(form: _Form, sender: str | None, escalated_at: str | None) -> dict[str, Any]:
    """The handoff form's fields, from whoever last moved the ticket into the queue."""
    request = _drop_none(
        {
            "type": form.one("handoff.request.type"),
            "amount": _number(form.one("handoff.request.amount")),
            "currency": form.one("handoff.request.currency"),
        }
    )
    return _drop_none(
        {
            "from": sender,
            "escalated_at": escalated_at,
            "reason": form.one("handoff.reason"),
            "steps_taken": [_step(v) for v in form.many("handoff.steps_taken")],
            "customer_expectation": form.one("handoff.customer_expectation"),
            "request": request or None,
            "sentiment": form.one("handoff.sentiment"),
        }
    )


def _case_customer(form: _Form, requestor: str | None) -> dict[str, Any]:
    """The customer fields of the form; the requestor is the id when the form has none."""
    vip = form.one("customer.vip")
    return _drop_none(
        {
            "id": form.one("customer.id") or requestor,
            "name": form.one("customer.name"),
            "company": form.one("customer.company"),
            "segment": form.one("customer.segment"),
            "vip": None if vip is None else vip.lower() in _TRUE,
            "arr": _number(form.one("customer.arr")),
            "currency": form.one("customer.currency"),
            "plan": _json(form.one("customer.plan")),
            "flags": [_flag(v) for v in form.many("customer.flags")],
        }
    )


def _earlier(other: Mapping[str, Any], settings: RtSettings) -> dict[str, Any]:
    """Another of the requestor's tickets as an entry of the customer's history."""
    return _drop_none(
        {
            "ticket_id": str(other["id"]),
            "at": _utc(other.get("Created")),
            "category": next(iter(_values(other).get(settings.cf("ticket.category")) or []), None),
            "complaint": any(
                v.lower() in _TRUE for v in _values(other).get(settings.cf("history.complaint"), [])
            ),
            "escalated": bool(_values(other).get(settings.cf("tier2.outcome"))),
            "outcome": other.get("Status"),
        }
    )


_HISTORY = "Type,Field,OldValue,NewValue,Created,Creator"


def _at(text: Any) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)


def history_timeline(
    transactions: Sequence[Mapping[str, Any]],
    groups: Mapping[str, str],
    severity_id: str | None,
    tier2_user: str | None,
) -> Timeline:
    """A ticket's status, queue (`groups`: queue id -> group word) and severity changes from
    its transactions, RT's statuses in the SLA monitor's words; the last activity is the last
    change or message by anyone but RT itself and tier2. Pure."""
    changes: list[StatusChange] = []
    last: datetime | None = None
    for t in transactions:
        at = _at(t["Created"])
        actor = _creator(t)
        kind, fld, new = t.get("Type"), t.get("Field"), str(t.get("NewValue") or "")
        if kind == "Status":
            changes.append(
                StatusChange(at, status=_DONE.get(new) or _WAITING.get(new, new), actor=actor)
            )
        elif kind == "Set" and fld == "Queue" and new in groups:
            changes.append(StatusChange(at, group=groups[new], actor=actor))
        elif kind == "CustomField" and severity_id is not None and str(fld) == severity_id and new:
            changes.append(StatusChange(at, severity=new, actor=actor))
        if actor not in _SYSTEM and actor != tier2_user and kind in (
            "Correspond", "Comment", "Status", "Set", "CustomField",
        ):  # fmt: skip
            last = at if last is None else max(last, at)
    return Timeline(tuple(changes), last)


# --------------------------------------------------------------------------- the help desk


class RtHelpDesk:
    """The HelpDesk port over a Request Tracker 5."""

    in_store = False

    def reader(self) -> None:
        """Read here: a worker process would open a connection of its own to the help desk."""
        return

    def __init__(self, client: RtClient, settings: RtSettings) -> None:
        self.rt = client
        self.settings = settings
        self._keys: dict[str, set[str]] = {}  # keys on each ticket, as last read or written
        self._cf: dict[str, dict[str, list[str]]] = {}  # custom-field values, likewise
        self._queue_ids: dict[str, str] = {}
        self._cf_names: dict[str, str] | None = None
        self._escalated: set[str] = set()  # tickets that were escalations when last read
        self._me: str | None = None  # the name of the RT user tier2 writes as

    def close(self) -> None:
        self.rt.close()

    # ------------------------------------------------------------------ reading

    def tier2_user(self) -> str:
        """The RT user tier2 writes as: the configured user, by the name RT gives it (the
        name each of its transactions and attachments names as `Creator`); asked once."""
        if self._me is None:
            data = self.rt.call("GET", "user/" + urllib.parse.quote(self.rt.user, safe="@"))
            name = (data or {}).get("Name")
            if not name:
                raise RtError(f"RT GET user/{self.rt.user}: no user name in RT's answer")
            self._me = str(name)
        return self._me

    def queue_id(self, name: str) -> str:
        if name not in self._queue_ids:
            data = self.rt.call("GET", f"queue/{name}")
            self._queue_ids[name] = str(data["id"])
        return self._queue_ids[name]

    def escalations(self) -> list[str]:
        query = self.settings.escalation_query()
        return [str(t["id"]) for t in self.rt.search(query, "id", orderby="id", order="ASC")]

    def read_cases(self, ticket_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The tickets that exist, in the order asked: each ticket, its history and its
        attachments, and one search per requestor for their other tickets. (One TicketSQL
        query with many `OR`s would be fewer requests, but RT runs such a query for seconds
        to minutes on SQLite, locking writers out meanwhile.)"""
        ids = [str(i) for i in ticket_ids]
        tickets: dict[str, dict[str, Any]] = {}
        for ticket_id in ids:
            try:
                tickets[ticket_id] = self.rt.call("GET", f"ticket/{int(ticket_id)}")
            except RtError as exc:
                if "HTTP 404" not in str(exc):
                    raise
        others: dict[str, list[dict[str, Any]]] = {}
        if self.settings.history:
            people = sorted(
                {str(r["id"]) for t in tickets.values() for r in t.get("Requestor") or []}
            )
            for person in people:
                query = f"Requestor.Name = '{_quote(person)}'"
                others[person] = list(self.rt.search(query, "Created,Status,CustomFields"))
        queue_id = None if self.settings.custom_field else self.queue_id(self.settings.queue)
        out = []
        for ticket_id in ids:
            ticket = tickets.get(ticket_id)
            if ticket is None:
                continue
            transactions = list(
                self._paged(f"ticket/{ticket_id}/history", "Type,Field,NewValue,Created,Creator")
            )
            attachments = list(
                self._paged(
                    f"ticket/{ticket_id}/attachments", "TransactionId,ContentType,Content,Creator"
                )
            )
            self._keys[ticket_id] = tier2_keys(attachments, self.tier2_user())
            self._cf[ticket_id] = _values(ticket)
            if self._is_escalation(ticket):
                self._escalated.add(ticket_id)
            else:
                self._escalated.discard(ticket_id)
            mine = {
                str(o["id"]): o
                for r in ticket.get("Requestor") or []
                for o in others.get(str(r["id"]), [])
            }
            out.append(
                rt_case(
                    ticket,
                    transactions,
                    attachments,
                    list(mine.values()),
                    self.settings,
                    escalation_queue_id=queue_id,
                    tier2_user=self.tier2_user(),
                )
            )
        return out

    def _is_escalation(self, ticket: Mapping[str, Any]) -> bool:
        """What `escalation_query` finds, judged on one ticket as RT gives it."""
        s = self.settings
        values = _values(ticket)
        if str(ticket.get("Status")) in _DONE or "escalate" in values.get(
            s.cf("tier2.outcome"), []
        ):
            return False
        if s.custom_field:
            return (s.custom_field_value or "") in values.get(s.custom_field, [])
        return str((ticket.get("Queue") or {}).get("id")) == self.queue_id(s.queue)

    def escalated(self, session: Session, ticket_ids: Sequence[str]) -> set[str]:
        return {str(t) for t in ticket_ids} & self._escalated

    def _paged(self, path: str, fields: str) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            data = self.rt.call(
                "GET", path, params={"fields": fields, "per_page": 100, "page": page}
            )
            yield from data.get("items", [])
            if page >= int(data.get("pages") or 1):
                return
            page += 1

    def _known_keys(self, ticket_id: str) -> set[str]:
        keys = self._keys.get(ticket_id)
        if keys is None:  # not read in this process (a run after a crash): ask RT
            attachments = self._paged(f"ticket/{ticket_id}/attachments", "Content,Creator")
            keys = self._keys[ticket_id] = tier2_keys(list(attachments), self.tier2_user())
        return keys

    def _field_values(self, ticket_id: str) -> dict[str, list[str]]:
        values = self._cf.get(ticket_id)
        if values is None:
            values = self._cf[ticket_id] = _values(
                self.rt.call("GET", f"ticket/{ticket_id}", params={"fields": "CustomFields"})
            )
        return values

    # ------------------------------------------------------------------ writing

    def take(self, session: Session, ticket_ids: Sequence[str], at: datetime) -> None:
        """Nothing to write: the ticket stays an escalation until tier2 moves it."""

    def _comment(
        self, ticket_id: str, key: str, subject: str, body: str, *, reply: bool = False
    ) -> None:
        content = body.rstrip("\n") + "\n\n" + KEY_LINE + key + "\n"
        self.rt.call(
            "POST",
            f"ticket/{ticket_id}/{'correspond' if reply else 'comment'}",
            json={"Subject": subject, "Content": content, "ContentType": "text/plain"},
        )
        self._known_keys(ticket_id).add(key)
        crash_point("between_effects")

    def carry_out(
        self, session: Session, orders: Sequence[ActionOrder], at: datetime
    ) -> list[dict[str, Any]]:
        """Each action recorded once: a comment with its key, then a `Tier2 Actions` value."""
        results: list[dict[str, Any]] = []
        field_name = self.settings.cf("tier2.actions")
        touched: dict[str, list[str]] = {}
        for o in orders:
            line = o.words()
            written = o.key in self._known_keys(o.ticket_id)
            if not written:
                self._comment(
                    o.ticket_id, o.key, f"tier2 action: {line}", f"tier2 carried out: {line}"
                )
            value = f"{line} [{o.key}]"
            current = self._field_values(o.ticket_id).get(field_name, [])
            if value not in current:
                touched.setdefault(o.ticket_id, list(current)).append(value)
            results.append(
                {"rt_ticket": o.ticket_id, "recorded": "already" if written else "comment"}
            )
        for ticket_id, values in touched.items():
            self.rt.update(f"ticket/{ticket_id}", {"CustomFields": {field_name: values}})
            self._field_values(ticket_id)[field_name] = values
        return results

    def write_notes(self, session: Session, orders: Sequence[NoteOrder], at: datetime) -> None:
        for o in orders:
            if o.key in self._known_keys(o.ticket_id):
                continue
            reply = o.kind == "reply_draft" and self.settings.reply_to_customer
            subject = {
                "note": "tier2 decision",
                "guidance": "tier2 guidance for tier-1",
                "reply_draft": "tier2 draft reply to the customer",
                "sla": "tier2 SLA escalation",
            }.get(o.kind, f"tier2 {o.kind}")
            self._comment(o.ticket_id, o.key, subject, o.body, reply=reply)

    def move(self, session: Session, moves: Sequence[TicketMove], at: datetime) -> None:
        """Status, queue, and `Tier2 Outcome` (and the escalation field cleared on a return),
        in one request per ticket; setting what is already set changes nothing in RT."""
        for mv in moves:
            self.rt.update(f"ticket/{mv.ticket_id}", self._moved(mv))

    def _moved(self, mv: TicketMove) -> dict[str, Any]:
        """RT's words for a move: the ticket update that makes it."""
        s = self.settings
        outcome = s.cf("tier2.outcome")
        match mv:
            case Resolve():
                return {"Status": "resolved", "CustomFields": {outcome: "resolve"}}
            case ReturnToTier1():
                fields = {outcome: "return_to_tier1"}
                if s.custom_field:
                    fields[s.custom_field] = ""
                return {"Status": "open", "Queue": s.return_queue, "CustomFields": fields}
            case EscalateTo(target=target, reopen=reopen):
                body: dict[str, Any] = {"Status": "open"} if reopen else {}
                if target in s.queues:
                    body["Queue"] = s.queues[target]
                body["CustomFields"] = {outcome: "escalate", s.cf("tier2.escalated_to"): target}
                return body

    # ------------------------------------------------------------------ the SLA monitor

    def timelines(self, ticket_ids: Sequence[str]) -> dict[str, Timeline]:
        """Status, queue and severity changes from each ticket's transactions."""
        read = self._history_reader() if ticket_ids else None
        out: dict[str, Timeline] = {}
        for ticket_id in ticket_ids:
            assert read is not None
            out[ticket_id] = read(list(self._paged(f"ticket/{ticket_id}/history", _HISTORY)))
        return out

    def _history_reader(self) -> Callable[[Sequence[Mapping[str, Any]]], Timeline]:
        """What reads a ticket's transactions as its timeline, in this RT's queues and fields."""
        s = self.settings
        groups = {self.queue_id(q): g for g, q in s.queues.items()}
        groups[self.queue_id(s.return_queue)] = "tier1"
        severity_id = self._cf_id(s.cf("ticket.severity"))
        me = self.tier2_user()
        return lambda transactions: history_timeline(transactions, groups, severity_id, me)

    # ------------------------------------------------------------------ the baseline

    def past_escalations(self, start: datetime, end: datetime) -> list[PastEscalation]:
        """The tickets that entered the escalation queue (or got the escalation field's value)
        in [start, end) and that tier2 never handled: when they first entered, their changes
        (as `timelines` reads them), re-escalated when they entered more than once."""
        read = self._history_reader()
        out = []
        for ticket_id in sorted(self._entered_around(start, end), key=int):
            ticket = self.rt.call("GET", f"ticket/{ticket_id}")
            history = list(self._paged(f"ticket/{ticket_id}/history", _HISTORY))
            entered = self._entries(ticket, history)
            if not entered or not start <= entered[0] < end or self._tier2s(ticket_id, history):
                continue
            severity = _Form(_values(ticket), self.settings).one("ticket.severity")
            changes = read(history).changes
            out.append(PastEscalation(ticket_id, severity, entered[0], changes, len(entered) > 1))
        return out

    def _entry_field(self) -> tuple[str, str, str, str]:
        """How a ticket becomes an escalation: (the transaction type that makes it, its
        `Field`, its `NewValue`, the TicketSQL of a ticket that holds it now)."""
        s = self.settings
        if s.custom_field:
            cf_id = self._cf_id(s.custom_field)
            if cf_id is None:
                raise RtError(f"RT: no custom field {s.custom_field!r}")
            value = s.custom_field_value or ""
            held = f"'CF.{{{_quote(s.custom_field)}}}' = '{_quote(value)}'"
            return "CustomField", cf_id, value, held
        return "Set", "Queue", self.queue_id(s.queue), f"Queue = '{_quote(s.queue)}'"

    def _entered_around(self, start: datetime, end: datetime) -> set[str]:
        """The tickets that may have entered in [start, end) (a day more each side: RT reads
        a search's times in its own time zone): moved in then, created then and still there,
        or moved out since (created there). Their histories decide."""
        kind, fld, value, held = self._entry_field()
        lo, hi = (
            _rt_time((start - timedelta(days=1)).isoformat()),
            _rt_time((end + timedelta(days=1)).isoformat()),
        )
        moves = f"ObjectType = 'RT::Ticket' AND Type = '{kind}' AND Field = '{_quote(fld)}'"
        found = {
            str(t["ObjectId"])
            for query in (
                f"{moves} AND NewValue = '{_quote(value)}' "
                f"AND Created >= '{lo}' AND Created < '{hi}'",
                f"{moves} AND OldValue = '{_quote(value)}' AND Created >= '{lo}'",
            )
            for t in self.rt.search(query, "ObjectId", collection="transactions")
        }
        created = f"{held} AND Created >= '{lo}' AND Created < '{hi}'"
        return found | {str(t["id"]) for t in self.rt.search(created, "id")}

    def _entries(
        self, ticket: Mapping[str, Any], history: Sequence[Mapping[str, Any]]
    ) -> list[datetime]:
        """When the ticket entered: created in the queue (or with the field's value), then
        each move in, in time order."""
        kind, fld, value, _ = self._entry_field()
        sets = [t for t in history if t.get("Type") == kind and str(t.get("Field")) == fld]
        if sets:
            at_create = str(sets[0].get("OldValue") or "") == value
        elif kind == "Set":
            at_create = str((ticket.get("Queue") or {}).get("id")) == value
        else:
            at_create = value in _values(ticket).get(self.settings.custom_field or "", [])
        created = next((t for t in history if t.get("Type") == "Create"), None)
        out = [_at(t["Created"]) for t in sets if str(t.get("NewValue") or "") == value]
        if at_create:
            out.insert(0, _at((created or ticket)["Created"]))
        return sorted(out)

    def _tier2s(self, ticket_id: str, history: Sequence[Mapping[str, Any]]) -> bool:
        """Whether tier2 handled the ticket: it set `Tier2 Outcome`, or its RT user wrote a
        message with a key on it."""
        outcome = self._cf_id(self.settings.cf("tier2.outcome"))
        if any(
            t.get("Type") == "CustomField" and str(t.get("Field")) == outcome and t.get("NewValue")
            for t in history
        ):
            return True
        me = self.tier2_user()
        if not any(
            t.get("Type") in ("Comment", "Correspond") and _creator(t) == me for t in history
        ):
            return False
        return bool(self._known_keys(ticket_id))

    def _cf_id(self, name: str) -> str | None:
        if self._cf_names is None:
            self._cf_names = {
                str(c.get("Name")): str(c["id"]) for c in self._paged("customfields", "Name")
            }
        return self._cf_names.get(name)


# --------------------------------------------------------------------------- filing cases


def _rt_time(iso: str) -> str:
    """An ISO-8601 time as RT takes it on create: `YYYY-MM-DD HH:MM:SS` in UTC."""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def requestor_of(case: Mapping[str, Any]) -> str:
    """The customer's address: their id if it is one, else one made from it."""
    given = str((case.get("customer") or {}).get("id") or f"ticket-{case['ticket']['id']}")
    return given if "@" in given else re.sub(r"[^A-Za-z0-9._-]", "-", given) + "@customers.invalid"


def _flag_value(f: Mapping[str, Any]) -> str:
    text = str(f.get("type"))
    if f.get("note"):
        text += f": {f['note']}"
    return text + (" (resolved)" if f.get("resolved") else "")


def case_fields(case: Mapping[str, Any], settings: RtSettings) -> dict[str, Any]:
    """The custom-field values tier-1's handoff form would hold for a contract case."""
    t, h, c = case["ticket"], case.get("handoff") or {}, case.get("customer") or {}
    r = h.get("request") or {}
    values: dict[str, Any] = {
        "ticket.severity": t.get("severity"),
        "ticket.category": t.get("category"),
        "ticket.channel": t.get("channel"),
        "ticket.tags": list(t.get("tags") or []),
        "handoff.reason": h.get("reason"),
        "handoff.customer_expectation": h.get("customer_expectation"),
        "handoff.sentiment": h.get("sentiment"),
        "handoff.steps_taken": [
            s.get("step", "") + (f": {s['result']}" if s.get("result") else "")
            for s in h.get("steps_taken") or []
        ],
        "handoff.request.type": r.get("type"),
        "handoff.request.amount": None if r.get("amount") is None else repr(float(r["amount"])),
        "handoff.request.currency": r.get("currency"),
        "handoff.escalated_at": h.get("escalated_at") or case.get("received_at"),
        "customer.id": c.get("id"),
        "customer.name": c.get("name"),
        "customer.company": c.get("company"),
        "customer.segment": c.get("segment"),
        "customer.vip": None if c.get("vip") is None else ("yes" if c["vip"] else "no"),
        "customer.arr": None if c.get("arr") is None else repr(float(c["arr"])),
        "customer.currency": c.get("currency"),
        "customer.plan": None if c.get("plan") is None else json.dumps(c["plan"], sort_keys=True),
        "customer.flags": [_flag_value(f) for f in c.get("flags") or []],
        "facts": json.dumps(case.get("facts") or {}, sort_keys=True),
    }
    return {settings.cf(k): v for k, v in values.items() if v not in (None, [])}


def file_case(
    client: RtClient,
    settings: RtSettings,
    case: Mapping[str, Any],
    backdate: Callable[[str, str], None] | None = None,
) -> str:
    """Create a contract case in RT as tier-1 would have left it: its earlier tickets (the
    history, resolved, in the tier-1 queue), then the ticket in the escalation queue with
    the handoff form filled, the first message as its content and the rest as replies
    (written by the signed-in user, so they read as the agent's). Returns the ticket id.

    Each ticket is created with the case's time as `Created`. RT 5.0.3+dfsg-3~deb12u7 and
    later ignore `Created` over REST2 and date a new ticket now; `backdate(ticket id, RT
    time)`, where given, is called for each ticket to set it another way (RT's Perl API)."""
    requestor = requestor_of(case)
    for e in case.get("history") or []:
        body = _earlier_ticket(e, settings, requestor)
        earlier = client.call("POST", "ticket", json=body)
        if backdate and e.get("at"):
            backdate(str(earlier["id"]), body["Created"])
    t = case["ticket"]
    messages = list(t.get("messages") or [])
    first = messages.pop(0)["body"] if messages else (t.get("description") or "")
    created = client.call(
        "POST", "ticket", json=_escalated_ticket(case, settings, requestor, first)
    )
    ticket_id = str(created["id"])
    if backdate:
        backdate(ticket_id, _rt_time(t["created_at"]))
    for x in messages:
        client.call(
            "POST",
            f"ticket/{ticket_id}/correspond",
            json={"Content": x.get("body") or "", "ContentType": "text/plain"},
        )
    return ticket_id


def _earlier_ticket(
    entry: Mapping[str, Any], settings: RtSettings, requestor: str
) -> dict[str, Any]:
    """The new ticket for an entry of the case's history: resolved, in the tier-1 queue."""
    fields = {settings.cf("ticket.category"): entry.get("category") or "other"}
    if entry.get("complaint"):
        fields[settings.cf("history.complaint")] = "yes"
    if entry.get("escalated"):
        fields[settings.cf("tier2.outcome")] = "escalate"
    body: dict[str, Any] = {
        "Queue": settings.return_queue,
        "Subject": f"earlier ticket {entry.get('ticket_id')}",
        "Requestor": requestor,
        "Status": "resolved",
        "CustomFields": fields,
    }
    if entry.get("at"):
        body["Created"] = _rt_time(entry["at"])
    return body


def _escalated_ticket(
    case: Mapping[str, Any], settings: RtSettings, requestor: str, first: str
) -> dict[str, Any]:
    """The new ticket for the case itself: in the escalation queue, the first message as its
    content, the handoff form filled."""
    t = case["ticket"]
    fields = case_fields(case, settings)
    if settings.custom_field:
        fields[settings.custom_field] = settings.custom_field_value or ""
    return {
        "Queue": settings.queue,
        "Subject": t.get("subject") or f"case {case['case_id']}",
        "Requestor": requestor,
        "Created": _rt_time(t["created_at"]),
        "Content": first or "(no message)",
        "ContentType": "text/plain",
        "CustomFields": fields,
    }

"""Zendesk Support over its REST API (v2): escalations in, notes, moves and actions out.

- an escalation is an unsolved ticket in the configured view, or with the configured tag,
  or with the configured custom-field value, that tier2 has not escalated in place (tag
  `tier2_escalated`); a backfill finds them in the incremental ticket export instead;
- the thread is the ticket's public comments (the requester's are the customer's);
  private comments are internal and not part of it;
- the handoff and the facts are ticket fields (by id), the customer record is the
  requester and their organization (user and organization fields), the history is the
  requester's other tickets;
- tier2 writes its note, guidance and reply draft as private comments (a public reply only
  when configured), each with its key on its last line; an action is a private comment
  plus a tag (and a line in a text field when one is configured); a move sets status,
  group and tags.

Every write carries a key, and a key already on the ticket is not written again. Only tier2's
own comments count: those whose author is the agent tier2 signs in as (`GET users/me`, asked
once) and that are private (or public replies, when tier2 is configured to send them); a key
line in anyone else's comment is text like any other, neither a key nor a comment of tier2's.
Requests are retried after a `429` or `503` once the `Retry-After` seconds have passed;
lists are read by cursor (`page[size]`, `meta.has_more`, `links.next`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.orm import Session

from tier2._batch import batched
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

ESCALATED_TAG = "tier2_escalated"  # tier2 escalated it in place: not an escalation any more
SEVERITY_OF_PRIORITY = {"urgent": "critical", "high": "high", "normal": "medium", "low": "low"}
CHANNEL_OF_VIA = {
    "email": "email", "web": "web", "web_form": "web", "chat": "chat", "native_messaging": "chat",
    "voice": "phone", "phone": "phone", "twitter": "social", "facebook": "social",
    "instagram_dm": "social", "whatsapp": "chat", "api": "other",
}  # fmt: skip
DEFAULT_USER_FIELDS = {  # customer field -> user field key (else organization field key)
    "segment": "segment",
    "vip": "vip",
    "arr": "arr",
    "currency": "currency",
    "plan": "plan",
    "flags": "flags",
}
_DONE = {"solved": "resolved", "closed": "resolved"}
_WAITING = {"pending": "pending", "hold": "on_hold"}


class ZendeskError(ConnectorError):
    """Zendesk refused a request: which request, what Zendesk said."""


class ZendeskClient:
    """The Support API over httpx: API-token auth, JSON, cursor pages, 429/503 retried
    after `Retry-After`. `sleep` is injectable so tests do not wait."""

    def __init__(
        self,
        subdomain: str,
        email: str,
        token: str,
        *,
        base_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 5,
        timeout: float = 30.0,
    ) -> None:
        base = base_url or f"https://{subdomain}.zendesk.com/api/v2/"
        self.http = httpx.Client(
            base_url=base, auth=(f"{email}/token", token), transport=transport, timeout=timeout
        )
        self.sleep, self.max_attempts = sleep, max_attempts
        self.waited = 0.0

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise ZendeskError(
                    f"Zendesk {method} {path}: {type(exc).__name__}: {exc}"
                ) from None
            if response.status_code in (429, 503) and attempt < self.max_attempts:
                wait = _retry_after(response)
                self.waited += wait
                self.sleep(wait)
                continue
            if response.status_code >= 400:
                raise ZendeskError(
                    f"Zendesk {method} {path}: HTTP {response.status_code}: {_said(response)}"
                )
            return response.json() if response.content else None
        raise AssertionError("unreachable")

    def pages(self, path: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a cursor-paginated list."""
        url: str | None = path
        query: dict[str, Any] | None = {"page[size]": 100, **params}
        while url:
            data = self.call("GET", url, params=query)
            yield from data.get(key) or []
            more = (data.get("meta") or {}).get("has_more")
            url = (data.get("links") or {}).get("next") if more else None
            query = None  # the next link carries the query


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


def _said(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(data, dict):
        return str(data)[:200]
    error = data.get("error")
    if isinstance(error, dict):  # {"error": {"title", "message"}}
        error = error.get("message") or error.get("title")
    detail = data.get("description") or ""
    details = data.get("details")
    if isinstance(details, dict):
        detail += " " + "; ".join(
            f"{k}: {d.get('description', d)}" for k, v in details.items() for d in v
        )
    return " ".join(x for x in (str(error or ""), detail.strip()) if x) or str(data)[:200]


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ZendeskSettings:
    view_id: int | None = None
    tag: str | None = None
    custom_field_id: int | None = None
    custom_field_value: str | None = None
    groups: Mapping[str, int] = field(default_factory=dict)  # escalation target -> group id
    return_group_id: int | None = None  # tier-1's group, for a return
    fields: Mapping[str, int] = field(default_factory=dict)  # case field -> ticket field id
    user_fields: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_USER_FIELDS))
    complaint_tag: str = "complaint"
    actions_field_id: int | None = None  # a text field tier2 lists its actions in
    outcome_field_id: int | None = None  # a field tier2 sets to its outcome
    reply_to_customer: bool = False
    case_prefix: str = "ZD-"
    group_id: int | None = None  # tier-2's group: assigned to it, a ticket was escalated

    def search_query(self) -> str:
        where = (
            f"tags:{self.tag}"
            if self.tag
            else f"custom_field_{self.custom_field_id}:{self.custom_field_value}"
        )
        return f"type:ticket status<solved {where} -tags:{ESCALATED_TAG}"

    def entry_known(self) -> bool:
        """Whether a ticket's audits tell when it became an escalation (a view does not)."""
        return self.group_id is not None or bool(self.tag) or self.custom_field_id is not None

    def entered(self, audit: Mapping[str, Any]) -> bool:
        """Whether the audit made the ticket an escalation: created in or assigned to tier-2's
        group, tagged with the escalation tag, or given the escalation field's value."""
        for e in audit.get("events") or []:
            if e.get("type") not in ("Create", "Change"):
                continue
            name, value, before = e.get("field_name"), e.get("value"), e.get("previous_value")
            if self.group_id is not None and name == "group_id" and _int(value) == self.group_id:
                return True
            tagged = self.tag and name == "tags" and self.tag in (value or [])
            if tagged and self.tag not in (before or []):
                return True
            entry = self.custom_field_id is not None and name == str(self.custom_field_id)
            if entry and str(value) == str(self.custom_field_value) and value != before:
                return True
        return False

    def escalated(self, ticket: Mapping[str, Any]) -> bool:
        """Is this ticket (as Zendesk gives it) an escalation waiting for tier2?"""
        if ticket.get("status") in ("solved", "closed") or ESCALATED_TAG in (
            ticket.get("tags") or []
        ):
            return False
        if self.view_id is not None:
            return True  # the view says so
        if self.tag:
            return self.tag in (ticket.get("tags") or [])
        return bool(_field(ticket, self.custom_field_id) == self.custom_field_value)


def _field(ticket: Mapping[str, Any], field_id: int | None) -> Any:
    if field_id is None:
        return None
    for f in ticket.get("custom_fields") or []:
        if f.get("id") == field_id:
            return f.get("value")
    return None


def _number(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value  # the contract's check names the field


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    return str(value).lower() in {"1", "yes", "true", "y"}


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _iso(text: str | None) -> str | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).isoformat()


def _steps(value: Any) -> list[dict[str, Any]]:
    lines = value if isinstance(value, list) else str(value or "").splitlines()
    out = []
    for line in lines:
        step, _, result = str(line).partition(":")
        if step.strip():
            out.append(
                {"step": step.strip(), **({"result": result.strip()} if result.strip() else {})}
            )
    return out


def _flags(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [f if isinstance(f, dict) else {"type": str(f), "resolved": False} for f in value]
    parsed = _json(value)
    if isinstance(parsed, list):
        return _flags(parsed)
    out = []
    for given in str(value or "").splitlines():
        resolved = given.rstrip().lower().endswith("(resolved)")
        line = given.rstrip()[: -len("(resolved)")] if resolved else given
        kind, _, note = line.partition(":")
        if kind.strip():
            out.append(
                _drop_none(
                    {"type": kind.strip(), "note": note.strip() or None, "resolved": resolved}
                )
            )
    return out


def tier2s_comment(comment: Mapping[str, Any], agent_id: Any) -> bool:
    """Whether a comment (or an audit's Comment event) is one tier2 wrote: by tier2's own
    agent and marked with a key. A key line in anyone else's comment does not make it tier2's."""
    return (
        agent_id is not None
        and comment.get("author_id") == agent_id
        and marked(str(comment.get("body") or ""))
    )


def tier2_keys(
    comments: Sequence[Mapping[str, Any]], agent_id: Any, *, public_replies: bool = False
) -> set[str]:
    """The keys tier2 wrote on a ticket: those of the private comments by tier2's own agent
    (and of its public ones, where tier2 sends its replies as public comments)."""
    return keys_in(
        [
            {"Content": c.get("body")}
            for c in comments
            if agent_id is not None
            and c.get("author_id") == agent_id
            and (public_replies or c.get("public") is False)
        ]
    )


def zendesk_case(  # noqa: PLR0917 (what one ticket is read from, as the API gives it)
    ticket: Mapping[str, Any],
    comments: Sequence[Mapping[str, Any]],
    requester: Mapping[str, Any] | None,
    organization: Mapping[str, Any] | None,
    others: Sequence[Mapping[str, Any]],
    settings: ZendeskSettings,
    *,
    agent_id: Any = None,
) -> dict[str, Any]:
    """One Zendesk ticket with its comments, requester, organization and the requester's
    other tickets, as a case in the contract's shape (`agent_id`: tier2's own agent, whose
    marked comments are not part of the thread). Pure: tests feed it API answers."""
    fields = settings.fields

    def tf(path: str) -> Any:
        return _field(ticket, fields.get(path))

    ticket_id = str(ticket["id"])
    messages = _thread(comments, ticket.get("requester_id"), agent_id)
    # the handoff form's time, else when the ticket was created (never "last updated": that
    # moves with every write, and the same ticket must give the same case)
    escalated_at = tf("handoff.escalated_at") or _iso(ticket.get("created_at"))
    history = [_earlier(o, settings) for o in others if str(o["id"]) != ticket_id]
    facts = _json(tf("facts"))
    return {
        "case_id": f"{settings.case_prefix}{ticket_id}",
        "received_at": escalated_at,
        "ticket": _case_ticket(ticket, tf, messages),
        "handoff": _case_handoff(tf, escalated_at),
        "customer": _case_customer(requester, organization, settings),
        "history": history,
        "facts": {} if facts in (None, "") else facts,
    }


def _thread(
    comments: Sequence[Mapping[str, Any]], requester_id: Any, agent_id: Any = None
) -> list[dict[str, Any]]:
    """The public comments but tier2's own: the requester's are the customer's, whatever
    their text says."""
    return [
        _drop_none(
            {
                "from": "customer" if c.get("author_id") == requester_id else "agent",
                "at": _iso(c.get("created_at")),
                "body": str(c.get("plain_body") or c.get("body") or "").strip(),
            }
        )
        for c in comments
        if c.get("public", True) and not tier2s_comment(c, agent_id)
    ]


def _case_ticket(
    ticket: Mapping[str, Any], tf: Callable[[str], Any], messages: list[dict[str, Any]]
) -> dict[str, Any]:
    """The ticket; the ticket fields, where set, over what Zendesk's own fields suggest
    (severity from the priority, channel from how the ticket came in)."""
    via = ((ticket.get("via") or {}).get("channel")) or None
    return _drop_none(
        {
            "id": str(ticket["id"]),
            "subject": ticket.get("subject"),
            "description": ticket.get("description"),
            "channel": tf("ticket.channel")
            or CHANNEL_OF_VIA.get(str(via), "other" if via else None),
            "created_at": _iso(ticket.get("created_at")),
            "severity": tf("ticket.severity")
            or SEVERITY_OF_PRIORITY.get(str(ticket.get("priority"))),
            "category": tf("ticket.category"),
            "messages": messages,
            "tags": list(ticket.get("tags") or []),
            "status": ticket.get("status"),
        }
    )


def _case_handoff(tf: Callable[[str], Any], escalated_at: Any) -> dict[str, Any]:
    """The handoff form's ticket fields."""
    request = _drop_none(
        {
            "type": tf("handoff.request.type"),
            "amount": _number(tf("handoff.request.amount")),
            "currency": tf("handoff.request.currency"),
        }
    )
    return _drop_none(
        {
            "escalated_at": escalated_at,
            "reason": tf("handoff.reason"),
            "steps_taken": _steps(tf("handoff.steps_taken")),
            "customer_expectation": tf("handoff.customer_expectation"),
            "request": request or None,
            "sentiment": tf("handoff.sentiment"),
        }
    )


def _case_customer(
    requester: Mapping[str, Any] | None,
    organization: Mapping[str, Any] | None,
    settings: ZendeskSettings,
) -> dict[str, Any]:
    """The requester and their organization: each customer field from the user's fields,
    else the organization's."""
    user = dict(requester or {})
    org = dict(organization or {})
    user_fields = user.get("user_fields") or {}
    org_fields = org.get("organization_fields") or {}

    def cf(name: str) -> Any:
        key = settings.user_fields.get(name, name)
        value = user_fields.get(key)
        return value if value not in (None, "") else org_fields.get(key)

    return _drop_none(
        {
            "id": str(user["id"]) if user.get("id") is not None else None,
            "name": user.get("name"),
            "company": org.get("name"),
            "segment": cf("segment"),
            "vip": _bool(cf("vip")),
            "arr": _number(cf("arr")),
            "currency": cf("currency"),
            "plan": _json(cf("plan")),
            "flags": _flags(cf("flags")),
        }
    )


def _earlier(other: Mapping[str, Any], settings: ZendeskSettings) -> dict[str, Any]:
    """Another of the requester's tickets as an entry of the customer's history."""
    return _drop_none(
        {
            "ticket_id": str(other["id"]),
            "at": _iso(other.get("created_at")),
            "category": _field(other, settings.fields.get("ticket.category")),
            "complaint": settings.complaint_tag in (other.get("tags") or []),
            "escalated": any(str(t).startswith("tier2_") for t in other.get("tags") or []),
            "outcome": other.get("status"),
        }
    )


# --------------------------------------------------------------------------- the help desk


class ZendeskHelpDesk:
    """The HelpDesk port over Zendesk Support."""

    in_store = False

    def reader(self) -> None:
        """Read here: a worker process would open a connection of its own to the help desk."""
        return

    def __init__(
        self, client: ZendeskClient, settings: ZendeskSettings, since: datetime | None = None
    ) -> None:
        self.zd = client
        self.settings = settings
        self.since = since  # a backfill: escalations from the incremental export
        self._keys: dict[str, set[str]] = {}
        self._tickets: dict[str, dict[str, Any]] = {}
        self._me: int | None = None  # the agent tier2 signs in as

    def close(self) -> None:
        self.zd.close()

    # ------------------------------------------------------------------ reading

    def agent_id(self) -> int:
        """The id of the agent tier2 signs in as (`GET users/me`), asked once: the author of
        every comment tier2 writes."""
        if self._me is None:
            user = (self.zd.call("GET", "users/me") or {}).get("user") or {}
            if user.get("id") is None:
                raise ZendeskError(
                    "Zendesk GET users/me: the credentials are not a signed-in agent (anonymous)"
                )
            self._me = int(user["id"])
        return self._me

    def _own_keys(self, comments: Sequence[Mapping[str, Any]]) -> set[str]:
        return tier2_keys(comments, self.agent_id(), public_replies=self.settings.reply_to_customer)

    def escalations(self) -> list[str]:
        s = self.settings
        found: Iterator[dict[str, Any]]
        if self.since is not None:
            found = (t for t in self._incremental(self.since) if s.escalated(t))
        elif s.view_id is not None:
            found = (
                t for t in self.zd.pages(f"views/{s.view_id}/tickets", "tickets") if s.escalated(t)
            )
        else:
            found = self.zd.pages(
                "search/export", "results", query=s.search_query(), **{"filter[type]": "ticket"}
            )
        return [str(i) for i in sorted({int(t["id"]) for t in found})]

    def _incremental(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Every ticket changed since then (the incremental export, by cursor)."""
        query: dict[str, Any] | None = {"start_time": int(since.timestamp())}
        url = "incremental/tickets/cursor"
        while True:
            data = self.zd.call("GET", url, params=query)
            yield from data.get("tickets") or []
            if data.get("end_of_stream") or not data.get("after_cursor"):
                return
            query = {"cursor": data["after_cursor"]}

    def read_cases(self, ticket_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The tickets that exist, in the order asked: tickets, requesters and organizations
        a hundred at a time; each ticket's comments; each requester's other tickets."""
        ids = [str(i) for i in ticket_ids]
        tickets: dict[str, dict[str, Any]] = {}
        for chunk in batched(ids, 100):
            data = self.zd.call("GET", "tickets/show_many", params={"ids": ",".join(chunk)})
            tickets.update((str(t["id"]), t) for t in data.get("tickets") or [])
        people = sorted({t["requester_id"] for t in tickets.values() if t.get("requester_id")})
        users: dict[Any, dict[str, Any]] = {}
        for chunk in batched([str(p) for p in people], 100):
            data = self.zd.call("GET", "users/show_many", params={"ids": ",".join(chunk)})
            users.update((u["id"], u) for u in data.get("users") or [])
        orgs_wanted = sorted(
            {u["organization_id"] for u in users.values() if u.get("organization_id")}
        )
        orgs: dict[Any, dict[str, Any]] = {}
        for chunk in batched([str(o) for o in orgs_wanted], 100):
            data = self.zd.call("GET", "organizations/show_many", params={"ids": ",".join(chunk)})
            orgs.update((o["id"], o) for o in data.get("organizations") or [])
        others = {p: list(self.zd.pages(f"users/{p}/tickets/requested", "tickets")) for p in people}
        out = []
        for ticket_id in ids:
            ticket = tickets.get(ticket_id)
            if ticket is None:
                continue
            comments = list(self.zd.pages(f"tickets/{ticket_id}/comments", "comments"))
            self._keys[ticket_id] = self._own_keys(comments)
            self._tickets[ticket_id] = ticket
            user = users.get(ticket.get("requester_id"))
            org = orgs.get((user or {}).get("organization_id"))
            mine = others.get(ticket.get("requester_id"), [])
            out.append(
                zendesk_case(
                    ticket, comments, user, org, mine, self.settings, agent_id=self.agent_id()
                )
            )
        return out

    def _known_keys(self, ticket_id: str) -> set[str]:
        keys = self._keys.get(ticket_id)
        if keys is None:  # not read in this process (a run after a crash): ask Zendesk
            comments = list(self.zd.pages(f"tickets/{ticket_id}/comments", "comments"))
            keys = self._keys[ticket_id] = self._own_keys(comments)
        return keys

    # ------------------------------------------------------------------ writing

    def escalated(self, session: Session, ticket_ids: Sequence[str]) -> set[str]:
        return {
            str(t)
            for t in ticket_ids
            if str(t) in self._tickets and self.settings.escalated(self._tickets[str(t)])
        }

    def take(self, session: Session, ticket_ids: Sequence[str], at: datetime) -> None:
        """Nothing to write: the ticket stays an escalation until tier2 moves it."""

    def _update(self, ticket_id: str, ticket: dict[str, Any]) -> None:
        self.zd.call("PUT", f"tickets/{ticket_id}", json={"ticket": ticket})

    def _comment(
        self, ticket_id: str, key: str, body: str, *, public: bool = False, **more: Any
    ) -> None:
        text = body.rstrip("\n") + "\n\n" + KEY_LINE + key + "\n"
        self._update(ticket_id, {"comment": {"body": text, "public": public}, **more})
        self._known_keys(ticket_id).add(key)
        crash_point("between_effects")

    def carry_out(
        self, session: Session, orders: Sequence[ActionOrder], at: datetime
    ) -> list[dict[str, Any]]:
        """Each action recorded once: a private comment with its key and a tag (and a line
        in the actions field when one is configured), in one update."""
        results = []
        for o in orders:
            line = o.words()
            written = o.key in self._known_keys(o.ticket_id)
            if not written:
                more: dict[str, Any] = {"additional_tags": [f"tier2_action_{o.type}"]}
                field_id = self.settings.actions_field_id
                if field_id is not None:
                    ticket = self._ticket(o.ticket_id)
                    listed = str(_field(ticket, field_id) or "")
                    listed = (listed + "\n" if listed else "") + f"{line} [{o.key}]"
                    entry = {"id": field_id, "value": listed}
                    more["custom_fields"] = [entry]
                    ticket["custom_fields"] = [  # what the ticket holds now, for the next action
                        f for f in ticket.get("custom_fields") or [] if f.get("id") != field_id
                    ] + [entry]
                self._comment(o.ticket_id, o.key, f"tier2 carried out: {line}", **more)
            results.append(
                {"zendesk_ticket": o.ticket_id, "recorded": "already" if written else "comment"}
            )
        return results

    def _ticket(self, ticket_id: str) -> dict[str, Any]:
        if ticket_id not in self._tickets:
            self._tickets[ticket_id] = self.zd.call("GET", f"tickets/{ticket_id}")["ticket"]
        return self._tickets[ticket_id]

    def write_notes(self, session: Session, orders: Sequence[NoteOrder], at: datetime) -> None:
        for o in orders:
            if o.key in self._known_keys(o.ticket_id):
                continue
            public = o.kind == "reply_draft" and self.settings.reply_to_customer
            self._comment(o.ticket_id, o.key, o.body, public=public)

    def move(self, session: Session, moves: Sequence[TicketMove], at: datetime) -> None:
        """Status, group and tags in one update per ticket (repeating it changes nothing)."""
        for mv in moves:
            self._update(mv.ticket_id, self._moved(mv))

    def _moved(self, mv: TicketMove) -> dict[str, Any]:
        """Zendesk's words for a move: the ticket update (status, group, tags, tier2's
        outcome field) that makes it."""
        s = self.settings
        body: dict[str, Any] = {"additional_tags": [t.replace(":", "_") for t in mv.tags]}
        fields: list[dict[str, Any]] = []
        match mv:
            case Resolve():
                body["status"] = "solved"
                outcome = "resolve"
            case ReturnToTier1():
                body.update(self._returned(fields))
                outcome = "return_to_tier1"
            case EscalateTo(target=target, reopen=reopen):
                if reopen:
                    body["status"] = "open"
                if target in s.groups:
                    body["group_id"] = s.groups[target]
                body["additional_tags"].append(ESCALATED_TAG)
                outcome = "escalate"
        if s.outcome_field_id is not None:
            fields.insert(0, {"id": s.outcome_field_id, "value": outcome})
        if fields:
            body["custom_fields"] = fields
        return body

    def _returned(self, fields: list[dict[str, Any]]) -> dict[str, Any]:
        """A return to tier-1: open in tier-1's group, no longer marked an escalation (the
        tag removed, or the escalation field cleared)."""
        s = self.settings
        body: dict[str, Any] = {"status": "open"}
        if s.return_group_id is not None:
            body["group_id"] = s.return_group_id
        if s.tag:
            body["remove_tags"] = [s.tag]  # tier-1 tags it again to escalate again
        elif s.custom_field_id is not None:
            fields.append({"id": s.custom_field_id, "value": None})  # as with the tag
        return body

    # ------------------------------------------------------------------ the SLA monitor

    def timelines(self, ticket_ids: Sequence[str]) -> dict[str, Timeline]:
        """Status, group and priority changes from each ticket's audits; the last activity
        is the last comment by anyone but the requester and tier2."""
        me = self.agent_id() if ticket_ids else None
        groups = self._group_words()
        out: dict[str, Timeline] = {}
        for ticket_id in ticket_ids:
            requester = self._ticket(ticket_id).get("requester_id")
            audits = self.zd.pages(f"tickets/{ticket_id}/audits", "audits")
            out[ticket_id] = audit_timeline(audits, groups, requester, me)
        return out

    def _group_words(self) -> dict[int, str]:
        groups = {v: k for k, v in self.settings.groups.items()}
        if self.settings.return_group_id is not None:
            groups[self.settings.return_group_id] = "tier1"
        return groups

    # ------------------------------------------------------------------ the baseline

    def past_escalations(self, start: datetime, end: datetime) -> list[PastEscalation]:
        """The tickets escalated in [start, end) that tier2 never handled: each ticket with a
        metric event since `start` (the incremental ticket metric events export), judged on
        its audits: when it was first assigned to tier-2's group (or tagged, or given the
        escalation field's value), its changes as `timelines` reads them, re-escalated when
        that happened more than once."""
        if not self.settings.entry_known():
            raise ZendeskError(
                "Zendesk: the baseline needs group_id (tier-2's group), tag or custom_field_id"
                " to tell from a ticket's audits when it was escalated"
            )
        me, groups = self.agent_id(), self._group_words()
        found: dict[str, tuple[datetime, tuple[StatusChange, ...], bool]] = {}
        for ticket_id in self._metric_tickets(start, end):
            audits = list(self.zd.pages(f"tickets/{ticket_id}/audits", "audits"))
            entered = [_at(a["created_at"]) for a in audits if self.settings.entered(a)]
            if not entered or not start <= entered[0] < end or _tier2s(audits, me):
                continue
            changes = audit_timeline(audits, groups, None, me).changes
            found[ticket_id] = (entered[0], changes, len(entered) > 1)
        severity: dict[str, str | None] = {}
        for chunk in batched(list(found), 100):
            data = self.zd.call("GET", "tickets/show_many", params={"ids": ",".join(chunk)})
            severity.update((str(t["id"]), self._severity(t)) for t in data.get("tickets") or [])
        return [
            PastEscalation(ticket_id, severity.get(ticket_id), at, changes, again)
            for ticket_id, (at, changes, again) in found.items()
        ]

    def _severity(self, ticket: Mapping[str, Any]) -> str | None:
        given = _field(ticket, self.settings.fields.get("ticket.severity"))
        return str(given) if given else SEVERITY_OF_PRIORITY.get(str(ticket.get("priority")))

    def _metric_tickets(self, start: datetime, end: datetime) -> list[str]:
        """The tickets with a metric event since `start` (the export read by cursor, to its
        end: an escalation may show only in a later event, such as its solve), but those
        created at or after `end` (their first reply-time metric activated then)."""
        seen: set[int] = set()
        late: set[int] = set()
        for e in self.zd.pages(
            "incremental/ticket_metric_events",
            "ticket_metric_events",
            start_time=int(start.timestamp()),
        ):
            seen.add(int(e["ticket_id"]))
            born = e.get("metric") == "reply_time" and e.get("instance_id") == 1
            if born and e.get("type") == "activate" and _at(e["time"]) >= end:
                late.add(int(e["ticket_id"]))
        return [str(t) for t in sorted(seen - late)]


def audit_timeline(
    audits: Iterable[Mapping[str, Any]], groups: Mapping[int, str], requester: Any, agent_id: Any
) -> Timeline:
    """A ticket's status, group (`groups`: group id -> group word) and priority changes from
    its audits, in the SLA monitor's words; the last activity is the last comment by anyone
    but the requester and tier2. Pure."""
    changes: list[StatusChange] = []
    last: datetime | None = None
    for audit in audits:
        at = _at(audit["created_at"])
        actor = str(audit.get("author_id", ""))
        for e in audit.get("events") or []:
            name, value = e.get("field_name"), e.get("value")
            group = groups.get(_int(value) or -1)
            if e.get("type") == "Change" and name == "status":
                status = _DONE.get(value) or _WAITING.get(value, value)
                changes.append(StatusChange(at, status=status, actor=actor))
            elif e.get("type") == "Change" and name == "group_id" and group:
                changes.append(StatusChange(at, group=group, actor=actor))
            elif e.get("type") == "Change" and name == "priority" and value in SEVERITY_OF_PRIORITY:
                changes.append(StatusChange(at, severity=SEVERITY_OF_PRIORITY[value], actor=actor))
            elif e.get("type") == "Comment" and _by_agent(e, audit, requester, agent_id):
                last = at if last is None else max(last, at)
    return Timeline(tuple(changes), last)


def _tier2s(audits: Sequence[Mapping[str, Any]], agent_id: Any) -> bool:
    """Whether tier2 handled the ticket: a comment of tier2's, or a tag tier2 sets."""
    for audit in audits:
        for e in audit.get("events") or []:
            author = e.get("author_id", audit.get("author_id"))
            if e.get("type") == "Comment" and tier2s_comment({**e, "author_id": author}, agent_id):
                return True
            if e.get("field_name") == "tags" and any(
                str(t) == ESCALATED_TAG or str(t).startswith("tier2_action_")
                for t in e.get("value") or []
            ):
                return True
    return False


def _at(text: Any) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)


def _by_agent(
    event: Mapping[str, Any], audit: Mapping[str, Any], requester: Any, agent_id: Any
) -> bool:
    """Whether an audit's Comment event is an agent's: neither the requester's nor tier2's
    own (its author is the event's, else the audit's)."""
    comment = {**event, "author_id": event.get("author_id", audit.get("author_id"))}
    return comment["author_id"] != requester and not tier2s_comment(comment, agent_id)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

"""A fake Zendesk Support API, served through `httpx.MockTransport`.

Built from Zendesk's API reference for the endpoints tier2 uses, with responses of the
documented shape:
- API-token basic auth (`{email}/token:{token}`); `401 {"error": "Couldn't authenticate you"}`;
- `404 {"error": "RecordNotFound", "description": "Not found"}`;
- `422 {"error": "RecordInvalid", "description": "Record validation errors", "details": ...}`
  for an unknown status or group on update;
- `429` with `Retry-After` (and a text body, as Zendesk sends) every `rate_limit_every`
  requests;
- cursor pagination (`page[size]`, capped at `max_page_size`; `meta.has_more`,
  `meta.after_cursor`, `links.next`) on comments, audits, requested tickets, views and the
  search export; the incremental ticket export by cursor (`after_cursor`, `end_of_stream`);
- the incremental ticket metric events export (events on or after `start_time`, oldest
  first): by cursor with `page[size]` (at most 100 a page), else time-based (`end_time`, the
  last event's time, where the next page starts, repeating that second's events;
  `next_page`, `count`, `end_of_stream`); the events of the three metrics (reply_time,
  agent_work_time, requester_wait_time) as the metric event types reference describes:
  activated on create, paused on pending (both waits) or on-hold (agent work), activated
  again on open, fulfilled on solve (reply time: on an agent's first public comment);
- a ticket's first audit has its Create events (status, priority, group, tags); `change`
  seeds a past change (an audit at a given time, by a given author);
- `GET users/me`: the API user (the agent whose token it is);
- ticket updates that append a comment (authored by the API user, or by the comment's
  `author_id` when given), merge `custom_fields`, apply `additional_tags` / `remove_tags`,
  and record an audit (by the API user) with Change events (`value`, `previous_value`; tags
  as lists) and Comment events (a Comment event with its `author_id`, `body` and `public`).
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITY_OF = {"critical": "urgent", "high": "high", "medium": "normal", "low": "low"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _z(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeZendesk:
    subdomain: str = "acme"
    email: str = "tier2@acme.example"
    token: str = "zd-token"
    agent_id: int = 9001  # the API user
    groups: dict[int, str] = field(default_factory=lambda: {100: "Tier 1", 200: "Tier 2"})
    views: dict[int, str] = field(default_factory=dict)  # view id -> the tag it lists
    ticket_fields: dict[int, str] = field(default_factory=dict)  # id -> title
    max_page_size: int = 100
    rate_limit_every: int = 0  # 0: never
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    audits: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    organizations: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    updates: int = 0
    _ids: int = 1000
    _stream: list[dict[str, Any]] = field(default_factory=list)  # an export in progress
    metric_events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"https://{self.subdomain}.zendesk.com/api/v2/"

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # ------------------------------------------------------------------ seeding

    def add_user(self, name: str, email: str, **extra: Any) -> int:
        uid = self._next_id()
        self.users[uid] = {"id": uid, "name": name, "email": email, "role": "end-user",
                           "organization_id": None, "user_fields": {}, "tags": [], **extra}  # fmt: skip
        return uid

    def add_organization(self, name: str, **fields: Any) -> int:
        oid = self._next_id()
        self.organizations[oid] = {"id": oid, "name": name, "organization_fields": fields,
                                   "tags": []}  # fmt: skip
        return oid

    def add_ticket(self, requester_id: int, subject: str, created_at: str, **extra: Any) -> int:
        tid = self._next_id()
        self.tickets[tid] = {
            "id": tid, "url": f"{self.base}tickets/{tid}.json", "subject": subject,
            "description": extra.pop("description", ""), "priority": None, "status": "open",
            "requester_id": requester_id, "submitter_id": requester_id, "assignee_id": None,
            "organization_id": self.users[requester_id].get("organization_id"),
            "group_id": 100, "tags": [], "custom_fields": [], "via": {"channel": "email"},
            "created_at": created_at, "updated_at": created_at, "type": None, **extra,
        }  # fmt: skip
        self.comments[tid] = []
        t = self.tickets[tid]
        self.audits[tid] = [{
            "id": self._next_id(), "ticket_id": tid, "created_at": created_at,
            "author_id": requester_id,
            "events": [{"id": self._next_id(), "type": "Create", "field_name": name,
                        "value": copy.deepcopy(t[name])}
                       for name in ("status", "priority", "group_id", "tags")],
        }]  # fmt: skip
        for metric in ("reply_time", "agent_work_time", "requester_wait_time"):
            self._metric(tid, metric, "activate", created_at)
        return tid

    def _metric(self, tid: int, metric: str, kind: str, at: str) -> None:
        self.metric_events.append({"id": self._next_id(), "ticket_id": tid, "metric": metric,
                                   "instance_id": 1, "type": kind, "time": at})  # fmt: skip

    def _status_metrics(self, tid: int, before: str | None, after: str, at: str) -> None:
        """The metric events of a status change (the metric event types reference)."""
        paused = {"pending": ("agent_work_time", "requester_wait_time"),
                  "hold": ("agent_work_time",)}  # fmt: skip
        was, now = set(paused.get(str(before), ())), set(paused.get(after, ()))
        if after == "solved":
            for metric in ("agent_work_time", "requester_wait_time"):
                self._metric(tid, metric, "fulfill", at)
            return
        for metric in sorted(now - was):
            self._metric(tid, metric, "pause", at)
        for metric in sorted(was - now) if before != "solved" else ():
            self._metric(tid, metric, "activate", at)
        if before == "solved":  # reopened
            for metric in ("agent_work_time", "requester_wait_time"):
                self._metric(tid, metric, "activate", at)

    def change(self, tid: int, at: str, author_id: int, **change: Any) -> None:
        """A past change to the ticket, as an update by `author_id` at `at` records it (the
        update's fields: status, group_id, priority, additional_tags, remove_tags, comment)."""
        self._apply(tid, change, _z(at), author_id)

    def add_comment(
        self, tid: int, author_id: int, body: str, *, public: bool = True, at: str | None = None
    ) -> None:
        self.comments[tid].append({
            "id": self._next_id(), "type": "Comment", "author_id": author_id, "body": body,
            "html_body": f"<p>{body}</p>", "plain_body": body, "public": public,
            "attachments": [], "created_at": at or _now(),
        })  # fmt: skip

    def add_case(self, case: dict[str, Any], fields: dict[str, int], tag: str) -> int:
        """A contract case as tier-1 would leave it in Zendesk: the requester (user fields),
        their organization, their earlier tickets, and the ticket with its thread, the
        handoff form's ticket fields and the escalation tag. Returns the ticket id."""
        c, t, h = case.get("customer") or {}, case["ticket"], case.get("handoff") or {}
        org = self.add_organization(c["company"]) if c.get("company") else None
        flags = "\n".join(
            f"{f['type']}" + (f": {f['note']}" if f.get("note") else "")
            + (" (resolved)" if f.get("resolved") else "")
            for f in c.get("flags") or []
        )  # fmt: skip
        user_fields = {"segment": c.get("segment"), "vip": c.get("vip"), "arr": c.get("arr"),
                       "currency": c.get("currency"), "flags": flags or None,
                       "plan": json.dumps(c["plan"]) if c.get("plan") else None}  # fmt: skip
        uid = self.add_user(c.get("name") or "Customer", f"{c.get('id', 'x')}@example.com",
                            organization_id=org, user_fields=user_fields)  # fmt: skip
        for e in case.get("history") or []:
            old = self.add_ticket(uid, f"earlier {e.get('ticket_id')}", _z(e["at"]),
                                  status="closed")  # fmt: skip
            self.tickets[old]["tags"] = (["complaint"] if e.get("complaint") else []) + (
                ["tier2_escalate"] if e.get("escalated") else []
            )
            if e.get("category") and "ticket.category" in fields:
                self.tickets[old]["custom_fields"] = [
                    {"id": fields["ticket.category"], "value": e["category"]}
                ]
        r = h.get("request") or {}
        values = {
            "ticket.category": t.get("category"),
            "ticket.channel": t.get("channel"),
            "handoff.reason": h.get("reason"),
            "handoff.customer_expectation": h.get("customer_expectation"),
            "handoff.sentiment": h.get("sentiment"),
            "handoff.steps_taken": "\n".join(
                s["step"] + (f": {s['result']}" if s.get("result") else "")
                for s in h.get("steps_taken") or []
            ),
            "handoff.request.type": r.get("type"),
            "handoff.request.amount": r.get("amount"),
            "handoff.request.currency": r.get("currency"),
            "handoff.escalated_at": h.get("escalated_at"),
            "facts": json.dumps(case.get("facts") or {}),
        }
        messages = list(t.get("messages") or [])
        tid = self.add_ticket(
            uid, t.get("subject") or case["case_id"], _z(t["created_at"]),
            description=messages[0]["body"] if messages else t.get("description") or "",
            priority=PRIORITY_OF.get(t["severity"]), tags=[tag],
            via={"channel": {"phone": "voice", "social": "twitter"}.get(t.get("channel"), t.get("channel") or "email")},
            custom_fields=[{"id": fid, "value": values.get(path)} for path, fid in fields.items()],
        )  # fmt: skip
        for x in messages:
            author = uid if x.get("from") == "customer" else 7001
            self.add_comment(tid, author, x.get("body") or "", at=x.get("at") and _z(x["at"]))
        return tid

    # ------------------------------------------------------------------ serving

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v2/").removesuffix(".json")
        self.requests.append((request.method, path))
        if self.rate_limit_every and len(self.requests) % self.rate_limit_every == 0:
            return httpx.Response(
                429, headers={"Retry-After": "2", "Content-Type": "text/html; charset=utf-8"},
                text="Rate limit for ticket updates exceeded, please wait before updating "
                "this ticket again",
            )  # fmt: skip
        expected = "Basic " + base64.b64encode(f"{self.email}/token:{self.token}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return httpx.Response(401, json={"error": "Couldn't authenticate you"})
        query = {k: v[-1] for k, v in parse_qs(request.url.query.decode()).items()}
        parts = path.split("/")
        try:
            return self._route(request, parts, query)
        except KeyError:
            return httpx.Response(404, json={"error": "RecordNotFound", "description": "Not found"})

    def _route(self, request: httpx.Request, parts: list[str], q: dict[str, str]) -> httpx.Response:
        method = request.method
        match parts:
            case ["users", "me"]:
                return httpx.Response(200, json={"user": {"id": self.agent_id, "email": self.email,
                                                          "role": "admin", "name": "tier2"}})  # fmt: skip
            case ["groups"]:
                listed = [{"id": i, "name": n, "deleted": False} for i, n in self.groups.items()]
                return self._page(request, "groups", listed, q)
            case ["ticket_fields"]:
                listed = [{"id": i, "title": t, "type": "text", "active": True}
                          for i, t in self.ticket_fields.items()]  # fmt: skip
                return self._page(request, "ticket_fields", listed, q)
            case ["tickets", "show_many"]:
                found = [
                    self.tickets[int(i)]
                    for i in q.get("ids", "").split(",")
                    if i and int(i) in self.tickets
                ]
                return httpx.Response(200, json={"tickets": found})
            case ["tickets", tid] if method == "GET":
                return httpx.Response(200, json={"ticket": self.tickets[int(tid)]})
            case ["tickets", tid] if method == "PUT":
                return self._update(int(tid), json.loads(request.content)["ticket"])
            case ["tickets", tid, "comments"]:
                return self._page(request, "comments", self.comments[int(tid)], q)
            case ["tickets", tid, "audits"]:
                return self._page(request, "audits", self.audits[int(tid)], q)
            case ["users", "show_many"]:
                found = [
                    self.users[int(i)]
                    for i in q.get("ids", "").split(",")
                    if i and int(i) in self.users
                ]
                return httpx.Response(200, json={"users": found})
            case ["organizations", "show_many"]:
                ids = [int(i) for i in q.get("ids", "").split(",") if i]
                found = [self.organizations[i] for i in ids if i in self.organizations]
                return httpx.Response(200, json={"organizations": found})
            case ["users", uid, "tickets", "requested"]:
                self.users[int(uid)]  # 404 for an unknown user
                mine = [t for t in self.tickets.values() if t["requester_id"] == int(uid)]
                return self._page(request, "tickets", mine, q)
            case ["views", vid, "tickets"]:
                tag = self.views[int(vid)]
                listed = [t for t in self.tickets.values() if tag in t["tags"]
                          and t["status"] not in ("solved", "closed")]  # fmt: skip
                return self._page(request, "tickets", listed, q)
            case ["search", "export"]:
                if q.get("filter[type]") != "ticket":
                    return httpx.Response(400, json={"error": "InvalidSearchParameter",
                                                     "description": "filter[type] is required"})  # fmt: skip
                return self._page(request, "results", self._search(q.get("query", "")), q)
            case ["incremental", "tickets", "cursor"]:
                return self._incremental(q)
            case ["incremental", "ticket_metric_events"]:
                return self._metric_export(request, q)
        raise KeyError(parts)

    def _page(
        self, request: httpx.Request, key: str, items: list[Any], q: dict[str, str]
    ) -> httpx.Response:
        size = min(int(q.get("page[size]", "100")), self.max_page_size)
        start = int(base64.b64decode(q["page[after]"]).decode()) if q.get("page[after]") else 0
        chunk = items[start : start + size]
        more = start + size < len(items)
        after = base64.b64encode(str(start + size).encode()).decode() if more else None
        nxt = None
        if more:
            params = {**q, "page[after]": after}
            nxt = str(request.url.copy_with(query=urlencode(params).encode()))
        return httpx.Response(200, json={
            key: copy.deepcopy(chunk),
            "meta": {"has_more": more, "after_cursor": after, "before_cursor": None},
            "links": {"next": nxt, "prev": None},
        })  # fmt: skip

    def _search(self, query: str) -> list[dict[str, Any]]:
        out = list(self.tickets.values())
        for term in query.split():
            if term == "type:ticket":
                continue
            if term == "status<solved":
                out = [t for t in out if t["status"] not in ("solved", "closed")]
            elif term.startswith("-tags:"):
                out = [t for t in out if term[6:] not in t["tags"]]
            elif term.startswith("tags:"):
                out = [t for t in out if term[5:] in t["tags"]]
            elif term.startswith("custom_field_"):
                fid, _, value = term[len("custom_field_") :].partition(":")
                out = [t for t in out if any(f["id"] == int(fid) and str(f["value"]) == value
                                             for f in t["custom_fields"])]  # fmt: skip
            else:
                raise KeyError(term)
        return out

    def _incremental(self, q: dict[str, str]) -> httpx.Response:
        if "cursor" in q:
            start = int(base64.b64decode(q["cursor"]).decode())
            since = 0
        else:
            start, since = 0, int(q["start_time"])
        changed = sorted(
            (t for t in self.tickets.values()
             if datetime.fromisoformat(t["updated_at"].replace("Z", "+00:00")).timestamp() >= since),
            key=lambda t: (t["updated_at"], t["id"]),
        )  # fmt: skip
        if "cursor" in q:
            changed = self._stream
        else:
            self._stream = changed
        chunk = changed[start : start + self.max_page_size]
        end = start + self.max_page_size >= len(changed)
        cursor = base64.b64encode(str(start + self.max_page_size).encode()).decode()
        return httpx.Response(200, json={
            "tickets": copy.deepcopy(chunk), "after_cursor": None if end else cursor,
            "after_url": None if end else f"{self.base}incremental/tickets/cursor.json?cursor={cursor}",
            "before_cursor": None, "before_url": None, "end_of_stream": end,
        })  # fmt: skip

    def _metric_export(self, request: httpx.Request, q: dict[str, str]) -> httpx.Response:
        """The events on or after `start_time`, oldest first: by cursor, else time-based."""
        if "start_time" not in q:
            return httpx.Response(400, json={"error": "InvalidValue",
                                             "description": "start_time is required"})  # fmt: skip
        since = int(q["start_time"])

        def epoch(e: dict[str, Any]) -> int:
            return int(datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp())

        later = sorted((e for e in self.metric_events if epoch(e) >= since),
                       key=lambda e: (epoch(e), e["id"]))  # fmt: skip
        if "page[size]" in q:
            return self._page(request, "ticket_metric_events", later, q)
        page = later[: self.max_page_size]
        end_time = epoch(page[-1]) if page else since
        done = len(later) <= self.max_page_size
        return httpx.Response(200, json={
            "ticket_metric_events": copy.deepcopy(page), "count": len(page),
            "end_time": end_time, "end_of_stream": done,
            "next_page": f"{self.base}incremental/ticket_metric_events.json?start_time={end_time}",
        })  # fmt: skip

    def _update(self, tid: int, change: dict[str, Any]) -> httpx.Response:
        ticket = self.tickets[tid]
        errors: dict[str, list[dict[str, str]]] = {}
        if "status" in change and change["status"] not in STATUSES:
            errors["status"] = [{"description": f"Status: {change['status']} is not valid"}]
        if "group_id" in change and change["group_id"] not in self.groups:
            errors["group"] = [{"description": "Group: is invalid"}]
        if errors:
            return httpx.Response(422, json={"error": "RecordInvalid",
                                             "description": "Record validation errors",
                                             "details": errors})  # fmt: skip
        self.updates += 1
        self._apply(tid, change, _now(), self.agent_id)
        return httpx.Response(200, json={"ticket": ticket, "audit": self.audits[tid][-1]})

    def _apply(self, tid: int, change: dict[str, Any], at: str, by: int) -> None:
        """An update: the ticket changed, its audit (by `by`, at `at`) and metric events."""
        ticket = self.tickets[tid]
        events: list[dict[str, Any]] = []
        for name in ("status", "group_id", "priority"):
            if name in change and change[name] != ticket.get(name):
                events.append({"id": self._next_id(), "type": "Change", "field_name": name,
                               "value": change[name], "previous_value": ticket.get(name)})  # fmt: skip
                if name == "status":
                    self._status_metrics(tid, ticket.get(name), change[name], at)
                ticket[name] = change[name]
        tags = list(ticket["tags"])
        if "tags" in change:
            ticket["tags"] = list(dict.fromkeys(change["tags"]))
        for tag in change.get("additional_tags") or []:
            if tag not in ticket["tags"]:
                ticket["tags"].append(tag)
        ticket["tags"] = [t for t in ticket["tags"] if t not in (change.get("remove_tags") or [])]
        if ticket["tags"] != tags:
            events.append({"id": self._next_id(), "type": "Change", "field_name": "tags",
                           "value": list(ticket["tags"]), "previous_value": tags})  # fmt: skip
        for f in change.get("custom_fields") or []:
            ticket["custom_fields"] = [x for x in ticket["custom_fields"] if x["id"] != f["id"]] + [
                f
            ]
        comment = change.get("comment")
        if comment:
            author = comment.get("author_id") or by
            public = comment.get("public", True)
            self.add_comment(tid, author, comment["body"], public=public, at=at)
            events.append({"id": self._next_id(), "type": "Comment", "author_id": author,
                           "body": comment["body"], "public": public})  # fmt: skip
            replied = any(e["ticket_id"] == tid and e["metric"] == "reply_time"
                          and e["type"] == "fulfill" for e in self.metric_events)  # fmt: skip
            if public and author != ticket["requester_id"] and not replied:
                self._metric(tid, "reply_time", "fulfill", at)
        ticket["updated_at"] = at
        self.audits[tid].append({"id": self._next_id(), "ticket_id": tid, "created_at": at,
                                 "author_id": by, "events": events})  # fmt: skip

"""The cases: a filtered, paged list (and its CSV), and a case's whole path."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from tier2.app.sla_monitor import CLOCK_WORDS
from tier2.app.states import CaseState
from tier2.core.sla import case_clock_events
from tier2.entrypoints.http.console._state import (
    ALL_ROLES,
    SECURITY_HEADERS,
    Console,
    bounded_time,
    console_of,
    csv_row,
    current,
    local_day,
    next_day,
    render,
    require,
)
from tier2.store.console import CaseFilter, CaseLine, CasePage, case_page, list_cases

router = APIRouter(include_in_schema=False)

STATES = [s.value for s in CaseState]
OUTCOMES = ["resolve", "return_to_tier1", "escalate"]
REASONS = [
    "handoff_ambiguity", "commercial_sensitivity", "complaint_pattern", "management_trigger",
    "policy_conflict", "no_policy_match", "missing_prerequisite", "policy_return",
    "policy_escalation", "authority_exceeded", "complexity", "sla_breach", "policy_resolution",
    "library_error", "currency_not_accepted",
]  # fmt: skip
FILTERS = ("state", "outcome", "first_reason", "escalate_to", "from", "to", "q",
           "resolved_from", "resolved_to", "resolved_by")  # fmt: skip
RESOLVERS = ["tier2", "human", "tier1"]
CSV_ROWS = 10_000


@dataclass(frozen=True)
class Asked:
    """The list's filter as the query string gave it, and what is wrong with it."""

    values: dict[str, str]
    filter: CaseFilter
    error: str | None


def _choice(params: Mapping[str, str], name: str, allowed: list[str]) -> str | None:
    value = params.get(name, "").strip()
    if value and value not in allowed:
        raise ValueError(f"{name}: no such value {value[:40]!r}")
    return value or None


def _cursor(value: str | None) -> tuple[datetime, str] | None:
    if not value or "|" not in value:
        return None
    at, _, case_id = value.partition("|")
    try:
        found = datetime.fromisoformat(at)
    except ValueError:
        raise ValueError("after: not a page of this list") from None
    return bounded_time(found, "after"), case_id[:64]


def read_filter(console: Console, params: Mapping[str, str]) -> Asked:
    """The filter from the query string; a bad value is named (and the list shows all)."""
    values = {k: params.get(k, "").strip()[:100] for k in FILTERS}
    try:
        start = local_day(values["from"], console.zone, "from")
        end = local_day(values["to"], console.zone, "to")
        solved = local_day(values["resolved_from"], console.zone, "resolved_from")
        solved_end = local_day(values["resolved_to"], console.zone, "resolved_to")
        found = CaseFilter(
            state=_choice(params, "state", STATES),
            outcome=_choice(params, "outcome", OUTCOMES),
            first_reason=_choice(params, "first_reason", REASONS),
            escalate_to=_choice(params, "escalate_to", console.targets()),
            received_from=start,
            received_to=next_day(end),
            text=values["q"] or None,
            resolved_from=solved,
            resolved_to=next_day(solved_end),
            resolved_by=_choice(params, "resolved_by", RESOLVERS),
            after=_cursor(params.get("after")),
        )
    except ValueError as exc:
        return Asked(values, CaseFilter(), str(exc))
    return Asked(values, found, None)


def _after(line: CaseLine) -> str:
    return f"{line.received_at.isoformat()}|{line.id}"


@router.get("/cases")
async def cases(request: Request) -> Response:
    viewer = current(request)
    require(viewer, ALL_ROLES)
    console = console_of(request)
    asked = read_filter(console, request.query_params)
    size = console.settings.page_size
    rows, more = await run_in_threadpool(list_cases, console.engine, asked.filter, size)
    context: dict[str, Any] = {
        "rows": rows, "asked": asked.values, "error": asked.error,
        "next_after": _after(rows[-1]) if more and rows else None,
        "paged": asked.filter.after is not None,
        "states": STATES, "outcomes": OUTCOMES, "reasons": REASONS, "resolvers": RESOLVERS,
        "targets": console.targets(),
    }  # fmt: skip
    template = "cases_table.html" if request.headers.get("HX-Target") == "case-table" else None
    status = 400 if asked.error else 200
    return render(request, template or "cases.html", context, viewer=viewer, status=status)


def _csv_lines(lines: list[CaseLine]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["case_id", "ticket_id", "state", "received_at", "outcome", "first_reason",
                     "escalate_to", "resolved_at", "resolved_by"])  # fmt: skip
    for r in lines:
        writer.writerow(csv_row([
            r.id, r.ticket_id, r.state, r.received_at.isoformat(), r.outcome or "",
            r.first_reason or "", r.escalate_to or "",
            r.resolved_at.isoformat() if r.resolved_at else "", r.resolved_by or "",
        ]))  # fmt: skip
    yield out.getvalue()


@router.get("/cases.csv")
async def cases_csv(request: Request) -> Response:
    """The filtered list as CSV (at most CSV_ROWS rows)."""
    viewer = current(request)
    require(viewer, ALL_ROLES)
    console = console_of(request)
    asked = read_filter(console, request.query_params)
    if asked.error:
        return Response(
            asked.error + "\n", status_code=400, media_type="text/plain", headers=SECURITY_HEADERS
        )
    rows, _ = await run_in_threadpool(list_cases, console.engine, asked.filter, CSV_ROWS)
    return StreamingResponse(
        _csv_lines(rows), media_type="text/csv",
        headers={**SECURITY_HEADERS, "Content-Disposition": 'attachment; filename="cases.csv"'},
    )  # fmt: skip


def sla_view(console: Console, page: CasePage) -> dict[str, Any]:
    """The case's SLA clock: its events from the ticket's history and each target's state."""
    payload = page.payload
    handoff = payload.get("handoff") or {}
    started = datetime.fromisoformat(handoff.get("escalated_at") or payload["received_at"])
    severity = str((payload.get("ticket") or {}).get("severity", ""))
    try:
        timeline = console.desk.timelines([page.row.ticket_id])[page.row.ticket_id]
    except Exception as exc:  # the help desk cannot be reached: the page says so
        return {"error": f"the help desk did not answer: {' '.join(str(exc).split())[:200]}"}
    events = case_clock_events(started, severity, timeline.changes, CLOCK_WORDS)
    now = console.clock()
    clocks: list[dict[str, Any]] = []
    for name in sorted(console.library.sla.targets):
        try:
            clock = console.clocks.state(events, now, name)
        except KeyError as exc:
            clocks.append({"target": name, "error": str(exc.args[0]), "clock": None})
            continue
        if clock is not None:
            clocks.append({"target": name, "error": None, "clock": clock})
    return {"events": events, "clocks": clocks, "error": None}


def _policies(console: Console, decisions: list[dict[str, Any]]) -> dict[str, Any]:
    """The library's policies the decisions name, for their titles and citations."""
    named = {p for d in decisions for p in d["decision"].get("policies", [])}
    return {p.id: p for p in console.library.policies if p.id in named}


@router.get("/case/{case_id}")
async def case(request: Request, case_id: str) -> Response:
    viewer = current(request)
    require(viewer, ALL_ROLES)
    console = console_of(request)
    page = await run_in_threadpool(case_page, console.engine, case_id)
    if page is None:
        missing = {"title": "No such case", "message": f"There is no case {case_id}."}
        return render(request, "error.html", missing, viewer=viewer, status=404)
    sla = await run_in_threadpool(sla_view, console, page)
    decisions = page.path["decisions"]
    context: dict[str, Any] = {
        "page": page, "case": page.row, "sla": sla, "decisions": decisions,
        "latest": decisions[-1]["decision"] if decisions else None,
        "policies": _policies(console, decisions),
        "may_work": viewer.actor.may_work(page.row.escalate_to),
        "handoff": page.payload.get("handoff") or {},
    }  # fmt: skip
    return render(request, "case.html", context, viewer=viewer)

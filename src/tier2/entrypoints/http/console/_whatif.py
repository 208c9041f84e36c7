"""The Library page's what-if: a head of support picks a draft (a built-in library or a
sub-folder of `[console] drafts_dir`) and the console runs `tier2 whatif DRAFT` in a
background thread (lint first, then every stored case decided again under it, with no
effect); the page asks for its progress every two seconds (/library/whatif) and shows the
result as `tier2 whatif` reports it, the changed cases as links, and their CSV
(/library/whatif.csv). The latest run is kept in memory, per console."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tier2.app.console import HEAD
from tier2.app.whatif import changed_rows
from tier2.entrypoints.http.console._replay import Busy, DraftError, WhatIfRun
from tier2.entrypoints.http.console._state import (
    ALL_ROLES,
    SECURITY_HEADERS,
    Console,
    Viewer,
    console_of,
    csrf_ok,
    csv_row,
    current,
    form_of,
    redirect,
    render,
    require,
)

router = APIRouter(include_in_schema=False)
SHOWN_CHANGES = 200
OUTCOMES = ("resolve", "return_to_tier1", "escalate")  # the cases list's outcome filter


def _money_rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    kinds = sorted(set(r["money_before"]) | set(r["money_after"]) | set(r["money_delta"]))
    for kind in kinds:
        currencies = sorted(
            set(r["money_before"].get(kind, {}))
            | set(r["money_after"].get(kind, {}))
            | set(r["money_delta"].get(kind, {}))
        )
        for currency in currencies:
            rows.append({
                "kind": kind, "currency": currency,
                "before": r["money_before"].get(kind, {}).get(currency, 0.0),
                "after": r["money_after"].get(kind, {}).get(currency, 0.0),
                "delta": r["money_delta"].get(kind, {}).get(currency, 0.0),
            })  # fmt: skip
    return rows


def whatif_context(console: Console, viewer: Viewer) -> dict[str, Any]:
    """What the what-if section shows: the form (for a head of support), the run in
    progress or the latest one."""
    run: WhatIfRun | None = console.whatif.latest()
    result = run.result if run is not None else None
    context: dict[str, Any] = {
        "may_start": viewer.actor.role == HEAD,
        "configured": console.settings.drafts_dir is not None,
        "drafts": console.whatif.drafts(),
        "run": run,
        "result": result,
        "outcome_filters": OUTCOMES,
    }
    if result is not None:
        context["changes"] = result["changes"][:SHOWN_CHANGES]
        context["money_rows"] = _money_rows(result)
        new_outcomes = sorted({n for news in result["matrix"].values() for n in news})
        context["new_outcomes"] = new_outcomes
    return context


@router.get("/library/whatif")
async def whatif_section(request: Request) -> Response:
    """The what-if section alone: what the page asks for again while a what-if runs."""
    viewer = current(request)
    require(viewer, ALL_ROLES)
    console = console_of(request)
    return render(request, "library_whatif.html", whatif_context(console, viewer), viewer=viewer)


@router.post("/library/whatif")
async def whatif_start(request: Request) -> Response:
    """Start a what-if of the draft the form names (a head of support; one at a time)."""
    viewer = current(request)
    form = await form_of(request)
    csrf_ok(request, viewer.session, form)
    require(viewer, frozenset({HEAD}))
    console = console_of(request)
    status, notice = 202, None
    try:
        draft = console.whatif.draft(form.get("draft", "")[:200])
        console.whatif.start(draft, viewer.actor.name)
    except DraftError as exc:
        status, notice = 400, str(exc)
    except Busy as exc:
        status, notice = 409, str(exc)
    hx = request.headers.get("HX-Request") == "true"
    if notice is None and not hx:
        return redirect("/library#whatif", request)
    context = {**whatif_context(console, viewer), "notice": notice}
    template = "library_whatif.html" if hx else "whatif_page.html"
    return render(request, template, context, viewer=viewer, status=status)


@router.get("/library/whatif.csv")
async def whatif_csv(request: Request) -> Response:
    """The latest what-if's changed cases, one row each (`tier2 whatif --format csv`)."""
    viewer = current(request)
    require(viewer, ALL_ROLES)
    run = console_of(request).whatif.latest()
    if run is None or run.result is None:
        return Response(
            "no what-if result yet\n", status_code=404, media_type="text/plain",
            headers=SECURITY_HEADERS,
        )  # fmt: skip
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in changed_rows(run.result["changes"]):
        writer.writerow(csv_row(row))
    return Response(
        out.getvalue(), media_type="text/csv",
        headers={**SECURITY_HEADERS, "Content-Disposition": 'attachment; filename="whatif.csv"'},
    )  # fmt: skip

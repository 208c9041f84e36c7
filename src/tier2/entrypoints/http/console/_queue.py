"""The review queue: the cases escalated to a senior's role or team, most urgent first, and
a case's work page (its annotated handoff; accept, resolve, rate; a disagreement exported
as a regression case)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from tier2.app.console import (
    ESCALATED,
    Actor,
    BadInput,
    ConsoleError,
    read_acceptance,
    read_resolution,
    read_review,
    regression_case,
)
from tier2.entrypoints.http.console._state import (
    ALL_ROLES,
    SECURITY_HEADERS,
    Console,
    Forbidden,
    Missing,
    Viewer,
    console_of,
    csrf_ok,
    current,
    form_of,
    render,
    require,
)
from tier2.store.console import case_page, latest_decision, review_of, review_queue

router = APIRouter(include_in_schema=False)
QUEUE_LIMIT = 200


@router.get("/queue")
async def queue(request: Request) -> Response:
    """Everyone signed in may read the queue: a senior sees their team's, the others all."""
    viewer = current(request)
    require(viewer, ALL_ROLES)
    console = console_of(request)
    actor = viewer.actor
    team = actor.queue_of() if actor.role != "viewer" else None
    lines = await run_in_threadpool(review_queue, console.engine, team, console.due, QUEUE_LIMIT)
    context = {"lines": lines, "team": team, "limit": QUEUE_LIMIT, "now": console.clock()}
    return render(request, "queue.html", context, viewer=viewer)


def _work_context(console: Console, actor: Actor, case_id: str) -> dict[str, Any] | None:
    page = case_page(console.engine, case_id)
    if page is None:
        return None
    decisions = page.path["decisions"]
    latest = decisions[-1]["decision"] if decisions else None
    mine = next((r for r in page.reviews if r["reviewer"] == actor.name), None)
    resolved = page.row.resolved_at is not None or any(
        r["escalation"] == page.path["escalations"] for r in page.resolutions
    )
    return {
        "page": page, "case": page.row, "latest": latest,
        "handoff_form": (latest or {}).get("escalation_handoff"),
        "open": page.row.state == ESCALATED and not resolved,
        "mine": mine,
        "roles": [r for r in _roles(console) if actor.may_claim(r, console.library)],
        "targets": console.targets(), "message": None, "error": None,
        "default_role": page.row.escalate_to,
    }  # fmt: skip


def _roles(console: Console) -> list[str]:
    """The roles a person may resolve under: the escalation targets, then the ladder's
    (the ladder's carry money limits)."""
    ladder = [r.name for r in console.library.authority.ladder if r.name not in ("tier1", "tier2")]
    return list(dict.fromkeys([*console.targets(), *ladder]))


async def _workable(request: Request, case_id: str) -> tuple[Viewer, Console, dict[str, Any]]:
    """The viewer, if they may work this case (a 403 otherwise), and the work page's data."""
    viewer = current(request)
    if viewer.actor.role == "viewer":
        raise Forbidden(f"{viewer.actor.name} is a viewer: the review forms are for seniors")
    console = console_of(request)
    context = await run_in_threadpool(_work_context, console, viewer.actor, case_id)
    if context is None:
        raise Missing(f"there is no case {case_id}")
    if not viewer.actor.may_work(context["case"].escalate_to):
        raise Forbidden(
            f"case {case_id} is escalated to {context['case'].escalate_to or 'no one'}, "
            f"not to {viewer.actor.name}'s team ({viewer.actor.team or 'none'})"
        )
    return viewer, console, context


@router.get("/queue/{case_id}")
async def work(request: Request, case_id: str) -> Response:
    viewer, _, context = await _workable(request, case_id)
    return render(request, "work.html", context, viewer=viewer)


async def _act(request: Request, case_id: str, action: str) -> Response:
    """One of the work page's forms posted: checked, carried out, the page shown again with
    what happened (or what is wrong with the form)."""
    viewer, console, context = await _workable(request, case_id)
    form = await form_of(request)
    csrf_ok(request, viewer.session, form)
    status = 200
    try:
        message = await run_in_threadpool(_carry_out, console, viewer.actor, case_id, action, form,
                                          context)  # fmt: skip
    except ConsoleError as exc:
        status = 422 if isinstance(exc, BadInput) else exc.status
        context["error"] = str(exc)
        context["form"] = form
    else:
        again = await run_in_threadpool(_work_context, console, viewer.actor, case_id)
        context = {**(again or context), "message": message}
    template = "work_panel.html" if request.headers.get("HX-Request") == "true" else "work.html"
    return render(request, template, context, viewer=viewer, status=status)


def _carry_out(  # noqa: PLR0917 (what the form is about, in order)
    console: Console, actor: Actor, case_id: str, action: str, form: dict[str, str],
    context: dict[str, Any],
) -> str:  # fmt: skip
    work = console.work
    if action == "accept":
        work.accept(actor, case_id, read_acceptance(form, console.clock().astimezone(console.zone)))
        return f"You accepted case {case_id}."
    if action == "resolve":
        work.resolve(actor, case_id, read_resolution(form, console.library, console.targets()))
        return f"Case {case_id} is resolved: the note is on the ticket and the ticket is solved."
    latest = context["latest"] or {}
    rating = read_review(
        form, console.targets(), (latest.get("outcome"), latest.get("escalate_to"))
    )
    score = work.review(actor, case_id, rating)
    agrees = "agrees with" if rating.agrees else "disagrees with"
    return f"Your rating of tier2's decision is saved: score {score:g} of 100 ({agrees} tier2)."


@router.post("/queue/{case_id}/accept")
async def accept(request: Request, case_id: str) -> Response:
    return await _act(request, case_id, "accept")


@router.post("/queue/{case_id}/resolve")
async def resolve(request: Request, case_id: str) -> Response:
    return await _act(request, case_id, "resolve")


@router.post("/queue/{case_id}/rate")
async def rate(request: Request, case_id: str) -> Response:
    return await _act(request, case_id, "rate")


def _regression(console: Console, case_id: str, reviewer: str) -> dict[str, Any] | None:
    review = review_of(console.engine, case_id, reviewer)
    page = case_page(console.engine, case_id)
    if review is None or page is None:
        return None
    found = latest_decision(console.engine, case_id)
    decided = found[1] if found is not None else {}
    for d in page.path["decisions"]:
        if d["seq"] == review["decision_seq"]:
            decided = d["decision"]
    review = {**review, "at": review["at"].isoformat()}
    return regression_case(page.payload, decided, review)


@router.get("/queue/{case_id}/regression.json")
async def regression(request: Request, case_id: str, reviewer: str | None = None) -> Response:
    """A review that disagrees, as a regression case (a download)."""
    viewer = current(request)
    require(viewer, ALL_ROLES)
    console = console_of(request)
    found = await run_in_threadpool(_regression, console, case_id, reviewer or viewer.actor.name)
    if found is None:
        context = {"title": "No review", "message": f"No such review of case {case_id}."}
        return render(request, "error.html", context, viewer=viewer, status=404)
    name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in case_id)[:80]
    return Response(
        orjson.dumps(found, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
        media_type="application/json",
        headers={**SECURITY_HEADERS,
                 "Content-Disposition": f'attachment; filename="regression-{name}.json"'},
    )  # fmt: skip

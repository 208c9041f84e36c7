"""The overview: `tier2 report`'s figures for a period, each number a link to the cases
behind it, each table as CSV, the main ones as charts.

The figures are computed by the same function as `tier2 report --format json`
(`tier2.app.report.report` over `tier2.store.report.SqlReportReader`), in the library's time
zone, so the page and the command show the same numbers for the same period.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import date
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from tier2.app.report import report
from tier2.entrypoints.http.console._figures import Kept
from tier2.entrypoints.http.console._state import (
    ALL_ROLES,
    SECURITY_HEADERS,
    Console,
    bounded_day,
    console_of,
    csv_row,
    current,
    render,
    require,
)
from tier2.store.report import SqlReportReader

router = APIRouter(include_in_schema=False)
PARAMS = ("from", "to", "baseline_from", "baseline_to")


def _day(params: Mapping[str, str], name: str) -> date | None:
    return bounded_day(params.get(name), name)


def compute(console: Console, params: Mapping[str, str]) -> dict[str, Any]:
    """The report for the period the query string asks for (what `tier2 report --from --to
    --baseline-from --baseline-to --format json` prints)."""
    return _report(console, _asked(params))


Asked = tuple[date | None, date | None, date | None, date | None]


def _asked(params: Mapping[str, str]) -> Asked:
    return (
        _day(params, "from"), _day(params, "to"),
        _day(params, "baseline_from"), _day(params, "baseline_to"),
    )  # fmt: skip


def _report(console: Console, asked: Asked) -> dict[str, Any]:
    first, last, *base = asked
    return report(
        SqlReportReader(console.engine), first=first, last=last,
        baseline=(base[0], base[1]) if any(base) else None, zone=console.zone,
        now=console.clock(),
    )  # fmt: skip


def figures(console: Console, params: Mapping[str, str]) -> Kept:
    """The figures of the period asked for, as the console keeps them (_figures.py)."""
    asked = _asked(params)
    return console.figures.get(asked, partial(_report, console, asked))


def warm(console: Console) -> None:
    """The default overview's figures computed in the background, for the first visit."""
    asked: Asked = (None, None, None, None)
    console.figures.warm(asked, partial(_report, console, asked))


def tables(found: Mapping[str, Any]) -> dict[str, list[list[Any]]]:
    """Every table of the overview, header first: what its CSV exports hold."""
    cycle = found.get("cycle_time") or {}
    base = (found.get("baseline") or {}).get("cycle_time") or {}
    money = found.get("money_by_authority") or {"tier2": found.get("money") or {}}
    return {
        "outcomes": [["outcome", "cases"], *[[k, v] for k, v in found["outcomes"].items()]],
        "first_reasons": [["first_reason", "cases"], *found["first_reasons"].items()],
        "escalated_to": [["escalated_to", "cases"], *found["escalated_to"].items()],
        "cycle_time": [
            ["figure", "period", "baseline"],
            *[[k, v, base.get(k, "")] for k, v in cycle.items()],
        ],
        "sla": [["figure", "value"], *found["sla"].items()],
        "money": [
            ["authority", "action", "currency", "amount"],
            *[
                [who, kind, cur, amount]
                for who, kinds in money.items()
                for kind, by in kinds.items()
                for cur, amount in by.items()
            ],
        ],
        "review": [["figure", "value"], *found["review"].items()],
        "resolved_by": [["resolved_by", "cases"], *(found.get("resolved_by") or {}).items()],
        "trend": [
            ["week", "cases", "median_business_hours", "p90_business_hours"],
            *[
                [w["week"], w["cases"], w["median_business_hours"], w["p90_business_hours"]]
                for w in found.get("trend") or []
            ],
        ],
        "backlog": [["age", "cases"], *(found.get("backlog") or {}).items()],
        "at_risk": [
            ["case_id", "ticket_id", "kind", "target", "severity", "due", "escalate_to"],
            *[
                [
                    a["case_id"],
                    a["ticket_id"],
                    a["kind"],
                    a["target"],
                    a["severity"],
                    a["due"] or "",
                    a["escalate_to"] or "",
                ]
                for a in found.get("at_risk") or []
            ],
        ],
    }


def charts(found: Mapping[str, Any]) -> dict[str, Any]:
    """The charts' data (drawn by static/console.js with Chart.js)."""
    base_trend = (found.get("baseline") or {}).get("trend") or []
    return {
        "outcomes": {"labels": list(found["outcomes"]), "values": list(found["outcomes"].values())},
        "first_reasons": {
            "labels": list(found["first_reasons"]),
            "values": list(found["first_reasons"].values()),
        },
        "trend": {
            "labels": [w["week"] for w in found.get("trend") or []],
            "values": [w["median_business_hours"] for w in found.get("trend") or []],
            "baseline": [w["median_business_hours"] for w in base_trend],
            "baseline_labels": [w["week"] for w in base_trend],
        },
    }


@router.get("/")
async def overview(request: Request) -> Response:
    viewer = current(request)
    require(viewer, ALL_ROLES)
    console = console_of(request)
    asked = {k: (request.query_params.get(k) or "").strip()[:10] for k in PARAMS}
    try:
        kept = await run_in_threadpool(figures, console, request.query_params)
    except ValueError as exc:
        failed = {"asked": asked, "error": str(exc), "found": None}
        return render(request, "overview.html", failed, viewer=viewer, status=400)
    found = kept.figures
    period = found["period"]
    context: dict[str, Any] = {
        "asked": asked, "error": None, "found": found, "tables": tables(found),
        "charts": charts(found), "span": {"from": period["from"], "to": period["to"]},
        "computed_at": kept.computed_at,
    }  # fmt: skip
    return render(request, "overview.html", context, viewer=viewer)


@router.get("/overview/{table}.csv")
async def overview_csv(request: Request, table: str) -> Response:
    viewer = current(request)
    require(viewer, ALL_ROLES)
    console = console_of(request)
    try:
        found = (await run_in_threadpool(figures, console, request.query_params)).figures
    except ValueError as exc:
        return Response(
            f"{exc}\n", status_code=400, media_type="text/plain", headers=SECURITY_HEADERS
        )
    rows = tables(found).get(table)
    if rows is None:
        return Response(
            f"no table {table[:40]!r}\n",
            status_code=404,
            media_type="text/plain",
            headers=SECURITY_HEADERS,
        )
    out = io.StringIO()
    csv.writer(out).writerows(csv_row(row) for row in rows)
    return Response(
        out.getvalue(), media_type="text/csv",
        headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{table}.csv"'},
    )  # fmt: skip

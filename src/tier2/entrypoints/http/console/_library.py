"""The library page: the policies as a table, `tier2 lint`'s findings, and which library
versions decided how many cases."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from tier2.core.library import Library, Policy
from tier2.entrypoints.http.console._state import (
    ALL_ROLES,
    Console,
    console_of,
    current,
    render,
    require,
)
from tier2.library.lint import LintReport, lint_library
from tier2.store.console import library_versions

router = APIRouter(include_in_schema=False)
_linting = threading.Lock()
_LINTED: dict[str, LintReport] = {}  # library digest -> its report (a library never changes)


def policy_row(p: Policy) -> dict[str, Any]:
    return {
        "id": p.id,
        "title": p.title,
        "citation": p.citation,
        "precedence": p.precedence,
        "when": [e.source for e in p.when],
        "unless": [e.source for e in p.unless],
        "outcome": p.outcome.value,
        "escalate_to": p.escalate_to,
        "actions": [
            a.type if a.amount is None else f"{a.type}: {a.amount.source}" for a in p.actions
        ],
        "source": p.source,
    }


def lint_report(console: Console) -> LintReport:
    """`tier2 lint`'s report on the library, computed once (the library does not change)."""
    with _linting:
        found = _LINTED.get(console.library.digest)
        if found is None:
            found = _LINTED[console.library.digest] = lint_library(console.library)
        return found


def authority(library: Library) -> list[dict[str, Any]]:
    return [
        {"name": r.name, "limit": r.limit, "may": list(r.may),
         "engine": r.name == library.authority.engine}
        for r in library.authority.ladder
    ]  # fmt: skip


@router.get("/library")
async def library_page(request: Request) -> Response:
    viewer = current(request)
    require(viewer, ALL_ROLES)
    console = console_of(request)
    lib = console.library
    report = await run_in_threadpool(lint_report, console)
    versions = await run_in_threadpool(library_versions, console.engine)
    context = {
        "policies": [policy_row(p) for p in lib.policies],
        "report": report,
        "conflicts": report.of("conflict"),
        "can_fail": report.of("can_fail"),
        "unreachable": report.of("unreachable"),
        "versions": versions,
        "ladder": authority(lib),
    }
    return render(request, "library.html", context, viewer=viewer)

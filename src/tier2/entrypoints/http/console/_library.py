"""The library page: the policies as a table, `tier2 lint`'s findings, and which library
versions decided how many cases.

Lint takes seconds (it decides thousands of generated cases): the first visit starts it in
the background and shows the page without its findings, which the page fetches again
(/library/lint, every two seconds) until they are computed; then they are kept for the
library (a library does not change)."""

from __future__ import annotations

import sys
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
from tier2.entrypoints.http.console._whatif import whatif_context
from tier2.library.lint import LintReport, lint_library
from tier2.store.console import library_versions

router = APIRouter(include_in_schema=False)
_linting = threading.Lock()
_LINTED: dict[str, LintReport] = {}  # library digest -> its report (a library never changes)
_FAILED: dict[str, str] = {}  # library digest -> why lint failed on it
_RUNNING: dict[str, threading.Thread] = {}


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


def _lint(library: Library) -> None:
    digest = library.digest
    try:
        found = lint_library(library)
    except Exception as exc:  # the page says so
        sys.stderr.write(f"tier2: console: tier2 lint on the library: {exc}\n")
        with _linting:
            _FAILED[digest] = " ".join(str(exc).split())[:300] or type(exc).__name__
            _RUNNING.pop(digest, None)
        return
    with _linting:
        _LINTED[digest] = found
        _FAILED.pop(digest, None)
        _RUNNING.pop(digest, None)


def lint_state(console: Console) -> tuple[LintReport | None, str | None]:
    """`tier2 lint`'s report on the library if it is computed (once per library: a library
    does not change), else None while one thread computes it (started here): the page shows
    it when it is done. The second item: why it failed (it is not tried again until the
    console starts again)."""
    library = console.library
    with _linting:
        found = _LINTED.get(library.digest)
        if found is not None:
            return found, None
        failed = _FAILED.get(library.digest)
        if failed is None and library.digest not in _RUNNING:
            thread = threading.Thread(target=_lint, args=(library,), name="tier2-lint", daemon=True)
            _RUNNING[library.digest] = thread
            thread.start()
        return None, failed


def lint_report(console: Console, timeout: float = 120.0) -> LintReport | None:
    """The library's lint report, waiting up to `timeout` seconds for it (for tests)."""
    found, _ = lint_state(console)
    with _linting:
        running = _RUNNING.get(console.library.digest)
    if found is None and running is not None:
        running.join(timeout)
        found, _ = lint_state(console)
    return found


def _lint_context(console: Console) -> dict[str, Any]:
    report, failed = lint_state(console)
    if report is None:
        return {"report": None, "failed": failed}
    return {
        "report": report, "failed": None,
        "conflicts": report.of("conflict"), "can_fail": report.of("can_fail"),
        "unreachable": report.of("unreachable"),
    }  # fmt: skip


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
    versions = await run_in_threadpool(library_versions, console.engine)
    context = {
        "policies": [policy_row(p) for p in lib.policies],
        **_lint_context(console),
        "versions": versions,
        "ladder": authority(lib),
        **whatif_context(console, viewer),
    }
    return render(request, "library.html", context, viewer=viewer)


@router.get("/library/lint")
async def library_lint(request: Request) -> Response:
    """The lint section alone: what the page asks for again while lint is computed."""
    viewer = current(request)
    require(viewer, ALL_ROLES)
    console = console_of(request)
    return render(request, "library_lint.html", _lint_context(console), viewer=viewer)

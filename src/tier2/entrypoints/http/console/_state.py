"""What every console route works with: the `Console` (library, store, help desk, the use
cases, sessions), the templates, and the checks each route makes (signed in, role, CSRF).

Templates are Jinja2 with autoescape on: case data is text wherever it lands, never markup
(no `|safe` on it); multi-line text is shown preformatted, escaped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine
from starlette.datastructures import UploadFile

from tier2.app.console import HEAD, SENIOR, VIEWER, Actor, CaseWork
from tier2.app.ports import HelpDesk
from tier2.core.library import Library
from tier2.core.sla import SlaClocks
from tier2.entrypoints.http.console._figures import FigureCache, store_mark
from tier2.entrypoints.http.console._replay import WhatIfs
from tier2.entrypoints.http.console._security import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    AddressLimiter,
    SessionData,
    Sessions,
    UnknownNames,
    fingerprint,
    same_token,
)
from tier2.entrypoints.reporting import spreadsheet_safe
from tier2.store.console import SqlConsoleStore, find_user, list_users

HERE = Path(__file__).parent
ALL_ROLES = frozenset({HEAD, SENIOR, VIEWER})

# The console's pages load scripts, styles and images from itself only; no page may frame it.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class ConsoleSettings:
    """The console's sessions and sign-in limits ([console] in tier2.toml)."""

    secret: str
    secure_cookies: bool = False
    session_hours: float = 12.0
    max_failed_logins: int = 5
    lockout_minutes: float = 15.0
    address_failures: int = 20
    address_window_minutes: float = 15.0
    page_size: int = 50
    drafts_dir: Path | None = None  # the draft libraries the what-if offers (sub-folders)


@dataclass
class Console:
    """The console of one library, store and help desk."""

    library: Library
    engine: Engine
    desk: HelpDesk
    settings: ConsoleSettings
    audit_key: bytes | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # the follow-up after a person resolved cases (it records their final resolution)
    after_resolve: Callable[[Sequence[str]], None] | None = None
    work: CaseWork = field(init=False)
    sessions: Sessions = field(init=False)
    limiter: AddressLimiter = field(init=False)
    unknown: UnknownNames = field(init=False)  # the failed sign-ins of names of no user
    clocks: SlaClocks = field(init=False)
    zone: ZoneInfo = field(init=False)
    figures: FigureCache = field(init=False)  # the overview's, between requests
    whatif: WhatIfs = field(init=False)  # the library page's what-if: running or latest

    def __post_init__(self) -> None:
        s = self.settings
        self.sessions = Sessions(s.secret, s.session_hours * 3600)
        self.limiter = AddressLimiter(s.address_failures, s.address_window_minutes * 60)
        self.unknown = UnknownNames()
        self.clocks = SlaClocks(self.library.sla)
        self.zone = ZoneInfo(self.library.sla.calendar.timezone)
        self.figures = FigureCache(partial(store_mark, self.engine))
        self.whatif = WhatIfs(self.engine, s.drafts_dir, self.clock)
        self.work = CaseWork(
            SqlConsoleStore(self.engine, self.audit_key), self.desk, self.library, self.clock,
            after_resolve=self.after_resolve,
        )  # fmt: skip

    def due(self, severity: str, start: datetime) -> datetime | None:
        """The resolution target's due time of a clock started at `start`, never paused."""
        try:
            return self.clocks.due(severity, start)
        except KeyError:
            return None

    def targets(self) -> list[str]:
        """The escalation targets: the library's roles above tier2, its teams, the targets of
        its routing and policies, and the teams of the console's seniors."""
        lib = self.library
        found = {r.name for r in lib.authority.ladder if r.name not in ("tier1", "tier2")}
        found |= {str(v) for v in asdict(lib.routing).values()}
        found |= {p.escalate_to for p in lib.policies if p.escalate_to}
        found |= set(lib.teams)
        found |= {u.team for u in list_users(self.engine) if u.team}
        return sorted(found)


def console_of(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


# ---------------------------------------------------------------------- templates


def _when(value: Any, zone: ZoneInfo | None = None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        shown = value.astimezone(zone) if zone is not None and value.tzinfo else value
        return shown.strftime("%Y-%m-%d %H:%M %z")
    return str(value)


def _money(value: Any) -> str:
    """An amount with two decimals (what is not a number is shown as it is, escaped)."""
    if value is None:
        return ""
    try:
        return f"{float(value):,.2f}"
    except (TypeError, ValueError):
        return str(value)


def _hours(seconds: Any) -> str:
    if seconds is None:
        return "—"
    try:
        return f"{float(seconds) / 3600:,.1f} h"
    except (TypeError, ValueError):
        return str(seconds)


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = _money
    env.filters["hours"] = _hours
    env.filters["number"] = _number
    env.filters["urlpart"] = lambda v: quote(str(v), safe="")
    env.globals["query"] = lambda **kw: urlencode({k: v for k, v in kw.items() if v})
    return env


TEMPLATES = _environment()


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of a request and their session."""

    actor: Actor
    session: SessionData

    @property
    def csrf(self) -> str:
        return self.session.csrf


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    viewer: Viewer | None = None,
    session: SessionData | None = None,
) -> HTMLResponse:
    """A page (or, for an HTMX request, the template's fragment) with the console's headers;
    a session given is written to the cookie."""
    console = console_of(request)
    env = dict(context)
    env.setdefault("viewer", viewer)
    env.setdefault("csrf", viewer.csrf if viewer else (session.csrf if session else ""))
    env.setdefault("library", console.library)
    env.setdefault("partial", request.headers.get("HX-Request") == "true")
    env["when"] = lambda v: _when(v, console.zone)
    env["zone"] = str(console.zone)
    html = TEMPLATES.get_template(name).render(env)
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if session is not None:
        set_session(console, response, session)
    return response


def set_session(console: Console, response: Response, session: SessionData) -> None:
    response.set_cookie(
        COOKIE, console.sessions.dump(session), max_age=int(console.sessions.max_age),
        httponly=True, samesite="lax", secure=console.settings.secure_cookies, path="/",
    )  # fmt: skip


# ---------------------------------------------------------------------- downloads


def csv_row(values: Sequence[Any]) -> list[Any]:
    """A CSV row a spreadsheet will not run (`reporting.spreadsheet_safe`)."""
    return [spreadsheet_safe(v) for v in values]


# ---------------------------------------------------------------------- checks


class SignInNeeded(Exception):
    """The request has no valid session: the browser is sent to the sign-in page."""


class Forbidden(Exception):
    """Signed in, but not allowed: a 403 page saying why."""

    status = 403
    title = "Not allowed"

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class Missing(Forbidden):
    """What the page is about does not exist: a 404 page saying so."""

    status = 404
    title = "Not found"


def current(request: Request) -> Viewer:
    """The signed-in user (their role and team as the store holds them now)."""
    console = console_of(request)
    session = console.sessions.load(request.cookies.get(COOKIE))
    if session is None or session.user is None:
        raise SignInNeeded
    user = find_user(console.engine, session.user)
    if user is None or fingerprint(user.password_hash) != session.key:
        raise SignInNeeded
    # (a locked account keeps its sessions: anyone may lock one by failing on purpose)
    return Viewer(Actor(user.name, user.role, user.team), session)


def require(viewer: Viewer, roles: frozenset[str]) -> None:
    if viewer.actor.role not in roles:
        raise Forbidden(f"{viewer.actor.name} ({viewer.actor.role}) may not see or do this")


async def form_of(request: Request) -> dict[str, str]:
    """The posted form's text fields (files are not read)."""
    form = await request.form(max_files=0, max_fields=200)
    return {k: v for k, v in form.items() if not isinstance(v, UploadFile)}


def csrf_ok(request: Request, session: SessionData, form: Mapping[str, str]) -> None:
    """A POST carries the session's CSRF token, else it is refused."""
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not same_token(session.csrf, given):
        raise Forbidden("the form's security token is missing or out of date: reload the page")


def redirect(url: str, request: Request) -> Response:
    """To `url`: a 303 for a browser, HX-Redirect for HTMX."""
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


# The days a filter may name: far enough either way for any case, near enough that a day
# in any time zone, and the day after it, are times the store and the report can hold.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(9998, 12, 31)


def bounded_day(value: str | None, name: str) -> date | None:
    """A day (YYYY-MM-DD) from a query string, between FIRST_DAY and LAST_DAY."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name}: a date like 2026-03-01") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"{name}: a date from {FIRST_DAY} to {LAST_DAY}")
    return day


def bounded_time(value: datetime, name: str) -> datetime:
    """A time from a query string: with an offset, within the days a filter may name."""
    if value.tzinfo is None or not FIRST_DAY <= value.date() <= LAST_DAY:
        raise ValueError(f"{name}: not a page of this list")
    return value


def local_day(value: str | None, zone: ZoneInfo, name: str) -> datetime | None:
    """The start of a day (YYYY-MM-DD) in the library's time zone."""
    day = bounded_day(value, name)
    if day is None:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def next_day(value: datetime | None) -> datetime | None:
    """The start of the day after (a date range's end is the last day, inclusive)."""
    if value is None:
        return None
    zone = value.tzinfo
    return (value.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=zone)


_SAFE_NEXT = re.compile(r"/[A-Za-z0-9/_.\-?=&%]*")


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: a path of this site only."""
    if value and _SAFE_NEXT.fullmatch(value) and not value.startswith("//"):
        return value
    return "/"

"""Signing in and out of the console."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from tier2.entrypoints.http.console._security import (
    COOKIE,
    SessionData,
    Sessions,
    check_password,
    fingerprint,
)
from tier2.entrypoints.http.console._state import (
    Console,
    Forbidden,
    console_of,
    csrf_ok,
    form_of,
    redirect,
    render,
    safe_next,
    set_session,
)
from tier2.store.console import find_user, login_failed, login_ok

router = APIRouter(include_in_schema=False)

WRONG = "Wrong name or password."


def _anonymous(request: Request) -> tuple[SessionData, bool]:
    """The request's session, or a new one without a user (for the sign-in form's token);
    whether it is new (only a new one is written to the cookie: signing a session again
    would make it last longer than session_hours)."""
    found = console_of(request).sessions.load(request.cookies.get(COOKIE))
    return (found, False) if found is not None else (Sessions.fresh(), True)


def _login_page(
    request: Request, session: tuple[SessionData, bool], context: dict[str, Any], status: int
) -> Response:
    data, new = session
    return render(
        request, "login.html", {**context, "csrf": data.csrf}, status=status,
        session=data if new else None,
    )  # fmt: skip


@router.get("/login")
def login_page(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    context = {"next": safe_next(next), "error": None, "name": ""}
    return _login_page(request, _anonymous(request), context, 200)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _attempt(console: Console, name: str, password: str, address: str) -> tuple[str | None, str]:
    """A sign-in attempt: (the user's password-hash fingerprint, "") when it succeeds, else
    (None, why), counting the failure against the account and the address."""
    now = console.clock()
    user = find_user(console.engine, name) if 0 < len(name) <= 64 else None
    # a name of no user is answered as a user's would be: its failures lock it too
    until = console.unknown.locked_until(name, now) if user is None else user.locked_until
    if until is not None and until > now:
        minutes = max(1, round((until - now).total_seconds() / 60))
        console.limiter.failed(address)
        return None, f"This account is locked after too many failed sign-ins; try in {minutes} min."
    ok, renewed = check_password(None if user is None else user.password_hash, password[:1024])
    if not ok or user is None:
        console.limiter.failed(address)
        s = console.settings
        lock_until = now + timedelta(minutes=s.lockout_minutes)
        if user is not None:
            locked = login_failed(
                console.engine, user.name, now, limit=s.max_failed_logins, lock_until=lock_until
            )
        else:
            locked = console.unknown.failed(
                name, now, limit=s.max_failed_logins, lock_until=lock_until
            )
        if locked:
            return None, (
                f"Too many failed sign-ins: this account is locked for {s.lockout_minutes:g} "
                "minutes."
            )
        return None, WRONG
    login_ok(console.engine, user.name, renewed)
    return fingerprint(renewed or user.password_hash), ""


@router.post("/login")
async def login(request: Request) -> Response:
    console = console_of(request)
    session = _anonymous(request)
    form = await form_of(request)
    csrf_ok(request, session[0], form)
    name, address = form.get("name", "").strip()[:200], _client(request)
    target = safe_next(form.get("next"))
    wait = console.limiter.wait(address)
    if wait > 0:
        error = f"Too many failed sign-ins from this address; try again in {wait / 60:.0f} min."
        return _login_page(request, session, {"next": target, "error": error, "name": name}, 429)
    key, why = await run_in_threadpool(_attempt, console, name, form.get("password", ""), address)
    if key is None:
        return _login_page(request, session, {"next": target, "error": why, "name": name}, 401)
    console.sessions.end(session[0])  # the session before sign-in is over ...
    response = redirect(target, request)
    set_session(console, response, Sessions.fresh(name, key))  # ... a new one, a new token
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    console = console_of(request)
    session = console.sessions.load(request.cookies.get(COOKIE))
    if session is None:
        raise Forbidden("no session to sign out of")
    csrf_ok(request, session, await form_of(request))
    console.sessions.end(session)  # its cookie, replayed, signs in no one
    response = redirect("/login", request)
    response.delete_cookie(COOKIE, path="/")
    return response

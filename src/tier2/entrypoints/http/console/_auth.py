"""Signing in and out of the console."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

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


def _anonymous(request: Request) -> SessionData:
    """The request's session, or a new one without a user (for the sign-in form's token)."""
    found = console_of(request).sessions.load(request.cookies.get(COOKIE))
    return found if found is not None else Sessions.fresh()


@router.get("/login")
def login_page(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    session = _anonymous(request)
    return render(
        request, "login.html", {"next": safe_next(next), "error": None, "name": ""},
        session=session,
    )  # fmt: skip


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _attempt(console: Console, name: str, password: str, address: str) -> tuple[str | None, str]:
    """A sign-in attempt: (the user's password-hash fingerprint, "") when it succeeds, else
    (None, why), counting the failure against the account and the address."""
    now = console.clock()
    user = find_user(console.engine, name) if 0 < len(name) <= 64 else None
    if user is not None and user.locked_until is not None and user.locked_until > now:
        minutes = max(1, round((user.locked_until - now).total_seconds() / 60))
        console.limiter.failed(address)
        return None, f"This account is locked after too many failed sign-ins; try in {minutes} min."
    ok, renewed = check_password(None if user is None else user.password_hash, password[:1024])
    if not ok or user is None:
        console.limiter.failed(address)
        if user is not None:
            s = console.settings
            locked = login_failed(
                console.engine, user.name, now, limit=s.max_failed_logins,
                lock_until=now + timedelta(minutes=s.lockout_minutes),
            )  # fmt: skip
            if locked:
                return None, (
                    "Too many failed sign-ins: this account is locked for "
                    f"{s.lockout_minutes:g} minutes."
                )
        return None, WRONG
    login_ok(console.engine, user.name, renewed)
    return fingerprint(renewed or user.password_hash), ""


@router.post("/login")
async def login(request: Request) -> Response:
    console = console_of(request)
    session = _anonymous(request)
    form = await form_of(request)
    csrf_ok(request, session, form)
    name, address = form.get("name", "").strip(), _client(request)
    target = safe_next(form.get("next"))
    wait = console.limiter.wait(address)
    if wait > 0:
        error = f"Too many failed sign-ins from this address; try again in {wait / 60:.0f} min."
        context = {"next": target, "error": error, "name": name}
        return render(request, "login.html", context, status=429, session=session)
    key, why = await run_in_threadpool(_attempt, console, name, form.get("password", ""), address)
    if key is None:
        context = {"next": target, "error": why, "name": name}
        return render(request, "login.html", context, status=401, session=session)
    response = redirect(target, request)
    set_session(console, response, Sessions.fresh(name, key))  # a new session, a new token
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    console = console_of(request)
    session = console.sessions.load(request.cookies.get(COOKIE))
    if session is None:
        raise Forbidden("no session to sign out of")
    csrf_ok(request, session, await form_of(request))
    response = redirect("/login", request)
    response.delete_cookie(COOKIE, path="/")
    return response

"""The web console `tier2 serve` serves at /: server-rendered pages (Jinja2, HTMX for the
filters and the queue's forms; htmx and Chart.js are vendored in static/vendor with their
licences, nothing is loaded from elsewhere).

  GET  /                        overview: `tier2 report`'s figures, charts, CSV per table
  GET  /cases, /cases.csv       the cases, filtered and paged by key
  GET  /case/{id}               a case's whole path, its SLA clock and its audit entries
  GET  /queue                   the review queue, most urgent SLA first
  GET  /queue/{id}              a case's annotated handoff; accept, resolve, rate
  POST /queue/{id}/accept|resolve|rate
  GET  /queue/{id}/regression.json   a disagreement as a regression case
  GET  /library                 the policies, `tier2 lint`'s findings, versions in use
  GET  /library/whatif, /library/whatif.csv   the what-if of a draft: progress, result
  POST /library/whatif          start a what-if of a draft (head of support)
  GET  /login, POST /login, POST /logout

Every page needs a signed-in user (a signed session cookie), every POST the session's CSRF
token; each route checks the user's role (docs/console.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from tier2.entrypoints.config import ConsoleConfig
from tier2.entrypoints.http.console import _auth, _cases, _library, _overview, _queue, _whatif
from tier2.entrypoints.http.console._security import MIN_SECRET_BYTES
from tier2.entrypoints.http.console._state import (
    HERE,
    Console,
    ConsoleSettings,
    Forbidden,
    SignInNeeded,
    redirect,
    render,
)

__all__ = ["Console", "ConsoleSecretError", "ConsoleSettings", "console_settings", "mount_console"]


class ConsoleSecretError(ValueError):
    """The console cannot start: its session secret is missing or too short."""


def console_settings(
    config: ConsoleConfig, environ: Mapping[str, str] | None = None
) -> ConsoleSettings | None:
    """The console's settings from [console] and the secret in the variable it names; None
    when the console is not to be served (the secret is not set and the console is not asked
    for). Raises ConsoleSecretError when it is asked for without a usable secret."""
    env = os.environ if environ is None else environ
    name = config.session_secret_env
    secret = env.get(name) or ""
    if not secret:
        if config.enabled:
            raise ConsoleSecretError(
                f"console: environment variable {name} is not set (the session secret, at "
                f"least {MIN_SECRET_BYTES} bytes: python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')"
            )
        return None
    if config.enabled is False:
        return None
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConsoleSecretError(
            f"console: {name} is shorter than {MIN_SECRET_BYTES} bytes (python3 -c 'import "
            "secrets; print(secrets.token_urlsafe(32))')"
        )
    return ConsoleSettings(
        secret=secret,
        secure_cookies=config.secure_cookies,
        session_hours=config.session_hours,
        max_failed_logins=config.max_failed_logins,
        lockout_minutes=config.lockout_minutes,
        address_failures=config.address_failures,
        address_window_minutes=config.address_window_minutes,
        drafts_dir=Path(config.drafts_dir).expanduser() if config.drafts_dir else None,
    )


async def _sign_in(request: Request, _exc: Exception) -> Response:
    path = request.url.path
    query = f"?{request.url.query}" if request.url.query else ""
    if request.method != "GET" or path == "/":
        return redirect("/login", request)
    return redirect("/login?" + urlencode({"next": path + query}), request)


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    context = {"title": exc.title, "message": exc.why}
    return render(request, "error.html", context, status=exc.status)


def mount_console(app: FastAPI, console: Console) -> None:
    """The console's routes, static files and error pages on the app."""
    app.state.console = console
    for module in (_auth, _overview, _cases, _queue, _library, _whatif):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(SignInNeeded, _sign_in)
    app.add_exception_handler(Forbidden, _forbidden)

"""`tier2 user`: who may sign in to the web console, with which role."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from tier2.entrypoints.cli._common import DbOption, fail, opened_store

user_app = typer.Typer(help="The web console's users: head_of_support, senior (of a team), viewer.")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_TEAM = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _password(from_stdin: bool) -> str:
    """The password: the first line of standard input, or asked for twice without echo."""
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise fail("no terminal to ask for the password on: give --password-stdin")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@user_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The name the user signs in with.")],
    role: Annotated[str, typer.Option(help="head_of_support, senior or viewer.")],
    team: Annotated[
        str | None,
        typer.Option(help="A senior's role or team: the escalation target whose cases they work."),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Add a console user, or replace an existing user's password, role and team (which also
    unlocks the account). The password is asked for, or read from standard input; only its
    argon2 hash is stored."""
    from tier2.app.console import ROLES, SENIOR
    from tier2.entrypoints.http.console._security import hash_password, password_problem
    from tier2.store.console import save_user

    if not _NAME.fullmatch(name):
        raise fail("NAME: 1 to 64 letters, digits and . _ @ -, starting with a letter or digit")
    if role not in ROLES:
        raise fail(f"--role: one of {', '.join(ROLES)}")
    if role == SENIOR and not team:
        raise fail("--team: a senior works the cases escalated to a role or team; name it")
    if team is not None and role != SENIOR:
        raise fail("--team: only a senior has a team (a head of support sees every case)")
    if team is not None and not _TEAM.fullmatch(team):
        raise fail("--team: an escalation target's name, like senior_support or finance")
    password = _password(password_stdin)
    problem = password_problem(password)
    if problem is not None:
        raise fail(f"password: {problem}")
    with opened_store(db) as engine:
        new = save_user(engine, name, hash_password(password), role, team, datetime.now(UTC))
    what = "added" if new else "updated"
    sys.stdout.write(f"user {name} {what}: {role}" + (f" of {team}" if team else "") + "\n")


@user_app.command("list")
def list_(db: DbOption = None) -> None:
    """The console's users, their roles and whether they are locked out."""
    from tier2.store.console import list_users

    with opened_store(db) as engine:
        users = list_users(engine)
    now = datetime.now(UTC)
    for u in users:
        locked = f", locked until {u.locked_until:%Y-%m-%d %H:%M} UTC" if (
            u.locked_until is not None and u.locked_until > now
        ) else ""  # fmt: skip
        sys.stdout.write(
            f"{u.name}: {u.role}" + (f" of {u.team}" if u.team else "") + locked + "\n"
        )
    if not users:
        sys.stdout.write("no users (add one with: tier2 user add NAME --role ROLE)\n")

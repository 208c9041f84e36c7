"""`tier2 db`, `tier2 audit` and `tier2 case`: the case store."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tier2.entrypoints import bootstrap
from tier2.entrypoints.cli._common import DbOption, fail, starting

db_app = typer.Typer(help="The case store: SQLite by default (TIER2_DB), or any SQLAlchemy URL.")
audit_app = typer.Typer(help="The tamper-evident audit log.")
case_app = typer.Typer(help="Cases in the store.")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create the case store, or bring it to the newest schema (Alembic migrations)."""
    from sqlalchemy.engine import make_url

    from tier2.store.db import current_revision, database_url, make_engine, upgrade

    url = database_url(db)
    where = make_url(url).render_as_string()
    try:
        upgrade(url)
    except Exception as exc:  # connection refused, permission denied: one clear line
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise fail(f"cannot upgrade {where}: {type(exc).__name__}: {reason}") from None
    engine = make_engine(url)
    sys.stdout.write(f"{where}: schema at {current_revision(engine)}\n")
    engine.dispose()


@audit_app.command("verify")
def audit_verify(db: DbOption = None) -> None:
    """Check the hash chain; name the first entry that breaks it (exit 1)."""
    from sqlalchemy.orm import Session

    from tier2.store import audit

    with starting():
        engine = bootstrap.store(db)
    try:
        with Session(engine) as session:
            verdict = audit.verify(session)
    finally:
        engine.dispose()
    if verdict.intact:
        sys.stdout.write(f"audit log intact: {verdict.entries} entries\n")
        return
    sys.stdout.write(f"audit log broken at entry {verdict.broken_at}: {verdict.problem}\n")
    raise typer.Exit(1)


@case_app.command("show")
def case_show(
    case_id: Annotated[str, typer.Argument(help="The case id.")], db: DbOption = None
) -> None:
    """Print a case's whole path: every audit entry, decision (with its stages), action, note."""
    from sqlalchemy.orm import Session

    from tier2.store.show import show_case

    with starting():
        engine = bootstrap.store(db)
    try:
        with Session(engine) as session:
            text = show_case(session, case_id)
    finally:
        engine.dispose()
    if text is None:
        raise fail(f"no case {case_id!r} in the store")
    sys.stdout.write(text)

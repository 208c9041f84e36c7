"""`tier2 db`, `tier2 audit` and `tier2 case`: the case store."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from tier2.entrypoints import bootstrap
from tier2.entrypoints.cli._common import DbOption, fail, opened_store, starting

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from tier2.store.audit import Verdict

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


EXIT_NOT_ANCHORED = 3  # consistent, but the head's anchor was not checked (no key)


def _verified(engine: Engine, key: bytes | None) -> Verdict:
    """The store verified in one read transaction that does not hold SQLite's write lock
    (a snapshot of the write-ahead log): runners go on writing meanwhile."""
    from sqlalchemy.orm import Session

    from tier2.store import audit
    from tier2.store.db import make_engine

    reader = make_engine(engine.url.render_as_string(hide_password=False), immediate=False)
    try:
        with Session(reader) as session:
            return audit.verify(session, key)
    finally:
        reader.dispose()


@audit_app.command("verify")
def audit_verify(db: DbOption = None) -> None:
    """Check the hash chain, its signed anchor and the rows it recorded; name the first thing
    that disagrees (exit 1). Without TIER2_AUDIT_KEY the anchor's signature is not checked:
    exit 3 when all else agrees."""
    from tier2.store import audit

    with starting():
        key = bootstrap.audit_key()
        engine = bootstrap.store(db)
    try:
        verdict = _verified(engine, key)
    finally:
        engine.dispose()
    out = sys.stdout.write
    if not verdict.intact:
        out(f"audit log broken: {verdict.problem}\n")
        raise typer.Exit(1)
    seq, head = verdict.head
    checked = ", ".join(f"{n:,} {what}" for what, n in verdict.checked.items())
    if verdict.anchored:
        assert key is not None
        where = f"head entry {seq}, hash {head}" if seq else "empty"
        out(f"audit log intact and anchored: {verdict.entries:,} entries ({where}; key id "
            f"{audit.key_id(key)})\n")  # fmt: skip
        out(f"agreeing with it: {checked}\n")
        return
    out(f"audit log consistent: {verdict.entries:,} entries (head entry {seq}, hash {head})\n")
    out(f"agreeing with it: {checked}\n")
    anchor = verdict.anchor
    said = "no anchor" if anchor is None else f"an anchor at entry {anchor.seq}"
    out(
        f"NOT ANCHORED: {bootstrap.AUDIT_KEY_ENV} is not set, so the head's signature was not "
        f"checked (the store has {said}). Entries removed from the end together with the "
        "anchor, or the whole log rewritten with its hashes recomputed, would not show here. "
        f"Set {bootstrap.AUDIT_KEY_ENV} to the runners' key and run it again.\n"
    )
    if anchor is not None and anchor.seq < seq:
        out(f"(entries {anchor.seq + 1}-{seq} come after the anchor: written without the key)\n")
    raise typer.Exit(EXIT_NOT_ANCHORED)


@audit_app.command("anchor")
def audit_anchor(
    db: DbOption = None,
    previous_key_env: Annotated[
        str | None,
        typer.Option(
            help="To change the key: the variable holding the key the present anchor was "
            "signed with."
        ),
    ] = None,
) -> None:
    """Sign the audit log's head with TIER2_AUDIT_KEY once the log and its rows verify: for a
    store written without the key, or to change the key. A present anchor must verify (with
    the previous key, when changing it)."""
    from sqlalchemy.orm import Session

    from tier2.store import audit

    with starting():
        key = bootstrap.audit_key()
        if key is None:
            raise bootstrap.StartError(
                f"{bootstrap.AUDIT_KEY_ENV} is not set: the key to sign with"
            )
        previous = bootstrap.audit_key(name=previous_key_env) if previous_key_env else None
        if previous_key_env and previous is None:
            raise bootstrap.StartError(f"{previous_key_env} is not set")
        engine = bootstrap.store(db)
    try:
        verdict = _verified(engine, None)
        problem = verdict.problem
        if problem is None and verdict.anchor is not None:
            problem = audit.signature_problem(verdict.anchor, previous or key)
        if problem is None and verdict.entries:
            with Session(engine) as session, session.begin():
                audit.anchor_head(session, key, verdict.head)
    except audit.AuditAnchorError as exc:
        problem = str(exc)
    finally:
        engine.dispose()
    if problem is not None:
        sys.stdout.write(f"audit log not anchored: {problem}\n")
        raise typer.Exit(1)
    seq, head = verdict.head
    sys.stdout.write(
        f"audit log anchored: head entry {seq}, hash {head} (key id {audit.key_id(key)})\n"
        if seq
        else "audit log empty: the first append with the key anchors it\n"
    )


@case_app.command("show")
def case_show(
    case_id: Annotated[str, typer.Argument(help="The case id.")], db: DbOption = None
) -> None:
    """Print a case's whole path: every audit entry, decision (with its stages), action, note."""
    from sqlalchemy.orm import Session

    from tier2.store.show import show_case

    with opened_store(db) as engine, Session(engine) as session:
        text = show_case(session, case_id)
    if text is None:
        raise fail(f"no case {case_id!r} in the store")
    sys.stdout.write(text)


@case_app.command("explain")
def case_explain(
    case_id: Annotated[str, typer.Argument(help="The case id.")],
    db: DbOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="The decision as JSON.")] = False,
) -> None:
    """Decide a stored case again under the library version that decided it (kept in the
    store by its digest), at its original time, and say whether the decision is the one
    stored, byte for byte (exit 1 when not)."""
    import orjson
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from tier2.contract import (
        CaseError,
        Vocabulary,
        decision_json,
        decision_text,
        parse_case,
    )
    from tier2.core import decide
    from tier2.store import models as m
    from tier2.store.library_versions import stored_library

    with opened_store(db) as engine:
        with Session(engine) as session:
            case = session.get(m.Case, case_id)
            stored = session.scalars(
                select(m.Decision)
                .where(m.Decision.case_id == case_id)
                .order_by(m.Decision.seq.desc())
            ).first()
        if case is None or stored is None:
            raise fail(f"no decided case {case_id!r} in the store")
        library = stored_library(engine, stored.library_digest)
    if library is None:
        raise fail(
            f"case {case_id}: its library version {stored.library_digest} is not kept in the "
            "store (tier2 library list)"
        )
    parsed = parse_case(case.payload, case_id, Vocabulary.of(library))
    if isinstance(parsed, CaseError):
        raise fail("; ".join(parsed.lines()))
    again = decide(parsed, library, stored.decided_at)
    same = orjson.loads(decision_json(again)) == stored.body
    sys.stdout.write(decision_json(again).decode() + "\n" if json_out else decision_text(again))
    sys.stderr.write(
        f"case {case_id}: decided again under {library.name} {library.version} "
        f"({library.digest}) at {stored.decided_at.isoformat()}: "
        + ("the same decision as stored\n" if same else "NOT the decision stored\n")
    )
    if not same:
        raise typer.Exit(1)

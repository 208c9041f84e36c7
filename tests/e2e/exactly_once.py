"""What "exactly once" means in the store, checked after runners were killed: shared by the
crash-point and chaos tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from tier2.app.states import FINAL_STATES
from tier2.store import audit
from tier2.store import models as m

FINAL = {s.value for s in FINAL_STATES}
TIMEOUT = 180  # seconds any one tier2 process of these tests may take


def tier2(*args: str) -> list[str]:
    return [sys.executable, "-m", "tier2", *args]


@dataclass
class Ran:
    returncode: int
    stdout: bytes
    stderr: bytes
    pgid: int  # its process group: the runner and every process it started


def run(*args: str, env: dict[str, str] | None = None) -> Ran:
    """`tier2 ARGS` to its end (killed after TIMEOUT), in a process group of its own."""
    proc = subprocess.Popen(
        tier2(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(
            f"tier2 {' '.join(args)} ran over {TIMEOUT} s: {err[-2000:]!r}"
        ) from None
    return Ran(proc.returncode, out, err, proc.pid)


def group_gone(pgid: int, within: float = 10.0) -> bool:
    """No process is left in the group (a runner's deciding workers die with it)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def idle_in_transaction(engine: Engine) -> int:
    """Sessions on this PostgreSQL database left idle inside a transaction (0 on SQLite)."""
    if engine.dialect.name != "postgresql":
        return 0
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        )


def assert_exactly_once(engine: Engine, cases: int | None = None) -> dict[str, int]:
    """Every case final; one decision per escalation of it; every action once in the
    ledger and done; every note once on its ticket; no ticket waiting, no claim held; the
    audit chain intact. Returns counts for the test's message."""
    with Session(engine) as session:
        rows = session.execute(select(m.Case.id, m.Case.state, m.Case.escalations)).all()
        if cases is not None:
            assert len(rows) == cases, f"{len(rows)} cases, not {cases}"
        open_ = [r.id for r in rows if r.state not in FINAL]
        assert not open_, f"cases not final: {open_[:10]}"
        decided = dict(
            session.execute(
                select(m.Decision.case_id, func.count()).group_by(m.Decision.case_id)
            ).all()
        )
        twice = {r.id: decided.get(r.id, 0) for r in rows if decided.get(r.id, 0) != r.escalations}
        assert not twice, f"decisions per case differ from its escalations: {twice}"
        actions = session.execute(select(m.Action.idempotency_key, m.Action.status)).all()
        assert all(a.status == "done" for a in actions)
        ledger = Counter(session.scalars(select(m.LedgerEntry.idempotency_key)))
        assert ledger == Counter(a.idempotency_key for a in actions), "ledger != actions"
        notes = list(session.scalars(select(m.Note.idempotency_key)))
        on_tickets = Counter(
            session.scalars(
                select(m.TicketMessage.idempotency_key).where(
                    m.TicketMessage.idempotency_key.is_not(None)
                )
            )
        )
        assert on_tickets == Counter(notes), "notes on tickets != notes recorded"
        waiting = session.scalar(
            select(func.count()).select_from(m.Ticket).where(m.Ticket.status == "escalated")
        )
        assert waiting == 0, f"{waiting} escalations not taken"
        claims = session.scalar(
            select(func.count()).select_from(m.Claim).where(m.Claim.runner_id.is_not(None))
        )
        assert claims == 0, f"{claims} claims still held"
        assert audit.verify(session).intact
        return {
            "cases": len(rows),
            "reescalations": sum(r.escalations - 1 for r in rows),
            "actions": len(actions),
            "notes": len(notes),
        }


def no_processes(pgids: Sequence[int]) -> None:
    left = [g for g in pgids if not group_gone(g)]
    assert not left, f"process groups still alive: {left}"

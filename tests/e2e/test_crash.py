"""Crash safety: kill `tier2 run` at many points; no case is lost and no action happens twice."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tier2.contract import CaseIn
from tier2.generate import CaseGenerator
from tier2.helpdesk.local import LocalHelpDesk
from tier2.loader import load_library
from tier2.runner import FINAL
from tier2.store import audit
from tier2.store import models as m
from tier2.store.db import make_engine, upgrade

CASES = 300
KILLS = 50


def tier2(*args: str) -> list[str]:
    return [sys.executable, "-m", "tier2", *args]


def _unfinished(engine: Engine) -> int:
    """Escalations not yet taken plus cases not yet in a final state."""
    with Session(engine) as session:
        waiting = session.scalar(
            select(func.count()).select_from(m.Ticket).where(m.Ticket.status == "escalated")
        )
        open_cases = session.scalar(
            select(func.count()).select_from(m.Case).where(m.Case.state.not_in(FINAL))
        )
    return (waiting or 0) + (open_cases or 0)


def test_killed_runs_lose_no_case_and_repeat_no_action(database_url: str, tmp_path: Path) -> None:
    """After 50 SIGKILLs at random points, one more run finishes every case exactly once."""
    cases = CaseGenerator(load_library("saas"), 21).cases(CASES)
    upgrade(database_url)
    engine = make_engine(database_url)
    desk = LocalHelpDesk(engine)
    wave = CASES // KILLS

    rng = random.Random(2026)
    interrupted = 0
    for i in range(KILLS):
        # escalations keep arriving, so every run has a backlog to be killed in the middle of
        desk.import_cases(CaseIn.model_validate(c) for c in cases[i * wave : (i + 1) * wave])
        # one case per transaction in this process, or small batches decided in workers
        options = (
            ["--batch", "1", "--workers", "0"] if i % 2 else ["--batch", "7", "--workers", "2"]
        )
        run = subprocess.Popen(
            tier2("run", "--once", "--db", database_url, *options),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.5, 1.5))  # start-up is about 0.5 s
        run.kill()
        run.wait()
        interrupted += _unfinished(engine) > 0
    desk.import_cases(CaseIn.model_validate(c) for c in cases[KILLS * wave :])
    engine.dispose()

    final = subprocess.run(
        tier2("run", "--once", "--db", database_url), capture_output=True, check=False
    )
    assert interrupted >= KILLS * 0.8, f"only {interrupted} kills interrupted work in flight"
    assert final.returncode == 0, final.stderr.decode()[-2000:]

    engine = make_engine(database_url)
    with Session(engine) as session:
        states = dict(session.execute(select(m.Case.id, m.Case.state)).all())
        assert len(states) == CASES and set(states.values()) <= FINAL
        per_case = dict(
            session.execute(
                select(m.Decision.case_id, func.count()).group_by(m.Decision.case_id)
            ).all()
        )
        assert per_case == dict.fromkeys(states, 1)  # exactly one decision per case
        actions = session.scalars(select(m.Action)).all()
        assert actions and all(a.status == "done" for a in actions)
        ledger = session.scalars(select(m.LedgerEntry.idempotency_key)).all()
        assert sorted(ledger) == sorted(a.idempotency_key for a in actions)  # each exactly once
        notes = session.execute(select(m.Note.case_id).where(m.Note.kind == "note")).scalars().all()
        assert sorted(notes) == sorted(states)  # one note per case
        open_tickets = session.scalar(
            select(func.count()).select_from(m.Ticket).where(m.Ticket.status == "escalated")
        )
        assert open_tickets == 0
        assert audit.verify(session).intact
    engine.dispose()

"""Scale-out: 1, 2, 4 and 8 runners sharing one PostgreSQL, on a help desk that takes 100 ms a
request, as Request Tracker does.

    .venv/bin/python benchmarks/scale.py [--cases 2000] [--runners 1,2,4,8] [--delay 0.1]
        [--batch 10] [--postgres postgresql+psycopg://tier2:tier2@127.0.0.1:5432/tier2_scale]

For each number of runners: a fresh database, the same N generated saas escalations filed
in the local help desk (not timed), then that many runner processes started together, each
running one pass of tier2's own `Runner` (what `tier2 run --once --workers 0` runs) over the
local help desk behind a fixed delay: one request to list the escalations, and one per
ticket read, per action carried out, per note written and per ticket moved (taking a ticket
costs nothing, as on RT). Timed from the start of the first runner to the end of the last.
Then it checks that nothing was done twice: every case final with one decision, every
action once in the ledger, every note once on its ticket.

The PostgreSQL database is dropped and created again; give a scratch one. Prints figures
only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from run import fresh_postgres  # benchmarks/run.py, beside this script
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tier2.app.runner import FINAL, Runner
from tier2.contract import CaseIn
from tier2.helpdesk.local import LocalHelpDesk
from tier2.library.loader import load_library
from tier2.library.samples import CaseGenerator
from tier2.store import models as m
from tier2.store.db import make_engine, upgrade
from tier2.store.unit_of_work import SqlUnitOfWork


class SlowDesk:
    """The local help desk as a remote one: `delay` seconds a request, one request per ticket
    touched, and the runner's steps each in a transaction of their own (as with RT)."""

    def __init__(self, desk: LocalHelpDesk, delay: float) -> None:
        self.desk, self.delay = desk, delay
        self.in_store = False  # a remote help desk: each step commits on its own
        self.requests = 0

    def _wait(self, n: int) -> None:
        self.requests += n
        time.sleep(self.delay * n)

    def escalations(self) -> Sequence[str]:
        self._wait(1)
        return self.desk.escalations()

    def read_cases(self, ticket_ids: Sequence[str]) -> list[dict[str, Any]]:
        self._wait(len(ticket_ids))
        return self.desk.read_cases(ticket_ids)

    def carry_out(self, session: Session, orders: Sequence[Any], at: datetime) -> Any:
        self._wait(len(orders))
        return self.desk.carry_out(session, orders, at)

    def write_notes(self, session: Session, orders: Sequence[Any], at: datetime) -> None:
        self._wait(len(orders))
        self.desk.write_notes(session, orders, at)

    def move(self, session: Session, moves: Sequence[Any], at: datetime) -> None:
        self._wait(len(moves))
        self.desk.move(session, moves, at)

    def __getattr__(self, name: str) -> Any:  # escalated, take, timelines: no request
        return getattr(self.desk, name)


def runner_main(url: str, delay: float, batch: int) -> None:
    """One runner process: a pass over the slow desk; its figures as a JSON line."""
    engine = make_engine(url)
    desk = SlowDesk(LocalHelpDesk(engine), delay)
    runner = Runner(
        SqlUnitOfWork(engine), load_library("saas"), desk, lambda: datetime.now(UTC), batch=batch
    )
    stats = runner.run_once()
    runner.close()
    line = {"finished": stats.finished, "received": stats.received, "requests": desk.requests}
    sys.stdout.write(orjson.dumps(line).decode() + "\n")


def check(url: str, cases: int) -> str:
    """Nothing done twice, nothing left: or an AssertionError naming what."""
    engine = make_engine(url)
    with Session(engine) as session:
        states = dict(session.execute(select(m.Case.id, m.Case.state)).all())
        assert len(states) == cases and set(states.values()) <= FINAL, "cases left open"
        decisions = session.scalar(select(func.count()).select_from(m.Decision))
        assert decisions == cases, f"{decisions} decisions for {cases} cases"
        actions = sorted(session.scalars(select(m.Action.idempotency_key)))
        ledger = sorted(session.scalars(select(m.LedgerEntry.idempotency_key)))
        assert actions == ledger, "ledger and actions differ"
        notes = session.scalar(select(func.count()).select_from(m.Note))
        written = session.scalar(
            select(func.count())
            .select_from(m.TicketMessage)
            .where(m.TicketMessage.idempotency_key.is_not(None))
        )
        assert notes == written, f"{notes} notes recorded, {written} on tickets"
        paid = session.scalar(select(func.coalesce(func.sum(m.LedgerEntry.amount), 0)))
    engine.dispose()
    return f"{cases} decisions, {len(actions)} actions once ({paid:,.2f} paid), {notes} notes once"


def measure(n: int, jsonl: list[dict[str, Any]], args: argparse.Namespace) -> float:
    fresh_postgres(args.postgres)
    upgrade(args.postgres)
    engine = make_engine(args.postgres)
    LocalHelpDesk(engine).import_cases(CaseIn.model_validate(c) for c in jsonl)
    engine.dispose()
    command = [sys.executable, __file__, "--runner", args.postgres, str(args.delay)]
    start = time.perf_counter()
    procs = [
        subprocess.Popen([*command, str(args.batch)], stdout=subprocess.PIPE) for _ in range(n)
    ]
    lines = [orjson.loads(p.communicate(timeout=7200)[0]) for p in procs]
    elapsed = time.perf_counter() - start
    assert all(p.returncode == 0 for p in procs), "a runner failed"
    shares = "/".join(str(x["finished"]) for x in lines)
    requests = sum(x["requests"] for x in lines)
    print(
        f"{n} runner(s): {len(jsonl) / elapsed:6.2f} cases/s ({elapsed:7.1f} s; cases each "
        f"{shares}; {requests} requests); {check(args.postgres, len(jsonl))}",
        flush=True,
    )
    return len(jsonl) / elapsed


def main() -> None:
    if sys.argv[1:2] == ["--runner"]:
        runner_main(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--runners", default="1,2,4,8")
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument(
        "--postgres", default="postgresql+psycopg://tier2:tier2@127.0.0.1:5432/tier2_scale"
    )
    args = parser.parse_args()
    cases = CaseGenerator(load_library("saas"), 1).cases(args.cases)
    with tempfile.TemporaryDirectory():
        rates = {n: measure(n, cases, args) for n in map(int, args.runners.split(","))}
    base = rates.get(1)
    if base:
        print("speed-up: " + ", ".join(f"{n}: {r / base:.2f}x" for n, r in rates.items()))


if __name__ == "__main__":
    main()

"""`tier2 run --once` throughput on the embedded store (SQLite) and on PostgreSQL.

    .venv/bin/python benchmarks/run.py [--cases 100000] [--library saas] [--seed 1]
        [--postgres postgresql+psycopg://tier2:tier2@127.0.0.1:5432/tier2_bench]

Generates N realistic escalations (seeded), files them into a fresh store with
`tier2 import`, then times `tier2 run --once --no-sla-scan` in a subprocess (wall clock,
start-up included; the generated month lies in the past, so an SLA scan would escalate
every case still open; benchmarks/sla.py measures the clocks): every case decided, its
actions carried out, its note (and reply draft or
guidance) written to the ticket, the ticket moved, and 4 to 6 audit entries hashed onto
the chain. Checks the result (every case final, the audit chain intact) and prints figures.
The PostgreSQL database is dropped and created again; give a scratch one.
Prints figures only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from tier2.app.runner import FINAL
from tier2.library.loader import load_library
from tier2.library.samples import CaseGenerator
from tier2.store import audit
from tier2.store import models as m
from tier2.store.db import make_engine


def tier2(*args: str) -> list[str]:
    return [sys.executable, "-m", "tier2", *args]


def fresh_postgres(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def measure(label: str, url: str, jsonl: Path, args: argparse.Namespace) -> None:
    library, n = args.library, args.cases
    start = time.perf_counter()
    subprocess.run(tier2("import", str(jsonl), "--db", url), check=True, capture_output=True)
    filed = time.perf_counter() - start
    start = time.perf_counter()
    run = subprocess.run(
        tier2(
            "run", "--once", "--no-sla-scan", "--library", library, "--db", url, *args.run_options
        ),
        capture_output=True,
        check=False,
    )
    took = time.perf_counter() - start
    if run.returncode != 0:
        sys.exit(f"{label}: tier2 run failed:\n{run.stderr.decode()[-2000:]}")
    engine = make_engine(url)
    with Session(engine) as session:
        states = session.execute(select(m.Case.state, func.count()).group_by(m.Case.state)).all()
        finished = sum(k for s, k in states if s in FINAL)
        notes = session.scalar(select(func.count()).select_from(m.Note))
        entries = session.scalar(select(func.count()).select_from(m.AuditEntry))
        start = time.perf_counter()
        verdict = audit.verify(session)
        verified = time.perf_counter() - start
    engine.dispose()
    assert finished == n, f"{label}: {finished} of {n} cases finished"
    assert verdict.intact, f"{label}: audit chain broken at {verdict.broken_at}"
    print(
        f"{label:<10} import {n / filed:>7,.0f} cases/s | tier2 run --once {n / took:>7,.0f}"
        f" cases/s ({took:.1f} s) | {notes:,} notes, {entries:,} audit entries"
        f" (verified in {verified:.1f} s)"
    )
    print(f"{'':<10} {run.stdout.decode().strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--library", default="saas")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", help="a scratch PostgreSQL database URL")
    parser.add_argument("--workers", type=int, help="tier2 run --workers (default: its own)")
    parser.add_argument("--batch", type=int, help="tier2 run --batch (default: its own)")
    args = parser.parse_args()
    args.run_options = [
        *(["--workers", str(args.workers)] if args.workers is not None else []),
        *(["--batch", str(args.batch)] if args.batch else []),
    ]

    raws = CaseGenerator(load_library(args.library), args.seed).cases(args.cases)
    print(f"{args.cases:,} generated {args.library} cases, seed {args.seed}")
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp) / "cases.jsonl"
        jsonl.write_bytes(b"\n".join(orjson.dumps(r) for r in raws))
        measure("SQLite", f"sqlite:///{tmp}/bench.db", jsonl, args)
        if args.postgres:
            fresh_postgres(args.postgres)
            measure("PostgreSQL", args.postgres, jsonl, args)


if __name__ == "__main__":
    main()

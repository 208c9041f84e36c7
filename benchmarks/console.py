"""`tier2 report` and the console's pages on a store of a million decided cases, on SQLite
and on PostgreSQL.

    TIER2_TEST_POSTGRES_URL=$(scripts/test-postgres.sh) .venv/bin/python benchmarks/console.py
        [--cases 1000000] [--baseline 100000] [--repeat 3] [--cache DIR] [--rebuild]
        [--no-postgres] [--build-only] [--timeout 300]

The store: a year of escalations (April 2025 to March 2026) of both reference companies, in
the demo's proportions (Northwind Cloud on `saas`, Harbor & Pine on `ecommerce`, 350 to 900).
Each case is one of 5,000 cases per library from the library's own generator
(`tier2.library.samples.CaseGenerator`, seeded), decided by tier2's pipeline, moved to a
week of the year under an id of its own: its payload, its decision (the body as the runner
reads it back, without the stage records and the handoff form), the decision's actions
(done, with their amounts). Its final resolution follows the demo's distributions: tier2
closes what it resolves within the hour; tier-1 finishes a returned case in a log-normal
around 1.5 business hours; a senior works an escalated case a log-normal share around 60 %
of its SLA target, one in five waiting on the customer first, so about one in eight runs
late (an SLA escalation `breached`) and about three in ten are found at risk; one in 30
escalated cases is escalated again, one in 12 is reviewed, one in seven senior resolutions
grants money; cases due after the year's end, and three in a thousand besides, are left
open. Besides, a baseline of 100,000 escalations from the three months before (a senior
starting cold, as in the demo).

The store is built once with bulk inserts (COPY on PostgreSQL) and kept: the SQLite file
under the cache directory (default: $XDG_CACHE_HOME or ~/.cache, tier2-bench), the
PostgreSQL database `tier2_bench_console` on the server of TIER2_TEST_POSTGRES_URL (dropped
and made again when its data is of another version); it is brought to the newest schema
(`tier2.store.db.upgrade`) before every run. Without TIER2_TEST_POSTGRES_URL PostgreSQL is
skipped (`scripts/test-postgres.sh` starts one and prints its URL).

Timed, best of --repeat runs:
  report       what `tier2 report --format json` runs, in this process (the CLI's own
               function: the store's schema checked, the library found, the figures, the JSON)
  report CLI   `tier2 report --format json` as a subprocess, once (start-up included)
  overview     the console's `GET /` by a signed-in viewer (FastAPI's TestClient): the same
               figures, the page rendered
  pages        the console's `GET /cases` (unfiltered, and by outcome), `/queue` (every
               team's open escalations) and `/library` (the first visit, which starts
               `tier2 lint` in the background, and a visit after it is done)
Prints figures only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from tier2.app.deciding import decide_payloads
from tier2.core.sla import SlaClocks
from tier2.entrypoints.cli.report import ReportFormat, report
from tier2.library.loader import load_library
from tier2.library.samples import CaseGenerator
from tier2.store import models as m
from tier2.store.bulk import Encoded, insert_rows
from tier2.store.db import make_engine, upgrade

VERSION = 1  # of the data below: a store built by another version is built again
POOL = 5000  # generated and decided cases per library
COMPANIES = (("saas", "NW", 350), ("ecommerce", "HP", 900))  # the demo's proportions
YEAR_END = datetime(2026, 3, 30, tzinfo=UTC)  # a Monday: the year is 52 whole weeks
WEEKS = 52
BASELINE_WEEKS = 13
PG_DATABASE = "tier2_bench_console"
CHUNK = 20_000
HOUR = 3600.0
TARGET_REPORT = 5.0
TARGET_OVERVIEW = 1.0
TARGET_PAGE = 0.5
REVIEWERS = ("ana.senior", "ben.senior", "chen.lead", "dara.lead")


# ---------------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class Pooled:
    """A generated case as decided: what a copy of it takes over."""

    case_id: str
    received: datetime
    escalated: datetime
    severity: str
    payload: str
    body: str
    outcome: str
    first_reason: str
    escalate_to: str | None
    actions: tuple[tuple[str, float | None, str | None], ...]


def pool(library_name: str) -> tuple[list[Pooled], Any]:
    library = load_library(library_name)
    cases = CaseGenerator(library, 11).cases(POOL)
    decided = decide_payloads(library, [(c["case_id"], c) for c in cases], YEAR_END)
    out = []
    for c in cases:
        found = decided[c["case_id"]]
        if isinstance(found, str):
            continue
        summary, _ = found
        received = datetime.fromisoformat(c["received_at"])
        escalated = datetime.fromisoformat(c["handoff"].get("escalated_at") or c["received_at"])
        actions = tuple(
            (a["type"], a.get("amount"), a.get("currency")) for a in summary.get("actions") or ()
        )
        out.append(
            Pooled(
                c["case_id"], received, escalated, c["ticket"]["severity"],
                orjson.dumps(c).decode(), orjson.dumps(summary).decode(), summary["outcome"],
                summary["reasons"][0]["code"], summary.get("escalate_to"), actions,
            )
        )  # fmt: skip
    return out, library


def calendar_of(business: float, rng: random.Random) -> float:
    """Calendar seconds around `business` seconds of 8-hour weekdays: nights and weekends."""
    days = business / (8 * HOUR) + rng.random()
    return (
        business
        + 16 * HOUR * math.floor(days)
        + 48 * HOUR * math.floor((days + rng.random() * 5) / 5)
    )


@dataclass
class Tables:
    cases: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    sla: list[dict[str, Any]]
    reviews: list[dict[str, Any]]
    humans: list[dict[str, Any]]

    @classmethod
    def empty(cls) -> Tables:
        return cls([], [], [], [], [], [])


class Builder:
    """The rows of the store, a chunk at a time (seeded: the same every time)."""

    def __init__(self, n: int, baseline: int) -> None:
        self.n, self.baseline = n, baseline
        self.decision_id = 0
        self.pools = {name: pool(name) for name, _, _ in COMPANIES}

    def chunks(self) -> Iterator[Tables]:
        total = sum(w for _, _, w in COMPANIES)
        for name, prefix, weight in COMPANIES:
            cases, library = self.pools[name]
            clocks = SlaClocks(library.sla)
            currency = "EUR" if name == "saas" else "USD"
            count = self.n * weight // total if name == "saas" else self.n - self.n * 350 // total
            rng = random.Random(f"console-bench:{name}")
            out = Tables.empty()
            for i in range(count):
                self.case(out, rng, cases[rng.randrange(len(cases))], f"{prefix}-{i:07d}",
                          clocks, currency, name, library)  # fmt: skip
                if len(out.cases) >= CHUNK:
                    yield out
                    out = Tables.empty()
            yield out

    def case(  # noqa: PLR0917
        self, out: Tables, rng: random.Random, p: Pooled, case_id: str, clocks: SlaClocks,
        currency: str, name: str, library: Any,
    ) -> None:  # fmt: skip
        # March 2026 moved back 0-48 weeks, a few minutes either way
        shift = timedelta(weeks=4 * rng.randrange(WEEKS // 4), minutes=rng.randrange(-30, 30))
        received, escalated = p.received - shift, p.escalated - shift
        decided = received + timedelta(minutes=rng.uniform(1, 60))
        target = clocks.target(p.severity).seconds
        waiting, sla_met, late, risk = 0.0, True, False, False
        escalations = 1
        if p.outcome == "resolve":
            calendar = (decided - escalated).total_seconds()
            business = calendar * rng.uniform(0.0, 0.5)
            state, by = "closed", "tier2"
        elif p.outcome == "return_to_tier1":
            business = min(16.0, rng.lognormvariate(math.log(1.5), 0.5)) * HOUR
            calendar = calendar_of(business, rng)
            state, by = "returned", "tier1"
        else:
            share = min(3.0, rng.lognormvariate(math.log(0.6), 0.45))
            business = share * target
            if rng.random() < 0.2:
                waiting = calendar_of(rng.uniform(1, 8) * HOUR, rng)
            calendar = calendar_of(business, rng) + waiting
            state, by = "escalated", "human"
            sla_met, late, risk = share <= 1.0, share > 1.0, share > 0.75
            escalations = 2 if rng.random() < 1 / 30 else 1
        resolved: datetime | None = escalated + timedelta(seconds=calendar)
        if resolved is not None and (resolved >= YEAR_END or rng.random() < 0.003):
            resolved = None  # still open
        text_ = p.payload.replace(p.case_id, case_id)
        out.cases.append({
            "id": case_id, "ticket_id": case_id, "state": state, "received_at": received,
            "payload": Encoded(text_), "library": f"{name} {library.version}",
            "escalations": escalations, "updated_at": decided, "outcome": p.outcome,
            "first_reason": p.first_reason, "escalate_to": p.escalate_to,
            "escalated_at": escalated, "resolved_at": resolved,
            "resolved_by": by if resolved else None,
            "business_seconds": business if resolved else None,
            "calendar_seconds": calendar if resolved else None,
            "waiting_seconds": waiting if resolved else None,
            "sla_met": sla_met if resolved else None,
        })  # fmt: skip
        body = Encoded(p.body.replace(p.case_id, case_id))
        for seq in range(1, escalations + 1):
            self.decision_id += 1
            at = decided + timedelta(hours=24 * (seq - 1))
            out.decisions.append({
                "id": self.decision_id, "case_id": case_id, "seq": seq, "decided_at": at,
                "outcome": p.outcome, "escalate_to": p.escalate_to,
                "library_digest": library.digest, "body": body,
            })  # fmt: skip
        for k, (kind, amount, cur) in enumerate(p.actions):
            out.actions.append({
                "case_id": case_id, "decision_id": self.decision_id,
                "idempotency_key": f"{case_id}:{escalations}:{k}:{kind}", "type": kind,
                "amount": amount, "currency": cur, "status": "done",
                "executed_at": decided + timedelta(seconds=3), "result": {"ledger": k},
            })  # fmt: skip
        if p.outcome != "escalate":
            return
        due = escalated + timedelta(seconds=calendar_of(target, random.Random(case_id)))
        for kind, flag, share_at in (("at_risk", risk, 0.75), ("breached", late, 1.0)):
            if flag:
                out.sla.append({
                    "case_id": case_id, "escalation": 1, "target": "resolution", "kind": kind,
                    "at": escalated + (due - escalated) * share_at, "severity": p.severity,
                    "elapsed_seconds": target * share_at, "target_seconds": target,
                    "due": due, "escalate_to": "support_manager",
                })  # fmt: skip
        if resolved is not None and rng.random() < 1 / 12:
            right, violation = rng.random() < 0.9, rng.random() < 0.01
            target_ok, score = rng.random() < 0.85, rng.randint(2, 5)
            out.reviews.append({
                "case_id": case_id, "decision_seq": escalations, "reviewer": rng.choice(REVIEWERS),
                "at": resolved + timedelta(hours=rng.uniform(1, 72)), "right_outcome": right,
                "right_target": target_ok, "handoff_score": score, "missing": None,
                "could_close": rng.random() < 0.1, "violation": violation,
                "score": 0.0 if violation else score * 20.0,
                "agrees": right and target_ok and not violation,
                "correct_outcome": None if right else "resolve",
                "correct_escalate_to": None, "comment": None,
            })  # fmt: skip
        if resolved is not None and rng.random() < 1 / 7:
            kind = rng.choice(("credit", "refund"))
            out.humans.append({
                "case_id": case_id, "escalation": escalations, "resolved_by": "ana.senior",
                "role": p.escalate_to or "senior_support", "at": resolved,
                "summary": f"Granted a {kind} after checking the account.",
                "action_type": kind, "amount": round(rng.uniform(20, 900), 2),
                "currency": currency,
            })  # fmt: skip

    def baseline_rows(self) -> Iterator[list[dict[str, Any]]]:
        rng = random.Random("console-bench:baseline")
        start = YEAR_END - timedelta(weeks=WEEKS + BASELINE_WEEKS)
        imported = YEAR_END - timedelta(weeks=WEEKS)
        out: list[dict[str, Any]] = []
        for i in range(self.baseline):
            name = "saas" if rng.random() < 350 / 1250 else "ecommerce"
            cases, library = self.pools[name]
            p = cases[rng.randrange(len(cases))]
            target = SlaClocks(library.sla).target(p.severity).seconds
            escalated = start + timedelta(seconds=rng.uniform(0, BASELINE_WEEKS * 7 * 86400))
            business = (
                rng.uniform(1, 3) * HOUR
                + min(3.0, rng.lognormvariate(math.log(0.6), 0.45)) * target
            )
            waiting = calendar_of(rng.uniform(1, 8) * HOUR, rng) if rng.random() < 0.2 else 0.0
            calendar = calendar_of(business, rng) + waiting
            out.append({
                "source": "simulated", "ticket_id": f"B-{i:07d}", "severity": p.severity,
                "escalated_at": escalated, "resolved_at": escalated + timedelta(seconds=calendar),
                "resolved_by": "senior", "business_seconds": business,
                "calendar_seconds": calendar, "waiting_seconds": waiting,
                "sla_met": business <= target, "reescalated": rng.random() < 0.05,
                "imported_at": imported,
            })  # fmt: skip
            if len(out) >= CHUNK:
                yield out
                out = []
        yield out


# ---------------------------------------------------------------------------------- loading


TABLES: tuple[tuple[str, type[m.Base]], ...] = (
    ("cases", m.Case), ("decisions", m.Decision), ("actions", m.Action),
    ("sla", m.SlaEscalation), ("reviews", m.Review), ("humans", m.HumanResolution),
)  # fmt: skip


def _copy(engine: Engine, model: type[m.Base], rows: Sequence[dict[str, Any]]) -> None:
    """COPY the rows into the model's table (PostgreSQL)."""
    if not rows:
        return
    names = list(rows[0])
    table = m.table(model).name
    raw = engine.raw_connection()
    try:
        cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
        columns = ", ".join(f'"{n}"' for n in names)
        with cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(tuple(_pg(row[n]) for n in names))
        raw.commit()
    finally:
        raw.close()


def _pg(value: Any) -> Any:
    if type(value) is Encoded:
        return value.text
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return value


def fill(engine: Engine, builder: Builder) -> None:
    postgres = engine.dialect.name == "postgresql"
    made = 0
    started = time.perf_counter()
    batches: Iterator[tuple[type[m.Base], list[dict[str, Any]]]] = (
        (model, getattr(chunk, attr)) for chunk in builder.chunks() for attr, model in TABLES
    )
    baseline: Iterator[tuple[type[m.Base], list[dict[str, Any]]]] = (
        (m.BaselineCase, rows) for rows in builder.baseline_rows()
    )
    for model, rows in itertools.chain(batches, baseline):
        if postgres:
            _copy(engine, model, rows)
        else:
            with Session(engine) as session, session.begin():
                insert_rows(session, m.table(model), rows)
        if model is m.Case and rows:
            made += len(rows)
            if made % 200_000 < len(rows):
                print(f"  {made:,} cases ({time.perf_counter() - started:.0f} s)", flush=True)
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))  # what autovacuum does after a load


def sqlite_store(args: argparse.Namespace, builder: Callable[[], Builder]) -> str:
    folder = Path(args.cache)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"console-v{VERSION}-{args.cases}-{args.baseline}.db"
    if args.rebuild:
        path.unlink(missing_ok=True)
    if not path.exists():
        building = path.with_suffix(".building")
        for leftover in folder.glob(building.name + "*"):
            leftover.unlink()
        url = f"sqlite:///{building}"
        print(f"SQLite: building {path} ...", flush=True)
        started = time.perf_counter()
        upgrade(url)
        engine = make_engine(url)
        fill(engine, builder())
        engine.dispose()  # the last connection closed checkpoints the write-ahead log
        building.rename(path)
        print(f"SQLite: built in {time.perf_counter() - started:.0f} s", flush=True)
    url = f"sqlite:///{path}"
    upgrade(url)
    return url


def postgres_store(args: argparse.Namespace, builder: Callable[[], Builder]) -> str | None:
    given = os.environ.get("TIER2_TEST_POSTGRES_URL")
    if not given:
        print("PostgreSQL: skipped (TIER2_TEST_POSTGRES_URL is not set; "
              "scripts/test-postgres.sh starts one and prints its URL)")  # fmt: skip
        return None
    target = make_url(given).set(database=PG_DATABASE)
    url = target.render_as_string(hide_password=False)
    mark = f"tier2 console benchmark v{VERSION} {args.cases} {args.baseline}"
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.execute(
            text("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                 "WHERE datname = :name"), {"name": PG_DATABASE},
        ).scalar()  # fmt: skip
        fresh = args.rebuild or found != mark
        if fresh:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{PG_DATABASE}"'))
    if fresh:
        print(f"PostgreSQL: building {PG_DATABASE} ...", flush=True)
        started = time.perf_counter()
        upgrade(url)
        engine = make_engine(url)
        fill(engine, builder())
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"COMMENT ON DATABASE \"{PG_DATABASE}\" IS '{mark}'"))
        print(f"PostgreSQL: built in {time.perf_counter() - started:.0f} s", flush=True)
    admin.dispose()
    upgrade(url)
    return url


# ---------------------------------------------------------------------------------- timing


def best(repeat: int, run: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def report_in_process(url: str) -> Callable[[], str]:
    """The CLI's own `tier2 report --format json`, its output kept."""

    def run() -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            report(db=url, format=ReportFormat.json)
        return out.getvalue()

    return run


def report_cli(url: str, timeout: float) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tier2", "report", "--db", url, "--format", "json"],
        capture_output=True, timeout=timeout, check=False,
    )  # fmt: skip
    took = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"tier2 report failed:\n{done.stderr.decode()[-2000:]}")
    return took, done.stdout.decode()


def signed_in(url: str) -> tuple[Any, Any]:
    """The console over the store (its library the latest case's) and a test client signed in
    as a viewer (who reads every page; the queue of every team)."""
    from fastapi import FastAPI  # noqa: PLC0415
    from fastapi.testclient import TestClient  # noqa: PLC0415

    from tier2.entrypoints.http.console import Console, ConsoleSettings, mount_console  # noqa: PLC0415
    from tier2.entrypoints.http.console._security import (  # noqa: PLC0415
        COOKIE,
        Sessions,
        fingerprint,
        hash_password,
    )
    from tier2.helpdesk.local import LocalHelpDesk  # noqa: PLC0415
    from tier2.store.console import save_user  # noqa: PLC0415

    engine = make_engine(url)
    with Session(engine) as session:
        latest = session.scalar(select(m.Case.library).order_by(m.Case.received_at.desc()))
    library = load_library((latest or "saas").split(" ")[0])
    secret = "console-benchmark-" + "x" * 40
    console = Console(library, engine, LocalHelpDesk(engine), ConsoleSettings(secret=secret))
    app = FastAPI()
    mount_console(app, console)
    password = hash_password("benchmark-viewer-password")
    save_user(engine, "bench.viewer", password, "viewer", None, datetime.now(UTC))
    client = TestClient(app, base_url="http://localhost")
    client.cookies.set(
        COOKIE, console.sessions.dump(Sessions.fresh("bench.viewer", fingerprint(password)))
    )
    return console, client


def getter(client: Any, path: str) -> Callable[[], None]:
    def get() -> None:
        page = client.get(path, follow_redirects=False)
        if page.status_code != 200 or "<html" not in page.text.lower():
            raise RuntimeError(f"GET {path} answered {page.status_code}")

    return get


def overview(console: Any, client: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """GET / of the console by a signed-in viewer: with the figures kept (the store unchanged
    since they were computed, or changed less than a minute ago), and computing them (the
    first visit to a period, or a changed store past the minute)."""
    kept = getter(client, "/")

    def computed() -> None:
        console.figures.forget()
        kept()

    kept()
    return kept, computed


PAGES = (
    ("/cases", "the cases list, first page"),
    ("/cases?outcome=escalate", "the cases list, filtered by outcome"),
    ("/queue", "the review queue, every team's"),
    ("/library", "the library page, second visit"),
)


def pages(console: Any, client: Any, repeat: int) -> list[tuple[str, float]]:
    """The console's other pages; the library's after its first visit (which starts `tier2
    lint` in the background) and lint's end."""
    from tier2.entrypoints.http.console import _library  # noqa: PLC0415

    out = []
    for path, what in PAGES:
        if path == "/library":
            _library._LINTED.pop(console.library.digest, None)  # (kept from another store's run)
            first = getter(client, path)
            out.append((f"console `GET {path}`, first visit (lint computed meanwhile)",
                        best(1, first)))  # fmt: skip
            _library.lint_report(console)
        out.append((f"console `GET {path}`: {what}", best(repeat, getter(client, path))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tier2-bench"
    parser.add_argument("--cache", default=str(cache))
    parser.add_argument("--rebuild", action="store_true", help="build the stores again")
    parser.add_argument("--timeout", type=float, default=300.0, help="the CLI's, in seconds")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--build-only", action="store_true", help="build the stores, time nothing")
    args = parser.parse_args()

    made: list[Builder] = []

    def builder() -> Builder:  # the pools are decided once, and only when a store is built
        if not made:
            made.append(Builder(args.cases, args.baseline))
        made[0].decision_id = 0
        return made[0]

    stores = [("SQLite", sqlite_store(args, builder))]
    pg = None if args.no_postgres else postgres_store(args, builder)
    if pg:
        stores.append(("PostgreSQL", pg))
    if args.build_only:
        return
    rows = []
    for label, url in stores:
        engine = make_engine(url)
        with Session(engine) as session:
            n = session.scalar(select(func.count()).select_from(m.Case)) or 0
        engine.dispose()
        print(f"{label}: {n:,} cases; timing ...", flush=True)
        run = report_in_process(url)
        found = run()
        took = best(args.repeat, run)
        rows.append((label, n, "tier2 report --format json (in process)", took, TARGET_REPORT))
        cli, printed = report_cli(url, args.timeout)
        if orjson.loads(printed) != {
            **orjson.loads(found),
            "backlog": orjson.loads(printed)["backlog"],
        }:
            print(f"  {label}: the CLI's JSON differs from the in-process run's")
        rows.append((label, n, "tier2 report --format json (subprocess, once)", cli, TARGET_REPORT))
        console, client = signed_in(url)
        kept, computed = overview(console, client)
        rows.append(
            (label, n, "console overview: GET /, figures kept", best(args.repeat, kept),
             TARGET_OVERVIEW)
        )  # fmt: skip
        rows.append(
            (label, n, "console overview: GET /, figures computed", best(args.repeat, computed),
             TARGET_REPORT)
        )  # fmt: skip
        for what, took in pages(console, client, args.repeat):
            rows.append((label, n, what, took, TARGET_PAGE))
        client.close()
        console.engine.dispose()
        figures = orjson.loads(found)
        print(f"  {figures['escalations']:,} escalations, {figures['cycle_time']['cases']:,} "
              f"resolved, {len(figures['trend'])} weeks; baseline "
              f"{(figures['baseline'] or {}).get('cycle_time', {}).get('cases', 0):,}")  # fmt: skip
    print()
    print(f"| backend | cases | operation | seconds (best of {args.repeat}) | target | met |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, n, what, took, target in rows:
        met = "yes" if took <= target else "**no**"
        print(f"| {label} | {n:,} | {what} | {took:.2f} | ≤ {target:g} s | {met} |")


if __name__ == "__main__":
    main()

"""The `tier2` command line: the imperative shell around the decision core."""

from __future__ import annotations

import gc
import os
import signal
import sys
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from tier2.contract import CaseError, Unit, read_models, read_units
from tier2.library.loader import LibraryError, load_library

# Each command imports what only it needs (the store, the connectors, Rich, the server), so
# `tier2 decide` starts without loading SQLAlchemy, Alembic or the help desks.
if TYPE_CHECKING:
    from rich.progress import Progress
    from rich.table import Table
    from sqlalchemy import Engine

    from tier2.app.runner import Runner, RunStats
    from tier2.app.sla_monitor import ScanStats
    from tier2.contract import CaseIn
    from tier2.devtools.demo import CompanySummary

app = typer.Typer(
    name="tier2",
    help="Owns escalated support cases end to end: deterministic, explained decisions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_NOT_DECIDED = 1  # the library failed on a case (extends the contract's 0 and 2)
EXIT_BAD_INPUT = 2
PARALLEL_FROM = 2000  # cases from which `tier2 decide` uses every core by default


class Format(StrEnum):
    json = "json"
    text = "text"


def _fail(message: str) -> typer.Exit:
    sys.stderr.write(f"tier2: {message}\n")
    return typer.Exit(EXIT_BAD_INPUT)


def _parse_now(value: str | None, option: str = "--now") -> datetime | None:
    if value is None:
        return None
    try:
        now = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option}: not an ISO-8601 time: {value!r}") from None
    if now.tzinfo is None:
        raise _fail(f"{option}: needs an offset, like {value}+00:00")
    return now


@app.command()
def decide(
    case_file: Annotated[
        str,
        typer.Argument(
            metavar="CASE.json", help="A case, a JSON array, JSON Lines, or - for stdin."
        ),
    ],
    library: Annotated[
        str, typer.Option("--library", "-l", help="Built-in library (saas, ecommerce) or a folder.")
    ] = "saas",
    now: Annotated[
        str | None,
        typer.Option(help="The clock (ISO-8601 with offset). Default: each case's received_at."),
    ] = None,
    fmt: Annotated[
        Format,
        typer.Option("--format", "-f", help="json: one decision per line; text: for a person."),
    ] = Format.json,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes deciding in parallel (the output is the same). "
            f"Default: one per core from {PARALLEL_FROM:,} cases, else 1.",
        ),
    ] = None,
) -> None:
    """Decide escalated cases: one decision per case, in order."""
    from tier2.app.deciding import BAD_INPUT, DECIDED, NOT_DECIDED, decide_all

    clock = _parse_now(now)
    try:
        lib = load_library(library)
    except LibraryError as exc:
        raise _fail(str(exc)) from None
    data = sys.stdin.buffer.read() if case_file == "-" else _read(case_file)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    bad = failed = 0
    units: list[Unit] = []
    for unit in read_units(data, jsonl=case_file.endswith(".jsonl")):
        if isinstance(unit, CaseError):  # the input as a whole
            bad += 1
            err.write("".join(line + "\n" for line in unit.lines()).encode())
        else:
            units.append(unit)
    if workers is None:
        workers = (os.cpu_count() or 1) if len(units) >= PARALLEL_FROM else 1
    _long_lived_objects_settled()  # the library and the input stay to the end
    for verdicts in decide_all(
        lib, library, units, clock, text=fmt is Format.text, workers=workers
    ):
        lines = []
        for status, written in verdicts:
            if status == DECIDED:
                lines.append(written)
            else:
                bad += status == BAD_INPUT
                failed += status == NOT_DECIDED
                out.write(b"".join(lines))  # what went before it first, as it is decided
                lines.clear()
                out.flush()
                err.write(written)
                err.flush()
        out.write(b"".join(lines))
    out.flush()
    if bad:
        raise typer.Exit(EXIT_BAD_INPUT)
    if failed:
        raise typer.Exit(EXIT_NOT_DECIDED)


@app.command()
def lint(
    library: Annotated[str, typer.Argument(help="Built-in library (saas, ecommerce) or a folder.")],
    samples: Annotated[
        int, typer.Option(help="Generated cases to evaluate the policies over.")
    ] = 20000,
    seed: Annotated[int, typer.Option(help="Seed of the generated cases.")] = 7,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
    strict: Annotated[bool, typer.Option(help="Exit 1 when there is any finding.")] = False,
) -> None:
    """Check a library before any case: likely conflicts, unknown fields, unreachable policies."""
    from tier2.library.lint import lint_library, report_json, report_text

    try:
        lib = load_library(library)
    except LibraryError as exc:
        raise _fail(str(exc)) from None
    report = lint_library(lib, samples=samples, seed=seed)
    sys.stdout.write(report_json(report) if fmt is Format.json else report_text(report))
    if strict and report.findings:
        raise typer.Exit(1)


@app.command("import")
def import_cases(
    case_file: Annotated[
        str,
        typer.Argument(
            metavar="CASES",
            help="Cases in the contract's format (a case, an array, JSON Lines, or -).",
        ),
    ],
    db: Annotated[
        str | None,
        typer.Option(help="Database URL or SQLite path (default: TIER2_DB, else ./tier2.db)."),
    ] = None,
) -> None:
    """File escalations into the embedded local help desk (tickets, handoff log, CRM)."""
    from sqlalchemy.engine import make_url

    from tier2.helpdesk.local import LocalHelpDesk
    from tier2.store.db import database_url, make_engine, upgrade

    good, bad = _case_models(case_file)
    url = database_url(db)
    upgrade(url)
    engine = make_engine(url)
    filed = LocalHelpDesk(engine).import_cases(good)
    engine.dispose()
    sys.stdout.write(f"filed {filed} escalation(s) in {make_url(url).render_as_string()}\n")
    if bad:
        raise typer.Exit(EXIT_BAD_INPUT)


def _case_models(path: str) -> tuple[list[CaseIn], int]:
    """The good cases of a file (or - for standard input); each bad one's error lines are
    written to standard error and counted."""
    data = sys.stdin.buffer.read() if path == "-" else _read(path)
    good, bad = [], 0
    for item in read_models(data, jsonl=path.endswith(".jsonl")):
        if isinstance(item, CaseError):
            bad += 1
            sys.stderr.write("".join(line + "\n" for line in item.lines()))
        else:
            good.append(item)
    return good, bad


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror}") from None


db_app = typer.Typer(help="The case store: SQLite by default (TIER2_DB), or any SQLAlchemy URL.")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(
    db: Annotated[
        str | None,
        typer.Option(help="Database URL or SQLite path (default: TIER2_DB, else ./tier2.db)."),
    ] = None,
) -> None:
    """Create the case store, or bring it to the newest schema (Alembic migrations)."""
    from sqlalchemy.engine import make_url

    from tier2.store.db import current_revision, database_url, make_engine, upgrade

    url = database_url(db)
    try:
        upgrade(url)
    except Exception as exc:  # connection refused, permission denied: one clear line
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        where = make_url(url).render_as_string()
        raise _fail(f"cannot upgrade {where}: {type(exc).__name__}: {reason}") from None
    engine = make_engine(url)
    sys.stdout.write(f"{make_url(url).render_as_string()}: schema at {current_revision(engine)}\n")
    engine.dispose()


DbOption = Annotated[
    str | None,
    typer.Option(help="Database URL or SQLite path (default: TIER2_DB, else ./tier2.db)."),
]
ConfigOption = Annotated[
    Path | None, typer.Option(help="Configuration file (default: ./tier2.toml if present).")
]
ConnectorOption = Annotated[
    str | None,
    typer.Option(help="Help desk: local, rt or zendesk (default: tier2.toml's, else local)."),
]


def _engine(db: str | None) -> Engine:
    from sqlalchemy.engine import make_url

    from tier2.store.db import database_url, make_engine, upgrade

    url = database_url(db)
    try:
        upgrade(url)
    except Exception as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise _fail(f"cannot open {make_url(url).render_as_string()}: {reason}") from None
    return make_engine(url)


@app.command()
def run(  # noqa: PLR0917, PLR0915 (Typer: each option is a parameter; its imports)
    once: Annotated[bool, typer.Option("--once", help="Drain the queue and exit.")] = False,
    library: Annotated[
        str | None,
        typer.Option("--library", "-l", help="Built-in library or folder (default: saas)."),
    ] = None,
    db: DbOption = None,
    poll: Annotated[
        float | None, typer.Option(help="Seconds between passes without --once (default 5).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Processes deciding cases beside this one (0: decide in this process). "
            "Default: one per core but one, at least 1.",
        ),
    ] = None,
    batch: Annotated[
        int | None, typer.Option(min=1, help="Cases per transaction (default 1000).")
    ] = None,
    sla_scan: Annotated[
        bool | None, typer.Option(help="Run the SLA monitor after each pass (tier2 sla scan).")
    ] = None,
    config: ConfigOption = None,
    connector: ConnectorOption = None,
    backfill_since: Annotated[
        str | None,
        typer.Option(
            help="Zendesk: find escalations in the incremental ticket export from this "
            "ISO-8601 time on (a backfill) instead of the view, tag or field search."
        ),
    ] = None,
    lease_seconds: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="A runner silent this long is taken for dead; its cases go to the others "
            "(default 30).",
        ),
    ] = None,
) -> None:
    """Own the escalated cases: decide, act, write back, move the ticket, audit every step.

    Any number of runners may share a store: each ticket has one owner at a time. SIGTERM
    finishes the batch in hand, lets go of the rest and exits. Options given here win over
    tier2.toml, which wins over the defaults."""
    from tier2.app.deciding import InProcess, WorkerPool
    from tier2.app.ports import ConnectorError
    from tier2.app.runner import Runner
    from tier2.app.sla_monitor import SlaMonitor
    from tier2.entrypoints.bootstrap import open_desk
    from tier2.entrypoints.config import ConfigError, load_config

    try:
        settings = load_config(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    library = library or settings.library
    db = settings.store(db)
    poll = poll if poll is not None else settings.run.poll_seconds
    workers = settings.run.workers if workers is None else workers
    batch = batch or settings.run.batch
    sla_scan = settings.run.sla_scan if sla_scan is None else sla_scan
    try:
        lib = load_library(library)
    except LibraryError as exc:
        raise _fail(str(exc)) from None
    engine = _engine(db)
    since = _parse_now(backfill_since, "--backfill-since")
    try:
        if since is not None and (connector or settings.connector.kind) != "zendesk":
            raise ConfigError("--backfill-since works on the Zendesk connector")
        desk = open_desk(settings, engine, connector, since=since)
    except ConfigError as exc:
        engine.dispose()
        raise _fail(str(exc)) from None
    decider = WorkerPool(lib, library, workers) if workers >= 1 else InProcess(lib)
    now = partial(datetime.now, UTC)
    runner = Runner(
        engine, lib, desk, clock=now, batch=batch, decider=decider,
        lease_seconds=lease_seconds or settings.run.lease_seconds,
        options={"workers": workers, "connector": connector or settings.connector.kind},
    )  # fmt: skip
    monitor = SlaMonitor(engine, lib, desk, clock=now)
    _long_lived_objects_settled()
    signal.signal(signal.SIGTERM, lambda _n, _f: runner.stopping.set())
    try:
        while True:
            stats = _run_pass(runner)
            if sla_scan and not runner.stopping.is_set():
                _report_scan(monitor.scan())
            if once or runner.stopping.wait(poll):
                break
    except ConnectorError as exc:
        raise _fail(f"help desk: {exc}") from None
    finally:
        runner.close()
        decider.close()
        engine.dispose()
        close = getattr(desk, "close", None)
        if close is not None:
            close()
    if stats.failed:
        raise typer.Exit(EXIT_NOT_DECIDED)


def _long_lived_objects_settled() -> None:
    """Keep the cyclic GC off the library and modules loaded so far, and let it run less often.

    A pass allocates many short-lived dicts; collections walking every long-lived object cost
    `tier2 run` a few per cent (52.9 s against 57.5 s for 30,000 cases, one run each).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def _progress() -> Progress:
    """A progress bar on standard error, shown only on a terminal."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not sys.stderr.isatty(),
    )


def _run_pass(runner: Runner) -> RunStats:
    """One pass: a progress bar on a terminal, one JSON log line per case otherwise."""
    if sys.stderr.isatty():
        with _progress() as progress:
            task = progress.add_task("cases", total=None)

            def bar(n: int, total: int, _s: RunStats) -> None:
                progress.update(task, advance=n, total=total)

            stats = runner.run_once(bar)
    else:

        def log(n: int, total: int, s: RunStats) -> None:
            line = {
                "event": "batch",
                "cases": n,
                "of": total,
                "finished": s.finished,
                "failed": len(s.failed),
            }
            sys.stderr.write(orjson.dumps(line).decode() + "\n")

        stats = runner.run_once(log)
    for case_id, problem in stats.failed:
        sys.stderr.write(f"case {case_id}: not finished: {problem}\n")
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(stats.outcomes.items())) or "none"
    sys.stdout.write(
        f"received {stats.received}, reopened {stats.reopened}, finished {stats.finished} "
        f"({outcomes}), failed {len(stats.failed)}\n"
    )
    return stats


@app.command()
def serve(  # noqa: PLR0917 (Typer: each option is a parameter)
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    config: ConfigOption = None,
    library: Annotated[
        str | None, typer.Option("--library", "-l", help="Built-in library or folder.")
    ] = None,
    db: DbOption = None,
    worker: Annotated[
        bool,
        typer.Option(
            help="Run tier2 run's passes in this process: at once on a webhook delivery, "
            "else every [run] poll_seconds (--no-worker: a tier2 run beside it does)."
        ),
    ] = True,
    connector: Annotated[
        str | None, typer.Option(help="Help desk for the worker: local, rt or zendesk.")
    ] = None,
) -> None:
    """Serve tier2 over HTTP: POST /decide, GET /cases/{id}, the webhooks; docs at /docs.

    Bearer tokens come from the environment variable named by [api] tokens_env (default
    TIER2_API_TOKENS), comma-separated."""
    import uvicorn

    from tier2.app.runner import Runner
    from tier2.app.sla_monitor import SlaMonitor
    from tier2.app.worker import Worker
    from tier2.entrypoints.bootstrap import open_desk
    from tier2.entrypoints.config import ConfigError, load_config, secret
    from tier2.entrypoints.http import WebhookSecrets, create_app

    try:
        settings = load_config(config)
        tokens = secret(settings.api.tokens_env or "TIER2_API_TOKENS", "API tokens")
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    try:
        lib = load_library(library or settings.library)
    except LibraryError as exc:
        raise _fail(str(exc)) from None
    engine = _engine(settings.store(db))
    hooks = settings.webhooks
    try:
        secrets = WebhookSecrets(
            zendesk=secret(hooks.zendesk_secret_env, "Zendesk webhook secret")
            if hooks.zendesk_secret_env
            else None,
            rt=secret(hooks.rt_secret_env, "RT webhook secret") if hooks.rt_secret_env else None,
            tolerance_seconds=hooks.tolerance_seconds,
        )
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    background = None
    if worker:
        try:
            desk = open_desk(settings, engine, connector)
        except ConfigError as exc:
            raise _fail(str(exc)) from None
        now = partial(datetime.now, UTC)
        runner = Runner(
            engine, lib, desk, clock=now, batch=settings.run.batch,
            lease_seconds=settings.run.lease_seconds, options={"service": True},
        )  # fmt: skip
        monitor = SlaMonitor(engine, lib, desk, clock=now) if settings.run.sla_scan else None
        background = Worker(runner, settings.run.poll_seconds, monitor)
    app_ = create_app(
        lib, engine, [t.strip() for t in tokens.split(",") if t.strip()], webhooks=secrets,
        on_delivery=None if background is None else background.wake,
    )  # fmt: skip
    if background is not None:
        background.start()
    try:
        uvicorn.run(app_, host=host, port=port, log_level="info")
    finally:
        if background is not None:
            background.stop()


@app.command()
def check(
    config: Annotated[
        Path | None, typer.Option(help="The configuration file (default: ./tier2.toml).")
    ] = None,
) -> None:
    """Validate the configuration and try each connection (database, help desk, secrets)."""
    from tier2.entrypoints.checks import run_checks
    from tier2.entrypoints.config import ConfigError, load_config

    try:
        settings = load_config(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    failed = 0
    for result in run_checks(settings):
        failed += not result.ok
        sys.stdout.write(f"{'ok  ' if result.ok else 'FAIL'} {result.name}: {result.detail}\n")
    if failed:
        raise typer.Exit(1)


sla_app = typer.Typer(help="Tier-2 SLA clocks: due times, the monitor, the replay of a real log.")
app.add_typer(sla_app, name="sla")


@sla_app.command("due")
def sla_due(
    severity: Annotated[str, typer.Option(help="critical, high, medium or low.")],
    start: Annotated[
        str, typer.Option("--from", help="When the clock starts (ISO-8601 with an offset).")
    ],
    library: Annotated[
        str, typer.Option("--library", "-l", help="Built-in library or folder.")
    ] = "saas",
    target: Annotated[str, typer.Option(help="Which target.")] = "resolution",
) -> None:
    """Print when a target started at --from is due, in the library's time zone."""
    from tier2.core.sla import SlaClocks

    began = _parse_now(start, "--from")
    assert began is not None
    try:
        clocks = SlaClocks(load_library(library).sla)
        due = clocks.due(severity, began, target)
    except LibraryError as exc:
        raise _fail(str(exc)) from None
    except KeyError as exc:
        raise _fail(f"--severity/--target: {exc.args[0]}") from None
    sys.stdout.write(due.isoformat() + "\n")


@sla_app.command("scan")
def sla_scan(
    library: Annotated[
        str | None,
        typer.Option("--library", "-l", help="Built-in library or folder (default: saas)."),
    ] = None,
    db: DbOption = None,
    now: Annotated[
        str | None, typer.Option(help="The time to scan at (ISO-8601; default: now).")
    ] = None,
    config: ConfigOption = None,
    connector: ConnectorOption = None,
) -> None:
    """Compute every open case's SLA clocks from the help desk's ticket history; escalate
    breached (and neglected at-risk) cases to support_manager there, once per breach
    (handbook A5)."""
    from tier2.app.ports import ConnectorError
    from tier2.app.sla_monitor import SlaMonitor
    from tier2.entrypoints.bootstrap import open_desk
    from tier2.entrypoints.config import ConfigError, load_config

    at = _parse_now(now)
    try:
        settings = load_config(config)
        lib = load_library(library or settings.library)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except LibraryError as exc:
        raise _fail(str(exc)) from None
    engine = _engine(settings.store(db))
    try:
        desk = open_desk(settings, engine, connector)
    except ConfigError as exc:
        engine.dispose()
        raise _fail(str(exc)) from None
    try:
        stats = SlaMonitor(engine, lib, desk, clock=partial(datetime.now, UTC)).scan(at)
    except ConnectorError as exc:
        raise _fail(f"help desk: {exc}") from None
    finally:
        engine.dispose()
        close = getattr(desk, "close", None)
        if close is not None:
            close()
    _report_scan(stats)


@sla_app.command("rt-config")
def sla_rt_config(
    library: Annotated[
        str, typer.Option("--library", "-l", help="Built-in library or folder.")
    ] = "saas",
    years: Annotated[str, typer.Option(help="Holiday years, FIRST-LAST.")] = "2025-2028",
) -> None:
    """Print Request Tracker's %ServiceAgreements and %ServiceBusinessHours for the library's
    SLA (an RT_SiteConfig.d file), so RT and tier2 compute the same due times."""
    from tier2.helpdesk.rt._sla import rt_site_config

    first, _, last = years.partition("-")
    if not (first.isdigit() and last.isdigit() and int(first) <= int(last)):
        raise _fail(f"--years: {years!r} is not FIRST-LAST, like 2025-2028")
    try:
        lib = load_library(library)
    except LibraryError as exc:
        raise _fail(str(exc)) from None
    sys.stdout.write(rt_site_config(lib.sla, range(int(first), int(last) + 1)))


@sla_app.command("replay")
def sla_replay(
    log: Annotated[Path, typer.Argument(metavar="LOG.csv", help="An event log (.csv or .csv.gz).")],
    sla: Annotated[
        Path | None,
        typer.Option(
            help="An SLA matrix in sla.yaml's format (default: an assumed matrix "
            "on an Italian business calendar)."
        ),
    ] = None,
    levels: Annotated[
        str | None,
        typer.Option(help="Seriousness level to severity: 'Value 1=low,Value 2=medium,...'."),
    ] = None,
    level_column: Annotated[str, typer.Option(help="The column with the level.")] = "seriousness_2",
) -> None:
    """Replay a help desk's event log through the SLA clocks: business-hours resolution times
    and the share that would have breached, per seriousness level."""
    from rich.console import Console
    from rich.table import Table

    from tier2.devtools.log_replay import LogError, parse_levels, replay, rows
    from tier2.library.loader import load_sla

    matrix = sla or Path(
        str(resources.files("tier2.devtools") / "sla_matrices" / "italian_helpdesk.yaml")
    )
    try:
        result = replay(log, load_sla(matrix), parse_levels(levels), level_column)
    except (LibraryError, LogError) as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"{log}: {exc.strerror or exc}") from None
    table = Table(
        title=f"{log.name}: {result.tickets:,} tickets, {result.events:,} events; SLA {matrix.name}"
    )
    for column in ("level", "severity", "target", "resolved", "median", "90th pct",
                   "breached", "waited", "never resolved"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("level", "severity") else "right")
    for row in rows(result):
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 120).print(table)
    sys.stdout.write(
        "Business hours between the first event and Resolve ticket (else Closed), Wait excluded.\n"
    )


def _report_scan(stats: ScanStats) -> None:
    states = ", ".join(f"{k} {v}" for k, v in sorted(stats.states.items())) or "none"
    escalated = ", ".join(f"{k} {v}" for k, v in sorted(stats.escalated.items())) or "none"
    sys.stdout.write(
        f"sla: {stats.open_clocks} open clock(s) ({states}); escalated to support_manager: "
        f"{escalated}\n"
    )
    for case_id, problem in stats.failed:
        sys.stderr.write(f"case {case_id}: no SLA clock: {problem}\n")


ticket_app = typer.Typer(help="The local help desk's tickets, as an agent works them.")
app.add_typer(ticket_app, name="ticket")


@ticket_app.command("update")
def ticket_update(  # noqa: PLR0917 (Typer: each option is a parameter)
    ticket_id: Annotated[str, typer.Argument(metavar="TICKET")],
    actor: Annotated[str, typer.Option(help="Who makes the change (an agent's name).")],
    status: Annotated[
        str | None, typer.Option(help="open, pending (waiting on the customer), resolved, ...")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Assign to this group.")] = None,
    severity: Annotated[str | None, typer.Option(help="critical, high, medium or low.")] = None,
    note: Annotated[str | None, typer.Option(help="An internal note.")] = None,
    at: Annotated[str | None, typer.Option(help="When (ISO-8601; default: now).")] = None,
    db: DbOption = None,
) -> None:
    """Change a ticket or write on it: what the SLA clocks and the monitor read."""
    from tier2.helpdesk.local import LocalHelpDesk

    when = _parse_now(at, "--at") or datetime.now(UTC)
    if severity is not None and severity not in ("critical", "high", "medium", "low"):
        raise _fail(f"--severity: {severity!r} is not critical, high, medium or low")
    engine = _engine(db)
    try:
        LocalHelpDesk(engine).update_ticket(
            ticket_id, actor=actor, at=when, status=status, group=group, severity=severity,
            message=note,
        )  # fmt: skip
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None
    finally:
        engine.dispose()
    sys.stdout.write(f"ticket {ticket_id} updated\n")


rt_app = typer.Typer(help="Request Tracker: the custom fields tier2 uses, filing trial cases.")
app.add_typer(rt_app, name="rt")


@rt_app.command("custom-fields")
def rt_custom_fields(
    config: Annotated[Path | None, typer.Option(help="Configuration file.")] = None,
) -> None:
    """Print the ticket custom fields tier2 reads and writes: name, then RT type."""
    from tier2.entrypoints.config import ConfigError, load_config
    from tier2.helpdesk.rt import custom_field_types

    try:
        settings = load_config(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    fields = settings.connector.rt.fields if settings.connector.rt else {}
    for name, kind in custom_field_types(fields):
        sys.stdout.write(f"{name}\t{kind}\n")


@rt_app.command("load")
def rt_load(
    cases: Annotated[str, typer.Argument(help="Contract cases: JSON, a JSON array or JSON Lines.")],
    config: Annotated[Path | None, typer.Option(help="Configuration file.")] = None,
) -> None:
    """File contract cases in RT as tier-1 would leave them (for trials and benchmarks):
    the requestor's earlier tickets, then the ticket in the escalation queue with the handoff
    form's custom fields filled. Prints each case id and its RT ticket."""
    from tier2.app.ports import ConnectorError
    from tier2.entrypoints.bootstrap import rt_client, rt_settings
    from tier2.entrypoints.config import ConfigError, load_config
    from tier2.helpdesk.rt import file_case

    try:
        settings = load_config(config)
        if settings.connector.rt is None:
            raise ConfigError(f"{settings.source}: no [connector.rt] section")
        client = rt_client(settings.connector.rt)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    good, bad = _case_models(cases)
    rt = rt_settings(settings.connector.rt)
    try:
        for case in good:
            raw = orjson.loads(case.model_dump_json(by_alias=True, exclude_none=True))
            sys.stdout.write(f"{case.case_id}\t{file_case(client, rt, raw)}\n")
    except ConnectorError as exc:
        raise _fail(f"help desk: {exc}") from None
    finally:
        client.close()
    if bad:
        raise typer.Exit(EXIT_BAD_INPUT)


audit_app = typer.Typer(help="The tamper-evident audit log.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(db: DbOption = None) -> None:
    """Check the hash chain; name the first entry that breaks it (exit 1)."""
    from sqlalchemy.orm import Session

    from tier2.store import audit

    engine = _engine(db)
    with Session(engine) as session:
        verdict = audit.verify(session)
    engine.dispose()
    if verdict.intact:
        sys.stdout.write(f"audit log intact: {verdict.entries} entries\n")
        return
    sys.stdout.write(f"audit log broken at entry {verdict.broken_at}: {verdict.problem}\n")
    raise typer.Exit(1)


@app.command()
def status(
    db: DbOption = None,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
) -> None:
    """The runners sharing the store: each one's lease and the tickets it holds, and the
    cases still open. A runner past its lease is dead; the next pass of any runner takes
    its cases up."""
    from tier2.store.claims import status as store_status

    engine = _engine(db)
    found = store_status(engine)
    engine.dispose()
    if format is Format.json:
        sys.stdout.write(orjson.dumps(found).decode() + "\n")
        return
    for r in found["runners"]:
        state = "alive" if r["alive"] else "dead (its claims go at the next pass of any runner)"
        where = f"{r.get('host', '?').split(' ')[0]} pid {r.get('pid', '?')}"
        sys.stdout.write(
            f"runner {r['id']} on {where}: {state}, lease until {r.get('lease_until', '-')}, "
            f"holds {r['claims']} ticket(s)\n"
        )
    if not found["runners"]:
        sys.stdout.write("no runner is working on this store\n")
    listed = ", ".join(f"{k} {v}" for k, v in sorted(found["open_cases"].items())) or "none"
    sys.stdout.write(f"open cases: {listed}\n")


case_app = typer.Typer(help="Cases in the store.")
app.add_typer(case_app, name="case")


@case_app.command("show")
def case_show(
    case_id: Annotated[str, typer.Argument(help="The case id.")], db: DbOption = None
) -> None:
    """Print a case's whole path: every audit entry, decision (with its stages), action, note."""
    from sqlalchemy.orm import Session

    from tier2.store.show import show_case

    engine = _engine(db)
    with Session(engine) as session:
        text = show_case(session, case_id)
    engine.dispose()
    if text is None:
        raise _fail(f"no case {case_id!r} in the store")
    sys.stdout.write(text)


@app.command()
def demo(
    folder: Annotated[
        Path, typer.Option("--dir", help="Where the demo's stores go (replaced).")
    ] = Path("tier2-demo"),
    seed: Annotated[int, typer.Option(help="Seed of the generated month.")] = 1,
) -> None:
    """A month of escalations for Northwind Cloud and Harbor & Pine, owned by tier2."""
    from rich.console import Console

    from tier2.devtools.demo import COMPANIES, run_company

    folder.mkdir(parents=True, exist_ok=True)
    console = Console()
    summaries = []
    with _progress() as progress:
        for company, library_name, n in COMPANIES:
            task = progress.add_task(f"{company}: March 2026, hour by hour", total=31 * 24 + 1)
            summaries.append(
                run_company(
                    folder,
                    company,
                    library_name,
                    n=n,
                    seed=seed,
                    on_hour=partial(progress.advance, task),
                )
            )
    for s in summaries:
        console.print(demo_table(s))
    console.print(
        f"Stores: {', '.join(str(folder / (s.library + '.db')) for s in summaries)} "
        f"(try: tier2 audit verify --db {folder / 'saas.db'}; tier2 sla scan --db "
        f"{folder / 'saas.db'} escalates the cases still open past their due time)"
    )


def demo_table(s: CompanySummary) -> Table:
    from rich.table import Table

    table = Table(
        title=f"{s.company} ({s.library}): {s.cases} tier-2 cases, March 2026", show_header=False
    )
    table.add_column("what", style="bold")
    table.add_column("figures")

    def pct(k: int) -> str:
        return f"{k / s.cases:.0%}" if s.cases else "0%"

    table.add_row("outcomes", ", ".join(f"{k} {v} ({pct(v)})" for k, v in s.outcomes.most_common()))
    table.add_row("decided by", ", ".join(f"{k} {v}" for k, v in s.first_reasons.most_common()))
    table.add_row(
        "escalated to", ", ".join(f"{k} {v}" for k, v in s.targets.most_common()) or "none"
    )
    table.add_row(
        "actions carried out", ", ".join(f"{k} {v}" for k, v in s.actions.most_common()) or "none"
    )
    table.add_row(
        "money granted", ", ".join(f"{k} {v:,.2f}" for k, v in sorted(s.money.items())) or "none"
    )
    table.add_row(
        "tier-2 cycle time",
        f"median {s.percentile(50):.0f} min, 90th percentile {s.percentile(90):.0f} min "
        "(from tier-1's escalation to tier2's outcome)",
    )
    table.add_row(
        "tier-2 SLA (A5)",
        f"{s.senior_resolved} escalated cases resolved by seniors, {s.still_open} still open; "
        f"monitor escalated to support_manager: {s.sla_escalated['breached']} breached, "
        f"{s.sla_escalated['at_risk']} at risk and untouched for a business hour",
    )
    return table


def main() -> None:
    app()

"""`tier2 run`, `tier2 serve`, `tier2 status` and `tier2 check`: owning cases as a service."""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from tier2.entrypoints import bootstrap
from tier2.entrypoints.cli._common import (
    EXIT_NOT_DECIDED,
    ConfigOption,
    ConfiguredLibraryOption,
    ConnectorOption,
    DbOption,
    Format,
    fail,
    long_lived_objects_settled,
    opened_store,
    parse_time,
    progress,
    report_scan,
    starting,
)

if TYPE_CHECKING:
    from tier2.app.runner import Runner, RunStats
    from tier2.entrypoints.config import Config
    from tier2.entrypoints.http.console import Console, ConsoleSettings


def run(  # noqa: PLR0917 (Typer: each option is a parameter; they are most of its length)
    once: Annotated[bool, typer.Option("--once", help="Drain the queue and exit.")] = False,
    library: ConfiguredLibraryOption = None,
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
    from tier2.app.ports import ConnectorError

    since = parse_time(backfill_since, "--backfill-since")
    with starting():
        settings = bootstrap.settings(config)
    opening = bootstrap.deployment(
        settings, library_spec=library, db=db, connector=connector, since=since
    )
    with starting(), opening as deployment:
        ran = settings.run
        runner = deployment.runner(
            workers=ran.workers if workers is None else workers,
            batch=batch or ran.batch,
            lease_seconds=lease_seconds or ran.lease_seconds,
            options={"connector": connector or settings.connector.kind},
        )
        scan = ran.sla_scan if sla_scan is None else sla_scan
        monitor = deployment.monitor()
        long_lived_objects_settled()
        signal.signal(signal.SIGTERM, lambda _n, _f: runner.stopping.set())
        while True:
            try:
                stats = _run_pass(runner)
                if scan and not runner.stopping.is_set():
                    report_scan(monitor.scan())
            except ConnectorError as exc:
                raise fail(f"help desk: {exc}") from None
            if once or runner.stopping.wait(ran.poll_seconds if poll is None else poll):
                break
    if stats.failed:
        raise typer.Exit(EXIT_NOT_DECIDED)


def _run_pass(runner: Runner) -> RunStats:
    """One pass: a progress bar on a terminal, one JSON log line per batch otherwise."""
    if sys.stderr.isatty():
        with progress() as bar:
            task = bar.add_task("cases", total=None)
            stats = runner.run_once(lambda n, total, _s: bar.update(task, advance=n, total=total))
    else:

        def log(n: int, total: int, s: RunStats) -> None:
            line = {"event": "batch", "cases": n, "of": total, "finished": s.finished,
                    "failed": len(s.failed)}  # fmt: skip
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


def serve(  # noqa: PLR0917 (Typer: each option is a parameter)
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    config: ConfigOption = None,
    library: ConfiguredLibraryOption = None,
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
    docs: Annotated[
        bool | None,
        typer.Option(
            help="Serve the OpenAPI docs at /docs, /redoc and /openapi.json (default: [api] "
            "docs, else on)."
        ),
    ] = None,
    console: Annotated[
        bool | None,
        typer.Option(
            help="Serve the web console at / (--console: refuse to start without its session "
            "secret; default: [console] enabled, else when the secret is set)."
        ),
    ] = None,
) -> None:
    """Serve tier2 over HTTP: the web console at /; POST /decide, GET /cases/{id}, the
    webhooks; docs at /docs.

    Bearer tokens come from the environment variable named by [api] tokens_env (default
    TIER2_API_TOKENS), comma-separated, each at least 20 characters. The console's session
    secret comes from the variable named by [console] session_secret_env (default
    TIER2_SESSION_SECRET, at least 32 bytes); its users are added with `tier2 user add`.
    Request sizes, read deadlines and connections are bounded by tier2.toml's [api]
    limits."""
    from tier2.app.worker import Worker
    from tier2.entrypoints.http import create_app, server

    with starting():
        settings = bootstrap.settings(config)
        tokens, secrets = bootstrap.api_secrets(settings)
        limits = bootstrap.http_limits(settings)
        sessions = _console_settings(settings, console)
    opening = bootstrap.deployment(settings, library_spec=library, db=db, connector=connector)
    with starting(), opening as deployment:
        background = None
        if worker:
            ran = settings.run
            runner = deployment.runner(
                workers=ran.workers, batch=ran.batch, lease_seconds=ran.lease_seconds,
                options={"service": True, "connector": connector or settings.connector.kind},
            )  # fmt: skip
            monitor = deployment.monitor() if ran.sla_scan else None
            background = Worker(runner, ran.poll_seconds, monitor)
        app_ = create_app(
            deployment.library, deployment.engine, tokens, webhooks=secrets,
            on_delivery=None if background is None else background.wake, limits=limits,
            docs=settings.api.docs if docs is None else docs,
            console=None if sessions is None else web_console(deployment, sessions),
        )  # fmt: skip
        serving = server(app_, limits, host=host, port=port)
        if background is not None:
            background.start()
        try:
            serving.run()
        except KeyboardInterrupt:  # uvicorn raises the Ctrl-C it shut down on again
            pass
        finally:
            if background is not None:
                background.stop()
        if not serving.started:  # the address is taken, say (uvicorn said why)
            raise typer.Exit(3)


def _console_settings(settings: Config, asked: bool | None) -> ConsoleSettings | None:
    """The console's settings, None when it is not served (said on standard error)."""
    from tier2.entrypoints.bootstrap import StartError
    from tier2.entrypoints.http.console import ConsoleSecretError, console_settings

    section = settings.console
    if asked is not None:
        section = section.model_copy(update={"enabled": asked})
    try:
        found = console_settings(section)
    except ConsoleSecretError as exc:
        raise StartError(str(exc)) from None
    if found is None and section.enabled is None:
        sys.stderr.write(
            f"tier2: the web console is off: {section.session_secret_env} is not set "
            "(the API is served)\n"
        )
    return found


def web_console(deployment: bootstrap.Deployment, sessions: ConsoleSettings) -> Console:
    """The web console over the deployment, signing the audit log with the audit key."""
    from datetime import UTC, datetime

    from tier2.app.follow import Follower
    from tier2.app.sla_monitor import CLOCK_WORDS
    from tier2.entrypoints.http.console import Console
    from tier2.entrypoints.http.console._overview import warm

    follower = Follower(
        bootstrap.unit_of_work(deployment.engine), deployment.library, deployment.desk, CLOCK_WORDS
    )

    def follow_up(case_ids: Sequence[str]) -> None:
        """After a person resolved cases: their final resolution recorded at once (else the
        next SLA scan records it)."""
        try:
            follower.follow(datetime.now(UTC))
        except Exception as exc:  # the resolution is committed; the scan will follow it up
            sys.stderr.write(f"tier2: console: following up {', '.join(case_ids)}: {exc}\n")

    made = Console(
        deployment.library, deployment.engine, deployment.desk, sessions,
        audit_key=bootstrap.audit_key(), after_resolve=follow_up,
    )  # fmt: skip
    warm(made)  # the default overview's figures, computed while the server starts
    return made


def check(
    config: Annotated[
        Path | None, typer.Option(help="The configuration file (default: ./tier2.toml).")
    ] = None,
) -> None:
    """Validate the configuration and try each connection (database, help desk, secrets)."""
    from tier2.entrypoints.checks import run_checks

    with starting():
        settings = bootstrap.settings(config)
    failed = 0
    for result in run_checks(settings):
        failed += not result.ok
        sys.stdout.write(f"{'ok  ' if result.ok else 'FAIL'} {result.name}: {result.detail}\n")
    if failed:
        raise typer.Exit(1)


def status(
    db: DbOption = None,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
) -> None:
    """The runners sharing the store: each one's lease and the tickets it holds, and the
    cases still open. A runner past its lease is dead; the next pass of any runner takes
    its cases up."""
    from tier2.store.claims import status as store_status

    with opened_store(db) as engine:
        found = store_status(engine)
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

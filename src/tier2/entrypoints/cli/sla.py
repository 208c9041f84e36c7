"""`tier2 sla`: due times, the monitor, RT's SLA configuration, the replay of a real log."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from tier2.entrypoints import bootstrap
from tier2.entrypoints.cli._common import (
    ConfigOption,
    ConfiguredLibraryOption,
    ConnectorOption,
    DbOption,
    LibraryOption,
    fail,
    parse_time,
    report_scan,
    starting,
)

sla_app = typer.Typer(help="Tier-2 SLA clocks: due times, the monitor, the replay of a real log.")


@sla_app.command("due")
def sla_due(
    severity: Annotated[str, typer.Option(help="critical, high, medium or low.")],
    start: Annotated[
        str, typer.Option("--from", help="When the clock starts (ISO-8601 with an offset).")
    ],
    library: LibraryOption = "saas",
    target: Annotated[str, typer.Option(help="Which target.")] = "resolution",
) -> None:
    """Print when a target started at --from is due, in the library's time zone."""
    from tier2.core.sla import SlaClocks

    began = parse_time(start, "--from")
    assert began is not None
    with starting():
        clocks = SlaClocks(bootstrap.library(library).sla)
    try:
        due = clocks.due(severity, began, target)
    except KeyError as exc:
        raise fail(f"--severity/--target: {exc.args[0]}") from None
    sys.stdout.write(due.isoformat() + "\n")


@sla_app.command("scan")
def sla_scan(
    library: ConfiguredLibraryOption = None,
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

    at = parse_time(now)
    with starting():
        settings = bootstrap.settings(config)
    opening = bootstrap.deployment(settings, library_spec=library, db=db, connector=connector)
    with starting(), opening as deployment:
        try:
            stats = deployment.monitor().scan(at)
        except ConnectorError as exc:
            raise fail(f"help desk: {exc}") from None
    report_scan(stats)


@sla_app.command("rt-config")
def sla_rt_config(
    library: LibraryOption = "saas",
    years: Annotated[str, typer.Option(help="Holiday years, FIRST-LAST.")] = "2025-2028",
) -> None:
    """Print Request Tracker's %ServiceAgreements and %ServiceBusinessHours for the library's
    SLA (an RT_SiteConfig.d file), so RT and tier2 compute the same due times."""
    from tier2.helpdesk.rt import rt_site_config

    first, _, last = years.partition("-")
    if not (first.isdigit() and last.isdigit() and int(first) <= int(last)):
        raise fail(f"--years: {years!r} is not FIRST-LAST, like 2025-2028")
    with starting():
        lib = bootstrap.library(library)
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
    from tier2.library.loader import LibraryError, load_sla

    matrix = sla or Path(
        str(resources.files("tier2.devtools") / "sla_matrices" / "italian_helpdesk.yaml")
    )
    try:
        result = replay(log, load_sla(matrix), parse_levels(levels), level_column)
    except (LibraryError, LogError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{log}: {exc.strerror or exc}") from None
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

"""`tier2 report` and `tier2 baseline import`: the escalation metrics against a baseline."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tier2.entrypoints import bootstrap
from tier2.entrypoints.cli._common import (
    ConfigOption,
    ConfiguredLibraryOption,
    ConnectorOption,
    DbOption,
    fail,
    starting,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from tier2.core.library import Library

baseline_app = typer.Typer(help="Escalations handled before tier2, for the report to compare.")


class ReportFormat(StrEnum):
    text = "text"
    json = "json"
    csv = "csv"
    html = "html"


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: not a date (YYYY-MM-DD): {value!r}") from None


DateOption = Annotated[str | None, typer.Option(metavar="DATE")]


def report(  # noqa: PLR0917 (Typer: each option is a parameter)
    db: DbOption = None,
    first: Annotated[
        str | None,
        typer.Option("--from", metavar="DATE", help="First day (default: the first case)."),
    ] = None,
    last: Annotated[
        str | None,
        typer.Option("--to", metavar="DATE", help="Last day, included (default: the last case)."),
    ] = None,
    baseline_from: Annotated[
        str | None,
        typer.Option(metavar="DATE", help="The baseline's first day (default: all of it)."),
    ] = None,
    baseline_to: Annotated[
        str | None, typer.Option(metavar="DATE", help="The baseline's last day, included.")
    ] = None,
    format: Annotated[
        ReportFormat, typer.Option(help="text, json, csv (one row per case) or html.")
    ] = ReportFormat.text,
    library: ConfiguredLibraryOption = None,
    config: ConfigOption = None,
) -> None:
    """Escalation metrics for a period: volume, outcomes, reasons, targets, the cycle time from
    tier-1's escalation to the final resolution (business and calendar hours, waiting apart)
    against the baseline from before tier2, SLA, money by authority, re-escalations, reviews.
    Days are read in the library's time zone."""
    import orjson

    from tier2.app.report import period_of
    from tier2.app.report import report as build
    from tier2.entrypoints import reporting
    from tier2.store.report import SqlReportReader

    period = (_date(first, "--from"), _date(last, "--to"))
    base = (_date(baseline_from, "--baseline-from"), _date(baseline_to, "--baseline-to"))
    with starting():
        engine = bootstrap.store(db)
        lib = _library_of(engine, library, config)
    try:
        reader = SqlReportReader(engine)
        zone = _zone(lib)
        if format is ReportFormat.csv:
            span = period_of(reader.span(), *period, zone)
            for chunk in reporting.csv_rows(reader.cases(span.start, span.end)):
                sys.stdout.write(chunk)
            return
        found = build(
            reader, first=period[0], last=period[1],
            baseline=base if any(base) else None, zone=zone, now=datetime.now(UTC),
        )  # fmt: skip
    finally:
        engine.dispose()
    if format is ReportFormat.json:
        sys.stdout.write(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif format is ReportFormat.html:
        sys.stdout.write(reporting.html(found, simulated_baseline=_simulated(found)))
    else:
        sys.stdout.write(reporting.text(found))


def _simulated(found: dict[str, Any]) -> bool:
    """The demo's stores carry a simulated baseline (their sources say so)."""
    return bool((found.get("baseline") or {}).get("simulated"))


def _library_of(engine: Engine, spec: str | None, config: Path | None) -> Library:
    """The library whose calendar the report reads days and business hours in: the one asked
    for, else the one that decided the store's latest case (when it is a built-in), else
    tier2.toml's."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from tier2.library.loader import BUILT_IN
    from tier2.store import models as m

    if spec is None:
        with Session(engine) as session:
            latest = session.scalar(  # (the latest decision: read by its primary key)
                select(m.Case.library)
                .join(m.Decision, m.Decision.case_id == m.Case.id)
                .order_by(m.Decision.id.desc())
                .limit(1)
            )
        name = (latest or "").split(" ")[0]
        spec = name if name in BUILT_IN else bootstrap.settings(config).library
    return bootstrap.library(spec)


def _zone(lib: Library) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(lib.sla.calendar.timezone)


class Source(StrEnum):
    local = "local"
    csv = "csv"
    rt = "rt"
    zendesk = "zendesk"


@baseline_app.command("import")
def baseline_import(  # noqa: PLR0917 (Typer: each option is a parameter)
    source: Annotated[Source, typer.Option(help="local, rt, zendesk, or csv (an event log).")],
    first: Annotated[
        str | None, typer.Option("--from", metavar="DATE", help="First day of escalations.")
    ] = None,
    last: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="DATE",
            help="Last day, included (default: the day before the first case tier2 took).",
        ),
    ] = None,
    file: Annotated[
        Path | None, typer.Option(help="The event log, for --source csv (.csv or .csv.gz).")
    ] = None,
    levels: Annotated[
        str | None, typer.Option(help="csv: level to severity, 'Value 1=low,...'.")
    ] = None,
    level_column: Annotated[
        str, typer.Option(help="csv: the column with the level.")
    ] = "seriousness_2",
    db: DbOption = None,
    library: ConfiguredLibraryOption = None,
    config: ConfigOption = None,
    connector: ConnectorOption = None,
) -> None:
    """Read escalations handled before tier2 from the help desk's history (or an event log),
    compute each one's cycle time with the same code as tier2's cases, and keep them in the
    store as the report's baseline (imported again, a ticket's row is replaced)."""
    from tier2.app.baseline import baseline_rows
    from tier2.store.baseline import save_baseline

    period = (_date(first, "--from"), _date(last, "--to"))
    if source is Source.csv and file is None:
        raise fail("--source csv needs --file LOG.csv")
    with starting():
        settings = bootstrap.settings(config)
    kind = "local" if source is Source.csv else source.value
    opening = bootstrap.deployment(
        settings, library_spec=library, db=db, connector=kind if connector is None else connector
    )
    with starting(), opening as deployment:
        lib = deployment.library
        escalations, name = _past(
            deployment, source, period, file=file, levels=levels, level_column=level_column
        )
        rows = baseline_rows(escalations, lib, name, datetime.now(UTC))
        saved = save_baseline(deployment.engine, rows)
    sys.stdout.write(f"baseline: {saved:,} escalation(s) from {name}\n")


def _past(
    deployment: bootstrap.Deployment, source: Source, period: tuple[date | None, date | None],
    *, file: Path | None, levels: str | None, level_column: str,
) -> tuple[list[Any], str]:  # fmt: skip
    """The past escalations of the source, and the source's name in the store."""
    from datetime import timedelta

    from tier2.store.report import SqlReportReader

    zone = _zone(deployment.library)
    if source is Source.csv:
        from tier2.devtools.log_replay import LogError, parse_levels, past_escalations

        assert file is not None
        try:
            found = past_escalations(file, parse_levels(levels), level_column, zone)
        except LogError as exc:
            raise fail(str(exc)) from None
        except OSError as exc:
            raise fail(f"{file}: {exc.strerror or exc}") from None
        lo = datetime.combine(period[0], datetime.min.time(), zone) if period[0] else None
        hi = (
            datetime.combine(period[1] + timedelta(days=1), datetime.min.time(), zone)
            if period[1]
            else None
        )
        kept = [
            e
            for e in found
            if (lo is None or e.escalated_at >= lo) and (hi is None or e.escalated_at < hi)
        ]
        return kept, f"csv:{file.name}"
    span = SqlReportReader(deployment.engine).span()
    start = (
        datetime.combine(period[0], datetime.min.time(), zone)
        if period[0]
        else datetime(1970, 1, 1, tzinfo=UTC)
    )
    if period[1]:
        end = datetime.combine(period[1] + timedelta(days=1), datetime.min.time(), zone)
    else:
        end = span[0] if span else datetime.now(UTC)
    finder = getattr(deployment.desk, "past_escalations", None)
    if finder is None:
        raise fail(f"--source {source.value}: this help desk cannot read its history yet")
    return list(finder(start, end)), source.value

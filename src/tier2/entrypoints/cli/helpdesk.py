"""`tier2 ticket` and `tier2 rt`: working the help desks by hand."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

from tier2.entrypoints import bootstrap
from tier2.entrypoints.cli._common import (
    EXIT_BAD_INPUT,
    DbOption,
    case_models,
    fail,
    parse_time,
    starting,
)

ticket_app = typer.Typer(help="The local help desk's tickets, as an agent works them.")
rt_app = typer.Typer(help="Request Tracker: the custom fields tier2 uses, filing trial cases.")

SEVERITIES = ("critical", "high", "medium", "low")


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

    when = parse_time(at, "--at") or datetime.now(UTC)
    if severity is not None and severity not in SEVERITIES:
        raise fail(f"--severity: {severity!r} is not critical, high, medium or low")
    with starting():
        engine = bootstrap.store(db)
    try:
        LocalHelpDesk(engine).update_ticket(
            ticket_id, actor=actor, at=when, status=status, group=group, severity=severity,
            message=note,
        )  # fmt: skip
    except KeyError as exc:
        raise fail(str(exc.args[0])) from None
    finally:
        engine.dispose()
    sys.stdout.write(f"ticket {ticket_id} updated\n")


@rt_app.command("custom-fields")
def rt_custom_fields(
    config: Annotated[Path | None, typer.Option(help="Configuration file.")] = None,
) -> None:
    """Print the ticket custom fields tier2 reads and writes: name, then RT type."""
    from tier2.helpdesk.rt import custom_field_types

    with starting():
        settings = bootstrap.settings(config)
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
    from tier2.helpdesk.rt import file_case

    with starting():
        settings = bootstrap.settings(config)
        rt_config = settings.connector.rt
        if rt_config is None:
            raise fail(f"{settings.source}: no [connector.rt] section")
        client = bootstrap.rt_client(rt_config)
    good, bad = case_models(cases)
    rt = bootstrap.rt_settings(rt_config)
    try:
        for case in good:
            raw = orjson.loads(case.model_dump_json(by_alias=True, exclude_none=True))
            sys.stdout.write(f"{case.case_id}\t{file_case(client, rt, raw)}\n")
    except ConnectorError as exc:
        raise fail(f"help desk: {exc}") from None
    finally:
        client.close()
    if bad:
        raise typer.Exit(EXIT_BAD_INPUT)

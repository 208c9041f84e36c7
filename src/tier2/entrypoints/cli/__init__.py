"""The `tier2` command: one module per command group, each building what it runs with
`tier2.entrypoints.bootstrap`.

Each command imports what only it needs (the store, the connectors, Rich, the server), so
`tier2 decide` starts without loading SQLAlchemy, Alembic or the help desks.
"""

import typer

from tier2.entrypoints.cli.decide import decide, import_cases, lint
from tier2.entrypoints.cli.demo import demo
from tier2.entrypoints.cli.helpdesk import rt_app, ticket_app
from tier2.entrypoints.cli.run import check, run, serve, status
from tier2.entrypoints.cli.sla import sla_app
from tier2.entrypoints.cli.store import audit_app, case_app, db_app

app = typer.Typer(
    name="tier2",
    help="Owns escalated support cases end to end: deterministic, explained decisions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(decide)
app.command()(lint)
app.command("import")(import_cases)
app.command()(run)
app.command()(serve)
app.command()(check)
app.command()(status)
app.command()(demo)
app.add_typer(db_app, name="db")
app.add_typer(sla_app, name="sla")
app.add_typer(ticket_app, name="ticket")
app.add_typer(rt_app, name="rt")
app.add_typer(audit_app, name="audit")
app.add_typer(case_app, name="case")


def main() -> None:
    app()


__all__ = ["app", "main"]

"""The `tier2` command: one module per command group, each building what it runs with
`tier2.entrypoints.bootstrap`.

Each command imports what only it needs (the store, the connectors, Rich, the server), so
`tier2 decide` starts without loading SQLAlchemy, Alembic or the help desks.
"""

import os
import sys

import typer

from tier2.entrypoints.cli.decide import decide, import_cases, lint
from tier2.entrypoints.cli.demo import demo_app
from tier2.entrypoints.cli.helpdesk import rt_app, ticket_app
from tier2.entrypoints.cli.library import library_app
from tier2.entrypoints.cli.report import baseline_app, report
from tier2.entrypoints.cli.run import check, run, serve, status
from tier2.entrypoints.cli.sla import sla_app
from tier2.entrypoints.cli.store import audit_app, case_app, db_app
from tier2.entrypoints.cli.user import user_app
from tier2.entrypoints.cli.whatif import whatif

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
app.command()(report)
app.command()(whatif)
app.add_typer(db_app, name="db")
app.add_typer(sla_app, name="sla")
app.add_typer(ticket_app, name="ticket")
app.add_typer(rt_app, name="rt")
app.add_typer(audit_app, name="audit")
app.add_typer(case_app, name="case")
app.add_typer(baseline_app, name="baseline")
app.add_typer(demo_app, name="demo")
app.add_typer(user_app, name="user")
app.add_typer(library_app, name="library")


def main() -> None:
    """Run the command; what it did not foresee ends it with one line, never a traceback
    (set TIER2_TRACEBACK=1 to see one)."""
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("tier2: interrupted\n")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("TIER2_TRACEBACK"):
            raise
        sys.stderr.write(f"tier2: {_one_line(exc)}\n")
        sys.exit(1)


def _one_line(exc: Exception) -> str:
    """The exception in one line: a database's own message rather than SQLAlchemy's
    wrapping of it."""
    cause = getattr(exc, "orig", None) or exc
    message = " ".join(str(cause).split()) or "(no message)"
    if len(message) > 400:
        message = message[:397] + "..."
    kind = type(exc).__name__
    return f"{kind}: {message}"


__all__ = ["app", "main"]

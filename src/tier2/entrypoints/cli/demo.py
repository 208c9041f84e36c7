"""`tier2 demo`: a month of escalations for two companies, owned by tier2."""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tier2.entrypoints.cli._common import progress

if TYPE_CHECKING:
    from rich.table import Table

    from tier2.devtools.demo import CompanySummary


demo_app = typer.Typer(
    help="A month of escalations for two companies, owned by tier2; its console.",
    invoke_without_command=True,
)

# the demo's console users, one per role (published: for the demo's stores only)
DEMO_PASSWORD = "tier2-demo-password"
DEMO_USERS = (
    ("head", "head_of_support", None),
    ("senior", "senior", "senior_support"),
    ("manager", "senior", "support_manager"),
    ("viewer", "viewer", None),
)
FolderOption = Annotated[
    Path, typer.Option("--dir", help="Where the demo's stores are (tier2 demo replaces them).")
]


@demo_app.callback()
def demo(
    ctx: typer.Context,
    folder: FolderOption = Path("tier2-demo"),
    seed: Annotated[int, typer.Option(help="Seed of the generated month.")] = 1,
) -> None:
    """A simulated February without tier2, then a March of escalations owned by tier2, for
    Northwind Cloud and Harbor & Pine; `tier2 demo console` opens the web console on them."""
    if ctx.invoked_subcommand is None:
        _run(folder, seed)


def _run(folder: Path, seed: int) -> None:
    from rich.console import Console

    from tier2.devtools.demo import COMPANIES, run_company

    folder.mkdir(parents=True, exist_ok=True)
    console = Console()
    summaries = []
    with progress() as bar:
        for company, library_name, n in COMPANIES:
            task = bar.add_task(f"{company}: March 2026, hour by hour", total=31 * 24 + 1)
            summaries.append(
                run_company(
                    folder,
                    company,
                    library_name,
                    n=n,
                    seed=seed,
                    on_hour=partial(bar.advance, task),
                )
            )
    for s in summaries:
        _demo_users(folder / f"{s.library}.db")
        console.print(demo_table(s))
    console.print(
        f"Stores: {', '.join(str(folder / (s.library + '.db')) for s in summaries)} "
        f"(try: TIER2_AUDIT_KEY=tier2-demo-audit-key tier2 audit verify --db "
        f"{folder / 'saas.db'}; tier2 sla scan --db "
        f"{folder / 'saas.db'} escalates the cases still open past their due time)"
    )
    console.print(
        f"Console: tier2 demo console --dir {folder} (--library ecommerce for Harbor & Pine), "
        f"then open http://127.0.0.1:8000/ and sign in as head, senior, manager or viewer "
        f"with the password {DEMO_PASSWORD}"
    )


def _demo_users(path: Path) -> None:
    """The demo's console users in a demo store."""
    from datetime import UTC, datetime

    from tier2.entrypoints.http.console._security import hash_password
    from tier2.store.console import save_user
    from tier2.store.db import database_url, make_engine

    engine = make_engine(database_url(str(path)))
    hashed = hash_password(DEMO_PASSWORD)
    for name, role, team in DEMO_USERS:
        save_user(engine, name, hashed, role, team, datetime.now(UTC))
    engine.dispose()


@demo_app.command("console")
def demo_console(
    folder: FolderOption = Path("tier2-demo"),
    library: Annotated[
        str, typer.Option("--library", "-l", help="saas (Northwind Cloud) or ecommerce.")
    ] = "saas",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the web console on a demo store made by `tier2 demo` (a session secret of its
    own; the demo's users; no runner). Stop it with Ctrl-C."""
    import secrets
    import sys

    from tier2.entrypoints import bootstrap
    from tier2.entrypoints.cli._common import fail, starting
    from tier2.entrypoints.cli.run import web_console
    from tier2.entrypoints.http import create_app, server
    from tier2.entrypoints.http.console import ConsoleSettings

    if library not in ("saas", "ecommerce"):
        raise fail("--library: saas or ecommerce")
    store = folder / f"{library}.db"
    if not store.exists():
        raise fail(f"{store}: no demo store here; run tier2 demo first")
    settings = bootstrap.settings(None).model_copy(update={"library": library})
    token = secrets.token_urlsafe(32)
    opening = bootstrap.deployment(settings, db=str(store), connector="local")
    with starting(), opening as deployment:
        app_ = create_app(
            deployment.library, deployment.engine, [token], limits=bootstrap.http_limits(settings),
            console=web_console(deployment, ConsoleSettings(secret=secrets.token_urlsafe(32))),
        )  # fmt: skip
        sys.stderr.write(
            f"tier2: the console on {store}: http://{host}:{port}/ (sign in as head, senior, "
            f"manager or viewer; password {DEMO_PASSWORD}); API token for this run: {token}\n"
        )
        serving = server(app_, bootstrap.http_limits(settings), host=host, port=port)
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn raises the Ctrl-C it stopped on
            serving.run()
        if not serving.started:
            raise typer.Exit(3)


def demo_table(s: CompanySummary) -> Table:
    from rich.table import Table

    table = Table(
        title=f"{s.company} ({s.library}): {s.cases} tier-2 cases, March 2026", show_header=False
    )
    table.add_column("what", style="bold")
    table.add_column("figures")

    def pct(k: int) -> str:
        return f"{k / s.cases:.0%}" if s.cases else "0%"

    def listed(counts: dict[str, int] | dict[str, float], money: bool = False) -> str:
        pairs = sorted(counts.items()) if money else sorted(counts.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{k} {v:,.2f}" if money else f"{k} {v}" for k, v in pairs) or "none"

    table.add_row("outcomes", ", ".join(f"{k} {v} ({pct(v)})" for k, v in s.outcomes.most_common()))
    table.add_row("decided by", ", ".join(f"{k} {v}" for k, v in s.first_reasons.most_common()))
    table.add_row("escalated to", listed(dict(s.targets.most_common())))
    table.add_row("actions carried out", listed(dict(s.actions.most_common())))
    table.add_row("money granted", listed(dict(s.money), money=True))
    cycle = s.report["cycle_time"]
    table.add_row(
        "cycle time, March",
        f"median {cycle['median_business_hours']} business hours, 90th percentile "
        f"{cycle['p90_business_hours']} ({cycle['cases']} cases finally resolved; from tier-1's "
        "escalation to the resolution, waiting on the customer left out)",
    )
    base = s.report["baseline"]
    if base is not None:
        before = base["cycle_time"]
        change = base["change_pct"]
        table.add_row(
            "before tier2, February",
            f"median {before['median_business_hours']} business hours, 90th percentile "
            f"{before['p90_business_hours']} ({before['cases']} escalations, simulated: each "
            "to a senior who starts cold); change of the median: "
            + ("n/a" if change is None else f"{change:+.1f} %"),
        )
    table.add_row(
        "tier-2 SLA (A5)",
        f"{s.senior_resolved} escalated cases resolved by seniors, {s.still_open} still open; "
        f"monitor escalated to support_manager: {s.sla_escalated['breached']} breached, "
        f"{s.sla_escalated['at_risk']} at risk and untouched for a business hour",
    )
    return table

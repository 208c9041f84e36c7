"""`tier2 demo`: a month of escalations for two companies, owned by tier2."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tier2.entrypoints.cli._common import progress

if TYPE_CHECKING:
    from rich.table import Table

    from tier2.devtools.demo import CompanySummary


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
        console.print(demo_table(s))
    console.print(
        f"Stores: {', '.join(str(folder / (s.library + '.db')) for s in summaries)} "
        f"(try: TIER2_AUDIT_KEY=tier2-demo-audit-key tier2 audit verify --db "
        f"{folder / 'saas.db'}; tier2 sla scan --db "
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

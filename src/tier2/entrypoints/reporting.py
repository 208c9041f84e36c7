"""The report's forms for people: text for a terminal, a ticket-level CSV, and one
self-contained HTML page (inline styles and SVG charts: no script, no network) shaped like an
escalation metrics dashboard for the Monday exec meeting. JSON is the report itself."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from importlib import resources
from typing import Any

from jinja2 import Environment, select_autoescape

CSV_COLUMNS = (
    "case_id", "ticket_id", "received_at", "escalated_at", "state", "outcome", "first_reason",
    "escalate_to", "escalations", "resolved_at", "resolved_by", "business_hours",
    "calendar_hours", "waiting_hours", "sla_met",
)  # fmt: skip

SIMULATION_NOTE = (
    "The demo's baseline is simulated: in February, before tier2, every escalation went to a "
    "senior specialist who started cold (read the thread, the history and the policy, then "
    "worked the case); the same arrivals, seniors' working hours and customer waits as in "
    "March, which tier2 handled."
)


def text(report: Mapping[str, Any]) -> str:
    """A summary for a terminal."""
    cycle = report["cycle_time"]
    lines = [
        f"tier2 report {report['period']['from']} to {report['period']['to']}",
        f"escalations received: {report['escalations']:,}",
        "outcomes: " + _pairs(report["outcomes"]),
        "deciding reasons: " + _pairs(report["first_reasons"]),
        "escalated to: " + _pairs(report["escalated_to"]),
        "",
        f"cycle time ({cycle['cases']:,} cases resolved; waiting on the customer left out):",
        f"  business hours: median {cycle['median_business_hours']}, "
        f"p90 {cycle['p90_business_hours']}",
        f"  calendar hours: median {cycle['median_calendar_hours']}, "
        f"p90 {cycle['p90_calendar_hours']}",
        f"  waiting on the customer: median {cycle['median_waiting_hours']} h "
        f"({cycle['waited']:,} cases waited)",
    ]
    base = report["baseline"]
    if base is not None:
        b = base["cycle_time"]
        change = base["change_pct"]
        lines += [
            f"baseline {base['period']['from']} to {base['period']['to']} "
            f"({b['cases']:,} escalations before tier2): median {b['median_business_hours']} "
            f"business hours, p90 {b['p90_business_hours']}",
            "  change of the median: " + ("n/a" if change is None else f"{change:+.1f} %"),
        ]
    sla = report["sla"]
    review = report["review"]
    agreement = review["agreement_rate"]
    lines += [
        "",
        f"SLA (tier-2 targets): {sla['met']:,} met, {sla['breached']:,} breached "
        f"(breach rate {sla['breach_rate']:.1%})",
        f"re-escalated: {report['reescalated']:,} ({report['reescalation_rate']:.1%})",
        "resolved by: " + _pairs(report["resolved_by"]),
        "backlog by age: " + _pairs(report["backlog"]),
        "at risk or breached, not yet resolved: "
        + (
            ", ".join(f"{r['case_id']} ({r['kind']}, due {r['due']})" for r in report["at_risk"])
            or "none"
        ),
        "money granted: " + (_money(report["money_by_authority"]) or "none"),
        f"reviews: {review['reviewed']:,}"
        + ("" if agreement is None else f", agreement {agreement:.1%}"),
    ]
    return "\n".join(lines) + "\n"


def _pairs(counts: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def _money(by_authority: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    return "; ".join(
        f"{who}: " + ", ".join(
            f"{kind} {amount:,.2f} {currency}".rstrip()
            for kind, by_currency in kinds.items()
            for currency, amount in by_currency.items()
        )
        for who, kinds in by_authority.items()
    )  # fmt: skip


def csv_rows(rows: Iterable[Mapping[str, Any]]) -> Iterable[str]:
    """The ticket-level CSV: a header, then one line per case received in the period."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    yield _taken(out)
    for row in rows:
        writer.writerow([_cell(row, name) for name in CSV_COLUMNS])
        yield _taken(out)


def _taken(out: io.StringIO) -> str:
    value = out.getvalue()
    out.seek(0)
    out.truncate()
    return value


def _cell(row: Mapping[str, Any], name: str) -> Any:
    if name.endswith("_hours"):
        seconds = row.get(name.replace("_hours", "_seconds"))
        return "" if seconds is None else round(seconds / 3600, 2)
    value = row.get(name)
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else spreadsheet_safe(value)


FORMULA = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: a text cell starting with = + - @, a tab or a
    carriage return (a formula, to Excel and its kin) starts with a ' instead."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA) else value


_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def html(report: Mapping[str, Any], *, simulated_baseline: bool = False) -> str:
    """One self-contained page."""
    source = (resources.files("tier2.entrypoints") / "templates" / "report.html").read_text("utf-8")
    template = _env.from_string(source)
    return template.render(
        r=report,
        bars=bars,
        note=SIMULATION_NOTE if simulated_baseline else None,
    )


def bars(counts: Mapping[str, float], width: int = 420) -> list[dict[str, Any]]:
    """A horizontal bar chart's bars: label, value, length in pixels."""
    top = max((float(v) for v in counts.values()), default=0.0) or 1.0
    return [
        {"label": str(k), "value": v, "length": round(width * float(v) / top)}
        for k, v in counts.items()
    ]

"""`tier2 sla replay`: a real help desk's event log, replayed through tier2's SLA clocks.

Each ticket of the log is a case. Its clock starts at its first event, at the severity its
seriousness level maps to; a `Wait` pauses it until the ticket's next event; a change of
level recomputes it under the new level's target; `Resolve ticket` (or, failing that,
`Closed`) stops it. The report gives, per seriousness level, the business-hours resolution
times (waiting excluded) and the share of tickets that would have breached the matrix.
Timestamps without an offset are read in the matrix calendar's time zone.
"""

from __future__ import annotations

import csv
import gzip
import io
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from tier2.app.baseline import PastEscalation
from tier2.core.library import Sla
from tier2.core.sla import ClockEvent, ClockState, EventKind, SlaClocks, StatusChange

COLUMNS = ("Case ID", "Activity", "Complete Timestamp")
DEFAULT_LEVELS = {"Value 1": "low", "Value 2": "medium", "Value 3": "high", "Value 4": "critical"}
WAIT, RESOLVE, CLOSED = "Wait", "Resolve ticket", "Closed"


class LogError(ValueError):
    """A log that cannot be replayed: which line, which column, what was wrong."""


@dataclass
class LevelReport:
    level: str
    severity: str
    target_hours: float
    hours: list[float] = field(default_factory=list)
    breached: int = 0
    waited: int = 0
    open: int = 0  # never resolved nor closed in the log

    def quantile(self, q: int) -> float:
        if not self.hours:
            return 0.0
        if len(self.hours) == 1:
            return self.hours[0]
        return statistics.quantiles(self.hours, n=100, method="inclusive")[q - 1]


@dataclass
class Replay:
    tickets: int
    events: int
    levels: list[LevelReport]


def _open(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_log(
    path: Path, level_column: str, zone: ZoneInfo
) -> tuple[dict[str, list[tuple[datetime, str, str]]], int]:
    """Each ticket's events (time, activity, level) in the order of the log."""
    tickets: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    n = 0
    with _open(path) as handle:
        rows = csv.DictReader(handle)
        missing = [c for c in (*COLUMNS, level_column) if c not in (rows.fieldnames or [])]
        if missing:
            raise LogError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
        for line, row in enumerate(rows, start=2):
            try:
                at = datetime.fromisoformat(row["Complete Timestamp"])
            except ValueError:
                raise LogError(
                    f"{path}: line {line} (ticket {row['Case ID']}): Complete Timestamp: "
                    f"not a date and time: {row['Complete Timestamp']!r}"
                ) from None
            if at.tzinfo is None:
                at = at.replace(tzinfo=zone)
            tickets[row["Case ID"]].append((at, row["Activity"], row[level_column]))
            n += 1
    return tickets, n


def clock_events(
    events: Sequence[tuple[datetime, str, str]], levels: Mapping[str, str]
) -> tuple[list[ClockEvent], bool]:
    """A ticket's clock events, and whether it ever waited."""
    ordered = sorted(events, key=lambda e: e[0])
    first_at, _, first_level = ordered[0]
    level = first_level
    out = [ClockEvent(first_at, EventKind.START, levels[level])]
    waiting = waited = False
    for at, activity, this_level in ordered[1:]:
        if this_level != level and this_level in levels:
            level = this_level
            out.append(ClockEvent(at, EventKind.SEVERITY, levels[level]))
        if waiting and activity != WAIT:
            out.append(ClockEvent(at, EventKind.RESUME))
            waiting = False
        if activity == WAIT and not waiting:
            out.append(ClockEvent(at, EventKind.PAUSE))
            waiting = waited = True
        elif activity in (RESOLVE, CLOSED):
            out.append(ClockEvent(at, EventKind.STOP))
            break
    return out, waited


def replay(path: Path, sla: Sla, levels: Mapping[str, str], level_column: str) -> Replay:
    clocks = SlaClocks(sla)
    tickets, n = read_log(path, level_column, clocks.business.zone)
    unknown = sorted({e[2] for evs in tickets.values() for e in evs} - set(levels))
    if unknown:
        raise LogError(
            f"{path}: {level_column}: no severity for level(s) {', '.join(unknown)} "
            f"(give them with --levels)"
        )
    reports: dict[str, LevelReport] = {}
    for events in tickets.values():
        # the case counts under the level it ended at (what the matrix finally applied)
        ordered = sorted(events, key=lambda e: e[0])
        stop = next(
            (i for i, e in enumerate(ordered) if e[1] in (RESOLVE, CLOSED)), len(ordered) - 1
        )
        final_level = ordered[stop][2]
        severity = levels[final_level]
        report = reports.get(final_level)
        if report is None:
            target = clocks.target(severity)
            reports[final_level] = report = LevelReport(
                final_level, severity, target.seconds / 3600
            )
        clock_history, waited = clock_events(ordered, levels)
        if clock_history[-1].kind is not EventKind.STOP:
            report.open += 1
            continue
        clock = clocks.state(clock_history, clock_history[-1].at)
        assert clock is not None
        report.hours.append(clock.elapsed_seconds / 3600)
        report.breached += clock.state is ClockState.BREACHED
        report.waited += waited
    return Replay(len(tickets), n, [reports[k] for k in sorted(reports)])


def parse_levels(text: str | None) -> dict[str, str]:
    """`Value 1=low,Value 2=medium,...` (the default maps Value 1..4 to low..critical)."""
    if not text:
        return dict(DEFAULT_LEVELS)
    out = {}
    for part in text.split(","):
        level, sep, severity = part.partition("=")
        if not sep or severity.strip() not in ("critical", "high", "medium", "low"):
            raise LogError(f"--levels: {part!r} is not LEVEL=critical|high|medium|low")
        out[level.strip()] = severity.strip()
    return out


def rows(result: Replay) -> Iterable[list[str]]:
    for r in result.levels:
        resolved = len(r.hours)
        yield [
            r.level,
            r.severity,
            f"{r.target_hours:g} h",
            f"{resolved:,}",
            f"{r.quantile(50):.1f} h",
            f"{r.quantile(90):.1f} h",
            f"{(r.breached / resolved if resolved else 0):.1%}",
            f"{(r.waited / resolved if resolved else 0):.1%}",
            f"{r.open:,}",
        ]


def past_escalations(
    path: Path, levels: Mapping[str, str], level_column: str, zone: ZoneInfo
) -> list[PastEscalation]:
    """Each ticket of the log as an escalation handled before tier2 (for the baseline): it
    starts at its first event, waits from a `Wait` to its next event, and is finished at
    `Resolve ticket` (or `Closed`)."""
    tickets, _ = read_log(path, level_column, zone)
    out = []
    for ticket_id, events in tickets.items():
        ordered = sorted(events, key=lambda e: e[0])
        changes: list[StatusChange] = []
        waiting = False
        for at, activity, _level in ordered[1:]:
            if activity == WAIT:
                if not waiting:
                    changes.append(StatusChange(at, status="pending", actor="log"))
                waiting = True
                continue
            if activity in (RESOLVE, CLOSED):
                changes.append(StatusChange(at, status="resolved", actor="log"))
                break
            if waiting:
                changes.append(StatusChange(at, status="open", actor="log"))
                waiting = False
        first_at, _, level = ordered[0]
        out.append(PastEscalation(ticket_id, levels.get(level), first_at, tuple(changes)))
    return out

"""The SLA monitor's work per case: `case_clocks`, what `tier2 sla scan` computes for each case.

    .venv/bin/python benchmarks/sla.py [--cases 200000] [--peer-sample 3000] [--seed 1]
        [--repeat 3]

Generates N owned cases (seeded), half on each built-in library's SLA (saas: Berlin business
hours and holidays; ecommerce: New York), each with a payload and its ticket's timeline as a
help desk gives them: escalated by tier-1 in the last day (60 %), 1-5 days ago (30 %) or
5-30 days ago (10 %), some after an earlier escalation that came back, moved to a tier-2
group, then a third with a
finished wait on the customer, one in ten waiting now, one in ten with a severity change,
a few resolved or sent back to tier-1, and half with a recent action by their owner.
Severities: 5 % critical (around the clock), 25 % high, 40 % medium, 30 % low.

Times `tier2.app.sla_monitor.case_clocks` over every case, the function `SlaMonitor.scan`
runs per case once the cases and their timelines are read (reading them is not timed):
the case's clock events from its ticket's changes (`case_clock_events`), each SLA target's
clock at the scan's moment (`clock_state`), and each open clock's verdict
(`monitor_verdict`). The calendars are laid out before timing (a monitor does that once);
the best of --repeat passes counts. Reports open clocks/s and cases/s.

Then does the business-time part alone with `businesstimedelta` (its `difference` over each
running stretch and its addition for the due time) on a sample of open business-hours
clocks, checks it gives the same elapsed and due times, and reports the ratio per clock.
Prints figures only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any

import businesstimedelta as btd
import holidays
import pytz

from tier2.app.ports import Timeline
from tier2.app.sla_monitor import CLOCK_WORDS, CaseClocks, case_clocks
from tier2.core.library import Calendar
from tier2.core.sla import (
    AROUND_THE_CLOCK,
    Clock,
    SlaClocks,
    StatusChange,
    case_clock_events,
    running_segments,
)
from tier2.library.loader import load_library

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
LIBRARIES = ("saas", "ecommerce")
SEVERITIES = (("critical", 5), ("high", 25), ("medium", 40), ("low", 30))
DAY = 86_400
AGES = (60, 30, 10)  # % of cases escalated in the last day, 1-5 days ago, 5-30 days ago

Case = tuple[dict[str, Any], Timeline]


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _between(rng: random.Random, a: float, b: float) -> float:
    """A whole second in [a, b] (businesstimedelta drops fractions)."""
    return float(int(a + rng.random() * (b - a)))


def _after_start(rng: random.Random, start: float, now: float) -> list[StatusChange]:
    """What happens to a ticket once tier2 has it: waits, a severity change, an end."""
    changes = [StatusChange(_at(start + 120), status="with_tier2", group="tier2", actor="tier2")]
    t = start + 120
    if rng.random() < 1 / 3:  # a finished wait on the customer
        w_from = _between(rng, t, t + (now - t) / 2)
        t = _between(rng, w_from, w_from + (now - w_from) / 2)
        changes += [
            StatusChange(_at(w_from), status="pending", actor="alice"),
            StatusChange(_at(t), status="open", actor="customer"),
        ]
    if rng.random() < 0.1:
        t = _between(rng, t, now)
        severity = rng.choice([s for s, _ in SEVERITIES])
        changes.append(StatusChange(_at(t), severity=severity, actor="alice"))
    end = rng.random()
    if end < 0.1:  # waiting now
        changes.append(StatusChange(_at(_between(rng, t, now)), status="pending", actor="bob"))
    elif end < 0.13:
        changes.append(StatusChange(_at(_between(rng, t, now)), status="resolved", actor="bob"))
    elif end < 0.15:
        changes.append(StatusChange(_at(_between(rng, t, now)), group="tier1", actor="bob"))
    return changes


def generate(n: int, rng: random.Random) -> list[Case]:
    """n owned cases: a payload and its ticket's timeline each."""
    now = NOW.timestamp()
    names, weights = zip(*SEVERITIES, strict=True)
    out = []
    for _ in range(n):
        days = rng.choices([rng.uniform(0, 1), rng.uniform(1, 5), rng.uniform(5, 30)], AGES)[0]
        start = float(int(now - days * DAY))
        received = start - rng.uniform(600, DAY)
        severity = rng.choices(names, weights)[0]
        changes = [StatusChange(_at(received), status="open", severity=severity, actor="tier1")]
        if rng.random() < 0.05:  # an earlier escalation that came back to tier-1
            back = _between(rng, received, start)
            changes += [
                StatusChange(_at(back - 3600), status="escalated", actor="tier1"),
                StatusChange(_at(back), status="open", group="tier1", actor="tier2"),
            ]
        changes.append(StatusChange(_at(start), status="escalated", severity=severity))
        changes += _after_start(rng, start, now)
        owner = _at(_between(rng, start, now)) if rng.random() < 0.5 else None
        payload = {
            "received_at": _at(received).isoformat(),
            "handoff": {"escalated_at": _at(start).isoformat()},
            "ticket": {"id": f"T{len(out)}", "severity": severity},
        }
        out.append((payload, Timeline(tuple(sorted(changes, key=lambda c: c.at)), owner)))
    return out


def scan(clocks: SlaClocks, cases: Sequence[Case]) -> list[CaseClocks]:
    """What a scan computes for each case, as SlaMonitor does it."""
    return [case_clocks(clocks, payload, timeline, NOW) for payload, timeline in cases]


def peer_rules(calendar: Calendar) -> btd.Rules:
    """The calendar (one window a weekday, with its holidays) as businesstimedelta rules."""
    windows = {day: w for day, w in calendar.windows.items() if w}
    (((a, b),),) = set(windows.values())  # one and the same window each working day
    tz = pytz.timezone(calendar.timezone)
    closed = holidays.country_holidays(
        calendar.holidays_country,
        subdiv=calendar.holidays_subdivision,
        years=range(NOW.year - 1, NOW.year + 2),
        observed=calendar.holidays_observed,
    )
    weekdays = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    return btd.Rules(
        [
            btd.WorkDayRule(
                start_time=clock_time.fromisoformat(a),
                end_time=clock_time.fromisoformat(b),
                working_days=[i for i, d in enumerate(weekdays) if d in windows],
                tz=tz,
            ),
            btd.HolidayRule(set(closed), tz=tz),
        ]
    )


def peer_clock(rules: btd.Rules, case: Case, clock: Clock) -> float:
    """businesstimedelta's elapsed time (and due time, checked) of a case's clock; its time."""
    payload, timeline = case
    started = datetime.fromisoformat(payload["handoff"]["escalated_at"])
    events = case_clock_events(
        started, payload["ticket"]["severity"], timeline.changes, CLOCK_WORDS
    )
    segments, since, _, _, _ = running_segments(events, NOW)
    begin = time.perf_counter()
    closed = sum(rules.difference(_at(a), _at(b)).timedelta.total_seconds() for a, b in segments)
    elapsed, due = closed, None
    if since is not None:
        elapsed += rules.difference(_at(since), NOW).timedelta.total_seconds()
        left = clock.target_seconds - closed
        if left > 0:
            due = _at(since) + btd.BusinessTimeDelta(rules, timedelta=timedelta(seconds=left))
    spent = time.perf_counter() - begin
    assert abs(elapsed - clock.elapsed_seconds) < 1e-3, (payload, elapsed, clock)
    assert due is None or clock.due is None or abs((due - clock.due).total_seconds()) < 1e-3
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--peer-sample", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; the best is kept")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    libraries = {name: SlaClocks(load_library(name).sla) for name in LIBRARIES}
    half = args.cases // 2
    cases = {"saas": generate(half, rng), "ecommerce": generate(args.cases - half, rng)}
    for name, clocks in libraries.items():  # lay the calendars out, as a running monitor has
        scan(clocks, cases[name][:200])

    ours = math.inf
    for _ in range(args.repeat):
        start = time.perf_counter()
        results = {name: scan(clocks, cases[name]) for name, clocks in libraries.items()}
        ours = min(ours, time.perf_counter() - start)

    everything = [r for rs in results.values() for r in rs]
    states = Counter(clock.state.value for r in everything for clock, _ in r.open)
    verdicts = Counter(v.value for r in everything for _, v in r.open if v is not None)
    n_open = sum(states.values())
    print(f"{args.cases:,} owned cases on 2 libraries (seed {args.seed})")
    print(
        f"tier2 case_clocks: {ours:.2f} s; {n_open / ours:,.0f} open clocks/s, "
        f"{args.cases / ours:,.0f} cases/s ({ours / args.cases * 1e6:.1f} µs/case)"
    )
    print(
        f"  {n_open:,} open clocks: " + ", ".join(f"{k} {v:,}" for k, v in sorted(states.items()))
    )
    print(
        f"  {sum(r.stopped for r in everything):,} stopped, "
        f"{sum(len(r.failed) for r in everything):,} failed; would escalate: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(verdicts.items()))
    )

    peer_time, peer_clocks = 0.0, 0
    for name, clocks in libraries.items():
        rules = peer_rules(clocks.sla.calendar)
        sample = [
            (case, clock)
            for case, result in zip(cases[name], results[name], strict=True)
            for clock, _ in result.open
            if clocks.sla.targets[clock.target][clock.severity].clock != AROUND_THE_CLOCK
        ][: args.peer_sample // len(libraries)]
        peer_time += sum(peer_clock(rules, case, clock) for case, clock in sample)
        peer_clocks += len(sample)
    per_clock = peer_time / peer_clocks
    print(
        f"businesstimedelta, the business-time arithmetic alone: {per_clock * 1e6:.0f} µs/clock "
        f"(sample of {peer_clocks:,} business-hours clocks, same elapsed and due times)"
    )
    print(f"ratio: tier2's whole per-case work is {per_clock * n_open / ours:,.0f}x faster")


if __name__ == "__main__":
    main()

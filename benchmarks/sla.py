"""SLA state of many open cases: tier2's vectorised clocks against businesstimedelta.

    .venv/bin/python benchmarks/sla.py [--cases 1000000] [--peer-sample 3000] [--seed 1]

Generates N open cases (seeded) spread over four calendars (Berlin and New York business
hours with their holidays, Rome with a lunch break and Italian holidays, and around the
clock), each started in the last 60 days, a third with finished waits on the customer and
one in ten waiting now. Reports
- tier2: the time to compute every case's state, elapsed business time and due time with
  `clock_states_many` (columns already built; one pass per calendar), and the cost of
  building those columns from event histories for a sample;
- the same work case by case with `businesstimedelta` (its `difference` over each running
  stretch and its addition for the due time) on a sample of the business-hours cases,
  checked against tier2's figures, and extrapolated per case, as a ratio.
Prints figures only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time

import businesstimedelta as btd
import holidays
import numpy as np
import pytz

from tier2.core.library import Calendar
from tier2.core.sla import (
    AroundTheClock,
    BusinessHours,
    ClockColumns,
    ClockEvent,
    EventKind,
    clock_states_many,
    columns_of,
)

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
WEEK = ("monday", "tuesday", "wednesday", "thursday", "friday")
CALENDARS = {
    "berlin": ("Europe/Berlin", "DE", "BE", (("09:00", "18:00"),)),
    "new_york": ("America/New_York", "US", None, (("09:00", "18:00"),)),
    "rome": ("Europe/Rome", "IT", None, (("09:00", "13:00"), ("14:00", "18:00"))),
}
TARGET_HOURS = np.array([8.0, 18.0, 27.0])


def business(
    zone: str, country: str, subdiv: str | None, windows: tuple[tuple[str, str], ...]
) -> BusinessHours:
    return BusinessHours(
        Calendar(timezone=zone, windows=dict.fromkeys(WEEK, windows), holidays_country=country,
                 holidays_subdivision=subdiv)
    )  # fmt: skip


def peer(
    zone: str, country: str, subdiv: str | None, windows: tuple[tuple[str, str], ...]
) -> btd.Rules:
    tz = pytz.timezone(zone)
    days = set(holidays.country_holidays(country, subdiv=subdiv, years=range(2025, 2028)))
    rules: list[btd.rules.Rule] = [
        btd.WorkDayRule(
            start_time=clock_time(9), end_time=clock_time(18), working_days=[0, 1, 2, 3, 4], tz=tz
        ),
        btd.HolidayRule(days, tz=tz),
    ]
    if len(windows) > 1:
        rules.append(
            btd.LunchTimeRule(
                start_time=clock_time(13),
                end_time=clock_time(14),
                working_days=[0, 1, 2, 3, 4],
                tz=tz,
            )
        )
    return btd.Rules(rules)


def generate(n: int, rng: np.random.Generator) -> tuple[ClockColumns, np.ndarray]:
    """n open clocks: start, target, at most one finished wait, some waiting now."""
    now = NOW.timestamp()
    # most open cases started in the last week; one in ten is older (many of those breached)
    age = np.where(rng.random(n) < 0.9, rng.uniform(0, 7, n), rng.uniform(7, 60, n)) * 86400
    start = np.floor(now - age)  # whole seconds: businesstimedelta drops fractions
    target = TARGET_HOURS[rng.integers(0, 3, n)] * 3600
    waited = rng.random(n) < 1 / 3
    w_from = np.floor(start + rng.uniform(0, 1, n) * (now - start) * 0.5)
    w_to = np.floor(w_from + rng.uniform(0, 1, n) * (now - w_from) * 0.5)
    waiting_now = rng.random(n) < 0.1
    pause_now = np.floor(w_to + rng.uniform(0, 1, n) * (now - w_to))
    idx = np.arange(n)
    # running stretches: [start, w_from) and [w_to, ...) for those that waited, else [start, ...)
    seg_case = np.concatenate([idx[waited], idx[waiting_now]])
    seg_from = np.concatenate([start[waited], np.where(waited, w_to, start)[waiting_now]])
    seg_to = np.concatenate([w_from[waited], pause_now[waiting_now]])
    running = np.where(waiting_now, np.nan, np.where(waited, w_to, start))
    return ClockColumns(target, running, seg_case, seg_from, seg_to), start


def histories_of(cols: ClockColumns, start: np.ndarray, k: int) -> list[list[ClockEvent]]:
    """The event histories of the first k clocks (what the store would give)."""
    out = []
    for i in range(k):
        events = [ClockEvent(datetime.fromtimestamp(start[i], UTC), EventKind.START, "high")]
        for a, b in zip(
            cols.segment_from[cols.segment_case == i],
            cols.segment_to[cols.segment_case == i],
            strict=True,
        ):
            if a > start[i]:
                events.append(ClockEvent(datetime.fromtimestamp(a, UTC), EventKind.RESUME))
            events.append(ClockEvent(datetime.fromtimestamp(b, UTC), EventKind.PAUSE))
        if not np.isnan(cols.running_since[i]) and cols.running_since[i] > start[i]:
            events.append(
                ClockEvent(datetime.fromtimestamp(cols.running_since[i], UTC), EventKind.RESUME)
            )
        out.append(events)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--peer-sample", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    hours = {name: business(*spec) for name, spec in CALENDARS.items()}
    groups = {name: generate(args.cases // 4, rng) for name in CALENDARS}
    groups["24x7"] = generate(args.cases - 3 * (args.cases // 4), rng)
    everyone = {**hours, "24x7": AroundTheClock()}
    for name, (cols, _) in groups.items():  # lay the calendars out (once per process)
        everyone[name].cover_range(
            float(np.nanmin(cols.segment_from, initial=NOW.timestamp())),
            NOW.timestamp() + 400 * 86400,
        )

    start = time.perf_counter()
    results = {
        name: clock_states_many(everyone[name], cols, NOW) for name, (cols, _) in groups.items()
    }
    ours = time.perf_counter() - start
    counts = np.bincount(np.concatenate([r.state for r in results.values()]), minlength=4)
    print(f"{args.cases:,} open cases over 4 calendars (seed {args.seed})")
    print(
        f"tier2 clock_states_many: {ours:.3f} s ({ours / args.cases * 1e9:.0f} ns/case); running "
        f"{counts[0]:,}, paused {counts[1]:,}, at risk {counts[2]:,}, breached {counts[3]:,}"
    )

    k = min(args.peer_sample, args.cases // 4)
    cols, starts = groups["berlin"]
    histories = histories_of(cols, starts, k)
    start = time.perf_counter()
    columns_of(histories, list(cols.target_seconds[:k]), NOW)
    built = (time.perf_counter() - start) / k
    print(f"tier2 columns from event histories: {built * 1e6:.1f} µs/case (sample of {k:,})")

    peer_total, peer_cases = 0.0, 0
    for name, spec in CALENDARS.items():
        rules, cols, ours_result = peer(*spec), groups[name][0], results[name]
        sample = range(k // 3)
        start = time.perf_counter()
        for i in sample:
            mine = cols.segment_case == i
            closed = 0.0
            for a, b in zip(cols.segment_from[mine], cols.segment_to[mine], strict=True):
                closed += rules.difference(
                    datetime.fromtimestamp(a, UTC), datetime.fromtimestamp(b, UTC)
                ).timedelta.total_seconds()
            elapsed, since = closed, cols.running_since[i]
            if not np.isnan(since):
                began = datetime.fromtimestamp(since, UTC)
                elapsed += rules.difference(began, NOW).timedelta.total_seconds()
                left = float(cols.target_seconds[i]) - closed
                if left > 0:
                    due = began + btd.BusinessTimeDelta(rules, timedelta=timedelta(seconds=left))
                    assert abs(due.timestamp() - ours_result.due[i]) < 1e-3, (name, i)
            assert abs(elapsed - ours_result.elapsed_seconds[i]) < 1e-3, (name, i)
        peer_total += time.perf_counter() - start
        peer_cases += len(sample)
    per_case = peer_total / peer_cases
    print(
        f"businesstimedelta case by case: {per_case * 1e6:.0f} µs/case (sample of {peer_cases:,}, "
        f"same elapsed and due times) -> {per_case * args.cases:.0f} s for {args.cases:,}"
    )
    print(
        f"ratio: tier2 is {per_case * args.cases / ours:,.0f}x faster on the state computation, "
        f"{per_case / (built + ours / args.cases):,.0f}x including building columns from histories"
    )


if __name__ == "__main__":
    main()

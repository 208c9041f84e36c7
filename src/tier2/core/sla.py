"""Business time and SLA clocks: pure arithmetic on a library's business calendar.

A calendar's working time is laid out once per year as a sorted list of intervals in UTC
seconds (each working window of each local working day that is not a holiday), with the
working seconds before each interval summed up. Then

  worked(t)            working seconds from the start of the laid-out range up to t
  elapsed(a, b)        worked(b) - worked(a)
  add(a, s)            the first instant t with worked(t) = worked(a) + s

are two binary searches. Windows are local wall-clock times, so a window on a day when
daylight saving changes lasts what the wall clock says (09:00-18:00 is 9 hours; a 24-hour
window is 23 or 25). A due time that lands on the end of a window is that instant (18:00),
not the next opening. `around the clock` is real elapsed time.

Clocks (`clock_state`) replay a case's events (start, pause, resume, stop, severity) under
the target of the severity that holds now, so a severity or library change recomputes from
the whole history, and paused time stays excluded. `case_clock_events` derives a case's
events from its ticket's changes; what the ticket's statuses and groups mean (waiting,
done, handed back) is the caller's `ClockVocabulary`, not the core's.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import StrEnum
from zoneinfo import ZoneInfo

import holidays as holiday_calendars

from tier2.core.library import Calendar, Sla

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
AROUND_THE_CLOCK = "24x7"


def _seconds_of_day(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def _local_instant(day: date, seconds: int, zone: ZoneInfo) -> float:
    """UTC seconds of a local wall-clock time on a day (24:00 is the next day's 00:00)."""
    extra, seconds = divmod(seconds, 86_400)
    hour, rest = divmod(seconds, 3600)
    wall = datetime.combine(day + timedelta(days=extra), time(hour, rest // 60), tzinfo=zone)
    return wall.timestamp()


class BusinessHours:
    """Working time of one business calendar (laid out lazily, a year at a time)."""

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self.zone = ZoneInfo(calendar.timezone)
        self.windows: tuple[tuple[tuple[int, int], ...], ...] = tuple(
            tuple(
                sorted(
                    (_seconds_of_day(a), _seconds_of_day(b)) for a, b in calendar.windows.get(d, ())
                )
            )
            for d in WEEKDAYS
        )
        self.extra = frozenset(date.fromisoformat(d) for d in calendar.extra_holidays)
        self._first_year = self._last_year = 0
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.before: list[float] = []  # working seconds before each interval
        self.through: list[float] = []  # working seconds up to each interval's end
        # UTC seconds of the years `_cover` needs nothing more for: [first + 1, last - 1]
        self._inner = (math.inf, -math.inf)

    # ------------------------------------------------------------------ laying out

    def holidays(self, years: Iterable[int]) -> frozenset[date]:
        cal = self.calendar
        days: set[date] = set(self.extra)
        if cal.holidays_country:
            days |= set(
                holiday_calendars.country_holidays(
                    cal.holidays_country,
                    subdiv=cal.holidays_subdivision,
                    years=list(years),
                    observed=cal.holidays_observed,
                )
            )
        return frozenset(days)

    def _cover(self, year: int) -> None:
        """Make sure the laid-out range includes the year (and one on each side)."""
        if self.starts and self._first_year < year < self._last_year:
            return
        first = min(year - 1, self._first_year) if self.starts else year - 1
        last = max(year + 1, self._last_year) if self.starts else year + 1
        closed = self.holidays(range(first, last + 1))
        starts, ends = [], []
        day = date(first, 1, 1)
        while day.year <= last:
            if day not in closed:
                for a, b in self.windows[day.weekday()]:
                    s, e = _local_instant(day, a, self.zone), _local_instant(day, b, self.zone)
                    if e > s:
                        starts.append(s)
                        ends.append(e)
            day += timedelta(days=1)
        before, through, total = [], [], 0.0
        for s, e in zip(starts, ends, strict=True):
            before.append(total)
            total += e - s
            through.append(total)
        self.starts, self.ends, self.before, self.through = starts, ends, before, through
        self._first_year, self._last_year = first, last
        if starts:
            self._inner = (
                _local_instant(date(first + 1, 1, 1), 0, self.zone),
                _local_instant(date(last, 1, 1), 0, self.zone),
            )

    def _year(self, t: float) -> int:
        return datetime.fromtimestamp(t, self.zone).year

    def _covering(self, *ts: float) -> None:
        for t in ts:
            if not self._inner[0] <= t < self._inner[1]:
                self._cover(self._year(t))

    # ------------------------------------------------------------------ one at a time

    def worked(self, t: float) -> float:
        """Working seconds from the start of the laid-out range to t (t must be covered)."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0.0
        return self.before[i] + min(t, self.ends[i]) - self.starts[i]

    def elapsed(self, a: float, b: float) -> float:
        """Working seconds between two instants (0 when b is not after a)."""
        if b <= a:
            return 0.0
        self._covering(a, b)
        return self.worked(b) - self.worked(a)

    def add(self, a: float, seconds: float) -> float:
        """The instant when `seconds` of working time have passed since a."""
        if seconds <= 0:
            return a
        self._covering(a)
        goal = self.worked(a) + seconds
        while goal > self.through[-1]:  # past the laid-out range: lay out further
            self._cover(self._last_year + 1)
            goal = self.worked(a) + seconds
        j = bisect_left(self.through, goal)
        return self.starts[j] + (goal - self.before[j])


class AroundTheClock:
    """Real elapsed time: the calendar of an around-the-clock target."""

    def elapsed(self, a: float, b: float) -> float:
        return max(0.0, b - a)

    def add(self, a: float, seconds: float) -> float:
        return a + max(0.0, seconds)


Hours = BusinessHours | AroundTheClock


# --------------------------------------------------------------------------- clocks


class ClockState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    MET = "met"


class EventKind(StrEnum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    SEVERITY = "severity"


@dataclass(frozen=True, slots=True)
class ClockEvent:
    at: datetime
    kind: EventKind
    severity: str | None = None  # for START and SEVERITY


@dataclass(frozen=True, slots=True)
class Target:
    """One SLA target of one severity: how long, on which clock."""

    name: str  # "resolution", "first_response", ...
    severity: str
    seconds: float
    hours: Hours


@dataclass(frozen=True, slots=True)
class Clock:
    target: str
    severity: str
    state: ClockState
    elapsed_seconds: float
    target_seconds: float
    due: datetime | None  # None while paused or stopped
    started: datetime
    stopped: datetime | None

    @property
    def used(self) -> float:
        """Share of the target used (1.0 at the due time)."""
        return self.elapsed_seconds / self.target_seconds


def running_segments(
    events: Sequence[ClockEvent], now: datetime
) -> tuple[list[tuple[float, float]], float | None, str | None, datetime | None, datetime | None]:
    """The running stretches [from, to) up to now, the open stretch's start (None unless
    running), the severity now, the start and the stop."""
    segments: list[tuple[float, float]] = []
    since: float | None = None
    severity: str | None = None
    started: datetime | None = None
    stopped: datetime | None = None
    end = now.timestamp()
    for event in sorted(events, key=lambda e: e.at):
        t = min(event.at.timestamp(), end)
        if event.at > now:
            break
        if event.kind is EventKind.START and started is None:
            started, since = event.at, t
            severity = event.severity or severity
        elif event.kind is EventKind.SEVERITY:
            severity = event.severity or severity
        elif started is None or stopped is not None:
            continue
        elif event.kind is EventKind.PAUSE and since is not None:
            segments.append((since, t))
            since = None
        elif event.kind is EventKind.RESUME and since is None:
            since = t
        elif event.kind is EventKind.STOP:
            if since is not None:
                segments.append((since, t))
            since, stopped = None, event.at
    return segments, since, severity, started, stopped


def clock_state(
    events: Sequence[ClockEvent],
    target_of: Callable[[str], Target],
    now: datetime,
    at_risk: float = 0.75,
) -> Clock | None:
    """A clock's state at `now`, replayed from its events (None before it starts)."""
    segments, since, severity, started, stopped = running_segments(events, now)
    if started is None or severity is None:
        return None
    target = target_of(severity)
    hours = target.hours
    elapsed = sum(hours.elapsed(a, b) for a, b in segments)
    due: datetime | None = None
    if since is not None:
        due_at = hours.add(since, target.seconds - elapsed)
        if target.seconds <= elapsed:  # already past: when it was due
            due_at = _when_reached(hours, segments, target.seconds)
        elapsed += hours.elapsed(since, now.timestamp())
        due = datetime.fromtimestamp(due_at, UTC)
    return Clock(
        target=target.name,
        severity=severity,
        state=_state(elapsed, target.seconds, at_risk, since is not None, stopped is not None),
        elapsed_seconds=elapsed,
        target_seconds=target.seconds,
        due=due,
        started=started,
        stopped=stopped,
    )


def _state(
    elapsed: float, target: float, at_risk: float, running: bool, stopped: bool
) -> ClockState:
    """A clock's state from the working time it has used of its target."""
    if stopped:
        return ClockState.MET if elapsed <= target else ClockState.BREACHED
    if elapsed > target:
        return ClockState.BREACHED
    if elapsed >= at_risk * target:
        return ClockState.AT_RISK
    return ClockState.RUNNING if running else ClockState.PAUSED


def _when_reached(hours: Hours, segments: Sequence[tuple[float, float]], goal: float) -> float:
    """The instant inside the running stretches when working time reached the goal."""
    done = 0.0
    for a, b in segments:
        part = hours.elapsed(a, b)
        if done + part >= goal:
            return hours.add(a, goal - done)
        done += part
    return segments[-1][1] if segments else math.nan


# --------------------------------------------------------------------------- a library's SLA


class SlaClocks:
    """A library's targets on its calendar (built once per library)."""

    def __init__(self, sla: Sla) -> None:
        self.sla = sla
        self.business = BusinessHours(sla.calendar)
        self.around = AroundTheClock()

    def hours(self, clock: str) -> Hours:
        return self.around if clock == AROUND_THE_CLOCK else self.business

    def target(self, severity: str, name: str = "resolution") -> Target:
        targets = self.sla.targets
        if name not in targets:
            raise KeyError(f"no {name} target (the library has {', '.join(sorted(targets))})")
        if severity not in targets[name]:
            raise KeyError(f"no {name} target for severity {severity}")
        found = targets[name][severity]
        return Target(name, severity, found.hours * 3600.0, self.hours(found.clock))

    def due(self, severity: str, start: datetime, name: str = "resolution") -> datetime:
        """The due time of a target started at `start` and never paused."""
        target = self.target(severity, name)
        return self.local(target.hours.add(start.timestamp(), target.seconds))

    def local(self, t: float) -> datetime:
        """An instant in the calendar's time zone, with a fixed offset (so it compares by
        instant even in the hour a fall-back repeats)."""
        wall = datetime.fromtimestamp(t, UTC).astimezone(self.business.zone)
        offset = wall.utcoffset()
        assert offset is not None
        return wall.replace(tzinfo=timezone(offset), fold=0)

    def state(
        self, events: Sequence[ClockEvent], now: datetime, name: str = "resolution"
    ) -> Clock | None:
        return clock_state(
            events, lambda severity: self.target(severity, name), now, self.sla.at_risk
        )


# --------------------------------------------------------------------------- a case's clock


@dataclass(frozen=True, slots=True)
class StatusChange:
    """What the help desk recorded: a ticket's status, group or severity changed."""

    at: datetime
    status: str | None = None
    group: str | None = None
    severity: str | None = None
    actor: str = ""


@dataclass(frozen=True, slots=True)
class ClockVocabulary:
    """What a ticket's statuses and groups mean to a case's clock (the caller's words)."""

    waiting: frozenset[str]  # statuses that pause it: the ticket waits on the customer
    done: frozenset[str]  # statuses that stop it: the ticket is finished
    returned: frozenset[str]  # groups that stop it: the ticket went back to an earlier tier


def case_clock_events(
    started: datetime, severity: str, changes: Sequence[StatusChange], words: ClockVocabulary
) -> list[ClockEvent]:
    """A tier-2 case's clock events from its ticket's history (A5): it starts at the tier-1
    escalation, pauses while the ticket waits on the customer, and stops when the ticket is
    done or goes back to a group it was escalated from. Changes before the start belong to an
    earlier escalation."""
    out = [ClockEvent(started, EventKind.START, severity)]
    waiting = False
    for change in sorted(changes, key=lambda c: c.at):
        if change.at < started:
            continue
        if change.severity is not None and change.severity != severity:
            severity = change.severity
            out.append(ClockEvent(change.at, EventKind.SEVERITY, severity))
        if change.status in words.done or change.group in words.returned:
            out.append(ClockEvent(change.at, EventKind.STOP))
            break
        if change.status is None:
            continue
        if change.status in words.waiting and not waiting:
            waiting = True
            out.append(ClockEvent(change.at, EventKind.PAUSE))
        elif change.status not in words.waiting and waiting:
            waiting = False
            out.append(ClockEvent(change.at, EventKind.RESUME))
    return out


class Escalate(StrEnum):
    BREACHED = "breached"
    AT_RISK = "at_risk"


def monitor_verdict(
    clock: Clock, hours: Hours, last_owner_action: datetime | None, now: datetime
) -> Escalate | None:
    """A5: a breached clock is escalated; so is one at risk whose owner has not acted (note,
    reply or status change) in the last business hour."""
    if clock.state is ClockState.BREACHED and clock.stopped is None:
        return Escalate.BREACHED
    if clock.state is ClockState.AT_RISK:
        since = max(last_owner_action or clock.started, clock.started)
        if hours.elapsed(since.timestamp(), now.timestamp()) >= 3600:
            return Escalate.AT_RISK
    return None

"""tier2's business-time arithmetic agrees with a peer's: `businesstimedelta` on random intervals."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import businesstimedelta as btd
import holidays
import pytz
from hypothesis import given, settings
from hypothesis import strategies as st

from tier2.core.library import Calendar
from tier2.core.sla import BusinessHours

WEEK = ("monday", "tuesday", "wednesday", "thursday", "friday")
YEARS = range(2024, 2031)


def peer_rules(zone: str, country: str, subdiv: str | None, lunch: bool) -> btd.Rules:
    tz = pytz.timezone(zone)
    closed: set[date] = set(holidays.country_holidays(country, subdiv=subdiv, years=YEARS))
    rules = [
        btd.WorkDayRule(start_time=time(9), end_time=time(18), working_days=[0, 1, 2, 3, 4], tz=tz),
        btd.HolidayRule(closed, tz=tz),
    ]
    if lunch:
        rules.append(
            btd.LunchTimeRule(
                start_time=time(12), end_time=time(13), working_days=[0, 1, 2, 3, 4], tz=tz
            )
        )
    return btd.Rules(rules)


def ours(zone: str, country: str, subdiv: str | None, lunch: bool) -> BusinessHours:
    windows = (("09:00", "12:00"), ("13:00", "18:00")) if lunch else (("09:00", "18:00"),)
    return BusinessHours(
        Calendar(
            timezone=zone,
            windows=dict.fromkeys(WEEK, windows),
            holidays_country=country,
            holidays_subdivision=subdiv,
        )
    )


CALENDARS = {
    "berlin": ("Europe/Berlin", "DE", "BE", False),
    "new_york_lunch": ("America/New_York", "US", None, True),
    "sydney": ("Australia/Sydney", "AU", "NSW", False),
}
PEERS = {name: peer_rules(*spec) for name, spec in CALENDARS.items()}
OURS = {name: ours(*spec) for name, spec in CALENDARS.items()}

instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(CALENDARS)), a=instants, span=st.integers(0, 25 * 86400))
def test_elapsed_business_time_agrees(name: str, a: datetime, span: int) -> None:
    """Business seconds between two instants equal businesstimedelta's difference."""
    b = a + timedelta(seconds=span)
    theirs = PEERS[name].difference(a, b).timedelta.total_seconds()
    assert OURS[name].elapsed(a.timestamp(), b.timestamp()) == theirs


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(CALENDARS)), a=instants, minutes=st.integers(1, 60 * 60))
def test_adding_business_time_agrees(name: str, a: datetime, minutes: int) -> None:
    """The instant after N business minutes equals businesstimedelta's addition."""
    theirs = a + btd.BusinessTimeDelta(PEERS[name], timedelta=timedelta(minutes=minutes))
    assert OURS[name].add(a.timestamp(), minutes * 60.0) == theirs.timestamp()

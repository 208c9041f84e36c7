"""Request Tracker's SLA configuration written from a tier2 library (`tier2 sla rt-config`).

RT computes due dates with `%ServiceAgreements` (a level per severity: `BusinessMinutes` on
business hours, `RealMinutes` around the clock, in the level's `Timezone`) and
`%ServiceBusinessHours` (per weekday a Start and End, lunch breaks as `Breaks`, and
`holidays` as dates). Writing both from the library keeps RT and tier2 on the same
calendar; the integration test checks that they then agree on every due time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from tier2.core.library import Sla
from tier2.core.sla import AROUND_THE_CLOCK, WEEKDAYS, BusinessHours

_RT_DAY = {name: (i + 1) % 7 for i, name in enumerate(WEEKDAYS)}  # Business::Hours: 0 = Sunday


def rt_site_config(sla: Sla, years: Iterable[int], default_level: str = "medium") -> str:
    """Perl for an RT_SiteConfig.d file: the resolution targets and the business calendar."""
    cal = sla.calendar
    zone = cal.timezone
    levels = []
    for severity, target in sorted(sla.targets["resolution"].items()):
        unit = "RealMinutes" if target.clock == AROUND_THE_CLOCK else "BusinessMinutes"
        minutes = round(target.hours * 60)
        levels.append(
            f"        '{severity}' => {{ Timezone => '{zone}', "
            f"Resolve => {{ {unit} => {minutes} }} }},"
        )
    days = []
    for name in WEEKDAYS:
        windows = sorted(cal.windows.get(name, ()))
        if not windows:
            days.append(
                f"        {_RT_DAY[name]} => {{ Name => '{name.title()}', "
                "Start => undef, End => undef },"
            )
            continue
        breaks = ", ".join(
            f"{{ Start => '{a_end}', End => '{b_start}' }}"
            for (_, a_end), (b_start, _) in itertools.pairwise(windows)
        )
        days.append(
            f"        {_RT_DAY[name]} => {{ Name => '{name.title()}', Start => '{windows[0][0]}', "
            f"End => '{windows[-1][1]}'" + (f", Breaks => [ {breaks} ]" if breaks else "") + " },"
        )
    years = list(years)
    closed = sorted(BusinessHours(cal).holidays(years))
    holidays = " ".join(d.isoformat() for d in closed)
    return "\n".join(
        [
            f"# Written by tier2 sla rt-config: the {zone} calendar, holidays {min(years)}-"
            f"{max(years)}.",
            "Set( %ServiceAgreements, (",
            f"    Default => '{default_level}',",
            "    Levels => {",
            *levels,
            "    },",
            "));",
            "Set( %ServiceBusinessHours, (",
            "    'Default' => {",
            *sorted(days),
            f"        holidays => [qw({holidays})],",
            "    },",
            "));",
            "1;",
            "",
        ]
    )

"""RT's SLA configuration written from a library: levels, business hours, breaks, holidays."""

from __future__ import annotations

from tier2.core.library import Calendar, Sla, SlaTarget
from tier2.helpdesk.rt._sla import rt_site_config
from tier2.library.loader import load_library


def test_saas_levels_and_calendar() -> None:
    """Each severity is a level in the library's zone; critical runs on real minutes."""
    text = rt_site_config(load_library("saas").sla, range(2026, 2027))
    assert (
        "'critical' => { Timezone => 'Europe/Berlin', Resolve => { RealMinutes => 120 } }" in text
    )
    assert (
        "'low' => { Timezone => 'Europe/Berlin', Resolve => { BusinessMinutes => 1620 } }" in text
    )
    assert "1 => { Name => 'Monday', Start => '09:00', End => '18:00' }" in text
    assert "0 => { Name => 'Sunday', Start => undef, End => undef }" in text
    assert (
        "2026-04-03" in text and "2026-12-25" in text and "2027-" not in text.split("holidays")[-1]
    )


def test_a_lunch_break_becomes_breaks() -> None:
    """Two windows in a day are one Start-End with the gap as a Break."""
    cal = Calendar(
        timezone="Europe/Rome", windows={"monday": (("09:00", "13:00"), ("14:00", "18:00"))}
    )
    sla = Sla(
        targets={"resolution": {"high": SlaTarget("resolution", "high", 8, "business")}},
        calendar=cal,
    )
    text = rt_site_config(sla, [2026])
    assert (
        "Start => '09:00', End => '18:00', Breaks => [ { Start => '13:00', End => '14:00' } ]"
        in text
    )

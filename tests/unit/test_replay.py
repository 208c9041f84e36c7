"""Replaying a help desk's event log through the SLA clocks: waits excluded, levels mapped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tier2.devtools.log_replay import LogError, parse_levels, replay
from tier2.library.loader import load_sla

ROOT = Path(__file__).resolve().parents[2]
MATRIX = ROOT / "src" / "tier2" / "devtools" / "sla_matrices" / "italian_helpdesk.yaml"
HEADER = "Case ID,Activity,Resource,Complete Timestamp,seriousness_2\n"


def log(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "log.csv"
    path.write_text(HEADER + body)
    return path


def test_wait_is_excluded_and_the_lunch_break_does_not_count(tmp_path: Path) -> None:
    """Opened 09:00, waiting 10:00-15:00, resolved 17:00 (Rome, lunch 13-14): 3 business hours."""
    path = log(tmp_path, (
        "Case 1,Assign seriousness,R1,2012-10-09 09:00:00,Value 4\n"
        "Case 1,Wait,R1,2012-10-09 10:00:00,Value 4\n"
        "Case 1,Take in charge ticket,R2,2012-10-09 15:00:00,Value 4\n"
        "Case 1,Resolve ticket,R2,2012-10-09 17:00:00,Value 4\n"
        "Case 1,Closed,R3,2012-10-20 17:00:00,Value 4\n"
    ))  # fmt: skip
    result = replay(path, load_sla(MATRIX), parse_levels(None), "seriousness_2")
    (level,) = result.levels
    assert (level.level, level.severity, level.hours, level.waited, level.breached) == (
        "Value 4",
        "critical",
        [3.0],
        1,
        0,
    )


def test_a_level_change_counts_under_the_final_level_with_its_target(tmp_path: Path) -> None:
    """Raised from Value 1 (low, 80 h) to Value 4 (critical, 8 h) mid-way: breached at 10 h."""
    path = log(tmp_path, (
        "Case 7,Assign seriousness,R1,2012-10-08 09:00:00,Value 1\n"
        "Case 7,Take in charge ticket,R1,2012-10-08 12:00:00,Value 4\n"
        "Case 7,Resolve ticket,R1,2012-10-09 11:00:00,Value 4\n"
    ))  # fmt: skip
    (level,) = replay(path, load_sla(MATRIX), parse_levels(None), "seriousness_2").levels
    assert level.level == "Value 4" and level.hours == [10.0] and level.breached == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("Case 1,Assign seriousness,R1,yesterday,Value 1\n", "line 2 (ticket Case 1): Complete Timestamp: not a date and time"),
        ("Case 1,Assign seriousness,R1,2012-10-08 09:00:00,Value 9\n", "no severity for level(s) Value 9"),
    ],
)  # fmt: skip
def test_bad_logs_say_where(tmp_path: Path, body: str, message: str) -> None:
    """A bad timestamp names the line and ticket; an unmapped level asks for --levels."""
    with pytest.raises(LogError, match=re.escape(message)):
        replay(log(tmp_path, body), load_sla(MATRIX), parse_levels(None), "seriousness_2")


def test_the_real_log_replays_every_ticket() -> None:
    """The Italian help desk's log (data/): all 4,479 tickets, every one resolved or closed."""
    result = replay(
        ROOT / "data" / "helpdesk_log.csv.gz", load_sla(MATRIX), parse_levels(None), "seriousness_2"
    )
    assert (result.tickets, result.events) == (4479, 20937)
    assert sum(len(r.hours) + r.open for r in result.levels) == 4479
    assert all(0 < r.breached < len(r.hours) for r in result.levels)

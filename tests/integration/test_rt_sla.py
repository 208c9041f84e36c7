"""tier2's due times against a real Request Tracker 5 configured with the same calendar.

`scripts/test-rt.sh` (run by `make test` and `.ci/run`) installs Debian's RT, writes its
%ServiceAgreements and %ServiceBusinessHours with `tier2 sla rt-config --library saas`, and
starts `rt-server` on loopback. This test creates tickets with chosen creation times through
RT's REST2 API and compares the Due date RT computes with tier2's, ticket by ticket.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.integration.rt_perl import create_tickets
from tier2.core.sla import SlaClocks
from tier2.library.loader import load_library

SAAS = SlaClocks(load_library("saas").sla)
BERLIN = ZoneInfo("Europe/Berlin")
SEVERITIES = ("critical", "high", "medium", "low")


@pytest.fixture(scope="module")
def rt() -> httpx.Client:
    url = os.environ.get("TIER2_TEST_RT_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("TIER2_TEST_RT_URL is not set: .ci/run must start Request Tracker")
        pytest.skip("no Request Tracker (run scripts/test-rt.sh and set TIER2_TEST_RT_URL)")
    password = os.environ.get("TIER2_TEST_RT_PASSWORD", "tier2-rt")
    root = url.split("/REST/2.0")[0]
    # RT refuses a cookie-signed write whose Referer is not RT itself (its CSRF protection)
    client = httpx.Client(base_url=url, timeout=30, headers={"Referer": root + "/"})
    # one login for a session cookie: basic auth would hash the password on every request
    login = client.post(f"{root}/NoAuth/Login.html", data={"user": "root", "pass": password})
    assert login.status_code == 200 and client.cookies, "RT login failed"
    return client


def _local(day: date, rng: random.Random) -> datetime:
    moment = time(rng.randrange(24), rng.randrange(60), rng.randrange(60))
    return datetime.combine(day, moment, tzinfo=BERLIN)


def _last_sunday(year: int, month: int) -> date:
    d = date(year, month, 31)
    return d - timedelta(days=(d.weekday() + 1) % 7)


def creation_times(rng: random.Random) -> list[tuple[str, datetime]]:
    """At least 200 creation times: anywhere, nights, weekends, holidays, DST days, year ends."""
    holidays = sorted(SAAS.business.holidays(range(2025, 2028)))
    out: list[tuple[str, datetime]] = []
    first = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    span = datetime(2027, 12, 20, tzinfo=UTC).timestamp() - first
    out += [
        ("anywhen", datetime.fromtimestamp(int(first + rng.random() * span), UTC))
        for _ in range(60)
    ]
    for _ in range(30):
        day = date(2025, 1, 1) + timedelta(days=rng.randrange(1000))
        out.append(
            (
                "night",
                datetime.combine(
                    day,
                    time(rng.choice([19, 20, 22, 23, 0, 2, 5, 7, 8]), rng.randrange(60)),
                    tzinfo=BERLIN,
                ),
            )
        )
    for _ in range(30):
        day = date(2025, 1, 4) + timedelta(
            weeks=rng.randrange(150), days=rng.choice([0, 1])
        )  # Sat/Sun
        out.append(("weekend", _local(day, rng)))
    for _ in range(30):
        out.append(("holiday", _local(rng.choice(holidays), rng)))
    for year in (2025, 2026, 2027):
        for month in (3, 10):
            change = _last_sunday(year, month)
            for _ in range(8):
                out.append(("dst", _local(change + timedelta(days=rng.randrange(-3, 3)), rng)))
    for year in (2025, 2026, 2027):
        for _ in range(10):
            out.append(
                ("year end", _local(date(year, 12, 20) + timedelta(days=rng.randrange(14)), rng))
            )
    out += [
        ("closing", datetime(2026, 3, 4, 10, 0, tzinfo=BERLIN)),
        ("closing", datetime(2026, 3, 6, 9, 0, tzinfo=BERLIN)),
    ]
    return [(kind, t.astimezone(UTC).replace(microsecond=0)) for kind, t in out]


def same_business_moment(ours: datetime, theirs: datetime) -> bool:
    """Equal, or ours is the close of a business day and RT's the next opening (handbook A5)."""
    if ours == theirs:
        return True
    hours = SAAS.business
    return theirs > ours and hours.elapsed(ours.timestamp(), theirs.timestamp()) == 0


def test_due_times_equal_request_trackers(rt: httpx.Client) -> None:
    """For 200+ tickets created at nights, weekends, holidays and DST days, tier2's due = RT's."""
    rng = random.Random(2026)
    cases = [(kind, created, rng.choice(SEVERITIES)) for kind, created in creation_times(rng)]
    assert len(cases) >= 200
    # RT's REST2 no longer takes `Created`: the tickets are created through its Perl API
    ids = create_tickets(
        [
            {
                "Queue": "General",
                "Subject": f"tier2 SLA check: {kind}, {severity}",
                "SLA": severity,
                "Created": created.strftime("%Y-%m-%d %H:%M:%S"),
            }
            for kind, created, severity in cases
        ]
    )
    differences = []
    end_of_day = 0
    for ticket_id, (kind, created, severity) in zip(ids, cases, strict=True):
        body = rt.get(f"ticket/{ticket_id}").json()
        assert body["Created"] == created.strftime("%Y-%m-%dT%H:%M:%SZ"), body["Created"]
        theirs = datetime.fromisoformat(body["Due"].replace("Z", "+00:00"))
        ours = SAAS.due(severity, created)
        end_of_day += ours != theirs
        if not same_business_moment(ours, theirs):
            differences.append(
                f"#{ticket_id} {kind} {severity} created {created}: tier2 {ours}, RT {theirs}"
            )
    assert not differences, "\n".join(differences)
    assert end_of_day < len(cases)  # most are equal outright

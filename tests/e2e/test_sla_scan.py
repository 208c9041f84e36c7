"""`tier2 sla scan` works on the configured help desk, not only the local one."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.e2e.exactly_once import run
from tests.e2e.test_chaos_helpdesks import _examples, zendesk_config
from tests.fakes.served import Served
from tests.fakes.zendesk import FakeZendesk
from tests.integration.helpdesk.test_zendesk import FIELDS
from tier2.helpdesk._marks import keys_in
from tier2.store import models as m
from tier2.store.db import make_engine


@pytest.mark.slow
def test_sla_scan_reads_and_writes_the_configured_help_desk(tmp_path: Path) -> None:
    """On a Zendesk store, a scan months later escalates every case tier2 escalated: its
    note lands on the Zendesk ticket (the local help desk's tables stay empty)."""
    fake = FakeZendesk(groups={100: "Tier 1", 200: "Tier 2", 300: "Seniors", 400: "Managers"})
    tickets = [fake.add_case(c, FIELDS, "tier2") for c in _examples(1)]
    db = f"sqlite:///{tmp_path / 'tier2.db'}"
    env = {"ZD_TOKEN": fake.token}
    with Served(fake.handle, "acme.zendesk.com") as served:
        config = zendesk_config(tmp_path, db, fake, served.url)
        first = run("run", "--once", "--config", str(config), "--no-sla-scan", env=env)
        assert first.returncode == 0, first.stderr.decode()[-2000:]
        scan = run(
            "sla", "scan", "--config", str(config), "--now", "2026-09-01T12:00:00+00:00", env=env
        )
    assert scan.returncode == 0, scan.stderr.decode()[-2000:]
    engine = make_engine(db)
    with Session(engine) as session:
        escalated = session.scalar(
            select(func.count()).select_from(m.Case).where(m.Case.state == "escalated")
        )
        assert escalated and f"breached {escalated}" in scan.stdout.decode()
        assert session.scalar(select(func.count()).select_from(m.TicketMessage)) == 0
    engine.dispose()
    sla_keys = [
        k
        for t in tickets
        for c in fake.comments[t]
        for k in keys_in([{"Content": c["body"]}])
        if ":sla:" in k
    ]
    assert len(sla_keys) == escalated

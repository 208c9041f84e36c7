"""Crash safety: `tier2 run` killed at each named crash point, on both backends; the next run
finishes every case, and nothing is decided, paid or written twice."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from tests.e2e.exactly_once import (
    TIMEOUT,
    assert_exactly_once,
    idle_in_transaction,
    no_processes,
    run,
    tier2,
)
from tier2.contract import CaseIn
from tier2.faults import POINTS
from tier2.helpdesk.local import LocalHelpDesk
from tier2.library.loader import load_library
from tier2.library.samples import CaseGenerator
from tier2.store.db import make_engine, upgrade

CASES = 40


@pytest.fixture(scope="module")
def generated() -> list[dict[str, object]]:
    return CaseGenerator(load_library("saas"), 21).cases(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_a_runner_killed_at_a_crash_point_loses_nothing_and_repeats_nothing(
    database_url: str, tmp_path: Path, point: str, generated: list[dict[str, object]]
) -> None:
    """Killed at the point (its second time there), the next run finishes every case once."""
    upgrade(database_url)
    engine = make_engine(database_url)
    LocalHelpDesk(engine).import_cases(CaseIn.model_validate(c) for c in generated)
    log = tmp_path / "crashes"
    killed = run(
        "run", "--once", "--db", database_url, "--batch", "5", "--workers", "1",
        "--no-sla-scan",
        env={"TIER2_CRASH_AT": point, "TIER2_CRASH_AFTER": "2", "TIER2_CRASH_LOG": str(log)},
    )  # fmt: skip
    assert log.read_text().split()[0] == point, f"{point} was not reached"
    if point == "worker_mid_batch":  # the worker died; its runner decided the batch itself
        assert killed.returncode == 0, killed.stderr.decode()[-2000:]
    else:
        assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    no_processes([killed.pgid])  # its deciding worker died with it
    shown = orjson.loads(run("status", "--db", database_url, "--format", "json").stdout)
    dead = [r for r in shown["runners"] if not r["alive"]]
    assert len(dead) == (point != "worker_mid_batch"), shown  # `tier2 status` names the dead
    after = run("run", "--once", "--db", database_url, "--no-sla-scan")
    assert after.returncode == 0, after.stderr.decode()[-2000:]
    assert_exactly_once(engine, CASES)
    assert idle_in_transaction(engine) == 0
    engine.dispose()


@pytest.mark.slow
def test_two_runners_started_together_decide_and_pay_once(
    database_url: str,
) -> None:
    """`--batch 1 --workers 0` and `--batch 7 --workers 1` on the same escalations at once:
    every case is decided once, every refund and credit paid once, both exit 0."""
    upgrade(database_url)
    engine = make_engine(database_url)
    cases = CaseGenerator(load_library("saas"), 23).cases(300)
    LocalHelpDesk(engine).import_cases(CaseIn.model_validate(c) for c in cases)
    first = subprocess.Popen(
        tier2("run", "--once", "--db", database_url, "--batch", "1", "--workers", "0",
              "--no-sla-scan"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    second = run(
        "run", "--once", "--db", database_url, "--batch", "7", "--workers", "1", "--no-sla-scan"
    )
    _, err = first.communicate(timeout=TIMEOUT)
    assert first.returncode == 0 and second.returncode == 0, (err + second.stderr)[-2000:]
    assert_exactly_once(engine, 300)
    engine.dispose()

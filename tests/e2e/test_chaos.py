"""Chaos: four `tier2 run` with mixed options and a `tier2 serve` worker share one store
while escalations keep arriving; whole process groups and single deciding workers are
killed at random, runners restart armed with every crash point in turn, and some are
stopped with SIGTERM. Afterwards every case is final and nothing was done twice."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.e2e.exactly_once import (
    FINAL,
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
from tier2.store import models as m
from tier2.store.claims import status
from tier2.store.db import make_engine, upgrade

CASES = 1200
WAVE = 50  # escalations filed between two acts of chaos
SPARE = 2000  # more escalations to file while a crash point is still unreached
REESCALATED = 15  # final cases filed again, four times over the run
DEADLINE = 150.0  # seconds the chaos may go on while crash points are still unreached

RUNNERS: list[list[str]] = [
    ["--workers", "0", "--batch", "1"],
    ["--workers", "1", "--batch", "7"],
    ["--workers", "2", "--batch", "50"],
    ["--workers", "0", "--batch", "200"],
]


@dataclass
class Role:
    """One runner (or the service), restarted whenever it ends."""

    name: str
    argv: list[str]
    workers: int
    proc: subprocess.Popen[bytes] | None = None
    groups: list[int] = field(default_factory=list)
    armed: str | None = None

    def start(self, env: dict[str, str], log: Path) -> None:
        out = (log.parent / f"{self.name}.log").open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=out,
            stderr=out,
            start_new_session=True,
            env={**os.environ, **env},
        )
        self.groups.append(self.proc.pid)

    def ended(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(TIMEOUT)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(TIMEOUT)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Chaos:
    def __init__(self, database_url: str, tmp: Path, seed: int) -> None:
        self.url, self.tmp, self.rng = database_url, tmp, random.Random(seed)
        self.engine = make_engine(database_url)
        self.log = tmp / "crashes"
        self.log.touch()
        config = tmp / "tier2.toml"
        config.write_text(
            "[run]\npoll_seconds = 0.3\nsla_scan = false\n"
            "workers = 0\nbatch = 20\nlease_seconds = 3\n"
        )
        self.roles = [
            Role(
                f"run{i}",
                tier2(
                    "run",
                    "--db",
                    database_url,
                    "--poll",
                    "0.2",
                    "--no-sla-scan",
                    "--lease-seconds",
                    "3",
                    *options,
                ),
                int(options[1]),
            )
            for i, options in enumerate(RUNNERS)
        ]
        self.roles.append(
            Role(
                "serve",
                tier2("serve", "--config", str(config), "--port", str(_port())),
                0,
            )
        )
        self.turn = 0
        self.events: Counter[str] = Counter()

    def env(self, role: Role, armed: bool) -> dict[str, str]:
        env = {
            "TIER2_API_TOKENS": "chaos-token-0123456789",
            "TIER2_CRASH_LOG": str(self.log),
            "TIER2_DB": self.url,  # secrets (a password in the URL) only from the environment
        }
        role.armed = None
        if armed:
            hits = self.hits()  # the point reached least so far that this role can reach
            points = [p for p in POINTS if role.workers or p != "worker_mid_batch"]
            point = min(points, key=lambda p: (hits[p], (POINTS.index(p) - self.turn) % 7))
            self.turn += 1
            env |= {"TIER2_CRASH_AT": point, "TIER2_CRASH_AFTER": str(self.rng.randint(1, 3))}
            role.armed = point
        return env

    def hits(self) -> Counter[str]:
        return Counter(line.split()[0] for line in self.log.read_text().splitlines() if line)

    def start(self, role: Role, armed: bool) -> None:
        role.start(self.env(role, armed), self.log)

    def step(self) -> None:
        """Restart what ended, then one act of chaos."""
        for role in self.roles:
            code = role.ended()
            if code is not None:
                self.events[f"ended {code}"] += 1
                self.start(role, armed=True)
        act = self.rng.choice(["kill group", "kill worker", "terminate", "nothing"])
        role = self.rng.choice(self.roles)
        if act == "kill group":
            role.kill()
            self.start(role, armed=True)
        elif act == "kill worker" and role.proc is not None:
            workers = _children(role.proc.pid)
            if workers:
                os.kill(self.rng.choice(workers), signal.SIGKILL)
        elif act == "terminate" and role.name != "serve" and self.registered(role):
            code = role.terminate()  # (an armed point may be reached in the batch in hand)
            assert code == 0 or (code == -9 and role.armed), f"{role.name} on SIGTERM: {code}"
            self.start(role, armed=False)
        self.events[act] += 1

    def registered(self, role: Role) -> bool:
        """The runner is past its start-up: its SIGTERM handler is in place."""
        assert role.proc is not None
        return any(r.get("pid") == role.proc.pid for r in status(self.engine)["runners"])

    def kill_all(self) -> None:
        """Whatever the test's end, no process of it outlives it."""
        for role in self.roles:
            for group in role.groups:
                try:
                    os.killpg(group, signal.SIGKILL)
                except ProcessLookupError:
                    continue

    def stop(self) -> None:
        for role in self.roles:
            if role.ended() is None:
                role.terminate()


@pytest.mark.slow
def test_runners_killed_at_random_and_at_every_crash_point_do_everything_once(
    database_url: str, tmp_path: Path
) -> None:
    """Four runners and a service worker, killed and restarted while 1,200 escalations (and
    re-escalations) arrive: every case ends final with one decision per escalation, every
    action once in the ledger, every note once on its ticket, no process or transaction
    left behind, the audit chain intact."""
    generated = CaseGenerator(load_library("saas"), 31).cases(CASES + SPARE)
    upgrade(database_url)
    engine = make_engine(database_url)
    desk = LocalHelpDesk(engine)
    chaos = Chaos(database_url, tmp_path, seed=2026)
    try:
        for role in chaos.roles:
            chaos.start(role, armed=False)
        started, filed = time.monotonic(), 0
        # escalations keep arriving until there were CASES and every crash point was reached
        while filed < CASES or (
            set(chaos.hits()) != set(POINTS) and time.monotonic() - started < DEADLINE
        ):
            wave = generated[filed : filed + WAVE]
            desk.import_cases(CaseIn.model_validate(c) for c in wave)
            filed += len(wave)
            if filed % (CASES // 4) == 0:  # tier-1 sends some back (or their customers reopen them)
                desk.import_cases(_finished(engine, generated, REESCALATED))
            chaos.step()
            time.sleep(chaos.rng.uniform(0.1, 0.4))
        chaos.stop()
    finally:
        chaos.kill_all()
    final = run("run", "--once", "--db", database_url, "--no-sla-scan")
    assert final.returncode == 0, final.stderr.decode()[-2000:]
    no_processes([g for role in chaos.roles for g in role.groups])
    assert set(chaos.hits()) == set(POINTS), f"points reached: {chaos.hits()}"
    counts = assert_exactly_once(engine, filed)
    assert counts["reescalations"] > 0, counts
    assert idle_in_transaction(engine) == 0
    _report(engine, chaos, counts)
    engine.dispose()
    chaos.engine.dispose()


def _finished(engine: Engine, generated: list[dict[str, Any]], n: int) -> list[CaseIn]:
    """Up to n of the cases final now, filed again."""
    with Session(engine) as session:
        final = set(
            session.scalars(select(m.Case.id).where(m.Case.state.in_(list(FINAL))).limit(n))
        )
    return [CaseIn.model_validate(c) for c in generated if c["case_id"] in final]


def _report(engine: Engine, chaos: Chaos, counts: dict[str, Any]) -> None:
    print(
        f"\n{engine.dialect.name}: {counts}; crash points {dict(chaos.hits())}; {dict(chaos.events)}"
    )

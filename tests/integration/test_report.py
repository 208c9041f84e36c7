"""`tier2 report` equals an independent computation from the store, in every format."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tier2.devtools.demo import run_company
from tier2.entrypoints.cli import app
from tier2.store import models as m
from tier2.store.db import database_url, make_engine


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    run_company(folder, "Northwind Cloud", "saas", n=80, seed=2)
    return folder / "saas.db"


def _report(store: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["report", "--db", str(store), *args])
    assert result.exit_code == 0, result.output
    return result.output


def _q(values: list[float], q: float) -> float:
    """The inclusive quantile, as statistics computes it."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[int(q * 10) - 1]


def _independent(path: Path) -> dict[str, Any]:
    engine = make_engine(database_url(str(path)))
    with Session(engine) as s:
        latest: dict[str, m.Decision] = {}
        for d in s.scalars(select(m.Decision).order_by(m.Decision.seq)):
            latest[d.case_id] = d
        cases = list(s.scalars(select(m.Case)))
        done = [a for a in s.scalars(select(m.Action)) if a.status == "done" and a.amount]
        base = [b for b in s.scalars(select(m.BaselineCase)) if b.resolved_at is not None]
        sla = list(s.scalars(select(m.SlaEscalation)))
    engine.dispose()
    resolved = [c for c in cases if c.resolved_at is not None]
    business = [c.business_seconds / 3600 for c in resolved]
    money: dict[str, dict[str, float]] = {}
    for a in done:
        by = money.setdefault(a.type, {})
        by[a.currency or ""] = by.get(a.currency or "", 0) + a.amount
    return {
        "escalations": len(cases),
        "outcomes": Counter(latest[c.id].outcome for c in cases),
        "first_reasons": Counter(latest[c.id].body["reasons"][0]["code"] for c in cases),
        "escalated_to": Counter(
            latest[c.id].escalate_to for c in cases if latest[c.id].escalate_to
        ),
        "resolved": len(resolved),
        "median": statistics.median(business),
        "p90": _q(business, 0.9),
        "median_calendar": statistics.median(c.calendar_seconds / 3600 for c in resolved),
        "met": sum(1 for c in resolved if c.sla_met is True),
        "money": money,
        "base_median": statistics.median(b.business_seconds / 3600 for b in base),
        "base_cases": len(base),
        "at_risk": {
            e.case_id for e in sla
            if next(c for c in cases if c.id == e.case_id).resolved_at is None
        },
    }  # fmt: skip


def test_the_report_equals_an_independent_computation(store: Path) -> None:
    """Counts, cycle-time quantiles, SLA, money and the baseline equal what the rows say."""
    got = json.loads(_report(store, "--format", "json"))
    want = _independent(store)
    assert got["escalations"] == want["escalations"]
    assert {k: v for k, v in got["outcomes"].items() if v} == dict(want["outcomes"])
    assert got["first_reasons"] == dict(want["first_reasons"])
    assert got["escalated_to"] == dict(want["escalated_to"])
    cycle = got["cycle_time"]
    assert cycle["cases"] == want["resolved"]
    assert cycle["median_business_hours"] == pytest.approx(want["median"], abs=0.006)
    assert cycle["p90_business_hours"] == pytest.approx(want["p90"], abs=0.006)
    assert cycle["median_calendar_hours"] == pytest.approx(want["median_calendar"], abs=0.006)
    assert got["sla"]["met"] == want["met"]
    for kind, by in want["money"].items():
        for currency, amount in by.items():
            assert got["money"][kind][currency] == pytest.approx(amount, abs=0.01)
    base = got["baseline"]
    assert base["cycle_time"]["cases"] == want["base_cases"]
    assert base["cycle_time"]["median_business_hours"] == pytest.approx(
        want["base_median"], abs=0.006
    )
    change = cycle["median_business_hours"] / base["cycle_time"]["median_business_hours"] - 1
    assert base["change_pct"] == pytest.approx(change * 100, abs=0.1)
    for key in ("period", "sla", "reescalation_rate", "review"):
        assert key in got
    assert base["sources"] == ["simulated"] and base["simulated"] is True
    assert {r["case_id"] for r in got["at_risk"]} == want["at_risk"]


def test_the_csv_has_one_row_per_case_and_the_text_and_html_name_the_headline(store: Path) -> None:
    """CSV: a header and one row per case; text and HTML show the median and the baseline."""
    rows = list(csv.DictReader(io.StringIO(_report(store, "--format", "csv"))))
    assert len(rows) == _independent(store)["escalations"]
    assert {r["case_id"] for r in rows} and all(r["ticket_id"] for r in rows)
    got = json.loads(_report(store, "--format", "json"))
    median = str(got["cycle_time"]["median_business_hours"])
    text = _report(store)
    assert median in text and "baseline" in text
    html = _report(store, "--format", "html")
    assert html.startswith("<!doctype html>") and median in html
    assert "simulated" in html  # the demo's baseline says what it is
    assert "<script" not in html and "http" not in html.split("</style>")[0]


def test_a_period_counts_only_its_cases(store: Path) -> None:
    """--from/--to keep the cases received in those days (in the library's time zone)."""
    whole = json.loads(_report(store, "--format", "json"))
    first = json.loads(
        _report(store, "--format", "json", "--from", "2026-03-02", "--to", "2026-03-08")
    )
    rest = json.loads(_report(store, "--format", "json", "--from", "2026-03-09"))
    assert first["escalations"] + rest["escalations"] == whole["escalations"]
    assert first["period"] == {"from": "2026-03-02", "to": "2026-03-08"}


def test_a_bad_date_is_one_line() -> None:
    """A malformed --from is a clear error naming the option, exit 2."""
    result = CliRunner().invoke(app, ["report", "--from", "March"])
    assert result.exit_code == 2
    assert "--from: not a date" in result.output

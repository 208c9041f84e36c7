"""`tier2 whatif`: the same library changes nothing on every stored case; a raised cap
changes only the cases escalated for authority, and nothing is written anywhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tier2.devtools.demo import run_company
from tier2.entrypoints.cli import app
from tier2.store import models as m
from tier2.store.db import database_url, make_engine

BUILTIN = Path(__file__).parents[2] / "src" / "tier2" / "library" / "builtin" / "ecommerce"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("whatif")
    run_company(folder, "Harbor & Pine", "ecommerce", n=120, seed=5)
    return folder / "ecommerce.db"


@pytest.fixture(scope="module")
def raised_cap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ecommerce library with tier-2's cap raised from 500 to 1,000."""
    folder = tmp_path_factory.mktemp("draft") / "ecommerce"
    shutil.copytree(BUILTIN, folder)
    text = (folder / "library.yaml").read_text()
    assert "{role: tier2, limit: 500," in text
    (folder / "library.yaml").write_text(
        text.replace("{role: tier2, limit: 500,", "{role: tier2, limit: 1000,")
    )
    return folder


def _whatif(*args: str) -> str:
    result = CliRunner().invoke(app, ["whatif", *args, "--no-lint"])
    assert result.exit_code == 0, result.output
    return result.output


def _counts(path: Path) -> dict[str, int]:
    engine = make_engine(database_url(str(path)))
    with Session(engine) as s:
        found = {
            t.name: s.scalar(select(func.count()).select_from(t)) or 0
            for t in m.Base.metadata.sorted_tables
        }
    engine.dispose()
    return found


def test_the_same_library_changes_no_case(store: Path) -> None:
    """Every stored case decided again under its own library: 0 changed, 0 reasons-only,
    0 errored (the pipeline is deterministic across the store)."""
    got = json.loads(_whatif("ecommerce", "--db", str(store), "--format", "json"))
    assert got["cases"] == _counts(store)["cases"] > 0
    assert (got["changed"], got["reasons_only"], got["errored"]) == (0, 0, 0)
    assert got["unchanged"] == got["cases"] and got["changes"] == []
    assert got["money_delta"] == {} and got["to_humans_delta"] == {}


def test_a_raised_cap_changes_only_authority_escalations(store: Path, raised_cap: Path) -> None:
    """Raising tier-2's cap moves cases escalated for authority_exceeded (and no other) to
    resolve: money carried out rises, the managers' workload falls, nothing is written."""
    before = _counts(store)
    got = json.loads(
        _whatif(str(raised_cap), "--db", str(store), "--format", "json", "--workers", "2")
    )
    assert _counts(store) == before  # no store write
    assert got["changed"] > 0 and got["errored"] == 0
    assert {c["old"]["first_reason"] for c in got["changes"]} == {"authority_exceeded"}
    assert all(c["new"]["outcome"] == "resolve" for c in got["changes"])
    moved = sum(a["amount"] for c in got["changes"] for a in c["new"]["actions"])
    assert sum(v for by in got["money_delta"].values() for v in by.values()) == pytest.approx(moved)
    assert sum(got["to_humans_delta"].values()) == -got["changed"]
    assert got["matrix"]["escalate"]["resolve"] == got["changed"]


def test_text_and_csv_show_the_changes(store: Path, raised_cap: Path) -> None:
    """Text: counts, the matrix and the biggest changes; CSV: a row per changed case."""
    text = _whatif(str(raised_cap), "--db", str(store))
    assert "changed" in text and "->" in text and "biggest changes" in text
    rows = _whatif(str(raised_cap), "--db", str(store), "--format", "csv").splitlines()
    got = json.loads(_whatif(str(raised_cap), "--db", str(store), "--format", "json"))
    assert rows[0].startswith("case_id,old_outcome,new_outcome")
    assert len(rows) == 1 + got["changed"]


def test_against_compares_two_versions(store: Path, raised_cap: Path) -> None:
    """--against a library: the comparison is between two versions, not with the stored
    decisions: the raised cap against the stored version (by digest) gives what the raised cap
    against the stored decisions gives, and the other way round every change reverses."""
    from tier2.library.loader import load_library

    digest = load_library("ecommerce").digest.removeprefix("sha256:")[:12]
    plain = json.loads(_whatif(str(raised_cap), "--db", str(store), "--format", "json"))
    by_digest = json.loads(
        _whatif(str(raised_cap), "--db", str(store), "--format", "json", "--against", digest)
    )
    assert by_digest["against"]["name"] == "ecommerce"
    for key in ("changed", "unchanged", "matrix", "money_delta", "to_humans_delta"):
        assert by_digest[key] == plain[key]
    back = json.loads(
        _whatif("ecommerce", "--db", str(store), "--format", "json", "--against", str(raised_cap))
    )
    assert back["changed"] == plain["changed"]
    assert back["matrix"].get("resolve", {}).get("escalate") == plain["changed"]


def test_an_unknown_draft_is_one_line(store: Path) -> None:
    """A draft that is no library, folder or stored digest: exit 2, one line."""
    result = CliRunner().invoke(app, ["whatif", "no-such-library", "--db", str(store)])
    assert result.exit_code == 2
    assert "no-such-library" in result.output and "Traceback" not in result.output


def test_a_past_decision_is_explained_again_under_its_own_version(store: Path) -> None:
    """`tier2 case explain`: a stored case decided again under the stored library version
    that decided it, at its original time, gives the stored decision byte for byte."""
    engine = make_engine(database_url(str(store)))
    with Session(engine) as s:
        ids = list(s.scalars(select(m.Case.id).order_by(m.Case.id).limit(8)))
    engine.dispose()
    for case_id in ids:
        result = CliRunner().invoke(app, ["case", "explain", case_id, "--db", str(store)])
        assert result.exit_code == 0, result.output
        assert "the same decision as stored" in result.output


@pytest.mark.slow
def test_the_demo_replayed_under_its_own_libraries_changes_nothing(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Every stored case of the demo (both companies, the demo's own size and seed) decided
    again under its own library: 0 changed, 0 reasons-only, 0 errored."""
    from tier2.devtools.demo import COMPANIES

    folder = tmp_path_factory.mktemp("demo")
    for company, library, n in COMPANIES:
        run_company(folder, company, library, n=n, seed=1)
        got = json.loads(
            _whatif(library, "--db", str(folder / f"{library}.db"), "--format", "json")
        )
        assert got["cases"] == n
        assert (got["changed"], got["reasons_only"], got["errored"]) == (0, 0, 0)

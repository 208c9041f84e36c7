"""`tier2 decide` and `tier2 lint` as a user runs them: the contract's command, end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import SAAS_BASE, patched
from tier2.helpdesk.local import LocalHelpDesk
from tier2.store.db import database_url, head_revision, make_engine

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def tier2(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tier2", *args],
        input=stdin,
        capture_output=True,
        check=False,
        cwd=ROOT,
        timeout=300,
    )


def lines(out: bytes) -> list[dict]:  # type: ignore[type-arg]
    return [orjson.loads(x) for x in out.splitlines() if x.strip()]


@pytest.fixture
def case_file(tmp_path: Path) -> Path:
    path = tmp_path / "case.json"
    path.write_bytes(orjson.dumps(SAAS_BASE, option=orjson.OPT_INDENT_2))
    return path


def test_one_case_one_decision(case_file: Path) -> None:
    """One case file gives one decision line with exit 0 (default library saas)."""
    r = tier2("decide", str(case_file))
    assert r.returncode == 0, r.stderr
    (d,) = lines(r.stdout)
    assert (d["case_id"], d["outcome"], d["actions"]) == (
        "NW-1", "resolve", [{"type": "refund", "amount": 240.0, "currency": "EUR"}],
    )  # fmt: skip
    assert [s["stage"] for s in d["stages"]] == [
        "receive", "gather_context", "apply_policy", "resolve_or_escalate", "document",
    ]  # fmt: skip


@pytest.mark.slow
def test_array_jsonl_and_stdin(tmp_path: Path) -> None:
    """A JSON array, a .jsonl file and standard input are decided case by case, in order."""
    cases = [patched(SAAS_BASE, {"case_id": f"NW-{i}"}) for i in range(3)]
    array = tmp_path / "cases.json"
    array.write_bytes(orjson.dumps(cases))
    jsonl = tmp_path / "cases.jsonl"
    jsonl.write_bytes(b"\n".join(orjson.dumps(c) for c in cases))
    for r in (
        tier2("decide", str(array)),
        tier2("decide", str(jsonl)),
        tier2("decide", "-", stdin=jsonl.read_bytes()),
    ):
        assert r.returncode == 0, r.stderr
        assert [d["case_id"] for d in lines(r.stdout)] == ["NW-0", "NW-1", "NW-2"]


def test_a_bad_first_line_on_standard_input_fails_alone() -> None:
    """Standard input is decided line by line like a file: a broken first line is one error,
    the cases after it are decided."""
    good = [orjson.dumps(patched(SAAS_BASE, {"case_id": f"NW-{i}"})) for i in range(2)]
    r = tier2("decide", "-", stdin=b"{broken\n" + b"\n".join(good) + b"\n")
    assert r.returncode == 2
    assert [d["case_id"] for d in lines(r.stdout)] == ["NW-0", "NW-1"]
    assert len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith(b"case line 1: (line): not valid JSON")


@pytest.mark.parametrize(("name", "content"), [("empty.jsonl", b""), ("blank.json", b" \n\n")])
def test_an_empty_input_is_one_error(tmp_path: Path, name: str, content: bytes) -> None:
    """An input with no case exits 2 with one line saying so."""
    path = tmp_path / name
    path.write_bytes(content)
    for r in (tier2("decide", str(path)), tier2("decide", "-", stdin=content)):
        assert r.returncode == 2 and r.stdout == b""
        assert r.stderr.decode().splitlines() == [
            "case (input): (input): no case: the input is empty"
        ]


def test_an_unforeseen_failure_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """Whatever a command did not foresee ends it with one line on stderr (here: the store
    path is a directory), exit status 1 or 2, never a traceback."""
    store = tmp_path / "store.db"
    store.mkdir()
    r = tier2("import", str(EXAMPLES / "saas" / "cases.jsonl"), "--db", f"sqlite:///{store}")
    assert r.returncode in (1, 2) and b"Traceback" not in r.stderr
    assert len(r.stderr.decode().splitlines()) == 1 and r.stderr.startswith(b"tier2: ")


def test_bad_case_in_a_batch(tmp_path: Path) -> None:
    """A bad case exits 2 with one line naming case and field; the good ones are still decided."""
    cases = [
        patched(SAAS_BASE, {"case_id": "NW-A"}),
        patched(SAAS_BASE, {"case_id": "NW-B", "ticket.severity": "urgent"}),
        patched(SAAS_BASE, {"case_id": "NW-C"}),
    ]
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(c) for c in cases) + b"\n{broken\n")
    r = tier2("decide", str(path))
    assert r.returncode == 2
    assert [d["case_id"] for d in lines(r.stdout)] == ["NW-A", "NW-C"]
    err = r.stderr.decode().splitlines()
    assert err[0].startswith("case NW-B (line 2): ticket.severity: Input should be")
    assert err[1].startswith("case line 4: (line): not valid JSON")
    assert len(err) == 2 and b"Traceback" not in r.stderr


@pytest.mark.slow
def test_workers_write_the_same_bytes(tmp_path: Path) -> None:
    """Deciding in two processes writes what one process writes: every decision and every
    error line, in input order, with the same exit code."""
    cases = [
        patched(SAAS_BASE, {"case_id": f"NW-{i}", "handoff.request.amount": 10.0 + i})
        for i in range(1200)
    ]
    cases[700] = patched(cases[700], {"ticket.severity": "urgent"})
    path = tmp_path / "cases.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(c) for c in cases) + b"\n{broken\n")
    one, two = (tier2("decide", str(path), "--workers", w) for w in ("1", "2"))
    assert (one.returncode, two.returncode) == (2, 2)
    assert one.stdout == two.stdout and one.stderr == two.stderr
    assert len(lines(one.stdout)) == 1199
    assert one.stderr.decode().splitlines()[0].startswith("case NW-700 (line 701): ticket.severity")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("decide", "no-such-file.json"), "tier2: cannot read no-such-file.json"),
        (("decide", "README.md"), "not valid JSON"),
        (("decide", "examples/saas/cases.jsonl", "--library", "banking"), "not a built-in library"),
        (
            ("decide", "examples/saas/cases.jsonl", "--now", "yesterday"),
            "--now: not an ISO-8601 time",
        ),
        (
            ("decide", "examples/saas/cases.jsonl", "--now", "2026-03-03T10:00:00"),
            "--now: needs an offset",
        ),
    ],
)
def test_unusable_input_exits_2_with_one_clear_line(args: tuple[str, ...], message: str) -> None:
    """Unreadable input, an unknown library or a bad clock: exit 2, one line, no traceback."""
    r = tier2(*args)
    assert r.returncode == 2
    assert message in r.stderr.decode() and b"Traceback" not in r.stderr


def test_same_input_same_bytes() -> None:
    """Deciding the same file twice prints the same bytes."""
    first = tier2("decide", "examples/ecommerce/cases.jsonl", "--library", "ecommerce")
    second = tier2("decide", "examples/ecommerce/cases.jsonl", "--library", "ecommerce")
    assert first.returncode == 0 and first.stdout == second.stdout


@pytest.mark.slow
def test_now_defaults_to_received_at(case_file: Path) -> None:
    """--now sets the clock; without it the clock is the case's received_at."""
    default = lines(tier2("decide", str(case_file)).stdout)[0]
    same = lines(tier2("decide", str(case_file), "--now", SAAS_BASE["received_at"]).stdout)[0]
    later = lines(tier2("decide", str(case_file), "--now", "2026-03-04T09:00:00+01:00").stdout)[0]
    assert default == same
    assert "decided at 2026-03-04T09:00:00+01:00" in later["note"]


def test_text_format_for_a_person() -> None:
    """--format text shows outcome, reasons, actions, guidance and the note."""
    r = tier2("decide", "examples/saas/cases.jsonl", "--format", "text")
    out = r.stdout.decode()
    assert r.returncode == 0
    assert "Case NW-20417: resolve" in out
    assert "1. policy_resolution: billing.duplicate-charge matched" in out
    assert "Actions: refund 240.00 EUR" in out
    assert "Case NW-20420: return_to_tier1" in out and "KB-ACCESS-12" in out
    assert "### Escalation handoff → senior_support" in out


def test_library_folder(tmp_path: Path) -> None:
    """--library takes a folder."""
    folder = ROOT / "src" / "tier2" / "library" / "builtin" / "ecommerce"
    r = tier2("decide", "examples/ecommerce/cases.jsonl", "--library", str(folder))
    assert r.returncode == 0 and len(lines(r.stdout)) == 8


@pytest.mark.slow
def test_lint_reports_the_handbook_conflicts() -> None:
    """tier2 lint on the built-in library names the handbook's conflicts."""
    r = tier2("lint", "ecommerce", "--samples", "4000")
    out = r.stdout.decode()
    assert r.returncode == 0
    assert "refund.in-window x refund.final-sale" in out
    assert "refund.final-sale x damage.replacement" in out
    strict = tier2("lint", "ecommerce", "--samples", "500", "--strict")
    assert strict.returncode == 1


@pytest.mark.slow
def test_db_upgrade_creates_the_store(tmp_path: Path) -> None:
    """tier2 db upgrade creates the SQLite store named by TIER2_DB, and can run again."""
    db = tmp_path / "cases.db"
    env = {**os.environ, "TIER2_DB": str(db)}
    for _ in range(2):
        r = subprocess.run(
            [sys.executable, "-m", "tier2", "db", "upgrade"],
            capture_output=True,
            env=env,
            check=False,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode().endswith(f"schema at {head_revision(database_url(str(db)))}\n")
    assert db.exists()


def test_db_upgrade_unreachable_database_is_one_clear_line() -> None:
    """A database that cannot be reached gives exit 2 and one line, password hidden."""
    r = tier2("db", "upgrade", "--db", "postgresql://someone:secret@127.0.0.1:1/none")
    err = r.stderr.decode()
    assert r.returncode == 2 and len(err.splitlines()) == 1
    assert "cannot upgrade postgresql+psycopg://someone:***@127.0.0.1:1/none" in err
    assert "secret" not in err and "Traceback" not in err


def test_import_files_good_cases_and_names_bad_ones(tmp_path: Path) -> None:
    """tier2 import files the good escalations of a batch and reports each bad one (exit 2)."""
    db = tmp_path / "desk.db"
    cases = [
        patched(SAAS_BASE, {"case_id": "NW-1", "ticket.id": "1"}),
        patched(SAAS_BASE, {"case_id": "NW-2", "ticket.id": "2", "ticket.category": "nope"}),
        patched(SAAS_BASE, {"case_id": "NW-3", "ticket.id": "3"}),
    ]
    path = tmp_path / "cases.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(c) for c in cases))
    r = tier2("import", str(path), "--db", str(db))
    assert r.returncode == 2
    assert r.stdout.decode().startswith("filed 2 escalation(s)")
    assert r.stderr.decode().startswith("case NW-2 (line 2): ticket.category:")
    engine = make_engine(database_url(str(db)))
    assert sorted(LocalHelpDesk(engine).escalations()) == ["1", "3"]
    engine.dispose()


@pytest.mark.slow
def test_sla_due_prints_the_due_time_in_the_library_zone() -> None:
    """`tier2 sla due` gives the handbook's A5 due time, to the minute, in the calendar's zone."""
    done = tier2(
        "sla",
        "due",
        "--library",
        "saas",
        "--severity",
        "high",
        "--from",
        "2026-03-06T16:30:00+01:00",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"2026-03-09T15:30:00+01:00\n"
    us = tier2(
        "sla",
        "due",
        "--library",
        "ecommerce",
        "--severity",
        "low",
        "--from",
        "2026-11-25T12:00:00-05:00",
    )
    assert us.stdout == b"2026-12-01T12:00:00-05:00\n"  # Thanksgiving, then a weekend


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--severity", "urgent", "--from", "2026-03-06T16:30:00+01:00"],
            b"no resolution target for severity urgent",
        ),
        (["--severity", "high", "--from", "2026-03-06T16:30"], b"--from: needs an offset"),
        (
            [
                "--severity",
                "high",
                "--from",
                "2026-03-06T16:30:00+01:00",
                "--target",
                "first_response",
            ],
            b"no first_response target",
        ),
    ],
)
def test_sla_due_bad_input_is_a_clear_error(args: list[str], message: bytes) -> None:
    """Unknown severities and targets, and times without offsets, exit 2 with one line."""
    done = tier2("sla", "due", *args)
    assert done.returncode == 2 and message in done.stderr and b"Traceback" not in done.stderr


@pytest.mark.slow
def test_sla_replay_reports_per_level() -> None:
    """`tier2 sla replay` on the repository's copy of the real log prints a row per level."""
    done = tier2("sla", "replay", "data/helpdesk_log.csv.gz")
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "4,479 tickets, 20,937 events" in out
    assert all(level in out for level in ("Value 1", "Value 2", "Value 4"))
    missing = tier2("sla", "replay", "no-such.csv")
    assert (
        missing.returncode == 2
        and b"no-such.csv" in missing.stderr
        and b"Traceback" not in missing.stderr
    )


@pytest.mark.slow
def test_check_reports_each_part_and_fails_plainly(tmp_path: Path) -> None:
    """`tier2 check` prints a line per check; a broken config file is one clear line, exit 2."""
    db = tmp_path / "t.db"
    assert tier2("db", "upgrade", "--db", str(db)).returncode == 0
    good = tmp_path / "tier2.toml"
    good.write_text(f'library = "ecommerce"\ndatabase = "{db}"\n')
    done = tier2("check", "--config", str(good))
    assert done.returncode == 0, done.stdout
    assert b"ok   library: ecommerce" in done.stdout and b"ok   database:" in done.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[connector]\nkind = "rt"\n')
    refused = tier2("check", "--config", str(bad))
    assert refused.returncode == 2 and b"there is no [connector.rt] section" in refused.stderr
    assert b"Traceback" not in refused.stderr

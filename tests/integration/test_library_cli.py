"""`tier2 library diff` and `tier2 library list` through the command line: exit 0 when the
same, 1 when different, 2 with one line for what cannot be compared; the versions a runner
stored, by digest prefix."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from tier2.entrypoints.cli import app
from tier2.library.loader import load_library, resolve_library_path
from tier2.store import models as m
from tier2.store.db import make_engine


def tier2(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def raised(tmp_path: Path) -> Path:
    """A copy of saas whose tier-2 cap is 1000 instead of 500."""
    folder = tmp_path / "raised"
    shutil.copytree(resolve_library_path("saas"), folder)
    path = folder / "library.yaml"
    text = path.read_text()
    assert "{role: tier2, limit: 500," in text
    path.write_text(text.replace("{role: tier2, limit: 500,", "{role: tier2, limit: 1000,"))
    return folder


def one_line_error(result: Result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert expected in result.stderr


def test_a_built_in_against_a_changed_folder(raised: Path) -> None:
    result = tier2("library", "diff", "saas", str(raised))
    assert result.exit_code == 1, result.output
    assert "Authority ladder\n  ladder.tier2.limit: 500 → 1000\n" in result.stdout
    assert result.stdout.startswith("--- saas 2026.12.0 (sha256:")
    found = json.loads(tier2("library", "diff", "saas", str(raised), "--format", "json").stdout)
    assert found["identical"] is False
    assert found["authority"] == [
        {"field": "ladder.tier2.limit", "change": "changed", "old": 500, "new": 1000}
    ]


def test_the_same_library_exits_0(tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(resolve_library_path("saas"), folder)
    result = tier2("library", "diff", "saas", str(folder))
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("identical\n")
    assert json.loads(tier2("library", "diff", "saas", "saas", "-f", "json").stdout)["identical"]


def test_bad_input_is_one_line(tmp_path: Path, raised: Path) -> None:
    one_line_error(tier2("library", "diff", "saas", str(tmp_path / "nowhere")),
                   "not a built-in library (saas, ecommerce, retail) and not a folder")  # fmt: skip
    one_line_error(tier2("library", "diff", "abcdef0123", "saas"), "a stored digest needs --db")
    (raised / "sla.yaml").write_text("targets: {}\n")
    one_line_error(tier2("library", "diff", "saas", str(raised)), "sla.yaml: ")
    db = str(tmp_path / "empty.db")
    one_line_error(tier2("library", "diff", "abcdef01", "saas", "--db", db),
                   "abcdef01: no library version stored with this digest")  # fmt: skip


def test_a_runners_version_is_listed_and_compared_by_prefix(
    tmp_path: Path, raised: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tier2 run` stores the library it decides with; `library list` shows it, and a prefix
    of its digest names it to `library diff`."""
    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / "tier2.db")
    assert tier2("library", "list", "--db", db).stdout.startswith("no library versions")
    ran = tier2("run", "--once", "--db", db, "--workers", "0", "--library", str(raised))
    assert ran.exit_code == 0, ran.output
    digest = load_library(str(raised)).digest
    listed = tier2("library", "list", "--db", db)
    assert listed.exit_code == 0 and listed.stdout.startswith(f"{digest}  saas 2026.12.0  ")
    assert listed.stdout.endswith("  0 decisions\n")
    [row] = json.loads(tier2("library", "list", "--db", db, "-f", "json").stdout)
    assert (row["digest"], row["decisions"], row["stored"]) == (digest, 0, True)

    prefix = digest.removeprefix("sha256:")[:8]
    result = tier2("library", "diff", "saas", prefix, "--db", db)
    assert result.exit_code == 1, result.output
    assert "ladder.tier2.limit: 500 → 1000" in result.stdout
    assert tier2("library", "diff", digest, str(raised), "--db", db).exit_code == 0

    engine = make_engine(f"sqlite:///{db}")
    with Session(engine) as session:  # two versions whose digests start alike
        for tail in ("00", "11"):
            session.add(m.LibraryVersion(
                digest=f"sha256:abcdef01234567{tail}", name="x", version="1", title="x",
                stored_at=datetime.now(UTC), files={},
            ))  # fmt: skip
        session.commit()
    engine.dispose()
    one_line_error(tier2("library", "diff", "abcdef01", "saas", "--db", db),
                   "more than one stored digest starts so")  # fmt: skip
    one_line_error(tier2("library", "diff", "sha256:abcdef0123456700", "saas", "--db", db),
                   "stored library sha256:abcdef0123456700: its files digest to")  # fmt: skip

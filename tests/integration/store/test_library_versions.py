"""The library versions a store keeps: each stored once by digest, however many runners start
with it, and loaded back as the same library (the same digest, the same decisions)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from tests.conftest import SAAS_BASE, patched, run
from tier2.app.runner import Runner
from tier2.contract import CaseIn
from tier2.helpdesk.local import LocalHelpDesk
from tier2.library.loader import (
    LibraryError,
    files_digest,
    library_files,
    load_library,
    load_library_files,
    resolve_library_path,
)
from tier2.library.samples import CaseGenerator
from tier2.store import models as m
from tier2.store.db import make_engine, upgrade
from tier2.store.library_versions import (
    digests_starting,
    library_versions,
    remember_library,
    stored_files,
    stored_library,
)
from tier2.store.unit_of_work import SqlUnitOfWork

SAAS = resolve_library_path("saas")
T0 = datetime(2026, 4, 1, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def rows(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(m.LibraryVersion)) or 0


@pytest.fixture
def edited(tmp_path: Path) -> Path:
    """A copy of saas with a template of its own and a file that is not UTF-8 text."""
    folder = tmp_path / "lib"
    shutil.copytree(SAAS, folder)
    (folder / "templates").mkdir()
    default = SAAS.parent.parent / "templates" / "reply.md.j2"
    (folder / "templates" / "reply.md.j2").write_text(default.read_text() + "\nRegards\r\n")
    (folder / "logo.bin").write_bytes(b"\x89PNG\r\n\x00\xff\xfe")
    return folder


def test_remembered_twice_is_one_row(store: Engine) -> None:
    library = load_library("saas")
    assert remember_library(store, library, SAAS) is True
    assert remember_library(store, library, SAAS) is False
    assert rows(store) == 1
    with Session(store) as session:
        row = session.scalars(select(m.LibraryVersion)).one()
    assert (row.digest, row.name, row.version) == (library.digest, "saas", library.version)
    assert set(row.files) == {"library.yaml", "policies.yaml", "sla.yaml"}
    assert row.files["policies.yaml"] == (SAAS / "policies.yaml").read_text()


def test_runners_starting_at_once_store_it_once(store: Engine) -> None:
    library = load_library("saas")
    results: list[bool] = []
    start = threading.Barrier(6)

    def remember() -> None:
        start.wait()
        results.append(remember_library(store, library, SAAS))

    threads = [threading.Thread(target=remember) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
    assert rows(store) == 1


def test_stored_loads_back_with_the_same_digest_and_decisions(store: Engine) -> None:
    library = load_library("saas")
    remember_library(store, library, SAAS)
    again = stored_library(store, library.digest)
    assert again is not None and again.digest == library.digest
    for patch in ({}, {"handoff.request.amount": 900.0}, {"customer.segment": "enterprise"}):
        case = patched(SAAS_BASE, patch)
        assert run(case, again) == run(case, library)


def test_templates_and_other_files_come_back_byte_for_byte(store: Engine, edited: Path) -> None:
    library = load_library(str(edited))
    assert remember_library(store, library, edited)
    assert stored_files(store, library.digest) == library_files(edited)
    again = stored_library(store, library.digest)
    assert again is not None and again.digest == library.digest
    assert run(SAAS_BASE, again) == run(SAAS_BASE, library)
    assert "Regards" in run(SAAS_BASE, again)["customer_reply"]


def test_load_library_files_gives_the_folders_digest(edited: Path) -> None:
    files = library_files(edited)
    assert files_digest(files) == load_library(str(edited)).digest
    assert load_library_files(files, "test").digest == load_library(str(edited)).digest
    with pytest.raises(LibraryError, match=r"test: '\.\./x' is not a relative path"):
        load_library_files({**files, "../x": b""}, "test")
    broken = {**files, "sla.yaml": b"targets: {}\n"}
    with pytest.raises(LibraryError, match=r"^test/sla\.yaml: "):
        load_library_files(broken, "test")


def test_a_library_edited_after_loading_is_not_stored(store: Engine, edited: Path) -> None:
    library = load_library(str(edited))
    (edited / "logo.bin").write_bytes(b"another logo")
    with pytest.raises(LibraryError, match="changed after it was loaded"):
        remember_library(store, library, edited)
    assert rows(store) == 0


def test_unknown_and_tampered_versions(store: Engine) -> None:
    library = load_library("saas")
    assert stored_library(store, library.digest) is None
    remember_library(store, library, SAAS)
    with Session(store) as session:
        row = session.get_one(m.LibraryVersion, library.digest)
        files = dict(row.files)
        files["sla.yaml"] = files["sla.yaml"].replace("hours: 18", "hours: 1")
        session.execute(
            update(m.LibraryVersion)
            .where(m.LibraryVersion.digest == library.digest)
            .values(files=files)
        )
        session.commit()
    with pytest.raises(LibraryError, match=f"stored library {library.digest}: its files digest"):
        stored_library(store, library.digest)


def test_digests_by_prefix(store: Engine) -> None:
    library = load_library("saas")
    remember_library(store, library, SAAS)
    hex_ = library.digest.removeprefix("sha256:")
    assert digests_starting(store, hex_[:8]) == [library.digest]
    assert digests_starting(store, library.digest) == [library.digest]
    assert digests_starting(store, "%") == []
    assert digests_starting(store, "0" * 8 if hex_[0] != "0" else "f" * 8) == []


def test_versions_are_listed_with_their_decisions(store: Engine) -> None:
    """Each stored version with the decisions that name it; a digest decided with but not
    stored (a store from before) is listed as not stored, named as its decisions name it."""
    library = load_library("saas")
    remember_library(store, library, SAAS)
    desk = LocalHelpDesk(store)
    desk.import_cases(CaseIn.model_validate(r) for r in CaseGenerator(library, 8).cases(12))
    ticks = count()
    runner = Runner(
        SqlUnitOfWork(store), library, desk, lambda: T0 + timedelta(seconds=next(ticks))
    )
    assert runner.run_once().finished == 12
    runner.close()
    [version] = library_versions(store)
    assert (version.digest, version.name, version.decisions, version.stored) == (
        library.digest, "saas", 12, True,
    )  # fmt: skip
    with Session(store) as session:
        session.execute(delete(m.LibraryVersion))
        session.commit()
    [lost] = library_versions(store)
    assert (lost.digest, lost.name, lost.version, lost.stored_at, lost.decisions) == (
        library.digest, "saas", library.version, None, 12,
    )  # fmt: skip
    assert not lost.stored

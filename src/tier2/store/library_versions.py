"""The library versions that decided cases, kept by digest so each can be loaded again.

A runner remembers its library when it starts deciding (`remember_library`): one row per
digest, with every file the digest covers, written once however many runners start with it.
`stored_library` loads a stored version back; its digest is checked, so what comes back is
the exact policy text a stored decision names. Stores made before this table hold no rows
for the libraries that decided their earlier cases.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from tier2.core.library import Library
from tier2.library.loader import LibraryError, files_digest, library_files, load_library_files
from tier2.store import models as m

DIGEST_PREFIX = "sha256:"
MIN_PREFIX = 8  # hex characters of a digest given by its prefix


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """A library version of the store: `stored` False for one that decided cases but whose
    files were not kept (a store from before the table); then its name and version are
    those its decisions name."""

    digest: str
    name: str
    version: str
    stored_at: datetime | None
    decisions: int
    stored: bool = True


def remember_library(engine: Engine, library: Library, folder: Path) -> bool:
    """Keep the library's files under its digest unless the store has them already; True
    when this call stored them. Safe with several runners starting at once. LibraryError
    when the folder no longer holds what was loaded (it was edited since)."""
    with engine.connect() as conn:
        known = conn.execute(
            select(m.LibraryVersion.digest).where(m.LibraryVersion.digest == library.digest)
        ).first()
    if known is not None:
        return False
    files = library_files(folder)
    found = files_digest(files)
    if found != library.digest:
        raise LibraryError(
            f"{folder}: the library changed after it was loaded ({library.digest}, now "
            f"{found}): start again to decide with the library as it is now"
        )
    row = {
        "digest": library.digest,
        "name": _text(library.name),
        "version": _text(library.version),
        "title": _text(library.title),
        "stored_at": datetime.now(UTC),
        "files": encode_files(files),
    }
    return _insert_new(engine, row)


def _insert_new(engine: Engine, row: Mapping[str, Any]) -> bool:
    """Insert the row unless its digest is there (another runner may have stored it)."""
    dialect = engine.dialect.name
    table = m.table(m.LibraryVersion)
    keys = ["digest"]
    if dialect == "postgresql":  # a row back: this one inserted it (psycopg's rowcount is -1)
        returning = postgresql.insert(table).values(**row).on_conflict_do_nothing(
            index_elements=keys
        ).returning(table.c.digest)  # fmt: skip
        with engine.begin() as conn:
            return conn.execute(returning).first() is not None
    if dialect == "sqlite":  # (RETURNING needs SQLite 3.35; the count of changes does not)
        statement = sqlite.insert(table).values(**row).on_conflict_do_nothing(index_elements=keys)
        with engine.begin() as conn:
            return conn.execute(statement).rowcount == 1
    try:
        with engine.begin() as conn:
            conn.execute(insert(table).values(**row))
    except IntegrityError:
        return False
    return True


def _text(value: str) -> str:
    return value.replace("\0", "\\0")  # (PostgreSQL's text holds no NUL)


def encode_files(files: Mapping[str, bytes]) -> dict[str, Any]:
    """Files as JSON: UTF-8 text as it is, any other file (or one holding NUL, which
    PostgreSQL's JSON cannot) as {"base64": ...}."""
    out: dict[str, Any] = {}
    for name, data in files.items():
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None or "\0" in text:
            out[name] = {"base64": base64.b64encode(data).decode("ascii")}
        else:
            out[name] = text
    return out


def decode_files(stored: Mapping[str, Any], digest: str) -> dict[str, bytes]:
    """The files `encode_files` stored, as bytes."""
    out: dict[str, bytes] = {}
    for name, value in stored.items():
        if isinstance(value, str):
            out[name] = value.encode("utf-8")
        elif isinstance(value, Mapping) and isinstance(value.get("base64"), str):
            out[name] = base64.b64decode(value["base64"])
        else:
            raise LibraryError(f"stored library {digest}: file {name!r} is not text or base64")
    return out


def stored_files(engine: Engine, digest: str) -> dict[str, bytes] | None:
    """The files of the stored version with this digest (None when the store lacks it)."""
    with engine.connect() as conn:
        files = conn.execute(
            select(m.LibraryVersion.files).where(m.LibraryVersion.digest == digest)
        ).scalar()
    return None if files is None else decode_files(files, digest)


def stored_library(engine: Engine, digest: str) -> Library | None:
    """The stored version with this digest, loaded (None when the store lacks it);
    LibraryError when it does not load, or its files no longer have that digest."""
    files = stored_files(engine, digest)
    if files is None:
        return None
    return load_stored(files, digest)


def load_stored(files: Mapping[str, bytes], digest: str) -> Library:
    """A stored version's files loaded, checked to have the digest they were stored under."""
    found = files_digest(files)
    if found != digest:
        raise LibraryError(f"stored library {digest}: its files digest to {found}")
    library = load_library_files(files, f"stored library {digest}")
    if library.digest != digest:  # (cannot differ from the files' own; checked all the same)
        raise LibraryError(f"stored library {digest}: loaded with digest {library.digest}")
    return library


def digests_starting(engine: Engine, prefix: str) -> list[str]:
    """The stored digests that start with `prefix` (with or without `sha256:`)."""
    wanted = prefix if prefix.startswith(DIGEST_PREFIX) else DIGEST_PREFIX + prefix
    escaped = wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    with engine.connect() as conn:
        return list(
            conn.scalars(
                select(m.LibraryVersion.digest)
                .where(m.LibraryVersion.digest.like(f"{escaped}%", escape="\\"))
                .order_by(m.LibraryVersion.digest)
            )
        )


def library_versions(engine: Engine) -> list[StoredVersion]:
    """Every version of the store, first stored first, with how many decisions name it;
    then the digests decisions name whose files were not kept."""
    digest = m.Decision.library_digest
    with engine.connect() as conn:
        counted = conn.execute(select(digest, func.count()).group_by(digest))
        counts: dict[str, int] = dict(counted.all())
        rows = conn.execute(
            select(
                m.LibraryVersion.digest, m.LibraryVersion.name, m.LibraryVersion.version,
                m.LibraryVersion.stored_at,
            ).order_by(m.LibraryVersion.stored_at, m.LibraryVersion.digest)
        ).all()  # fmt: skip
        out = [StoredVersion(d, n, v, at, counts.get(d, 0)) for d, n, v, at in rows]
        kept = {v.digest for v in out}
        for lost in sorted(set(counts) - kept):
            body = conn.execute(
                select(m.Decision.body).where(digest == lost).order_by(m.Decision.id).limit(1)
            ).scalar()
            named = body.get("library", {}) if isinstance(body, dict) else {}
            out.append(StoredVersion(
                lost, str(named.get("name", "?")), str(named.get("version", "?")), None,
                counts[lost], stored=False,
            ))  # fmt: skip
    return out

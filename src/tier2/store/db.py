"""Engines and migrations for the case store."""

from __future__ import annotations

import os
import weakref
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

DEFAULT_DB = "./tier2.db"


def database_url(value: str | None = None) -> str:
    """`TIER2_DB` (or the value given): an SQLAlchemy URL, or a path to an SQLite file."""
    raw = value if value is not None else os.environ.get("TIER2_DB", DEFAULT_DB)
    if "://" in raw:
        url = make_url(raw)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)
    return f"sqlite:///{Path(raw).expanduser()}"


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


# Every engine this process made: a forked child drops their pooled connections unused (the
# parent's sockets and SQLite handles are the parent's; a child opens its own).
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_inherited_connections() -> None:
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_inherited_connections)

# How long an SQLite writer waits for the write lock before it gives up (seconds): runners
# sharing a file take turns, and a batch holds the lock for about a second.
SQLITE_BUSY_TIMEOUT = 120.0


def make_engine(url: str, *, immediate: bool = True, **options: Any) -> Engine:
    """An engine for the store; JSON columns go through orjson (several times faster).

    On SQLite every transaction takes the write lock before its first read (`BEGIN
    IMMEDIATE`, unless `immediate` is False for a reader): two runners can then never both
    read a case as theirs to change, and a writer never fails on a snapshot another writer
    made stale. PostgreSQL keeps its own locking (row locks, `SKIP LOCKED`).
    """
    options.setdefault("json_serializer", _json)
    options.setdefault("json_deserializer", orjson.loads)
    if url.startswith("sqlite"):
        options.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT})
    engine = create_engine(url, **options)
    _engines.add(engine)
    if engine.dialect.name == "sqlite":
        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql(begin)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # type: ignore[no-untyped-def]
            conn.isolation_level = None  # transactions begin in _sqlite_begin, not the driver
            cursor = conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a process crash
            # checkpoint every 40 MB of WAL, not 4: a batch writes several MB, and each
            # checkpoint syncs (docs/benchmarks.md has the measurement)
            cursor.execute("PRAGMA wal_autocheckpoint=10000")
            cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: batches touch many index pages
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.close()

    return engine


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("tier2.store") / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database to the given migration (all of them by default)."""
    command.upgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()

"""Many rows in one statement: the store's hot inserts and keyed updates.

On SQLite the statement is compiled once per table and column set and each value goes
through its column's own bind processor (the same conversion SQLAlchemy applies, so the
stored values are identical); the rows then go to the driver's `executemany` as tuples.
SQLAlchemy's per-row parameter assembly costs more than SQLite's insert itself. Elsewhere
(PostgreSQL) SQLAlchemy's own statements are used: they batch rows into multi-row VALUES.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import orjson
from sqlalchemy import Table, insert, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from tier2.store.models import Base

Processor = Callable[[Any], Any] | None


class Encoded:
    """A JSON value encoded already, by the store's own serializer (orjson): stored as is.

    Deciding processes hand decisions over encoded, so the store's process neither rebuilds
    nor re-encodes them.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _decoded(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: orjson.loads(v.text) if type(v) is Encoded else v for k, v in row.items()}
        for row in rows
    ]


_UNSEEN = object()
_plans: dict[tuple[Any, ...], tuple[str, tuple[Processor, ...]]] = {}


def _processors(table: Table, names: Sequence[str], dialect: Dialect) -> tuple[Processor, ...]:
    return tuple(table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names)


def _plain(table: Table, names: tuple[str, ...]) -> bool:
    """No column left out has a Python-side default (SQLAlchemy would fill it in)."""
    given = set(names)
    return all(c.name in given or c.default is None for c in table.c)


def _rows(
    rows: Sequence[Mapping[str, Any]], names: tuple[str, ...], processors: tuple[Processor, ...]
) -> list[tuple[Any, ...]]:
    """The rows as tuples of driver values. Processors are pure, and a batch's rows share
    values (its clock reading, say), so a value seen last in a column is not processed again."""
    last: list[tuple[Any, Any]] = [(_UNSEEN, None)] * len(names)
    out = []
    for row in rows:
        values = []
        for i, name in enumerate(names):
            value = row[name]
            process = processors[i]
            if type(value) is Encoded:
                value = value.text
            elif process is not None:
                seen, done = last[i]
                if value is seen:
                    value = done
                else:
                    last[i] = (value, done := process(value))
                    value = done
            values.append(value)
        out.append(tuple(values))
    return out


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT every row (all with the same keys) in one statement."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    names = tuple(rows[0])
    if dialect.name != "sqlite" or not _plain(table, names):
        session.execute(insert(table), _decoded(rows))
        return
    key = ("insert", table.name, names)
    plan = _plans.get(key)
    if plan is None:
        q = dialect.identifier_preparer.quote
        columns = ", ".join(q(n) for n in names)
        marks = ", ".join("?" for _ in names)
        sql = f"INSERT INTO {q(table.name)} ({columns}) VALUES ({marks})"
        plan = _plans[key] = (sql, _processors(table, names, dialect))
    sql, processors = plan
    conn.exec_driver_sql(sql, _rows(rows, names, processors))


def update_rows(session: Session, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> None:
    """UPDATE each row (by its primary key, which every row gives) in one statement."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    table = cast(Table, model.__table__)
    (key,) = (c.name for c in table.primary_key.columns)
    names = tuple(n for n in rows[0] if n != key)
    if dialect.name != "sqlite":
        session.execute(update(model), _decoded(rows))  # the ORM's bulk update by primary key
        return
    plan_key = ("update", table.name, names, key)
    plan = _plans.get(plan_key)
    if plan is None:
        q = dialect.identifier_preparer.quote
        sets = ", ".join(f"{q(n)} = ?" for n in names)
        sql = f"UPDATE {q(table.name)} SET {sets} WHERE {q(key)} = ?"
        plan = _plans[plan_key] = (sql, _processors(table, (*names, key), dialect))
    sql, processors = plan
    conn.exec_driver_sql(sql, _rows(rows, (*names, key), processors))

"""The tamper-evident audit log: append-only, each entry hashing the one before.

hash(n) = sha256(hash(n-1) + canonical JSON of [seq, at (UTC), case_id, event, data]),
with hash(0) = 64 zeros. Changing, removing or reordering any entry breaks every hash after
it; `verify` names the first entry that does not match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tier2.store.bulk import insert_rows
from tier2.store.models import AuditEntry, table

GENESIS = "0" * 64
_LOCK = 7_272_002  # the advisory lock that serialises appends on PostgreSQL


def _digest(  # noqa: PLR0917 (the entry's fields, in the order they are hashed)
    prev: str, seq: int, at: datetime, case_id: str | None, event: str, data: dict[str, Any]
) -> str:
    fields = [seq, at.astimezone(UTC).isoformat(), case_id, event, data]
    body = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev.encode() + b"\n" + body).hexdigest()


class Chain:
    """Appends entries in the caller's transaction, so they commit with what they record.

    It reads the head of the chain once (on PostgreSQL under an advisory lock held to the end
    of the transaction, so concurrent writers queue) and hashes each entry onto the one
    before in memory; `flush` writes the pending entries in one statement.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
        last = session.execute(
            select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
        ).first()
        self.seq: int = 0 if last is None else last.seq
        self.head: str = GENESIS if last is None else last.hash
        self.pending: list[dict[str, Any]] = []

    def add(self, *, at: datetime, case_id: str | None, event: str, data: dict[str, Any]) -> None:
        self.seq += 1
        digest = _digest(self.head, self.seq, at, case_id, event, data)
        self.pending.append(
            {
                "seq": self.seq,
                "at": at,
                "case_id": case_id,
                "event": event,
                "data": data,
                "prev_hash": self.head,
                "hash": digest,
            }
        )
        self.head = digest

    def flush(self) -> None:
        if self.pending:
            insert_rows(self.session, table(AuditEntry), self.pending)
            self.pending = []


@dataclass(frozen=True)
class Verdict:
    entries: int
    broken_at: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def _entries(session: Session) -> Iterator[AuditEntry]:
    yield from session.scalars(
        select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=2000)
    )


def verify(session: Session) -> Verdict:
    """Walk the chain from the start; the first entry that does not match breaks it."""
    prev, expected, n = GENESIS, 1, 0
    for entry in _entries(session):
        n += 1
        if entry.seq != expected:
            return Verdict(n, entry.seq, f"entry {expected} is missing (next is {entry.seq})")
        if entry.prev_hash != prev:
            return Verdict(n, entry.seq, "it does not point at the entry before it")
        if entry.hash != _digest(prev, entry.seq, entry.at, entry.case_id, entry.event, entry.data):
            return Verdict(
                n, entry.seq, "its content does not match its hash (changed after writing)"
            )
        prev, expected = entry.hash, expected + 1
    return Verdict(n)

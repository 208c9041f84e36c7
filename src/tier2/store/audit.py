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

from tier2.store.models import AuditEntry

GENESIS = "0" * 64
_LOCK = 7_272_002  # the advisory lock that serialises appends on PostgreSQL


def _digest(prev: str, entry: AuditEntry) -> str:
    fields = [
        entry.seq,
        entry.at.astimezone(UTC).isoformat(),
        entry.case_id,
        entry.event,
        entry.data,
    ]
    body = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev.encode() + b"\n" + body).hexdigest()


def append(
    session: Session, *, at: datetime, case_id: str | None, event: str, data: dict[str, Any]
) -> AuditEntry:
    """Add an entry in the caller's transaction (so it commits with what it records)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    last = session.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    seq, prev = (1, GENESIS) if last is None else (last.seq + 1, last.hash)
    entry = AuditEntry(seq=seq, at=at, case_id=case_id, event=event, data=data, prev_hash=prev)
    entry.hash = _digest(prev, entry)
    session.add(entry)
    session.flush()
    return entry


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
        if entry.hash != _digest(prev, entry):
            return Verdict(
                n, entry.seq, "its content does not match its hash (changed after writing)"
            )
        prev, expected = entry.hash, expected + 1
    return Verdict(n)

"""The tamper-evident audit log: append-only, each entry hashing the one before, its head
anchored under a key.

hash(n) = sha256(hash(n-1) + canonical JSON of [seq, at (UTC), case_id, event, data]),
with hash(0) = 64 zeros. Changing, removing or reordering any entry breaks every hash after
it. What the chain alone cannot show, someone who can write to the database can do: remove
entries from the end, or rewrite the whole log with its hashes recomputed. So the head is
anchored: `audit_anchor` holds the last entry's seq and hash and their HMAC-SHA256 under the
audit key, a key the store is given (it is never in the database), written in the
transaction of every append made with the key. Without the key the anchor cannot be moved:
a log that ends before its anchor, or whose entry at the anchor's seq hashes to something
else, shows.

`verify` walks the chain, checks the anchor (its signature only when given the key), then
checks the decisions, actions, ledger and notes against the entries that recorded them
(`store/crosscheck.py`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session

from tier2.store.bulk import insert_rows
from tier2.store.crosscheck import Recorded, cross_check
from tier2.store.models import AuditAnchor, AuditEntry, table

GENESIS = "0" * 64
_LOCK = 7_272_002  # the advisory lock that serialises appends on PostgreSQL
MIN_KEY_BYTES = 16


class AuditAnchorError(RuntimeError):
    """An append with the key was refused: the log does not end where its anchor says, or
    the anchor does not verify. Appending would sign what may have been tampered with."""


def entry_hash(  # noqa: PLR0917 (the entry's fields, in the order they are hashed)
    prev: str, seq: int, at: datetime, case_id: str | None, event: str, data: dict[str, Any]
) -> str:
    fields = [seq, at.astimezone(UTC).isoformat(), case_id, event, data]
    body = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev.encode() + b"\n" + body).hexdigest()


# ---------------------------------------------------------------------- the anchor


def key_id(key: bytes) -> str:
    """A fingerprint of the key (an HMAC of a fixed text): names it without revealing it."""
    return hmac.new(key, b"tier2 audit key id", hashlib.sha256).hexdigest()[:16]


def signature(key: bytes, seq: int, head: str) -> str:
    """The anchor's HMAC-SHA256 of the head (its entry's seq and hash) under the key."""
    message = f"tier2 audit anchor\n{seq}\n{head}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Anchor:
    seq: int
    head: str
    key_id: str
    mac: str


def read_anchors(session: Session) -> list[Anchor]:
    """The anchor rows (one, or none; more only if someone bypassed the table's check)."""
    a = table(AuditAnchor).c
    rows = session.execute(select(a.seq, a.head, a.key_id, a.mac).order_by(a.id))
    return [Anchor(*r) for r in rows]


def signature_problem(anchor: Anchor, key: bytes) -> str | None:
    """Why the anchor's signature does not verify with this key, if it does not."""
    if anchor.key_id != key_id(key):
        return (
            f"the anchor was signed with another key (key id {anchor.key_id}; this key's id is "
            f"{key_id(key)}), or the anchor was rewritten"
        )
    if not hmac.compare_digest(anchor.mac, signature(key, anchor.seq, anchor.head)):
        return (
            f"the anchor's signature does not match the entry and hash it names (entry "
            f"{anchor.seq}): the anchor was rewritten without the key"
        )
    return None


def _span(first: int, last: int, verb: tuple[str, str]) -> str:
    """The entries from first to last, with the verb agreeing (singular, plural)."""
    return f"entry {first} {verb[0]}" if first == last else f"entries {first}-{last} {verb[1]}"


def anchor_problem(
    anchors: list[Anchor], last: int, hash_at: Callable[[int], str | None], key: bytes | None
) -> str | None:
    """What the anchor says is wrong with a log whose last entry is `last` (0: empty), given
    the hash of the entry it names (`hash_at`, None where not known). Without the key the
    signature is not checked: a missing anchor, or entries after it, are then what a store
    written without the key looks like."""
    if len(anchors) > 1:
        return f"the anchor table holds {len(anchors)} rows (one is written)"
    anchor = anchors[0] if anchors else None
    if anchor is None:
        if key is not None and last > 0:
            return (
                f"the audit log has {last} entries and no anchor: it was removed, or the log "
                "was never written with the key"
            )
        return None
    if key is not None and (problem := signature_problem(anchor, key)) is not None:
        return problem
    if anchor.seq > last:
        ends = f"ends at entry {last}" if last else "is empty"
        return (
            f"the audit log {ends} but its anchor names entry {anchor.seq}: "
            f"{_span(last + 1, anchor.seq, ('was', 'were'))} removed"
        )
    known = hash_at(anchor.seq)  # (None: not known here)
    if known is not None and known != anchor.head:
        return (
            f"entry {anchor.seq} does not have the hash its anchor "
            + ("signed: the chain was rewritten, hashes recomputed" if key else "names: the "
               "chain was rewritten (hashes recomputed) or the anchor changed")
        )  # fmt: skip
    if key is not None and anchor.seq < last:
        return (
            f"{_span(anchor.seq + 1, last, ('comes', 'come'))} after the anchored head (entry "
            f"{anchor.seq}): written without the key, or added by someone without it"
        )
    return None


# ---------------------------------------------------------------------- appending


class Chain:
    """Appends entries in the caller's transaction, so they commit with what they record.

    It reads the head of the chain once (on PostgreSQL under an advisory lock held to the end
    of the transaction, so concurrent writers queue) and hashes each entry onto the one
    before in memory; `flush` writes the pending entries in one statement. Given the audit
    key, it first checks that the log ends where its signed anchor says (refusing with
    `AuditAnchorError` otherwise: appending would sign over a truncation or a rewrite), and
    `flush` moves the anchor to the new head in the same transaction. Without a key the
    anchor is left as it is.
    """

    def __init__(self, session: Session, key: bytes | None = None) -> None:
        self.session = session
        self.key = key
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
        last = session.execute(
            select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
        ).first()
        self.seq: int = 0 if last is None else last.seq
        self.head: str = GENESIS if last is None else last.hash
        self.pending: list[dict[str, Any]] = []
        self._anchored = False  # an anchor row exists (written with the key)
        if key is not None:
            anchors = read_anchors(session)
            at, head = self.seq, self.head
            problem = anchor_problem(anchors, at, lambda seq: head if seq == at else None, key)
            if problem is not None:
                raise AuditAnchorError(f"the audit log is not appended to: {problem}")
            self._anchored = bool(anchors)

    def add(self, *, at: datetime, case_id: str | None, event: str, data: dict[str, Any]) -> None:
        self.seq += 1
        digest = entry_hash(self.head, self.seq, at, case_id, event, data)
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
        if not self.pending:
            return
        insert_rows(self.session, table(AuditEntry), self.pending)
        self.pending = []
        if self.key is not None:
            write_anchor(self.session, self.key, self.seq, self.head, exists=self._anchored)
            self._anchored = True


def write_anchor(session: Session, key: bytes, seq: int, head: str, *, exists: bool) -> None:
    """The anchor moved to this head, signed with the key."""
    values = {"seq": seq, "head": head, "key_id": key_id(key), "mac": signature(key, seq, head)}
    anchors = table(AuditAnchor)
    if exists:
        session.execute(update(anchors).where(anchors.c.id == 1).values(**values))
    else:
        session.execute(insert(anchors).values(id=1, **values))


def anchor_head(session: Session, key: bytes, expected: tuple[int, str]) -> None:
    """Anchor the log at its head with this key, in the caller's transaction, once it has
    been verified (`tier2 audit anchor`): `expected` is the head verified, refused if the
    log has moved since."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    last = session.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    head = (0, GENESIS) if last is None else (last.seq, last.hash)
    if head != expected:
        raise AuditAnchorError(
            f"the audit log moved while it was verified (entry {expected[0]}, now {head[0]})"
        )
    write_anchor(session, key, *head, exists=bool(read_anchors(session)))


# ---------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class Verdict:
    entries: int
    broken_at: int | None = None  # the first entry that breaks the chain
    problem: str | None = None  # the first thing that disagrees, in words
    head: tuple[int, str] = (0, GENESIS)  # the last entry's seq and hash
    anchor: Anchor | None = None
    keyed: bool = False  # the anchor's signature was checked with the key
    checked: dict[str, int] = field(default_factory=dict)  # rows checked against the log

    @property
    def intact(self) -> bool:
        """Nothing found that disagrees (with the key: the anchor included)."""
        return self.problem is None

    @property
    def anchored(self) -> bool:
        """Intact, and the anchor, checked with the key, covers every entry."""
        covered = self.entries == 0 or (self.anchor is not None and self.anchor.seq == self.entries)
        return self.intact and self.keyed and covered


def _entries(session: Session) -> Iterator[Any]:
    e = table(AuditEntry).c
    yield from session.execute(
        select(e.seq, e.at, e.case_id, e.event, e.data, e.prev_hash, e.hash)
        .order_by(e.seq)
        .execution_options(yield_per=5000)
    )


def _snapshot(session: Session) -> None:
    """On PostgreSQL the whole verification reads one snapshot (REPEATABLE READ), so entries
    appended meanwhile are not read against an anchor read before them."""
    if not session.in_transaction() and session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def verify(session: Session, key: bytes | None = None) -> Verdict:
    """Walk the chain from the start (the first entry that does not match breaks it), check
    the anchor against its end (and its signature, given the key), then check decisions,
    actions, the ledger and notes against the entries that recorded them."""
    _snapshot(session)
    anchors = read_anchors(session)
    anchor = anchors[0] if len(anchors) == 1 else None
    anchored_hash: str | None = None
    recorded = Recorded()
    keyed = key is not None
    prev, expected, n = GENESIS, 1, 0
    for entry in _entries(session):
        n += 1
        broken = None
        if entry.seq != expected:
            broken = f"entry {expected} is missing (next is {entry.seq})"
        elif entry.prev_hash != prev:
            broken = f"entry {entry.seq} does not point at the entry before it"
        elif entry.hash != entry_hash(
            prev, entry.seq, entry.at, entry.case_id, entry.event, entry.data
        ):
            broken = (
                f"entry {entry.seq}: its content does not match its hash (changed after writing)"
            )
        if broken is not None:
            return Verdict(n, entry.seq, broken, keyed=keyed)
        if anchor is not None and entry.seq == anchor.seq:
            anchored_hash = entry.hash
        recorded.add(entry.seq, entry.at, entry.case_id, entry.event, entry.data)
        prev, expected = entry.hash, expected + 1
    at_anchor = anchor.seq if anchor is not None else -1
    problem = anchor_problem(
        anchors, n, lambda seq: anchored_hash if seq == at_anchor else None, key
    )
    checked: dict[str, int] = {}
    if problem is None:
        checked, problem = cross_check(session, recorded)
    return Verdict(n, None, problem, (n, prev), anchor, keyed, checked)

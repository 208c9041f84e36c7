"""The console's reads and writes on the case store.

The cases list is one indexed query with a LIMIT, paged by key (received_at, id: the next
page starts after the last row shown). The review queue reads the open escalations (of a
team) on their partial index, and times only the oldest of each severity (for one severity
the due time grows with the escalation time, so the most urgent of the whole queue are among
them). A case page reads one case by its key and what hangs off it through their case_id
indexes.

`SqlConsoleStore` is the use cases' port (`tier2.app.console.ConsoleStore`): one
transaction, the case locked, the help desk writing in it when it lives in the store, the
audit log appended to with the audit key when one is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, literal_column, or_, select, update
from sqlalchemy.orm import Session

from tier2.app.console import ESCALATED, Accepted, WorkCase
from tier2.app.ports import AuditEntry
from tier2.store import audit
from tier2.store import models as m
from tier2.store.show import case_path

# ---------------------------------------------------------------------- users


@dataclass(frozen=True)
class UserRow:
    name: str
    password_hash: str
    role: str
    team: str | None
    failed_logins: int
    locked_until: datetime | None


def find_user(engine: Engine, name: str) -> UserRow | None:
    with Session(engine) as session:
        u = session.get(m.User, name)
        if u is None:
            return None
        return UserRow(u.name, u.password_hash, u.role, u.team, u.failed_logins, u.locked_until)


def save_user(  # noqa: PLR0917 (a user's fields)
    engine: Engine, name: str, password_hash: str, role: str, team: str | None, now: datetime
) -> bool:
    """The user added, or their password, role and team replaced (and unlocked); whether
    they are new."""
    with Session(engine) as session, session.begin():
        user = session.get(m.User, name, with_for_update=True)
        if user is None:
            session.add(
                m.User(
                    name=name, password_hash=password_hash, role=role, team=team,
                    created_at=now, failed_logins=0, locked_until=None,
                )
            )  # fmt: skip
            return True
        user.password_hash, user.role, user.team = password_hash, role, team
        user.failed_logins, user.locked_until = 0, None
        return False


def list_users(engine: Engine) -> list[UserRow]:
    with Session(engine) as session:
        return [
            UserRow(u.name, u.password_hash, u.role, u.team, u.failed_logins, u.locked_until)
            for u in session.scalars(select(m.User).order_by(m.User.name).limit(1000))
        ]


def login_failed(
    engine: Engine, name: str, now: datetime, *, limit: int, lock_until: datetime
) -> bool:
    """One more failed sign-in for the user; at `limit` in a row the account is locked until
    `lock_until` (and the count starts again). Whether it is locked now."""
    with Session(engine) as session, session.begin():
        user = session.get(m.User, name, with_for_update=True)
        if user is None:
            return False
        user.failed_logins += 1
        if user.failed_logins >= limit:
            user.failed_logins = 0
            user.locked_until = lock_until
            return True
        return False


def login_ok(engine: Engine, name: str, new_hash: str | None = None) -> None:
    """A successful sign-in: the failures forgotten (and the hash renewed, when asked)."""
    values: dict[str, Any] = {"failed_logins": 0, "locked_until": None}
    if new_hash is not None:
        values["password_hash"] = new_hash
    with Session(engine) as session, session.begin():
        session.execute(update(m.User).where(m.User.name == name).values(**values))


# ---------------------------------------------------------------------- the cases list


@dataclass(frozen=True)
class CaseFilter:
    state: str | None = None
    outcome: str | None = None
    first_reason: str | None = None
    escalate_to: str | None = None
    received_from: datetime | None = None  # inclusive
    received_to: datetime | None = None  # exclusive
    text: str | None = None  # a case id or ticket id, or the start of one
    resolved_from: datetime | None = None  # finally resolved from (inclusive) ...
    resolved_to: datetime | None = None  # ... to (exclusive)
    resolved_by: str | None = None  # tier2, human, tier1
    after: tuple[datetime, str] | None = None  # the page starts after this (received_at, id)


@dataclass(frozen=True)
class CaseLine:
    id: str
    ticket_id: str
    state: str
    received_at: datetime
    outcome: str | None
    first_reason: str | None
    escalate_to: str | None
    resolved_at: datetime | None
    resolved_by: str | None


def _prefix(column: Any, text: str) -> Any:
    """The column starts with `text`: a range on its index (LIKE would not use it)."""
    return and_(column >= text, column < text + "\U0010ffff")


def _unindexed(column: Any) -> Any:
    """The column's value, as no index holds it: the database reads the rows another way."""
    return func.coalesce(column, column)


def _resolved(f: CaseFilter, column: Any) -> list[Any]:
    where: list[Any] = []
    if f.resolved_from is not None:
        where.append(column >= f.resolved_from)
    if f.resolved_to is not None:
        where.append(column < f.resolved_to)
    return where


def _where(f: CaseFilter, *, by_resolution: bool) -> list[Any]:
    c = m.Case
    # true of every case: it lets the list use its index, ix_cases_list, which is partial
    # on it so that the report's count of the cases received keeps its covering index
    where: list[Any] = [c.state.is_not(None)]
    for column, value in (
        (c.state, f.state), (c.outcome, f.outcome), (c.first_reason, f.first_reason),
        (c.escalate_to, f.escalate_to), (c.resolved_by, f.resolved_by),
    ):  # fmt: skip
        if value:
            where.append(column == value)
    received = _unindexed(c.received_at) if by_resolution else c.received_at
    if f.received_from is not None:
        where.append(received >= f.received_from)
    if f.received_to is not None:
        where.append(received < f.received_to)
    where += _resolved(f, c.resolved_at if by_resolution else _unindexed(c.resolved_at))
    if f.text:
        where.append(or_(_prefix(c.id, f.text), _prefix(c.ticket_id, f.text)))
    if f.after is not None:  # (a range on the list's index, then the ties)
        at, case_id = f.after
        where += [received <= at, or_(received < at, c.id < case_id)]
    return where


def _by_resolution(session: Session, f: CaseFilter) -> bool:
    """Whether the cases resolved in the filter's days are fewer than the cases received after
    its last day: read by the resolution index and sorted, they are fewer rows than the list's
    order passes before it reaches them (most cases are received before they are resolved).
    Two counts on indexes alone."""
    if f.resolved_from is None and f.resolved_to is None:
        return False
    if f.resolved_to is None:
        return False  # the newest: the list's order reaches them first
    c = m.Case
    resolved = select(func.count()).select_from(c).where(*_resolved(f, c.resolved_at))
    later = (
        select(func.count())
        .select_from(c)
        .where(c.state.is_not(None), c.received_at >= f.resolved_to)
    )
    return (session.scalar(resolved) or 0) < (session.scalar(later) or 0)


def list_cases(engine: Engine, f: CaseFilter, limit: int) -> tuple[list[CaseLine], bool]:
    """A page of the cases the filter selects, newest first, and whether there are more.

    Read in the list's order on its indexes (ix_cases_list, and by state or outcome), or, for
    a filter on the day resolved, by the resolution index and sorted when that reads fewer
    rows (`_by_resolution`)."""
    c = m.Case
    with Session(engine) as session:
        by_resolution = _by_resolution(session, f)
        order = _unindexed(c.received_at) if by_resolution else c.received_at
        query = (
            select(
                c.id, c.ticket_id, c.state, c.received_at, c.outcome, c.first_reason,
                c.escalate_to, c.resolved_at, c.resolved_by,
            )
            .where(*_where(f, by_resolution=by_resolution))
            .order_by(order.desc(), c.id.desc())
            .limit(limit + 1)
        )  # fmt: skip
        rows = [CaseLine(*r) for r in session.execute(query)]
    return rows[:limit], len(rows) > limit


# ---------------------------------------------------------------------- a case's page


@dataclass(frozen=True)
class ChainCheck:
    """Whether a case's audit entries are links of an intact chain: each hashes to what it
    says, the entry before it has the hash it points at, and the entry after it points at
    its hash."""

    entries: int
    intact: bool
    problem: str | None = None


def _neighbours(session: Session, seqs: set[int]) -> dict[int, tuple[str, str]]:
    e = m.table(m.AuditEntry).c
    found: dict[int, tuple[str, str]] = {}
    ordered = sorted(seqs)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        for row in session.execute(select(e.seq, e.prev_hash, e.hash).where(e.seq.in_(chunk))):
            found[row.seq] = (row.prev_hash, row.hash)
    return found


def case_chain(session: Session, case_id: str) -> ChainCheck:
    """The per-case check of the audit chain (the whole log: `tier2 audit verify`)."""
    e = m.table(m.AuditEntry).c
    entries = list(
        session.execute(
            select(e.seq, e.at, e.case_id, e.event, e.data, e.prev_hash, e.hash)
            .where(e.case_id == case_id)
            .order_by(e.seq)
        )
    )
    near = _neighbours(session, {x.seq - 1 for x in entries} | {x.seq + 1 for x in entries})
    for x in entries:
        if x.hash != audit.entry_hash(x.prev_hash, x.seq, x.at, x.case_id, x.event, x.data):
            return ChainCheck(len(entries), False, f"entry {x.seq}: its content does not match")
        before = near.get(x.seq - 1)
        expected = audit.GENESIS if x.seq == 1 else (before[1] if before else None)
        if expected != x.prev_hash:
            return ChainCheck(
                len(entries), False, f"entry {x.seq} does not point at the entry before it"
            )
        after = near.get(x.seq + 1)
        if after is not None and after[0] != x.hash:
            return ChainCheck(
                len(entries), False, f"entry {x.seq + 1} does not point at entry {x.seq}"
            )
    return ChainCheck(len(entries), True)


@dataclass
class CasePage:
    path: dict[str, Any]  # tier2.store.show.case_path
    payload: dict[str, Any]
    row: CaseLine
    escalated_at: datetime | None
    ledger: list[dict[str, Any]] = field(default_factory=list)
    acceptance: dict[str, Any] | None = None
    resolutions: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    chain: ChainCheck = field(default_factory=lambda: ChainCheck(0, True))


def _plain(obj: Any, names: Sequence[str]) -> dict[str, Any]:
    return {n: getattr(obj, n) for n in names}


_RESOLUTION = ("escalation", "resolved_by", "role", "at", "summary", "action_type", "amount",
               "currency")  # fmt: skip
_REVIEW = ("reviewer", "at", "decision_seq", "right_outcome", "right_target", "handoff_score",
           "missing", "could_close", "violation", "score", "agrees", "correct_outcome",
           "correct_escalate_to", "comment")  # fmt: skip


def case_page(engine: Engine, case_id: str) -> CasePage | None:
    """Everything the case page shows, read by the case's key."""
    with Session(engine) as session:
        path = case_path(session, case_id)
        case = session.get(m.Case, case_id)
        if path is None or case is None:
            return None
        line = CaseLine(
            case.id, case.ticket_id, case.state, case.received_at, case.outcome,
            case.first_reason, case.escalate_to, case.resolved_at, case.resolved_by,
        )  # fmt: skip
        page = CasePage(path, case.payload, line, case.escalated_at)
        page.ledger = [
            _plain(x, ("idempotency_key", "type", "amount", "currency", "at"))
            for x in session.scalars(
                select(m.LedgerEntry)
                .where(m.LedgerEntry.ticket_id == case.ticket_id)
                .order_by(m.LedgerEntry.id)
            )
        ]
        accepted = session.get(m.Acceptance, (case_id, case.escalations))
        if accepted is not None:  # (of its current escalation)
            page.acceptance = _plain(
                accepted, ("escalation", "accepted_by", "accepted_at", "estimated_resolution_at")
            )
        page.resolutions = [
            _plain(x, _RESOLUTION)
            for x in session.scalars(
                select(m.HumanResolution)
                .where(m.HumanResolution.case_id == case_id)
                .order_by(m.HumanResolution.id)
            )
        ]
        page.reviews = [
            _plain(x, _REVIEW)
            for x in session.scalars(
                select(m.Review).where(m.Review.case_id == case_id).order_by(m.Review.id)
            )
        ]
        page.chain = case_chain(session, case_id)
    return page


def review_of(engine: Engine, case_id: str, reviewer: str) -> dict[str, Any] | None:
    with Session(engine) as session:
        found = session.scalars(
            select(m.Review).where(m.Review.case_id == case_id, m.Review.reviewer == reviewer)
        ).first()
        return None if found is None else _plain(found, _REVIEW)


def decision_body(engine: Engine, case_id: str, seq: int) -> dict[str, Any] | None:
    with Session(engine) as session:
        found: dict[str, Any] | None = session.scalar(
            select(m.Decision.body).where(m.Decision.case_id == case_id, m.Decision.seq == seq)
        )
        return found


# ---------------------------------------------------------------------- the review queue


@dataclass(frozen=True)
class QueueLine:
    id: str
    ticket_id: str
    escalate_to: str | None
    severity: str
    escalated_at: datetime  # the latest escalation: the SLA clock's start
    due: datetime | None
    accepted_by: str | None
    accepted_at: datetime | None
    estimated_resolution_at: datetime | None


def _queue_query(team: str | None) -> Any:
    """The open escalations (of `team`), on their partial index ix_cases_queue (its condition
    is written out, as SQLite matches it by the statement's text), with their acceptance of
    the current escalation."""
    c = m.Case
    a = m.Acceptance
    done = select(m.HumanResolution.id).where(
        m.HumanResolution.case_id == c.id, m.HumanResolution.escalation == c.escalations
    )
    query = (
        select(
            c.id, c.ticket_id, c.escalate_to, c.received_at,
            c.payload[("ticket", "severity")].as_string().label("severity"),
            c.payload[("handoff", "escalated_at")].as_string().label("handoff_at"),
            a.accepted_by, a.accepted_at, a.estimated_resolution_at,
        )
        .outerjoin(a, and_(a.case_id == c.id, a.escalation == c.escalations))
        .where(c.state == literal_column(f"'{ESCALATED}'"), c.resolved_at.is_(None), ~done.exists())
    )  # fmt: skip
    return query if team is None else query.where(c.escalate_to == team)


def _started(row: Any) -> datetime:
    """The SLA clock's start: the latest handoff's escalation, else tier2's receipt."""
    if isinstance(row.handoff_at, str):
        try:
            at = datetime.fromisoformat(row.handoff_at)
        except ValueError:
            pass
        else:
            return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    received: datetime = row.received_at
    return received


def review_queue(
    engine: Engine,
    team: str | None,
    due: Callable[[str, datetime], datetime | None],
    limit: int,
) -> list[QueueLine]:
    """The open escalations to `team` (None: to anyone) not yet resolved by a person, most
    urgent first by `due(severity, start)`: up to `limit`.

    One read of the open escalations (their partial index); for one severity the due time
    grows with the start, so only the `limit` earliest of each severity are timed."""
    with Session(engine) as session:
        rows = list(session.execute(_queue_query(team)))
    by_severity: dict[str, list[tuple[datetime, Any]]] = {}
    for r in rows:
        by_severity.setdefault(str(r.severity or ""), []).append((_started(r), r))
    found: list[QueueLine] = []
    for severity, started in by_severity.items():
        started.sort(key=lambda x: (x[0], x[1].id))
        for start, r in started[:limit]:
            found.append(
                QueueLine(
                    r.id, r.ticket_id, r.escalate_to, severity, start, due(severity, start),
                    r.accepted_by, r.accepted_at, r.estimated_resolution_at,
                )
            )  # fmt: skip
    far = datetime.max.replace(tzinfo=UTC)
    found.sort(key=lambda q: (q.due or far, q.escalated_at, q.id))
    return found[:limit]


def latest_decision(engine: Engine, case_id: str) -> tuple[int, dict[str, Any]] | None:
    with Session(engine) as session:
        row = session.execute(
            select(m.Decision.seq, m.Decision.body)
            .where(m.Decision.case_id == case_id)
            .order_by(m.Decision.seq.desc())
            .limit(1)
        ).first()
        return None if row is None else (row.seq, row.body)


def library_versions(engine: Engine) -> list[tuple[str, int]]:
    """Each library digest that decided cases, with how many decisions it made."""
    d = m.Decision
    with Session(engine) as session:
        rows = session.execute(
            select(d.library_digest, func.count())
            .group_by(d.library_digest)
            .order_by(func.count().desc())
        )
        return [(r[0], int(r[1])) for r in rows]


# ---------------------------------------------------------------------- the use cases' port


class SqlConsoleTransaction:
    def __init__(self, session: Session, audit_key: bytes | None) -> None:
        self.session = session
        self.handle = session
        self._audit_key = audit_key

    def work_case(self, case_id: str) -> WorkCase | None:
        c = m.Case
        row = self.session.execute(
            select(c.id, c.ticket_id, c.state, c.escalations, c.escalate_to, c.resolved_at)
            .where(c.id == case_id)
            .with_for_update()
        ).first()
        if row is None:
            return None
        d = m.Decision
        latest = self.session.execute(
            select(d.seq, d.decided_at, d.outcome, d.escalate_to)
            .where(d.case_id == case_id)
            .order_by(d.seq.desc())
            .limit(1)
        ).first()
        return WorkCase(
            row.id, row.ticket_id, row.state, row.escalations,
            row.escalate_to if latest is None or row.escalate_to else latest.escalate_to,
            row.resolved_at,
            None if latest is None else latest.seq,
            None if latest is None else latest.decided_at,
            None if latest is None else latest.outcome,
        )  # fmt: skip

    def acceptance(self, case_id: str, escalation: int) -> Accepted | None:
        found = self.session.get(m.Acceptance, (case_id, escalation))
        return None if found is None else Accepted(found.accepted_by, found.accepted_at)

    def accept(
        self, case_id: str, escalation: int, by: str, at: datetime, estimate: datetime | None
    ) -> None:
        self.session.execute(
            insert(m.Acceptance).values(
                case_id=case_id, escalation=escalation, accepted_by=by, accepted_at=at,
                estimated_resolution_at=estimate,
            )
        )  # fmt: skip

    def resolved_escalation(self, case_id: str, escalation: int) -> bool:
        h = m.HumanResolution
        found = self.session.scalar(
            select(h.id).where(h.case_id == case_id, h.escalation == escalation).limit(1)
        )
        return found is not None

    def add_resolution(self, row: Mapping[str, Any]) -> None:
        self.session.execute(insert(m.HumanResolution).values(**row))

    def add_notes(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.session.execute(insert(m.Note), [dict(r) for r in rows])

    def save_review(self, row: Mapping[str, Any]) -> None:
        r = m.Review
        self.session.execute(
            delete(r).where(r.case_id == row["case_id"], r.reviewer == row["reviewer"])
        )
        self.session.execute(insert(r).values(**row))

    def audit(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        chain = audit.Chain(self.session, self._audit_key)
        for at, case_id, event, data in entries:
            chain.add(at=at, case_id=case_id, event=event, data=data)
        chain.flush()


class SqlConsoleStore:
    """The console's transactions (`tier2.app.console.ConsoleStore`)."""

    def __init__(self, engine: Engine, audit_key: bytes | None = None) -> None:
        self.engine = engine
        self.audit_key = audit_key

    @contextmanager
    def transaction(self) -> Iterator[SqlConsoleTransaction]:
        with Session(self.engine) as session, session.begin():
            yield SqlConsoleTransaction(session, self.audit_key)

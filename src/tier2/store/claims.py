"""One owner per ticket: runners register with a lease, and claim tickets before reading them.

A runner (`tier2 run`, or the worker inside `tier2 serve`) registers a row in `runners` with
a lease it renews from a heartbeat thread. Before it reads an escalated ticket it claims it
(`claims`, keyed by ticket: an insert that does nothing when the ticket is claimed already),
in a transaction of its own; only then does it read the ticket, so what it reads is at least
as new as the claim, and a ticket another runner finished meanwhile reads as no escalation.
Every later step checks, in its own transaction, that the claim is still its own (on
PostgreSQL with the claim rows locked, so no one can take them back in the middle of a
step); the case's final state releases the claim in the same transaction.

A runner that dies stops renewing. Once its lease has run out any runner reaps it: its row
and its claims go, and its open cases are claimed again like any other, each taken up from
its last committed state. A runner stopped by SIGTERM releases its claims at once.

Times are the database's: PostgreSQL's clock when runners on several machines share it; on
SQLite, the one machine's.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tier2._process import alive
from tier2.app.states import FINAL_STATES, CaseState
from tier2.store import models as m

LEASE_SECONDS = 30.0


def db_now(session: Session) -> datetime:
    """The database's clock (PostgreSQL), or this machine's (SQLite: one machine)."""
    if session.get_bind().dialect.name == "postgresql":
        value = session.scalar(text("SELECT clock_timestamp()"))
        assert isinstance(value, datetime)
        return value.astimezone(UTC)
    return datetime.now(UTC)


class Claims:
    """This runner's registration, lease and claims in the store."""

    def __init__(
        self,
        engine: Engine,
        *,
        lease_seconds: float = LEASE_SECONDS,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.engine = engine
        self.lease = timedelta(seconds=lease_seconds)
        self.options = dict(options or {})
        self.host = _host()
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._beat: threading.Thread | None = None
        self._stop = threading.Event()
        self.registered = False

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    # ------------------------------------------------------------------ the runner's lease

    def register(self) -> None:
        """Enter this runner (again, after it was reaped) and start renewing its lease."""
        with Session(self.engine) as session, session.begin():
            self._enter(session)
        self.registered = True
        if self._beat is None:
            self._stop.clear()
            self._beat = threading.Thread(target=self._heartbeat, name="tier2-lease", daemon=True)
            self._beat.start()

    def _enter(self, session: Session) -> None:
        now = db_now(session)
        session.execute(delete(m.RunnerEntry).where(m.RunnerEntry.id == self.id))
        session.add(
            m.RunnerEntry(
                id=self.id, host=self.host, pid=os.getpid(), started_at=now,
                lease_until=now + self.lease, options=self.options,
            )
        )  # fmt: skip

    def renew(self, session: Session) -> None:
        """Extend the lease, in the caller's transaction; re-enter when reaped meanwhile (its
        claims are gone then: the steps that follow find none of them theirs)."""
        now = db_now(session)
        done = session.execute(
            update(m.RunnerEntry)
            .where(m.RunnerEntry.id == self.id)
            .values(lease_until=now + self.lease)
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            self._enter(session)

    def _heartbeat(self) -> None:
        interval = self.lease.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                with Session(self.engine) as session, session.begin():
                    self.renew(session)
            except Exception:  # the store is away for a moment: the next beat tries again
                continue

    def stop_renewing(self) -> None:
        """The lease is renewed no more: past it, this runner is taken for dead."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(5)
            self._beat = None

    def retire(self) -> None:
        """Stop renewing, release every claim and leave: the open cases are free at once."""
        self.stop_renewing()
        if not self.registered:
            return
        with Session(self.engine) as session, session.begin():
            session.execute(_free(m.Claim.runner_id == self.id))
            session.execute(delete(m.RunnerEntry).where(m.RunnerEntry.id == self.id))
        self.registered = False

    # ------------------------------------------------------------------ claims

    def reap(self, session: Session) -> list[str]:
        """Runners whose lease ran out, and runners of this machine whose process is gone
        (no need to wait for their lease): their entries go and their claims are free.
        Returns their ids."""
        now = db_now(session)
        dead = [
            r.id
            for r in session.execute(
                select(m.RunnerEntry.id, m.RunnerEntry.host, m.RunnerEntry.pid)
            )
            if r.id != self.id and r.host == self.host and not alive(r.pid)
        ]
        expired = select(m.RunnerEntry.id).where(m.RunnerEntry.lease_until < now)
        dead += [r for r in session.scalars(expired) if r not in dead]
        if dead:
            session.execute(delete(m.RunnerEntry).where(m.RunnerEntry.id.in_(dead)))
        # the claims of every runner not entered: those just reaped, and those a runner made
        # after it was reaped itself and before it could enter again
        session.execute(_free(m.Claim.runner_id.not_in(select(m.RunnerEntry.id))))
        return dead

    def claim(self, session: Session, ticket_ids: Sequence[str], listed_at: datetime) -> list[str]:
        """Claim these tickets, listed as escalations at `listed_at`, where no one holds
        them and no case of theirs ended since (a listing older than that is stale for
        them); the ones now this runner's, in order."""
        ids = list(dict.fromkeys(ticket_ids))
        if not ids:
            return []
        self.renew(session)  # entered again first, should this runner have been reaped
        if self.postgres:
            ids = self._not_busy(session, ids)
            if not ids:
                return []
        now = db_now(session)
        claims = m.table(m.Claim)
        insert = (postgresql.insert if self.postgres else sqlite.insert)(claims)
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["ticket_id"],
                set_={"runner_id": self.id, "claimed_at": now},
                where=claims.c.runner_id.is_(None)
                & (claims.c.released_at.is_(None) | (claims.c.released_at < listed_at)),
            ),
            [{"ticket_id": t, "runner_id": self.id, "claimed_at": now} for t in ids],
        )
        mine = self.held(session, ids)
        return [t for t in ids if t in mine]

    def _not_busy(self, session: Session, ids: list[str]) -> list[str]:
        """PostgreSQL: the tickets whose claim row no step of another runner has locked
        (`SKIP LOCKED`), and those with no row yet: a claim never waits for another
        runner's step, which may be waiting on a remote help desk."""
        free = set(
            session.scalars(
                select(m.Claim.ticket_id)
                .where(m.Claim.ticket_id.in_(ids))
                .with_for_update(skip_locked=True)
            )
        )
        known = set(session.scalars(select(m.Claim.ticket_id).where(m.Claim.ticket_id.in_(ids))))
        return [t for t in ids if t in free or t not in known]

    def held(self, session: Session, ticket_ids: Sequence[str]) -> set[str]:
        """Which of these tickets this runner holds; on PostgreSQL their claim rows stay
        locked to the end of the transaction, so no one reaps them in the middle of a step."""
        query = select(m.Claim.ticket_id).where(
            m.Claim.ticket_id.in_(list(ticket_ids)), m.Claim.runner_id == self.id
        )
        if self.postgres:
            query = query.with_for_update()
        return set(session.scalars(query))

    def release(self, session: Session, ticket_ids: Sequence[str]) -> None:
        """Done with these tickets (their cases final, or no escalation): a listing taken
        before now no longer claims them."""
        if ticket_ids:
            session.execute(
                update(m.Claim)
                .where(m.Claim.ticket_id.in_(list(ticket_ids)), m.Claim.runner_id == self.id)
                .values(runner_id=None, released_at=db_now(session))
            )

    def release_all(self) -> None:
        """Let go of every ticket still held, unfinished: free for any runner at once."""
        with Session(self.engine) as session, session.begin():
            session.execute(_free(m.Claim.runner_id == self.id))

    def orphans(self, session: Session, limit: int) -> list[str]:
        """Tickets of open cases that no runner holds (their runner died, or let them go),
        oldest first."""
        claims = m.table(m.Claim)
        cases = m.table(m.Case)
        rows = session.execute(
            select(cases.c.ticket_id, func.min(cases.c.received_at).label("first"))
            .select_from(cases.outerjoin(claims, claims.c.ticket_id == cases.c.ticket_id))
            .where(cases.c.state.in_(OPEN), claims.c.runner_id.is_(None))
            .group_by(cases.c.ticket_id)
            .order_by("first", cases.c.ticket_id)
            .limit(limit)
        )
        return [r.ticket_id for r in rows]


def _free(which: Any) -> Any:
    """The claims matched, held by no one and claimable from any listing."""
    return update(m.Claim).where(which).values(runner_id=None, released_at=None)


def _host() -> str:
    """This machine, and on Linux its PID namespace: two containers may share a host name
    but never a namespace, so a PID is only looked up where it means the same process."""
    try:
        return f"{socket.gethostname()} pidns:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return socket.gethostname()


OPEN = [s.value for s in CaseState if s not in FINAL_STATES]


def status(engine: Engine) -> dict[str, Any]:
    """Every runner entered, with its lease and how many tickets it holds, and the open
    cases by state (for `tier2 status`). A runner past its lease, or of this machine and
    gone, is shown dead until a runner's next pass reaps it."""
    here = _host()
    with Session(engine) as session:
        now = db_now(session)
        held = dict(
            session.execute(
                select(m.Claim.runner_id, func.count())
                .where(m.Claim.runner_id.is_not(None))
                .group_by(m.Claim.runner_id)
            ).all()
        )
        out = []
        for r in session.scalars(select(m.RunnerEntry).order_by(m.RunnerEntry.started_at)):
            out.append(
                {
                    "id": r.id,
                    "host": r.host,
                    "pid": r.pid,
                    "started_at": r.started_at.isoformat(),
                    "lease_until": r.lease_until.isoformat(),
                    "alive": r.lease_until >= now and (r.host != here or alive(r.pid)),
                    "claims": held.pop(r.id, 0),
                    "options": r.options,
                }
            )
        for runner_id, n in held.items():  # claims of a runner already gone (reaped next)
            out.append({"id": runner_id, "alive": False, "claims": n})
        open_cases = dict(
            session.execute(
                select(m.Case.state, func.count())
                .where(m.Case.state.in_(OPEN))
                .group_by(m.Case.state)
            ).all()
        )
        return {"runners": out, "open_cases": open_cases}

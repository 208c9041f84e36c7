"""the console's indexes; an acceptance per escalation

Indexes for the console's pages:
  ix_cases_list     the cases list's order (received_at, id), partial on `state IS NOT NULL`
                    (true of every case, and said by the list's query): the report's count
                    of the cases received, which does not say it, keeps the covering index
                    ix_cases_report_received (SQLite would take a plain index on
                    received_at for its range, and read every case's row)
  ix_cases_outcome_received   the list filtered by outcome, in its order
  ix_cases_queue    the review queue: the open escalations (escalated, not resolved), by
                    target
  ix_decisions_library_digest  the decisions per library version (the library page)

An acceptance is kept per escalation of its case (primary key case_id, escalation), so a case
escalated again is accepted again beside the earlier acceptance. An acceptance made before
takes the escalation its `accepted` audit entry names (else the case's current one).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import tier2.store.models

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

LIST_WHERE = "state IS NOT NULL"
QUEUE_WHERE = "state = 'escalated' AND resolved_at IS NULL"
# (its condition's columns first: SQLite, without statistics, takes the index that matches
# the most equalities, and would otherwise read every escalated case by ix_cases_state_received)
QUEUE = ["state", "resolved_at", "escalate_to"]


def _where(clause: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(clause), "postgresql_where": sa.text(clause)}


def _acceptances(*, escalation: bool) -> sa.Table:
    columns: list[Any] = [
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("accepted_by", sa.String(length=64), nullable=False),
        sa.Column("accepted_at", tier2.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column(
            "estimated_resolution_at", tier2.store.models.UtcDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_acceptances_case_id_cases")
        ),
    ]
    if escalation:
        columns.insert(1, sa.Column("escalation", sa.Integer(), nullable=False))
        columns.append(
            sa.PrimaryKeyConstraint("case_id", "escalation", name=op.f("pk_acceptances"))
        )
    else:
        columns.append(sa.PrimaryKeyConstraint("case_id", name=op.f("pk_acceptances")))
    return op.create_table("acceptances", *columns)


def _times() -> list[sa.ColumnClause[Any]]:
    return [
        sa.column("accepted_at", tier2.store.models.UtcDateTime()),
        sa.column("estimated_resolution_at", tier2.store.models.UtcDateTime()),
    ]


def _escalation_of(conn: sa.Connection, case_id: str) -> int:
    """The escalation the case's latest `accepted` audit entry names, else the case's own."""
    audit = sa.table("audit_log", sa.column("seq"), sa.column("case_id"), sa.column("event"),
                     sa.column("data", sa.JSON()))  # fmt: skip
    data = conn.execute(
        sa.select(audit.c.data)
        .where(audit.c.case_id == case_id, audit.c.event == "accepted")
        .order_by(audit.c.seq.desc())
        .limit(1)
    ).scalar()
    if isinstance(data, dict) and isinstance(data.get("escalation"), int):
        return int(data["escalation"])
    cases = sa.table("cases", sa.column("id"), sa.column("escalations"))
    found = conn.execute(sa.select(cases.c.escalations).where(cases.c.id == case_id)).scalar()
    return int(found or 1)


def upgrade() -> None:
    op.create_index("ix_cases_list", "cases", ["received_at", "id"], **_where(LIST_WHERE))
    op.create_index("ix_cases_outcome_received", "cases", ["outcome", "received_at", "id"])
    op.create_index("ix_cases_queue", "cases", QUEUE, **_where(QUEUE_WHERE))
    op.create_index("ix_decisions_library_digest", "decisions", ["library_digest"])

    conn = op.get_bind()
    old = sa.table("acceptances", sa.column("case_id"), sa.column("accepted_by"), *_times())
    rows = [dict(r._mapping) for r in conn.execute(sa.select(old))]
    for row in rows:
        row["escalation"] = _escalation_of(conn, row["case_id"])
    op.drop_table("acceptances")
    made = _acceptances(escalation=True)
    if rows:
        op.bulk_insert(made, rows)


def downgrade() -> None:
    conn = op.get_bind()
    new = sa.table("acceptances", sa.column("case_id"), sa.column("escalation"),
                   sa.column("accepted_by"), *_times())  # fmt: skip
    latest: dict[str, dict[str, Any]] = {}  # each case's acceptance of its latest escalation
    for r in conn.execute(sa.select(new).order_by(new.c.case_id, new.c.escalation)):
        row = dict(r._mapping)
        del row["escalation"]
        latest[row["case_id"]] = row
    op.drop_table("acceptances")
    made = _acceptances(escalation=False)
    if latest:
        op.bulk_insert(made, list(latest.values()))

    op.drop_index("ix_decisions_library_digest", table_name="decisions")
    op.drop_index("ix_cases_queue", table_name="cases")
    op.drop_index("ix_cases_outcome_received", table_name="cases")
    op.drop_index("ix_cases_list", table_name="cases")

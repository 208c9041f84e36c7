"""runners and claims: one owner per ticket, whatever the number of runners

A runner registers with a lease it renews; it claims a ticket before it reads it, and its
claim ends with the case's final state. The cases' unused claim columns go.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import tier2.store.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TIME = tier2.store.models.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runners",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("lease_until", _TIME, nullable=False),
        sa.Column(
            "options",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runners")),
    )
    with op.batch_alter_table("runners", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runners_lease_until"), ["lease_until"], unique=False)
    op.create_table(
        "claims",
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("runner_id", sa.String(length=128), nullable=True),
        sa.Column("claimed_at", _TIME, nullable=False),
        sa.Column("released_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_claims")),
    )
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_claims_runner_id"), ["runner_id"], unique=False)
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("claimed_at")


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_claims_runner_id"))
    op.drop_table("claims")
    with op.batch_alter_table("runners", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runners_lease_until"))
    op.drop_table("runners")

"""the audit log's hash is not indexed

The chain is walked by seq; a unique index on a random hash cost a random index page write
per entry (`tier2 run` over 100,000 cases on SQLite: 516 cases/s with it, 565 without, one
run each).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 20:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_log_hash"), type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_audit_log_hash"), ["hash"])

"""ticket messages tier2 writes carry an idempotency key

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=128), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_ticket_messages_idempotency_key"), ["idempotency_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("ticket_messages", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_ticket_messages_idempotency_key"), type_="unique")
        batch_op.drop_column("idempotency_key")

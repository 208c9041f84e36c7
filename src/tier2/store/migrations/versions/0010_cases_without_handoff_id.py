"""cases without handoff_id: a case keeps its handoff in its payload; the column was never set

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint("fk_cases_handoff_id_handoffs", type_="foreignkey")
        batch_op.drop_column("handoff_id")


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handoff_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_cases_handoff_id_handoffs", "handoffs", ["handoff_id"], ["id"]
        )

"""cases and notes of any help desk: no foreign key to the local help desk's tickets

A case's ticket lives in the help desk it came from (the local one, Request Tracker,
Zendesk); only the local help desk's tickets are rows here.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 21:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_cases_ticket_id_tickets"), type_="foreignkey")
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_notes_ticket_id_tickets"), type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_notes_ticket_id_tickets"), "tickets", ["ticket_id"], ["id"]
        )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_cases_ticket_id_tickets"), "tickets", ["ticket_id"], ["id"]
        )

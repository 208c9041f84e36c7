"""the parameters of an action

An action of a library may carry parameters besides its type and amount: its destination
(`to`), the items it is for (`items`) and the library's own named parameters. The store's
action rows and the local help desk's ledger keep them as a JSON object (name -> value);
rows from before this migration, and actions without parameters, have none (NULL).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-15 09:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.add_column(sa.Column("params", _json(), nullable=True))
    with op.batch_alter_table("ledger") as batch:
        batch.add_column(sa.Column("params", _json(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("params")
    with op.batch_alter_table("actions") as batch:
        batch.drop_column("params")

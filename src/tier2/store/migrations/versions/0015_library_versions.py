"""the library versions that decided cases

One row per library digest a runner decided with in this store: its name, version and title,
when it was first stored, and every file the digest covers (relative path -> text), so a
stored decision's library can be loaded again (`tier2 library diff`, what-if replays).
Stores from before this migration have no rows for the libraries that decided their cases
until a runner starts with them again.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tier2.store.models

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "library_versions",
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("stored_at", tier2.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column(
            "files",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_library_versions")),
    )


def downgrade() -> None:
    op.drop_table("library_versions")

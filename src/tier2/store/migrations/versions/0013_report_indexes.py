"""the report's indexes

Two indexes on cases that hold every column the report reads of a case, so its figures come
from the indexes alone: the cases received, in the order the report counts them (outcome,
deciding reason, target; then the time received and the escalations), and the cases finally
resolved, in the order of their resolution (with the cycle time, the SLA verdict and who
resolved it).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 09:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

RECEIVED = ["outcome", "first_reason", "escalate_to", "received_at", "escalations"]
RESOLVED = [
    "resolved_at", "business_seconds", "calendar_seconds", "waiting_seconds", "sla_met",
    "resolved_by",
]  # fmt: skip


def upgrade() -> None:
    op.create_index("ix_cases_report_received", "cases", RECEIVED, unique=False)
    op.create_index("ix_cases_report_resolved", "cases", RESOLVED, unique=False)


def downgrade() -> None:
    op.drop_index("ix_cases_report_resolved", table_name="cases")
    op.drop_index("ix_cases_report_received", table_name="cases")

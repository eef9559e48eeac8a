"""review actions: report.merged_sources; the review queue's index

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 09:00:00.000000

The new report states (needs_info, merged) are plain strings in `report.state`: no schema change.
`ix_report_queue` serves the queue's keyset pages (review_queue/queue.py): one index range per state
and SLA level, read in (completeness, received_at, id) order, so a page costs the same at 10k or 1M.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("report") as batch:
        # The server default fills existing rows; the application always writes the value itself.
        batch.add_column(sa.Column("merged_sources", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch.create_index("ix_report_queue", ["state", "sla_level", "completeness", "received_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report") as batch:
        batch.drop_index("ix_report_queue")
        batch.drop_column("merged_sources")

"""crm_status: the CRM's status of each forwarded report, for status sync

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 04:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import gateway.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.add_column(sa.Column("crm_status", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True))
        batch_op.add_column(sa.Column("crm_status_notes", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("crm_updated_at", gateway.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("crm_checked_at", gateway.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_report_crm_checked_at"), ["crm_checked_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_crm_checked_at"))
        batch_op.drop_column("crm_checked_at")
        batch_op.drop_column("crm_updated_at")
        batch_op.drop_column("crm_status_notes")
        batch_op.drop_column("crm_status")

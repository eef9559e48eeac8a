"""citizen_notification: what the citizen is told about each CRM change, once

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 04:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import gateway.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "citizen_notification",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("report_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("change_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("channel_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("recipient", sa.JSON(), nullable=True),
        sa.Column("thread_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", gateway.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", gateway.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", gateway.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("platform_message_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["report.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_id", "change_key", name="uq_notification_change"),
    )
    with op.batch_alter_table("citizen_notification", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_citizen_notification_report_id"), ["report_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_citizen_notification_state"), ["state"], unique=False)


def downgrade() -> None:
    op.drop_table("citizen_notification")

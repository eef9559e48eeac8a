"""sla: each report's SLA clock (stage, deadline, level) and notifications for admins

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 04:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import gateway.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing reports start with no SLA values (sla_version NULL): the sweeper's first full pass
    # computes them from their history, so nothing needs filling in here.
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sla_stage", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column("sla_started_at", gateway.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sla_due_at", gateway.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sla_warn_at", gateway.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sla_level", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
        batch_op.add_column(sa.Column("overdue_since", gateway.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sla_next_at", gateway.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sla_version", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_report_sla_due_at"), ["sla_due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_report_sla_level"), ["sla_level"], unique=False)
        batch_op.create_index(batch_op.f("ix_report_sla_next_at"), ["sla_next_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_report_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "admin_notification",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("admin_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("report_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("dedupe_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("message", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", gateway.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", gateway.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("read_at", gateway.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["admin_id"], ["admin_user.id"]),
        sa.ForeignKeyConstraint(["report_id"], ["report.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("admin_id", "dedupe_key"),
    )
    with op.batch_alter_table("admin_notification", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_admin_notification_admin_id"), ["admin_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_admin_notification_report_id"), ["report_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("admin_notification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_admin_notification_report_id"))
        batch_op.drop_index(batch_op.f("ix_admin_notification_admin_id"))
    op.drop_table("admin_notification")
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_updated_at"))
        batch_op.drop_index(batch_op.f("ix_report_sla_next_at"))
        batch_op.drop_index(batch_op.f("ix_report_sla_level"))
        batch_op.drop_index(batch_op.f("ix_report_sla_due_at"))
        batch_op.drop_column("sla_version")
        batch_op.drop_column("sla_next_at")
        batch_op.drop_column("overdue_since")
        batch_op.drop_column("sla_level")
        batch_op.drop_column("sla_warn_at")
        batch_op.drop_column("sla_due_at")
        batch_op.drop_column("sla_started_at")
        batch_op.drop_column("sla_stage")

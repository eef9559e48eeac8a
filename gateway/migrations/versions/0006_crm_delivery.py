"""crm_delivery: deferred tokens, the sink per outbox item, every CRM attempt, and the credentials pause

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 04:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import gateway.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        # Items enqueued before this migration were built as Open311 form fields.
        batch_op.add_column(
            sa.Column("sink", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False, server_default="open311")
        )
        batch_op.add_column(sa.Column("crm_token", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
    op.create_table(
        "crm_attempt",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("outbox_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("at", gateway.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("operation", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("answer", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("error_kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("crm_attempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crm_attempt_outbox_id"), ["outbox_id"], unique=False)
    op.create_table(
        "crm_pause",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("paused_at", gateway.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("credentials_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("crm_pause")
    with op.batch_alter_table("crm_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crm_attempt_outbox_id"))
    op.drop_table("crm_attempt")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("crm_token")
        batch_op.drop_column("sink")

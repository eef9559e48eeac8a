"""media_file: remote photos downloaded after their message is stored

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 06:00:00.000000

Messages stored before this revision keep their platform URLs in their reports (they were published
as they came); only messages stored from now on get rows here, so nothing is back-filled.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import gateway.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_file",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("inbound_message_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("channel_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("ref", sa.JSON(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", gateway.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", gateway.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fetched_at", gateway.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["inbound_message_id"], ["inbound_message.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("inbound_message_id", "position", name="uq_media_file_message_position"),
    )
    with op.batch_alter_table("media_file", schema=None) as batch_op:
        batch_op.create_index("ix_media_file_state_due", ["state", "next_attempt_at"], unique=False)


def downgrade() -> None:
    op.drop_table("media_file")

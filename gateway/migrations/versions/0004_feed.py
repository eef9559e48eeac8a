"""feed: the unified feed's entries and its consumers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 04:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import gateway.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Positions are numbered by the appender under a lock (review_queue/feed.py), not by a sequence:
    # a sequence hands out numbers in call order, and the feed needs them in commit order.
    op.create_table(
        "feed_entry",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("report_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("at", gateway.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["report.id"]),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint("id"),
    )
    with op.batch_alter_table("feed_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_entry_report_id"), ["report_id"], unique=False)

    op.create_table(
        "feed_consumer",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", gateway.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cursor_position", sa.BigInteger(), nullable=False),
        sa.Column("acked_at", gateway.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_read_at", gateway.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
        sa.UniqueConstraint("name"),
    )
    # Reports validated before the feed existed are not replayed into it: the feed starts with this
    # revision, and a CRM that needs older reports already received them through the outbox.


def downgrade() -> None:
    op.drop_table("feed_consumer")
    with op.batch_alter_table("feed_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_entry_report_id"))
    op.drop_table("feed_entry")

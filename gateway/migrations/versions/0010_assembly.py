"""inbound_message assembly (conversation and multipart parts); citizen_notification change fields

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import gateway.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_message") as batch:
        batch.add_column(sa.Column("assembly_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch.add_column(sa.Column("assembly_due_at", gateway.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("merged_into", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True))
        batch.create_index("ix_inbound_message_assembly_key", ["assembly_key"])
    with op.batch_alter_table("citizen_notification") as batch:
        batch.add_column(sa.Column("change_state", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True))
        batch.add_column(sa.Column("change_note", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("changed_at", gateway.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("citizen_notification") as batch:
        batch.drop_column("changed_at")
        batch.drop_column("change_note")
        batch.drop_column("change_state")
    with op.batch_alter_table("inbound_message") as batch:
        batch.drop_index("ix_inbound_message_assembly_key")
        batch.drop_column("merged_into")
        batch.drop_column("assembly_due_at")
        batch.drop_column("assembly_key")

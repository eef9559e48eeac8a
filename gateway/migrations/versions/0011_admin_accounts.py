"""admin accounts: scopes, language, lock-out counters; admin_session; audit_log

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import gateway.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("admin_user") as batch:
        # Server defaults fill the existing rows; the application always writes the values itself.
        batch.add_column(sa.Column("scope_channels", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch.add_column(sa.Column("scope_wilayah", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch.add_column(
            sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False, server_default="id")
        )
        batch.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("failed_since", gateway.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("locked_until", gateway.db.UTCDateTime(timezone=True), nullable=True))
    # Reviewers and viewers saw every report before scopes existed; they keep doing so ("*": every
    # channel, no wilayah) until a superadmin narrows their scope. An empty scope would see nothing.
    admin_user = sa.table("admin_user", sa.column("role", sa.String()), sa.column("scope_channels", sa.JSON()))
    op.execute(admin_user.update().where(admin_user.c.role.in_(["reviewer", "viewer"])).values(scope_channels=["*"]))

    op.create_table(
        "admin_session",
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("admin_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("created_at", gateway.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", gateway.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", gateway.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("user_agent", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.ForeignKeyConstraint(["admin_id"], ["admin_user.id"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("admin_session") as batch:
        batch.create_index(batch.f("ix_admin_session_admin_id"), ["admin_id"], unique=False)
        batch.create_index(batch.f("ix_admin_session_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("at", gateway.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
        sa.Column("actor_name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("target_type", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
        sa.Column("target_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_log") as batch:
        batch.create_index(batch.f("ix_audit_log_at"), ["at"], unique=False)
        batch.create_index(batch.f("ix_audit_log_actor_id"), ["actor_id"], unique=False)
        batch.create_index(batch.f("ix_audit_log_action"), ["action"], unique=False)


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("admin_session")
    with op.batch_alter_table("admin_user") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("failed_since")
        batch.drop_column("failed_logins")
        batch.drop_column("language")
        batch.drop_column("scope_wilayah")
        batch.drop_column("scope_channels")

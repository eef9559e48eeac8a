"""admin notifications: an index for each admin's unread count, shown in the admin pages' menu

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28 13:00:00.000000

Every admin page counts the signed-in admin's unread notifications (review_queue/admin_inbox.py).
The SLA sweeper writes one row per overdue report per admin, so a superadmin gathers thousands a year;
with this index the count reads only that admin's unread entries.
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_admin_notification_unread", "admin_notification", ["admin_id", "read_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_admin_notification_unread", table_name="admin_notification")

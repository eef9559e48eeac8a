"""audit indexes: report_event read newest first, alone or for one actor or action

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 10:00:00.000000

The audit page (review_queue/audit_export.py) lists `report_event` with `audit_log` newest first and
pages by key (at, id). Without an index on `at` every page would sort the whole history. The actor
and action indexes serve the page's two common filters ("what did rina do", "who opened personal
data") without reading the rows of everyone else. `audit_log` already has `at`, `actor_id` and
`action` indexes (0011) and stays small (sign-ins), so it gets none here.

On PostgreSQL the indexes are built inside the migration's transaction: writes to report_event wait
for the build (seconds per million rows); run it in a quiet hour on a large database.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_report_event_at_id": ["at", "id"],
    "ix_report_event_actor_at": ["actor", "at", "id"],
    "ix_report_event_action_at": ["action", "at", "id"],
}


def upgrade() -> None:
    for name, columns in _INDEXES.items():
        op.create_index(name, "report_event", columns, unique=False)


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="report_event")

"""report indexes for a million reports: the queue's counts per filter value, and the oldest waiting report

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 12:00:00.000000

The queue page shows, beside each filter, how many open reports of the admin's scope each value would
show (review_queue/queue.py, `counts`): five GROUP BYs over the open reports. Through the state index
each of them fetched every open report's table row; at a million reports (35,000 open) that took about
420 ms on SQLite. `ix_report_facets` holds every column they read, after the state, so they read it alone:
about 80 ms, measured with bench/review.py.

`ix_report_queue_kelurahan` is the queue's order (`ix_report_queue`, 0012) within one kelurahan. A
kelurahan admin sees 1/267 of Jakarta: through `ix_report_queue` their first page walked about 13,000
open reports of the band to find 50 of theirs (55 ms at a million); with it, the 50 rows directly.

`ix_report_state_created_at` serves `/healthz`, which reports how long the oldest report has waited
for review (MIN(created_at) of the pending ones). With only the single-column indexes SQLite walked
`created_at` from the oldest report until it met a pending one: 2.2 s at a million reports, on every
health check. With it: under a millisecond.

On PostgreSQL the indexes are built inside the migration's transaction: writes to `report` wait for the
build (seconds per million rows); run it in a quiet hour on a large database.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_COLUMNS = [
    "state",
    "sla_level",
    "channel_id",
    "category_code",
    "agency_code",
    "kota_code",
    "kecamatan_code",
    "kelurahan_code",
    "duplicate_of",
]


_KELURAHAN_QUEUE = ["state", "sla_level", "kelurahan_code", "completeness", "received_at", "id"]


def upgrade() -> None:
    op.create_index("ix_report_facets", "report", _COLUMNS, unique=False)
    op.create_index("ix_report_queue_kelurahan", "report", _KELURAHAN_QUEUE, unique=False)
    op.create_index("ix_report_state_created_at", "report", ["state", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_report_queue_kelurahan", table_name="report")
    op.drop_index("ix_report_state_created_at", table_name="report")
    op.drop_index("ix_report_facets", table_name="report")

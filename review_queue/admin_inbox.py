"""What the SLA sweeper (and later, other watchers) told one admin: the `admin_notification` rows, read.

The rows are written elsewhere (review_queue/sla.py, one per admin whose scope holds the report); this
module lists an admin's own, counts the unread ones for the menu, and marks them read. An admin only
ever sees their own rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from gateway.db import utcnow
from review_queue.tables import AdminNotification, Report

#: The most shown on the page; older ones stay in the table (and in the audit of each report).
SHOWN = 200


@dataclass(frozen=True)
class Notice:
    id: str
    kind: str
    message: str
    created_at: datetime
    read: bool
    ticket_code: str | None


def unread_count(session: Session, admin_id: str) -> int:
    """How many of the admin's notifications are unread (index `ix_admin_notification_unread`)."""
    query = select(func.count()).where(
        col(AdminNotification.admin_id) == admin_id, col(AdminNotification.read_at).is_(None)
    )
    return int(session.execute(query).scalar_one())


def recent(session: Session, admin_id: str, *, limit: int = SHOWN) -> list[Notice]:
    """The admin's notifications, unread first, then newest first."""
    query = (
        select(AdminNotification, col(Report.ticket_code))
        .outerjoin(Report, col(Report.id) == col(AdminNotification.report_id))
        .where(col(AdminNotification.admin_id) == admin_id)
        .order_by(col(AdminNotification.read_at).is_not(None), col(AdminNotification.created_at).desc())
        .limit(limit)
    )
    return [
        Notice(
            id=row.id,
            kind=row.kind,
            message=row.message,
            created_at=row.created_at,
            read=row.read_at is not None,
            ticket_code=ticket,
        )
        for row, ticket in session.execute(query).all()
    ]


def mark_all_read(session: Session, admin_id: str) -> int:
    """Mark every unread notification of the admin read; returns how many."""
    result = session.execute(
        update(AdminNotification)
        .where(col(AdminNotification.admin_id) == admin_id, col(AdminNotification.read_at).is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

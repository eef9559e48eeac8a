"""Every change to a report goes through `record_change`: the fields change, and the history gets a row."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from gateway.db import utcnow
from review_queue import feed
from review_queue.tables import Report, ReportEvent

#: The fields an event shows before and after; the rest of a report does not change after creation.
AUDITED_FIELDS = (
    "state",
    "text_masked",  # the history is shown to every admin: it holds the masked text, never the original
    "service_code",
    "category_code",
    "agency_code",
    "agency_unit",
    "location",
    "reject_reason",
    "crm_service_request_id",
    "crm_token",
    "crm_status",
    "crm_status_notes",
)


def snapshot(report: Report) -> dict[str, Any]:
    return {name: getattr(report, name) for name in AUDITED_FIELDS}


def record_change(
    session: Session, report: Report, *, actor: str, action: str, note: str | None = None, **changes: Any
) -> None:
    """Apply `changes` to `report`, bump its version and append who did what, before and after.

    A change that leaves the report validated (approved, forwarded...) also goes into the feed when
    the session commits: approval is where a report enters it, and every later change follows.
    """
    before = snapshot(report)
    for name, value in changes.items():
        setattr(report, name, value)
    report.version += 1
    report.updated_at = utcnow()
    session.add(report)
    note = note[:2000] if note else note
    session.add(
        ReportEvent(report_id=report.id, actor=actor, action=action, before=before, after=snapshot(report), note=note)
    )
    feed.queue_change(session, report, kind=action)

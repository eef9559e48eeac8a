"""What happens to a report: created from a message, edited, approved, rejected. Every change audited.

Functions take an open writing session and change nothing outside it, so an approval and its outbox
row commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlmodel import Session, col

from crm_client import outbox
from gateway.inbox import InboundMessageRow
from gateway.settings import ChannelConfig, CRMConfig
from normalizer.pipeline import Draft
from review_queue.history import record_change, snapshot
from review_queue.schemas import ReportEdit
from review_queue.tables import Report, ReportEvent, ReportState

SYSTEM_NORMALIZER = "system:normalizer"


class ReportNotFound(LookupError):
    """No report with that id or ticket code."""


class ReportConflict(Exception):
    """The report changed under the caller (another admin acted first); nothing was applied."""


def create_reports(
    session: Session,
    drafts: Sequence[tuple[InboundMessageRow, Draft]],
    *,
    channels: Mapping[str, ChannelConfig],
    crm: CRMConfig,
) -> list[Report]:
    """Store the normalizer's drafts as reports; a trusted channel's report is approved at once."""
    reports = [_report_from(row, draft) for row, draft in drafts]
    session.add_all(reports)
    session.flush()  # report rows must exist before the rows that point at them (no ORM relationships here)
    for report in reports:
        session.add(ReportEvent(report_id=report.id, actor=SYSTEM_NORMALIZER, action="created", after=snapshot(report)))
        channel = channels.get(report.channel_id)
        if channel is not None and channel.trusted:
            _approve(session, report, actor=SYSTEM_NORMALIZER, crm=crm, note="trusted channel: review skipped")
    return reports


def _report_from(row: InboundMessageRow, draft: Draft) -> Report:
    return Report(
        ticket_code=row.ticket_code,
        channel_id=row.channel_id,
        inbound_message_id=row.id,
        text_original=draft.original.text,
        text_clean=draft.text,
        completeness=draft.completeness,
        completeness_missing=draft.missing,
        sender=draft.sender.model_dump(exclude_none=True) if draft.sender else None,
        location=draft.location.model_dump(exclude_none=True) if draft.location else None,
        media=[m.model_dump(exclude_none=True) for m in draft.media],
        service_code=draft.service_code,
        decisions=[d.model_dump() for d in draft.decisions],
    )


def get_report(session: Session, key: str, *, for_update: bool = False) -> Report:
    """Find a report by id or ticket code; raise `ReportNotFound`."""
    query = select(Report).where((col(Report.id) == key) | (col(Report.ticket_code) == key.upper()))
    if for_update:
        query = query.with_for_update()
    report = session.execute(query).scalar_one_or_none()
    if report is None:
        raise ReportNotFound(key)
    return report


def approve(
    session: Session,
    *,
    key: str,
    actor: str,
    crm: CRMConfig,
    edits: ReportEdit | None = None,
    version: int | None = None,
) -> Report:
    report = _pending(session, key, version)
    if edits is not None:
        _apply_edits(session, report, edits, actor)
    _approve(session, report, actor=actor, crm=crm)
    return report


def reject(session: Session, *, key: str, actor: str, reason: str, version: int | None = None) -> Report:
    report = _pending(session, key, version)
    record_change(
        session, report, actor=actor, action="rejected", note=reason, state=ReportState.REJECTED, reject_reason=reason
    )
    return report


def edit(session: Session, *, key: str, actor: str, edits: ReportEdit, version: int | None = None) -> Report:
    report = _pending(session, key, version)
    _apply_edits(session, report, edits, actor)
    return report


def _pending(session: Session, key: str, version: int | None) -> Report:
    report = get_report(session, key, for_update=True)
    if report.state != ReportState.PENDING_REVIEW:
        last = session.execute(
            select(ReportEvent)
            .where(col(ReportEvent.report_id) == report.id)
            .order_by(col(ReportEvent.at).desc())
            .limit(1)
        ).scalar_one_or_none()
        by = f" by {last.actor} at {last.at.isoformat()}" if last else ""
        raise ReportConflict(f"report {report.ticket_code} is already {report.state}{by}; reload it")
    if version is not None and version != report.version:
        raise ReportConflict(
            f"report {report.ticket_code} changed since you opened it "
            f"(version {version}, now {report.version}); reload it"
        )
    return report


def _apply_edits(session: Session, report: Report, edits: ReportEdit, actor: str) -> None:
    changes = edits.model_dump(exclude_unset=True)
    if "location" in changes:
        changes["location"] = edits.location.model_dump(exclude_none=True) if edits.location else None
    if changes:
        record_change(session, report, actor=actor, action="edited", **changes)


def _approve(session: Session, report: Report, *, actor: str, crm: CRMConfig, note: str | None = None) -> None:
    record_change(session, report, actor=actor, action="approved", note=note, state=ReportState.APPROVED)
    outbox.enqueue(session, report=report, crm=crm)

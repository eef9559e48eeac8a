"""What happens to a report: created from a message, edited, approved, rejected. Every change audited.

Functions take an open writing session and change nothing outside it, so an approval and its outbox
row commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from sqlalchemy import Connection, insert, select
from sqlmodel import Session, col

from crm_client import outbox
from crm_client.tables import OutboxItem
from gateway.ids import canonical_ticket_code
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


class MessageKey(Protocol):
    """What a report needs to know of its inbox message."""

    id: str
    ticket_code: str
    channel_id: str


def create_reports(
    connection: Connection,
    drafts: Sequence[tuple[MessageKey, Draft]],
    *,
    channels: Mapping[str, ChannelConfig],
    crm: CRMConfig,
) -> int:
    """Store the normalizer's drafts as reports; a trusted channel's report is approved at once.

    Written with bulk statements rather than the ORM's unit of work: this runs for every message, and
    on SQLite it holds the single writer, so its cost is paid by every acknowledgement queued behind it.
    """
    reports: list[Report] = []
    events: list[ReportEvent] = []
    outbox_items: list[OutboxItem] = []
    for message, draft in drafts:
        report = _report_from(message, draft)
        created = snapshot(report)
        events.append(ReportEvent(report_id=report.id, actor=SYSTEM_NORMALIZER, action="created", after=created))
        channel = channels.get(report.channel_id)
        if channel is not None and channel.trusted:
            report.state = ReportState.APPROVED
            report.version += 1
            events.append(
                ReportEvent(
                    report_id=report.id,
                    actor=SYSTEM_NORMALIZER,
                    action="approved",
                    before=created,
                    after=snapshot(report),
                    note="trusted channel: review skipped",
                )
            )
            outbox_items.append(outbox.new_item(report, crm))
        reports.append(report)
    for model, rows in ((Report, reports), (ReportEvent, events), (OutboxItem, outbox_items)):
        if rows:
            connection.execute(insert(model), [row.model_dump() for row in rows])
    return len(reports)


def _report_from(message: MessageKey, draft: Draft) -> Report:
    return Report(
        ticket_code=message.ticket_code,
        channel_id=message.channel_id,
        inbound_message_id=message.id,
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
    ticket = canonical_ticket_code(key)  # "k7f3o 9q2mx" as typed from an SMS finds K7F3Q-9Q2MX
    query = select(Report).where((col(Report.id) == key) | (col(Report.ticket_code) == ticket))
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

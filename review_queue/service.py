"""What happens to a report: created from a message, edited, approved, rejected. Every change audited.

Functions take an open writing session and change nothing outside it, so an approval and its outbox
row commit together or not at all.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from crm_client import outbox
from gateway.ids import canonical_ticket_code
from gateway.settings import CRMConfig
from normalizer.pipeline import Place
from normalizer.steps.masking import mask_personal_data
from normalizer.steps.routing import agency_unit
from normalizer.taxonomy import Taxonomy
from review_queue.history import record_change
from review_queue.schemas import ReportEdit
from review_queue.tables import Report, ReportEvent, ReportFollowUp, ReportState


class ReportNotFound(LookupError):
    """No report with that id or ticket code."""


class InvalidEdit(ValueError):
    """An edit names something that does not exist (an unknown category or agency code)."""


class ReportConflict(Exception):
    """The report changed under the caller (another admin acted first); nothing was applied."""


def get_report(session: Session, key: str, *, for_update: bool = False) -> Report:
    """Find a report by id or ticket code; raise `ReportNotFound`."""
    ticket = canonical_ticket_code(key)  # "k7f3o 9q2mx" as typed from an SMS finds K7F3Q-9Q2MX
    query = select(Report).where((col(Report.id) == key) | (col(Report.ticket_code) == ticket))
    if for_update:
        query = query.with_for_update()
    report = session.execute(query).scalar_one_or_none()
    if report is None:
        # A follow-up's ticket finds the report it was attached to.
        follow_up = select(col(ReportFollowUp.report_id)).where(col(ReportFollowUp.ticket_code) == ticket)
        query = select(Report).where(col(Report.id).in_(follow_up.scalar_subquery()))
        if for_update:
            query = query.with_for_update()
        report = session.execute(query).scalar_one_or_none()
    if report is None:
        raise ReportNotFound(key)
    return report


def follow_ups(session: Session, report: Report) -> list[ReportFollowUp]:
    """The messages attached to `report` after it was made, oldest first."""
    query = (
        select(ReportFollowUp)
        .where(col(ReportFollowUp.report_id) == report.id)
        .order_by(col(ReportFollowUp.received_at), col(ReportFollowUp.inbound_message_id))
    )
    return list(session.execute(query).scalars())


def record_personal_data_opened(session: Session, report: Report, *, actor: str) -> None:
    """Who opened the report's unmasked text and contact, and when. The report itself does not change."""
    session.add(ReportEvent(report_id=report.id, actor=actor, action="personal_data_opened"))


def approve(
    session: Session,
    *,
    key: str,
    actor: str,
    crm: CRMConfig,
    taxonomy: Taxonomy,
    edits: ReportEdit | None = None,
    version: int | None = None,
) -> Report:
    report = _pending(session, key, version)
    if edits is not None:
        _apply_edits(session, report, edits, actor, taxonomy)
    _approve(session, report, actor=actor, crm=crm)
    return report


def reject(session: Session, *, key: str, actor: str, reason: str, version: int | None = None) -> Report:
    report = _pending(session, key, version)
    record_change(
        session, report, actor=actor, action="rejected", note=reason, state=ReportState.REJECTED, reject_reason=reason
    )
    return report


def edit(
    session: Session,
    *,
    key: str,
    actor: str,
    edits: ReportEdit,
    taxonomy: Taxonomy,
    version: int | None = None,
) -> Report:
    report = _pending(session, key, version)
    _apply_edits(session, report, edits, actor, taxonomy)
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


def _apply_edits(session: Session, report: Report, edits: ReportEdit, actor: str, taxonomy: Taxonomy) -> None:
    changes = edits.model_dump(exclude_unset=True)
    if "category_code" in changes or "agency_code" in changes:
        changes.update(_routing_choice(report, taxonomy, changes.get("category_code"), changes.get("agency_code")))
    if "location" in changes:
        changes["location"] = edits.location.model_dump(exclude_none=True) if edits.location else None
    if "text_clean" in changes:
        # An admin's correction is masked like the citizen's text: personal data never goes onward.
        changes["text_masked"], changes["masked_kinds"] = mask_personal_data(changes["text_clean"])
    if changes:
        record_change(session, report, actor=actor, action="edited", **changes)


def _routing_choice(
    report: Report, taxonomy: Taxonomy, category_code: str | None, agency_code: str | None
) -> dict[str, object]:
    """The routing columns after an admin chose a category and/or an agency; the unit follows the place."""
    category_code = category_code or report.category_code
    codes = {c.code for c in taxonomy.categories}
    if category_code not in codes:
        raise InvalidEdit(f"unknown category {category_code!r}; choose one of: {', '.join(sorted(codes))}")
    category = taxonomy.category(category_code)
    agency_code = agency_code or category.agency
    agencies = {a.code for a in taxonomy.agencies}
    if agency_code not in agencies:
        raise InvalidEdit(f"unknown agency {agency_code!r}; choose one of: {', '.join(sorted(agencies))}")
    agency = taxonomy.agency(agency_code)
    place = Place.model_validate(report.place or {})
    return {
        "category_code": category.code,
        "agency_code": agency.code,
        "agency_unit": agency_unit(taxonomy, agency, place),
        "needs_category_choice": False,
    }


def _approve(session: Session, report: Report, *, actor: str, crm: CRMConfig, note: str | None = None) -> None:
    record_change(session, report, actor=actor, action="approved", note=note, state=ReportState.APPROVED)
    outbox.enqueue(session, report=report, crm=crm)

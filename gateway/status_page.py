"""What a citizen sees of their report on the public status page: no personal data, no internal chatter.

Everything shown comes from the report's masked fields and its append-only history, so the page, the
audit and the SLA clock read the same facts. Internal events (edits, openings of personal data,
retries) are left out; so is anything that could identify the reporter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from review_queue.tables import Report, ReportEvent, ReportState

Lang = Literal["id", "en"]
WIB = ZoneInfo("Asia/Jakarta")

_STATES: dict[str, dict[Lang, str]] = {
    ReportState.PENDING_REVIEW: {"id": "Menunggu verifikasi petugas", "en": "Waiting for an officer to check it"},
    ReportState.APPROVED: {
        "id": "Sudah diverifikasi, sedang diteruskan ke instansi",
        "en": "Checked, being sent to the agency",
    },
    ReportState.FORWARDED: {"id": "Sudah diteruskan ke instansi terkait", "en": "Sent to the responsible agency"},
    ReportState.REJECTED: {"id": "Tidak dapat ditindaklanjuti", "en": "Cannot be followed up"},
    ReportState.IN_PROGRESS: {"id": "Sedang ditangani instansi", "en": "The agency is working on it"},
    ReportState.RESOLVED: {"id": "Selesai ditangani", "en": "Resolved"},
    ReportState.CRM_FAILED: {
        "id": "Pengiriman ke instansi terkendala; petugas kami sedang menanganinya",
        "en": "Sending to the agency ran into a problem; our staff are on it",
    },
}

# History rows a citizen is told about, and how. Others (edits, audit, retries) stay internal.
_EVENTS: dict[str, dict[Lang, str]] = {
    "created": {"id": "Laporan diterima", "en": "Report received"},
    "approved": {"id": "Laporan diverifikasi", "en": "Report checked"},
    "forwarded": {"id": "Diteruskan ke instansi", "en": "Sent to the agency"},
    "rejected": {"id": "Laporan tidak dapat ditindaklanjuti", "en": "Report cannot be followed up"},
    "follow_up": {"id": "Pesan lanjutan Anda diterima", "en": "Your follow-up message was received"},
    "crm_status": {"id": "Status di instansi: {status}", "en": "Status at the agency: {status}"},
}


@dataclass(frozen=True)
class Step:
    at: str  # already in WIB, formatted for reading
    label: str
    detail: str | None = None


@dataclass(frozen=True)
class PublicStatus:
    ticket_code: str
    state: str
    state_label: str
    received_at: str
    text: str
    category: str | None
    agency_unit: str | None
    place: str | None
    crm_reference: str | None
    steps: list[Step]


def wib(moment: datetime, lang: Lang) -> str:
    local = moment.astimezone(WIB)
    return local.strftime("%d/%m/%Y %H:%M WIB" if lang == "id" else "%Y-%m-%d %H:%M WIB (Jakarta)")


def public_status(report: Report, events: list[ReportEvent], lang: Lang) -> PublicStatus:
    """The report as its citizen may see it, in `lang`."""
    steps = []
    for event in events:
        labels = _EVENTS.get(event.action)
        if labels is None:
            continue
        detail = None
        label = labels[lang]
        if event.action == "crm_status":
            after = event.after or {}
            label = label.format(status=after.get("crm_status") or "-")
            detail = after.get("crm_status_notes")  # the agency's own words to the citizen
        elif event.action == "rejected":
            detail = report.reject_reason  # written by an admin for the citizen
        elif event.action == "forwarded" and report.crm_service_request_id:
            detail = ("Nomor di sistem instansi: " if lang == "id" else "Agency reference: ") + str(
                report.crm_service_request_id
            )
        steps.append(Step(at=wib(event.at, lang), label=label, detail=detail))
    place = (report.place or {}).get("address_text")
    routing = report.routing or {}
    return PublicStatus(
        ticket_code=report.ticket_code,
        state=report.state,
        state_label=_STATES.get(report.state, {"id": report.state, "en": report.state})[lang],
        received_at=wib(report.received_at, lang),
        text=report.text_masked,
        category=routing.get("category_name"),
        agency_unit=report.agency_unit,
        place=place,
        crm_reference=report.crm_service_request_id,
        steps=steps,
    )

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
    ReportState.NEEDS_INFO: {
        "id": "Menunggu kelengkapan data dari Anda: balas pesan petugas kami",
        "en": "Waiting for information from you: answer our officer's message",
    },
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
    "info_requested": {
        "id": "Petugas meminta data tambahan dari Anda",
        "en": "An officer asked you for more information",
    },
    "info_received": {"id": "Data tambahan Anda diterima", "en": "Your additional information was received"},
    "merged": {
        "id": "Digabung dengan laporan {primary} tentang masalah yang sama; perkembangannya di bawah ini",
        "en": "Joined with report {primary} about the same problem; its progress follows",
    },
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
    #: The report this one was merged into (its ticket code): the state, agency and later steps are its.
    merged_into: str | None = None


def wib(moment: datetime, lang: Lang) -> str:
    local = moment.astimezone(WIB)
    return local.strftime("%d/%m/%Y %H:%M WIB" if lang == "id" else "%Y-%m-%d %H:%M WIB (Jakarta)")


def public_status(
    report: Report,
    events: list[ReportEvent],
    lang: Lang,
    *,
    primary: tuple[Report, list[ReportEvent]] | None = None,
) -> PublicStatus:
    """The report as its citizen may see it, in `lang`.

    `primary`: for a report merged into another, that report and its history. The citizen's ticket
    stays the one they were given, but the progress is the primary's: its state, agency and CRM
    reference, and the steps of its history after the merge.
    """
    steps = _steps(report, events, lang, primary_ticket=primary[0].ticket_code if primary else None)
    followed = report
    if primary is not None:
        followed, primary_events = primary
        merged_at = max((e.at for e in events if e.action == "merged"), default=None)
        later = [e for e in primary_events if merged_at is None or e.at > merged_at]
        steps += _steps(followed, [e for e in later if e.action not in ("created", "follow_up")], lang)
    place = (report.place or {}).get("address_text")
    routing = report.routing or {}
    return PublicStatus(
        ticket_code=report.ticket_code,
        state=followed.state,
        state_label=_STATES.get(followed.state, {"id": followed.state, "en": followed.state})[lang],
        received_at=wib(report.received_at, lang),
        text=report.text_masked,
        category=routing.get("category_name"),
        agency_unit=followed.agency_unit,
        place=place,
        crm_reference=followed.crm_service_request_id,
        steps=steps,
        merged_into=primary[0].ticket_code if primary else None,
    )


def _steps(report: Report, events: list[ReportEvent], lang: Lang, *, primary_ticket: str | None = None) -> list[Step]:
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
        elif event.action == "merged":
            label = label.format(primary=primary_ticket or "-")
        steps.append(Step(at=wib(event.at, lang), label=label, detail=detail))
    return steps

"""The decision screen, GET /admin/reports/{ticket}, and its actions (POST forms, CSRF-checked by the middleware).

Left: the message as the channel delivered it; right: what the normalizer made of it, with its reasons
and confidence; below: the kelurahan on a small map, possible duplicates side by side, follow-ups and
the history. The unmasked original is personal data: `?original=1` shows it (the raw delivery byte for
byte, decoded) to admins who may act, and each opening is recorded in the report's history and the
audit log. Every citizen string is autoescaped; nothing here marks data safe.

Actions (review_queue/decisions.py): approve (with edits), reject (listed reason + note), ask-info,
merge, reassign. Each form carries the report's `version`: if another admin decided first, the
second gets a 409 page saying who and when, and nothing is applied. A report outside the admin's
scope answers 404 here exactly like one that does not exist.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import or_, select
from sqlmodel import Session, col

from adapters.contract import Sender
from gateway.db import read_session, utcnow, write_session
from gateway.deps import RuntimeDep
from gateway.inbox import InboundMessageRow, RawDelivery
from normalizer.duplicates import DUPLICATE_WINDOW, sender_keys
from normalizer.steps.completeness import REASONS
from review_queue import audit, decisions, queue, service
from review_queue.accounts import Scope, can_act, get_report_in_scope, scope_of
from review_queue.schemas import ReportEdit, masked_sender
from review_queue.tables import AdminUser, Report, ReportEvent, ReportMatchKey, ReportState
from review_queue.web import pages_queue  # noqa: F401 - registers the shared words (states, SLA, missing.*)
from review_queue.web.i18n import language_of, register
from review_queue.web.pages_queue import age_text, agency_name, category_name, counts_cache, region_name
from review_queue.web.render import render, wib
from review_queue.web.session import WebActorDep, WebAdminDep

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

#: What a redirect after a decision may announce (`?done=`).
DONE = frozenset({"approved", "rejected", "info_requested", "merged", "reassigned"})
#: Possible duplicates shown side by side (the group first, then reports sharing a match key).
MAX_DUPLICATES = 6

register(
    {
        "decide.title": {"id": "Laporan {ticket}", "en": "Report {ticket}"},
        "decide.original": {"id": "Pesan asli", "en": "Original message"},
        "decide.original_hidden": {
            "id": "Pesan asli memuat data pribadi. Membukanya dicatat di riwayat dan log audit.",
            "en": "The original holds personal data. Opening it is recorded in the history and the audit log.",
        },
        "decide.show_original": {"id": "Tampilkan pesan asli", "en": "Show the original"},
        "decide.raw_delivery": {"id": "Data mentah dari kanal", "en": "Raw delivery from the channel"},
        "decide.normalized": {"id": "Hasil normalisasi", "en": "Normalized"},
        "decide.text_masked": {"id": "Teks (data pribadi disamarkan)", "en": "Text (personal data masked)"},
        "decide.channel": {"id": "Kanal", "en": "Channel"},
        "decide.received": {"id": "Diterima", "en": "Received"},
        "decide.state": {"id": "Status", "en": "State"},
        "decide.sender": {"id": "Pelapor", "en": "Sender"},
        "decide.place": {"id": "Lokasi", "en": "Place"},
        "decide.category": {"id": "Kategori", "en": "Category"},
        "decide.agency": {"id": "Instansi", "en": "Agency"},
        "decide.confidence": {"id": "keyakinan {pct}%", "en": "confidence {pct}%"},
        "decide.completeness": {"id": "Kelengkapan", "en": "Completeness"},
        "decide.reasons": {"id": "Alasan normalisasi", "en": "The normalizer's reasons"},
        "decide.step": {"id": "Langkah", "en": "Step"},
        "decide.value": {"id": "Keputusan", "en": "Decision"},
        "decide.why": {"id": "Mengapa", "en": "Why"},
        "decide.photos": {"id": "Foto dan lampiran", "en": "Photos and attachments"},
        "decide.map": {"id": "Peta kelurahan", "en": "Kelurahan map"},
        "decide.no_map": {"id": "Peta belum tersedia.", "en": "No map available."},
        "decide.duplicates": {"id": "Kemungkinan duplikat", "en": "Possible duplicates"},
        "decide.no_duplicates": {"id": "Tidak ada laporan serupa.", "en": "No similar report."},
        "decide.merge_here": {"id": "Gabungkan ke laporan ini", "en": "Merge into this one"},
        "decide.followups": {"id": "Pesan lanjutan", "en": "Follow-ups"},
        "decide.history": {"id": "Riwayat", "en": "History"},
        "decide.merged_sources": {"id": "Sumber yang digabung", "en": "Merged sources"},
        "decide.actions": {"id": "Tindakan", "en": "Actions"},
        "decide.read_only": {
            "id": "Akun Anda hanya boleh melihat; tindakan tidak tersedia.",
            "en": "Your account may read only; no actions.",
        },
        "decide.closed": {"id": "Laporan ini sudah diputuskan ({state}).", "en": "This report was decided ({state})."},
        "decide.approve": {"id": "Setujui", "en": "Approve"},
        "decide.approve_hint": {
            "id": "Ubah bila perlu, lalu setujui: laporan dikirim ke CRM.",
            "en": "Correct if needed, then approve: the report goes to the CRM.",
        },
        "decide.service_code": {"id": "Kode layanan CRM", "en": "CRM service code"},
        "decide.text_edit": {"id": "Teks untuk CRM", "en": "Text for the CRM"},
        "decide.reject": {"id": "Tolak", "en": "Reject"},
        "decide.reason": {"id": "Alasan", "en": "Reason"},
        "decide.note": {"id": "Catatan (opsional)", "en": "Note (optional)"},
        "decide.ask": {"id": "Minta info ke pelapor", "en": "Ask the citizen"},
        "decide.ask_hint": {
            "id": "Pesan dikirim lewat kanal asal; laporan menunggu jawaban pelapor.",
            "en": "Sent on the channel it came from; the report waits for the answer.",
        },
        "decide.no_sender": {
            "id": "Kanal ini tidak memberi kontak pelapor: tidak bisa bertanya.",
            "en": "This channel gave no contact: the citizen cannot be asked.",
        },
        "decide.merge": {"id": "Gabungkan", "en": "Merge"},
        "decide.merge_into": {"id": "Tiket laporan utama", "en": "Ticket of the primary report"},
        "decide.merge_hint": {
            "id": "Laporan ini digabung ke laporan utama; CRM menerima satu laporan dengan kedua sumber.",
            "en": "This report joins the primary; the CRM gets one request listing both sources.",
        },
        "decide.reassign": {"id": "Alihkan", "en": "Reassign"},
        "decide.reassign_hint": {
            "id": "Ganti kategori, instansi atau kelurahan; laporan bisa pindah ke cakupan admin lain.",
            "en": "Change the category, agency or kelurahan; the report may move to other admins' scope.",
        },
        "decide.kelurahan_code": {"id": "Kode kelurahan", "en": "Kelurahan code"},
        "decide.unchanged": {"id": "(tidak diubah)", "en": "(unchanged)"},
        "decide.next": {"id": "Berikutnya", "en": "Next"},
        "decide.back": {"id": "Kembali ke antrean", "en": "Back to the queue"},
        "decide.shortcuts": {
            "id": "Pintasan: a setujui, r tolak, i minta info, m gabung, j berikutnya, k sebelumnya.",
            "en": "Shortcuts: a approve, r reject, i ask info, m merge, j next, k previous.",
        },
        "decide.conflict.title": {"id": "Sudah diputuskan", "en": "Already decided"},
        "decide.conflict": {
            "id": "Laporan {ticket} sudah diputuskan oleh {actor} pada {time} (status: {state}). "
            "Tidak ada yang diubah.",
            "en": "Report {ticket} was already decided by {actor} at {time} (state: {state}). Nothing was changed.",
        },
        "decide.conflict.reload": {"id": "Buka laporan lagi", "en": "Open the report again"},
        "decide.invalid.title": {"id": "Tidak bisa dilakukan", "en": "Cannot be done"},
        "decide.not_found.title": {"id": "Laporan tidak ditemukan", "en": "Report not found"},
        "decide.not_found": {
            "id": "Tidak ada laporan {ticket} dalam cakupan Anda. Periksa kode tiketnya.",
            "en": "No report {ticket} in your scope. Check the ticket code.",
        },
        "decide.merge_after_crm": {
            "id": "Laporan utama sudah terkirim ke CRM; sumber tambahan dicatat di Kanal saja.",
            "en": "The primary had already reached the CRM; the extra source is recorded in Kanal only.",
        },
        "decide.follow_up_reason": {"id": "alasan", "en": "reason"},
    }
)


@dataclass(frozen=True)
class Screen:
    report: Report
    message: InboundMessageRow | None
    delivery: RawDelivery | None
    follow_ups: list[Any]
    events: list[ReportEvent]
    duplicates: list[Report]
    next_ticket: str | None


def _media_path(url: str) -> str | None:
    """A report's /media/ link as a path on this site (the CSP allows images from 'self' only)."""
    parts = urlsplit(url)
    if not parts.path.startswith("/media/"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _duplicates(session: Session, report: Report, scope: Scope) -> list[Report]:
    """Reports of the same group (duplicate_of) and reports sharing this one's place or sender key
    within the duplicate window; only those in `scope`, at most MAX_DUPLICATES."""
    group = report.duplicate_of or report.id
    clause = scope.report_clause()
    query = select(Report).where(
        col(Report.id) != report.id, or_(col(Report.id) == group, col(Report.duplicate_of) == group)
    )
    if clause is not None:
        query = query.where(clause)
    found = {r.id: r for r in session.execute(query.limit(MAX_DUPLICATES)).scalars()}
    keys = []
    if report.kelurahan_code and report.category_code:
        keys.append(f"place:{report.kelurahan_code}:{report.category_code}")
    if report.sender:
        # An old row's sender that no longer fits the model gives no sender keys; nothing else is lost.
        with contextlib.suppress(TypeError, ValueError):
            keys.extend(sender_keys(report.channel_id, Sender(**report.sender)))
    if keys and len(found) < MAX_DUPLICATES:
        window = DUPLICATE_WINDOW
        ids = (
            select(col(ReportMatchKey.report_id))
            .where(
                col(ReportMatchKey.key).in_(keys),
                col(ReportMatchKey.received_at) >= report.received_at - window,
                col(ReportMatchKey.received_at) <= report.received_at + window,
                col(ReportMatchKey.report_id) != report.id,
            )
            .limit(50)
        )
        query = select(Report).where(col(Report.id).in_(ids.scalar_subquery()))
        if clause is not None:
            query = query.where(clause)
        for candidate in session.execute(query.limit(MAX_DUPLICATES)).scalars():
            found.setdefault(candidate.id, candidate)
    return list(found.values())[:MAX_DUPLICATES]


def _load(session: Session, ticket: str, scope: Scope, *, raw: bool) -> Screen:
    report = get_report_in_scope(session, ticket, scope)
    message = session.get(InboundMessageRow, report.inbound_message_id)
    delivery = session.get(RawDelivery, message.delivery_id) if raw and message is not None else None
    events = list(
        session.execute(
            select(ReportEvent)
            .where(col(ReportEvent.report_id) == report.id)
            .order_by(col(ReportEvent.at), col(ReportEvent.id))
        ).scalars()
    )
    next_ticket = None
    if report.state in decisions.OPEN_FOR_DECISION:
        row_key = queue.Key(
            queue.RANK.get(report.sla_level, queue.RANK[None]), report.completeness, report.received_at, report.id
        )
        following = queue.page(session, scope, queue.Filters(), cursor=row_key.encode(), limit=1)
        next_ticket = following.rows[0].ticket_code if following.rows else None
    return Screen(
        report=report,
        message=message,
        delivery=delivery,
        follow_ups=service.follow_ups(session, report),
        events=events,
        duplicates=_duplicates(session, report, scope),
        next_ticket=next_ticket,
    )


def _map(report: Report) -> Markup | None:
    """The kelurahan's SVG map from review_queue.svg.maps (drawn by our code from the shipped polygons,
    no citizen text in it), or None when the module or the boundary is unavailable."""
    if not report.kelurahan_code:
        return None
    try:
        from review_queue.svg import maps  # lazily: another module, and a page must not fail for a map

        location = report.location or {}
        point = None
        if location.get("lat") is not None and location.get("lng") is not None:
            point = (float(location["lat"]), float(location["lng"]))
        return Markup(maps.kelurahan_map(report.kelurahan_code, point=point))  # noqa: S704 - our own SVG
    except Exception:  # a missing boundary or a module still being written: no map, the rest of the page stands
        log.debug("no map for kelurahan %s", report.kelurahan_code, exc_info=True)
        return None


def _not_found(request: Request, admin: AdminUser, ticket: str) -> HTMLResponse:
    return render(
        request,
        "report_message.html",
        admin=admin,
        status_code=404,
        title_key="decide.not_found.title",
        message_key="decide.not_found",
        message_params={"ticket": ticket[:40]},
        reload=None,
    )


@router.get("/admin/reports/{ticket}")
async def decision_screen(
    request: Request,
    ticket: str,
    runtime: RuntimeDep,
    admin: WebAdminDep,
    original: str | None = None,
    done: str | None = None,
    decided: str | None = None,
) -> Response:
    scope = scope_of(admin)
    show_original = original == "1" and can_act(admin)
    try:
        if show_original:
            # Opening personal data is a write (history + audit), through the write queue like any other.
            def open_original() -> Screen:
                with write_session(runtime.engine) as session:
                    report = get_report_in_scope(session, ticket, scope)
                    service.record_personal_data_opened(session, report, actor=f"admin:{admin.username}")
                    audit.record(
                        session,
                        actor=admin,
                        action="personal_data_opened",
                        target_type="report",
                        target_id=report.ticket_code,
                        ip=request.client.host if request.client else None,
                    )
                    session.flush()
                    return _load(session, ticket, scope, raw=True)

            screen = await runtime.writes.run(open_original, urgent=True)
        else:
            with read_session(runtime.engine) as session:
                screen = _load(session, ticket, scope, raw=False)
    except service.ReportNotFound:
        return _not_found(request, admin, ticket)
    report = screen.report
    taxonomy = runtime.taxonomy
    now = utcnow()
    age_key, age_params = age_text((now - report.received_at).total_seconds())
    level = "none"
    if report.state == ReportState.PENDING_REVIEW:
        level = "overdue" if report.sla_due_at and report.sla_due_at <= now else (report.sla_level or "none")
    lang = language_of(admin)
    raw_text = None
    if screen.delivery is not None:
        raw_text = bytes(screen.delivery.body).decode("utf-8", errors="replace")
    media = [
        {
            "path": _media_path(str(m.get("url", ""))),
            "type": str(m.get("content_type") or ""),
            "name": str(m.get("filename") or ""),
        }
        for m in report.media
    ]
    follow_ups = [
        {
            "item": f,
            "media": [p for p in (_media_path(str(m.get("url", ""))) for m in f.media) if p],
        }
        for f in screen.follow_ups
    ]
    return render(
        request,
        "report.html",
        admin=admin,
        report=report,
        screen=screen,
        can_act=can_act(admin),
        is_open=report.state in decisions.OPEN_FOR_DECISION,
        show_original=show_original,
        raw_text=raw_text,
        raw_headers=(screen.delivery.headers if screen.delivery is not None else {}),
        message=screen.message.message if screen.message is not None else {},
        media=media,
        follow_ups=follow_ups,
        level=level,
        age_key=age_key,
        age_params=age_params,
        place_name=region_name(report.kelurahan_code) if report.kelurahan_code else "",
        kecamatan_name=region_name(report.kecamatan_code) if report.kecamatan_code else "",
        kota_name=region_name(report.kota_code) if report.kota_code else "",
        category=category_name(taxonomy, report.category_code),
        agency=report.agency_unit or agency_name(taxonomy, report.agency_code),
        categories=sorted(taxonomy.categories, key=lambda c: c.name),
        agencies=sorted(taxonomy.agencies, key=lambda a: a.name),
        reject_reasons=[(r.code, r.id if lang == "id" else r.en) for r in decisions.REJECT_REASONS.values()],
        missing_reasons=list(REASONS),
        missing_keys={f"missing.{code}" for code in REASONS},
        sender_shown=report.sender if show_original else masked_sender(report.sender),
        map_svg=_map(report),
        routing_confidence=_pct((report.routing or {}).get("confidence")),
        duplicates=[
            {
                "report": d,
                "category": category_name(taxonomy, d.category_code),
                "place": region_name(d.kelurahan_code) if d.kelurahan_code else "",
            }
            for d in screen.duplicates
        ],
        merged_sources=report.merged_sources,
        decisions_list=[_decision_row(d) for d in report.decisions],
        done=done if done in DONE else None,
        decided=decided,
    )


def _pct(value: object) -> int | None:
    try:
        return round(float(value) * 100) if value is not None else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _decision_row(decision: dict[str, Any]) -> dict[str, Any]:
    value = decision.get("value")
    return {
        "step": str(decision.get("step", "")),
        "field": str(decision.get("field", "") or ""),
        "value": "" if value is None else str(value),
        "reason": str(decision.get("reason", "") or ""),
        "confidence": _pct(decision.get("confidence")),
    }


# -- actions ---------------------------------------------------------------------------------------


def _version(value: str) -> int | None:
    return int(value) if value.strip().isdigit() else None


def _after(ticket: str, done: str, next_ticket: str | None) -> RedirectResponse:
    """After a decision: on to the next report in the queue (or the queue), saying what was done."""
    target = f"/admin/reports/{next_ticket}" if next_ticket else "/admin/queue"
    return RedirectResponse(f"{target}?{urlencode({'done': done, 'decided': ticket})}", status_code=303)


async def _decide(
    request: Request,
    runtime: RuntimeDep,
    admin: AdminUser,
    ticket: str,
    done: str,
    action: Any,
) -> Response:
    """Run `action(session, report_id) -> Report` on the report, in scope, in one write; answer the browser."""
    scope = scope_of(admin)

    def run() -> tuple[str, str | None]:
        with write_session(runtime.engine) as session:
            found = get_report_in_scope(session, ticket, scope, for_update=True)
            key = queue.Key(
                queue.RANK.get(found.sla_level, queue.RANK[None]), found.completeness, found.received_at, found.id
            )
            changed = action(session, found.id)
            session.flush()
            following = queue.page(session, scope, queue.Filters(), cursor=key.encode(), limit=1)
            return changed.ticket_code, following.rows[0].ticket_code if following.rows else None

    try:
        code, next_ticket = await runtime.writes.run(run, urgent=True)
    except service.ReportNotFound:
        return _not_found(request, admin, ticket)
    except decisions.AlreadyDecided as exc:
        return render(
            request,
            "report_message.html",
            admin=admin,
            status_code=409,
            title_key="decide.conflict.title",
            message_key="decide.conflict",
            message_params={
                "ticket": exc.ticket,
                "actor": (exc.actor or "?").removeprefix("admin:"),
                "time": wib(exc.at),
                "state": exc.state,
            },
            reload=f"/admin/reports/{exc.ticket}",
        )
    except service.InvalidEdit as exc:
        return render(
            request,
            "report_message.html",
            admin=admin,
            status_code=422,
            title_key="decide.invalid.title",
            message_key=None,
            message_text=str(exc),
            message_params={},
            reload=f"/admin/reports/{ticket}",
        )
    counts_cache(request).clear()  # the queue's counts show the decision on the next page view
    if done == "approved":
        request.app.state.workers.poke_dispatcher()
    return _after(code, done, next_ticket)


def _clean(value: str | None) -> str | None:
    return value.strip() or None if value else None


@router.post("/admin/reports/{ticket}/approve")
async def approve_action(
    request: Request,
    ticket: str,
    runtime: RuntimeDep,
    admin: WebActorDep,
    version: Annotated[str, Form()] = "",
    category_code: Annotated[str, Form()] = "",
    agency_code: Annotated[str, Form()] = "",
    service_code: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    text_shown: Annotated[str, Form()] = "",
) -> Response:
    changes: dict[str, Any] = {}
    if _clean(category_code):
        changes["category_code"] = category_code.strip()
    if _clean(agency_code):
        changes["agency_code"] = agency_code.strip()
    if _clean(service_code):
        changes["service_code"] = service_code.strip()
    if text.strip() and " ".join(text.split()) != " ".join(text_shown.split()):
        changes["text_clean"] = text.strip()  # masked again before it goes anywhere (service._apply_edits)
    edits = ReportEdit.model_validate(changes) if changes else None
    return await _decide(
        request,
        runtime,
        admin,
        ticket,
        "approved",
        lambda s, report_id: decisions.approve(
            s,
            key=report_id,
            actor=f"admin:{admin.username}",
            crm=runtime.settings.crm,
            taxonomy=runtime.taxonomy,
            edits=edits,
            version=_version(version),
        ),
    )


@router.post("/admin/reports/{ticket}/reject")
async def reject_action(
    request: Request,
    ticket: str,
    runtime: RuntimeDep,
    admin: WebActorDep,
    version: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    return await _decide(
        request,
        runtime,
        admin,
        ticket,
        "rejected",
        lambda s, report_id: decisions.reject(
            s,
            key=report_id,
            actor=f"admin:{admin.username}",
            reason_code=reason,
            note=_clean(note),
            version=_version(version),
        ),
    )


@router.post("/admin/reports/{ticket}/ask-info")
async def ask_info_action(
    request: Request,
    ticket: str,
    runtime: RuntimeDep,
    admin: WebActorDep,
    version: Annotated[str, Form()] = "",
    missing: Annotated[list[str] | None, Form()] = None,
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    settings = runtime.settings
    return await _decide(
        request,
        runtime,
        admin,
        ticket,
        "info_requested",
        lambda s, report_id: decisions.ask_for_info(
            s,
            key=report_id,
            actor=f"admin:{admin.username}",
            missing=list(missing or []),
            note=_clean(note),
            config=settings.notifications,
            public_base_url=settings.public_base_url,
            version=_version(version),
        ),
    )


@router.post("/admin/reports/{ticket}/merge")
async def merge_action(
    request: Request,
    ticket: str,
    runtime: RuntimeDep,
    admin: WebActorDep,
    version: Annotated[str, Form()] = "",
    into: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    scope = scope_of(admin)
    if not into.strip():
        return await _decide(
            request, runtime, admin, ticket, "merged", _refuse("give the primary report's ticket code")
        )
    return await _decide(
        request,
        runtime,
        admin,
        ticket,
        "merged",
        lambda s, report_id: (
            decisions.merge(
                s,
                key=report_id,
                into=into.strip(),
                actor=f"admin:{admin.username}",
                scope=scope,
                crm=runtime.settings.crm,
                version=_version(version),
                notify=runtime.settings.notifications,
                public_base_url=runtime.settings.public_base_url,
            ).report
        ),
    )


@router.post("/admin/reports/{ticket}/reassign")
async def reassign_action(
    request: Request,
    ticket: str,
    runtime: RuntimeDep,
    admin: WebActorDep,
    version: Annotated[str, Form()] = "",
    category_code: Annotated[str, Form()] = "",
    agency_code: Annotated[str, Form()] = "",
    kelurahan_code: Annotated[str, Form()] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    return await _decide(
        request,
        runtime,
        admin,
        ticket,
        "reassigned",
        lambda s, report_id: decisions.reassign(
            s,
            key=report_id,
            actor=f"admin:{admin.username}",
            taxonomy=runtime.taxonomy,
            category_code=_clean(category_code),
            agency_code=_clean(agency_code),
            kelurahan_code=_clean(kelurahan_code),
            note=_clean(note),
            version=_version(version),
        ),
    )


def _refuse(message: str) -> Any:
    def action(_session: Session, _report_id: str) -> Report:
        raise service.InvalidEdit(message)

    return action

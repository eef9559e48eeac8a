"""The audit trail: who signed in, acted on a report or opened personal data, when (WIB), and what changed.

- GET /admin/audit: newest first, 50 a page, filtered by actor, action, date range (days in WIB) and
  ticket; "older" pages continue after the last row shown (`cursor`), so paging stays fast however
  long the trail grows.
- GET /admin/audit/export?format=csv|jsonl: the same filters, every row, streamed as it is read.
  Each export is itself recorded (`audit_exported`).

Every signed-in admin may read it, viewers too; what each sees is `review_queue.audit_export`'s rule
(a superadmin everything; others their scope's reports and their own sign-ins).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from gateway.db import read_session, utcnow, write_session
from gateway.deps import RuntimeDep
from gateway.runtime import Runtime
from review_queue import accounts, audit, service
from review_queue.audit_export import (
    AuditEntry,
    AuditFilter,
    AuditPage,
    BadCursor,
    Position,
    csv_chunks,
    is_superadmin,
    iter_entries,
    jsonl_chunks,
    read_page,
)
from review_queue.tables import AdminUser
from review_queue.web.i18n import Lang, language_of, register, translate
from review_queue.web.render import WIB, render, wib
from review_queue.web.session import WebAdminDep

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
#: Longest value shown in a table cell; the export has them whole.
SHOWN_CHARS = 160
EXPORT_ACTION = "audit_exported"

#: Actions with a readable name; any other is shown as recorded (helpers may add new ones freely).
ACTION_LABELS: dict[str, dict[str, str]] = {
    "login": {"id": "Masuk", "en": "Signed in"},
    "login_failed": {"id": "Gagal masuk", "en": "Sign-in failed"},
    "lockout": {"id": "Akun dikunci", "en": "Account locked"},
    "logout": {"id": "Keluar", "en": "Signed out"},
    "language_changed": {"id": "Bahasa diubah", "en": "Language changed"},
    "account_created": {"id": "Akun dibuat", "en": "Account created"},
    "account_changed": {"id": "Akun diubah", "en": "Account changed"},
    "account_disabled": {"id": "Akun dinonaktifkan", "en": "Account disabled"},
    "account_enabled": {"id": "Akun diaktifkan", "en": "Account enabled"},
    "account_unlocked": {"id": "Kunci akun dibuka", "en": "Account unlocked"},
    "account_password_set": {"id": "Kata sandi akun diganti", "en": "Account password set"},
    EXPORT_ACTION: {"id": "Audit diunduh", "en": "Audit exported"},
    "created": {"id": "Laporan dibuat", "en": "Report created"},
    "held_for_review": {"id": "Ditahan untuk diperiksa", "en": "Held for review"},
    "approved": {"id": "Disetujui", "en": "Approved"},
    "rejected": {"id": "Ditolak", "en": "Rejected"},
    "edited": {"id": "Diubah", "en": "Edited"},
    "personal_data_opened": {"id": "Data pribadi dibuka", "en": "Personal data opened"},
    "follow_up": {"id": "Pesan lanjutan", "en": "Follow-up message"},
    "overdue": {"id": "Melewati tenggat", "en": "Overdue"},
    "crm_id_assigned": {"id": "Nomor CRM diterima", "en": "CRM number assigned"},
    "forwarded": {"id": "Diteruskan ke CRM", "en": "Forwarded to the CRM"},
    "crm_failed": {"id": "Gagal dikirim ke CRM", "en": "CRM delivery failed"},
    "crm_retry": {"id": "Dikirim ulang ke CRM", "en": "CRM delivery retried"},
    "crm_dropped": {"id": "Pengiriman CRM dihentikan", "en": "CRM delivery dropped"},
    "crm_status": {"id": "Status CRM berubah", "en": "CRM status changed"},
}

register({f"audit.action.{code}": texts for code, texts in ACTION_LABELS.items()})
register(
    {
        "audit.title": {"id": "Jejak audit", "en": "Audit trail"},
        "audit.intro": {
            "id": "Setiap tindakan, proses masuk dan pembukaan data pribadi: siapa, kapan (WIB), dan apa yang berubah.",
            "en": "Every action, sign-in and opening of personal data: who, when (WIB) and what changed.",
        },
        "audit.scope_note": {
            "id": "Anda melihat riwayat laporan dalam cakupan Anda dan aktivitas akun Anda sendiri.",
            "en": "You see the history of the reports in your scope and your own account's activity.",
        },
        "audit.filters": {"id": "Saring", "en": "Filter"},
        "audit.actor": {"id": "Pelaku", "en": "Actor"},
        "audit.actor_hint": {"id": "nama pengguna, atau system:sla", "en": "username, or system:sla"},
        "audit.action": {"id": "Tindakan", "en": "Action"},
        "audit.since": {"id": "Dari tanggal", "en": "From"},
        "audit.until": {"id": "Sampai tanggal", "en": "To"},
        "audit.ticket": {"id": "Nomor tiket", "en": "Ticket"},
        "audit.apply": {"id": "Terapkan", "en": "Apply"},
        "audit.clear": {"id": "Hapus saringan", "en": "Clear filters"},
        "audit.export": {"id": "Unduh", "en": "Export"},
        "audit.export_csv": {"id": "CSV (spreadsheet)", "en": "CSV (spreadsheet)"},
        "audit.export_jsonl": {"id": "JSON Lines", "en": "JSON Lines"},
        "audit.when": {"id": "Waktu (WIB)", "en": "Time (WIB)"},
        "audit.what": {"id": "Yang berubah / keterangan", "en": "What changed / details"},
        "audit.ip": {"id": "Alamat IP", "en": "IP address"},
        "audit.nobody": {"id": "(belum masuk)", "en": "(not signed in)"},
        "audit.empty": {"id": "Tidak ada catatan yang cocok.", "en": "No matching entries."},
        "audit.older": {"id": "Lebih lama →", "en": "Older →"},
        "audit.newest": {"id": "← Terbaru", "en": "← Newest"},
        "audit.note": {"id": "Catatan", "en": "Note"},
        "audit.bad_date": {
            "id": "Tanggal {which} tidak dapat dibaca. Pilih tanggal dari kalender atau tulis TTTT-BB-HH.",
            "en": "The {which} date could not be read. Pick it from the calendar or write YYYY-MM-DD.",
        },
        "audit.bad_range": {
            "id": "Tanggal akhir lebih awal dari tanggal awal. Tukar kedua tanggal lalu coba lagi.",
            "en": "The end date is before the start date. Swap them and try again.",
        },
        "audit.no_ticket": {
            "id": "Tidak ada laporan dengan nomor tiket itu dalam cakupan Anda. Periksa nomornya.",
            "en": "No report in your scope has that ticket code. Check the code.",
        },
        "audit.bad_cursor": {
            "id": "Tautan halaman ini tidak valid lagi. Mulai lagi dari halaman terbaru.",
            "en": "This page link is no longer valid. Start again from the newest page.",
        },
    }
)


class _Problem(Exception):
    """The filters cannot be used: the page shows `message` with `status_code`."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def _day(value: str | None, which: str, lang: Lang) -> date | None:
    if not value or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise _Problem(translate("audit.bad_date", lang, which=which), 400) from None


def _start_of(day: date) -> datetime:
    """Midnight of `day` in Jakarta, as UTC: the audit's days are the admins' days."""
    return datetime.combine(day, time(0), WIB).astimezone(UTC)


def _filters(
    runtime: Runtime,
    admin: AdminUser,
    lang: Lang,
    *,
    actor: str | None,
    action: str | None,
    since: str | None,
    until: str | None,
    ticket: str | None,
) -> AuditFilter:
    first = _day(since, translate("audit.since", lang).lower(), lang)
    last = _day(until, translate("audit.until", lang).lower(), lang)
    if first and last and last < first:
        raise _Problem(translate("audit.bad_range", lang), 400)
    report_id = None
    if ticket and ticket.strip():
        # Outside the reader's scope answers exactly like a ticket that does not exist.
        with read_session(runtime.engine) as session:
            try:
                report = accounts.get_report_in_scope(session, ticket.strip()[:40], accounts.scope_of(admin))
            except service.ReportNotFound:
                raise _Problem(translate("audit.no_ticket", lang), 404) from None
            report_id = report.id
    return AuditFilter(
        actor=actor.strip()[:200] if actor and actor.strip() else None,
        action=action.strip()[:50] if action and action.strip() else None,
        since=_start_of(first) if first else None,
        until=_start_of(last + timedelta(days=1)) if last else None,
        report_id=report_id,
    )


def _query(**params: str | None) -> str:
    return urlencode({k: v for k, v in params.items() if v})


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _action_label(lang: Lang) -> Any:
    def label(code: str) -> str:
        return translate(f"audit.action.{code}", lang) if code in ACTION_LABELS else code

    return label


def _page(
    request: Request,
    admin: AdminUser,
    typed: dict[str, str | None],
    *,
    status_code: int = 200,
    problem: str | None = None,
    entries: list[AuditEntry] | None = None,
    following: Position | None = None,
    paged: bool = False,
) -> Response:
    lang = language_of(admin)
    filter_query = _query(**typed)
    return render(
        request,
        "audit.html",
        admin=admin,
        status_code=status_code,
        typed={k: (v or "")[:200] for k, v in typed.items()},
        problem=problem,
        entries=entries or [],
        next_url="/admin/audit?" + _query(**typed, cursor=following.encode()) if following else None,
        first_url=("/admin/audit?" + filter_query if filter_query else "/admin/audit") if paged else None,
        export_csv="/admin/audit/export?" + _query(**typed, format="csv"),
        export_jsonl="/admin/audit/export?" + _query(**typed, format="jsonl"),
        known_actions=sorted(ACTION_LABELS),
        action_label=_action_label(lang),
        shown=_shown,
        superadmin=is_superadmin(admin),
    )


@router.get("/admin/audit")
async def audit_page(
    request: Request,
    runtime: RuntimeDep,
    admin: WebAdminDep,
    actor: str | None = None,
    action: str | None = None,
    since: str | None = None,
    until: str | None = None,
    ticket: str | None = None,
    cursor: str | None = None,
) -> Response:
    """One page of the trail, newest first, with the filters and the export links."""
    lang = language_of(admin)
    typed = {"actor": actor, "action": action, "since": since, "until": until, "ticket": ticket}
    try:
        filters = await asyncio.to_thread(_filters, runtime, admin, lang, **typed)
        try:
            after = Position.decode(cursor) if cursor else None
        except BadCursor:
            raise _Problem(translate("audit.bad_cursor", lang), 400) from None
    except _Problem as exc:
        return _page(request, admin, typed, status_code=exc.status_code, problem=exc.message, paged=bool(cursor))

    def load() -> AuditPage:
        with read_session(runtime.engine) as session:
            return read_page(session, admin, filters, after=after, limit=PAGE_SIZE)

    page = await asyncio.to_thread(load)
    return _page(request, admin, typed, entries=page.entries, following=page.next, paged=after is not None)


@router.get("/admin/audit/export")
async def audit_export(
    request: Request,
    runtime: RuntimeDep,
    admin: WebAdminDep,
    format: Literal["csv", "jsonl"] = Query(default="csv"),
    actor: str | None = None,
    action: str | None = None,
    since: str | None = None,
    until: str | None = None,
    ticket: str | None = None,
) -> Response:
    """Every entry the filters select, streamed: CSV (formula-safe cells) or JSON Lines."""
    typed = {"actor": actor, "action": action, "since": since, "until": until, "ticket": ticket}
    try:
        filters = await asyncio.to_thread(_filters, runtime, admin, language_of(admin), **typed)
    except _Problem as exc:
        return _page(request, admin, typed, status_code=exc.status_code, problem=exc.message)
    ip = request.client.host if request.client else None

    def record_export() -> None:
        with write_session(runtime.engine) as session:
            audit.record(
                session, actor=admin, action=EXPORT_ACTION, detail={"format": format, **filters.as_detail()}, ip=ip
            )

    # Recorded before the first byte: an export cut short still shows who asked for it.
    await runtime.writes.run(record_export, urgent=True)
    entries = iter_entries(runtime.engine, admin, filters)
    stamp = utcnow().astimezone(WIB).strftime("%Y%m%d-%H%M")
    if format == "csv":
        body, media_type = csv_chunks(entries, wib), "text/csv; charset=utf-8"
    else:
        body, media_type = jsonl_chunks(entries, wib), "application/x-ndjson; charset=utf-8"
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="kanal-audit-{stamp}.{format}"'},
    )

"""GET /admin/notifications: what Kanal told the signed-in admin (a report of theirs went overdue), and
POST /admin/notifications/read to mark it all read. Each admin sees only their own notifications; the
menu shows how many are unread (review_queue/web/render.py). Rows: review_queue/admin_inbox.py.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from gateway.db import read_session, write_session
from gateway.deps import RuntimeDep
from review_queue import admin_inbox
from review_queue.web.i18n import register
from review_queue.web.render import render
from review_queue.web.session import WebAdminDep

router = APIRouter(include_in_schema=False)

PATH = "/admin/notifications"

register(
    {
        "nav.notifications": {"id": "Pemberitahuan", "en": "Notifications"},
        "notifications.title": {"id": "Pemberitahuan untuk Anda", "en": "Your notifications"},
        "notifications.intro": {
            "id": "Laporan dalam cakupan Anda yang melewati tenggat layanan. Buka laporannya untuk memutuskan.",
            "en": "Reports in your scope that went past their service deadline. Open one to decide.",
        },
        "notifications.none": {"id": "Tidak ada pemberitahuan.", "en": "No notifications."},
        "notifications.when": {"id": "Waktu", "en": "When"},
        "notifications.what": {"id": "Pemberitahuan", "en": "Notification"},
        "notifications.report": {"id": "Laporan", "en": "Report"},
        "notifications.unread": {"id": "Belum dibaca", "en": "Unread"},
        "notifications.mark_read": {"id": "Tandai semua sudah dibaca", "en": "Mark all as read"},
        "notifications.kind.overdue": {"id": "Laporan {ticket} melewati tenggat", "en": "Report {ticket} is overdue"},
        "notifications.done": {"id": "{count} pemberitahuan ditandai sudah dibaca.", "en": "{count} marked as read."},
    }
)


@router.get(PATH)
def notifications_page(
    request: Request, runtime: RuntimeDep, admin: WebAdminDep, marked: int | None = None
) -> Response:
    with read_session(runtime.engine) as session:
        notices = admin_inbox.recent(session, admin.id)
    return render(request, "notifications.html", admin=admin, notices=notices, marked=marked)


@router.post(f"{PATH}/read")
def mark_read(runtime: RuntimeDep, admin: WebAdminDep) -> Response:
    """Under /admin, so the CSRF middleware has checked the form's token before this runs."""
    with write_session(runtime.engine) as session:
        count = admin_inbox.mark_all_read(session, admin.id)
    return RedirectResponse(f"{PATH}?marked={count}", status_code=303)

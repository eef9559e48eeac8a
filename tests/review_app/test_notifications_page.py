"""The admin's notifications: an overdue report of their scope shows in the menu and on the page, only
to admins whose scope holds it, and "mark all as read" (a CSRF-checked form) clears the count."""

from __future__ import annotations

import re
from datetime import timedelta

from gateway.db import utcnow
from gateway.settings import SLAConfig
from review_queue import sla
from tests.admin.support import admin_gateway
from tests.review_app.support import GAMBIR, MENTENG, Browser, form_post, make_admin, put_report, signed_in

_BADGE = re.compile(r'href="/admin/notifications"[^>]*>[^<]*<span class="badge">(\d+)</span>')


def badge(html: str) -> int:
    found = _BADGE.search(html)
    return int(found.group(1)) if found else 0


def test_an_overdue_report_is_notified_to_its_kelurahan_admin_only_until_they_mark_it_read(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        late = put_report(engine, kelurahan=GAMBIR, age=timedelta(days=10))
        make_admin(engine, "lurah.gambir", scope_wilayah=[GAMBIR])
        make_admin(engine, "lurah.menteng", scope_wilayah=[MENTENG])
        sla.sweep(engine, SLAConfig(notify_roles=["wilayah_admin"]), channels={}, now=utcnow())

        with Browser(gateway) as browser:
            signed_in(browser, "lurah.gambir")
            queue_page = browser.http.get("/admin/queue")
            assert badge(queue_page.text) == 1, "the menu shows one unread notification"
            page = browser.http.get("/admin/notifications")
            assert page.status_code == 200
            assert f"Laporan {late.ticket_code} melewati tenggat" in page.text
            assert f'href="/admin/reports/{late.ticket_code}"' in page.text

            refused = browser.http.post("/admin/notifications/read", data={})
            assert refused.status_code == 403, "no CSRF token, no change"
            assert badge(browser.http.get("/admin/queue").text) == 1

            done = form_post(browser, page, "/admin/notifications/read")
            assert done.status_code == 303 and done.headers["location"].endswith("marked=1")
            after = browser.http.get(done.headers["location"])
            assert badge(after.text) == 0 and "1 pemberitahuan ditandai sudah dibaca" in after.text
            assert late.ticket_code in after.text, "read notifications stay listed"

        with Browser(gateway) as other:
            signed_in(other, "lurah.menteng")
            theirs = other.http.get("/admin/notifications")
            assert badge(theirs.text) == 0 and late.ticket_code not in theirs.text
            assert "Tidak ada pemberitahuan" in theirs.text

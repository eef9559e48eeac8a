"""The decision screen: citizen text rendered as text, scope by URL, CSRF, two admins at once (both engines)."""

from __future__ import annotations

from review_queue.tables import AdminRole
from tests.admin.support import admin_gateway
from tests.review_app.support import (
    GAMBIR,
    MENTENG,
    XSS,
    Browser,
    form_post,
    make_admin,
    put_report,
    signed_in,
)


def test_a_complaint_with_markup_renders_as_text_everywhere(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        make_admin(engine, "lurah", scope_wilayah=[GAMBIR])
        raw = ('{"text": "' + XSS.replace('"', '\\"') + '"}').encode()
        report = put_report(engine, text=XSS, raw_body=raw, sender={"id": "x", "name": "<b>Budi</b>"})
        put_report(engine, text=XSS, duplicate_of=report.id)  # shown side by side as a possible duplicate
        with Browser(gateway) as browser:
            signed_in(browser, "lurah")
            pages = [
                browser.http.get("/admin/queue"),
                browser.http.get(f"/admin/reports/{report.ticket_code}"),
                browser.http.get(f"/admin/reports/{report.ticket_code}?original=1"),
            ]
        for page in pages:
            assert page.status_code == 200, page.text
            assert "<script>alert" not in page.text and "<img src=x" not in page.text
            assert "&lt;script&gt;alert(" in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
            assert "<b>Budi" not in page.text
        original = pages[2].text
        assert "data-original" in original and "data-raw" in original  # the raw delivery, escaped
        assert "personal_data_opened" in original  # the opening itself is in the history


def test_another_kelurahan_report_is_404_by_url_and_by_form(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        make_admin(engine, "lurah", scope_wilayah=[GAMBIR])
        mine = put_report(engine)
        theirs = put_report(engine, kelurahan=MENTENG)
        with Browser(gateway) as browser:
            signed_in(browser, "lurah")
            page = browser.http.get(f"/admin/reports/{mine.ticket_code}")
            assert browser.http.get(f"/admin/reports/{theirs.ticket_code}").status_code == 404
            assert browser.http.get("/admin/reports/NOPE0-00000").status_code == 404
            refused = form_post(browser, page, f"/admin/reports/{theirs.ticket_code}/reject", reason="test")
            assert refused.status_code == 404
            merge = form_post(browser, page, f"/admin/reports/{mine.ticket_code}/merge", into=theirs.ticket_code)
            assert merge.status_code == 404  # the primary must be in scope too


def test_a_form_without_the_csrf_token_is_refused(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        make_admin(engine, "lurah", scope_wilayah=[GAMBIR])
        report = put_report(engine)
        with Browser(gateway) as browser:
            signed_in(browser, "lurah")
            refused = browser.http.post(f"/admin/reports/{report.ticket_code}/reject", data={"reason": "test"})
            assert refused.status_code == 403
            page = browser.http.get(f"/admin/reports/{report.ticket_code}")
        assert "Menunggu verifikasi" in page.text  # still pending: nothing was applied


def test_the_second_admin_is_told_who_decided_first_and_nothing_is_applied_twice(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        make_admin(engine, "ani", scope_wilayah=[GAMBIR])
        make_admin(engine, "budi", role=AdminRole.REVIEWER)
        report = put_report(engine)
        with Browser(gateway) as first, Browser(gateway) as second:
            signed_in(first, "ani")
            signed_in(second, "budi")
            page_a = first.http.get(f"/admin/reports/{report.ticket_code}")
            page_b = second.http.get(f"/admin/reports/{report.ticket_code}")
            rejected = form_post(first, page_a, f"/admin/reports/{report.ticket_code}/reject", reason="spam_abuse")
            assert rejected.status_code == 303, rejected.text
            late = form_post(second, page_b, f"/admin/reports/{report.ticket_code}/reject", reason="test")
            late_merge = form_post(second, page_b, f"/admin/reports/{report.ticket_code}/ask-info", missing="no_photo")
            history = second.http.get(f"/admin/reports/{report.ticket_code}")
        assert late.status_code == 409
        assert "sudah diputuskan oleh ani" in late.text.lower()
        assert late_merge.status_code == 409
        assert history.text.count("<strong>rejected</strong>") == 1
        assert "Spam atau kata-kata kasar" in history.text


def test_a_viewer_reads_the_screen_but_cannot_act(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        make_admin(engine, "vera", role=AdminRole.VIEWER)
        report = put_report(engine)
        with Browser(gateway) as browser:
            signed_in(browser, "vera")
            page = browser.http.get(f"/admin/reports/{report.ticket_code}")
            assert page.status_code == 200
            assert "form-approve" not in page.text and "?original=1" not in page.text
            refused = form_post(browser, page, f"/admin/reports/{report.ticket_code}/reject", reason="test")
        assert refused.status_code == 403


def test_reassigning_to_another_kelurahan_moves_it_out_of_the_scope(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        make_admin(engine, "lurah", scope_wilayah=[GAMBIR])
        make_admin(engine, "menteng", scope_wilayah=[MENTENG])
        report = put_report(engine)
        with Browser(gateway) as browser, Browser(gateway) as other:
            signed_in(browser, "lurah")
            signed_in(other, "menteng")
            page = browser.http.get(f"/admin/reports/{report.ticket_code}")
            moved = form_post(
                browser, page, f"/admin/reports/{report.ticket_code}/reassign", kelurahan_code=MENTENG, note="salah"
            )
            assert moved.status_code == 303, moved.text
            assert browser.http.get(f"/admin/reports/{report.ticket_code}").status_code == 404
            theirs = other.http.get(f"/admin/reports/{report.ticket_code}")
        assert theirs.status_code == 200
        assert f"kelurahan_code {GAMBIR} -&gt; {MENTENG}: salah" in theirs.text

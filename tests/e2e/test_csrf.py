"""Acceptance 4: a form posted without the CSRF token is refused, and nothing happens."""

from __future__ import annotations

from review_queue.tables import ReportState
from tests.e2e.conftest import GAMBIR, Kanal

RELOAD = "Muat ulang halaman lalu coba lagi"


def test_the_language_form_without_its_token_is_refused(kanal: Kanal) -> None:
    tab = kanal.signed_in(kanal.admin("lurah.gambir", scope_wilayah=[GAMBIR]))
    assert tab.goto("/admin/account") == 200
    form = "main form[action='/admin/language']"
    # As a forged page would send it: the same form, with the hidden token taken out.
    tab.page.eval_on_selector(f"{form} input[name=csrf_token]", "field => field.remove()")
    tab.page.select_option(f"{form} select[name=language]", "en")
    with tab.page.expect_response(lambda r: r.url.endswith("/admin/language")) as answer:
        tab.page.click(f"{form} button[type=submit]")
    assert answer.value.status == 403
    assert RELOAD in tab.body_text()

    # Straight from the browser's session, without the form: refused too.
    assert tab.page.request.post(kanal.url + "/admin/language", form={"language": "en"}).status == 403

    # Nothing changed: the pages still speak Indonesian; the intact form does work.
    assert tab.goto("/admin/account") == 200
    assert tab.page.get_attribute("html", "lang") == "id"
    tab.page.select_option(f"{form} select[name=language]", "en")
    with tab.page.expect_navigation():
        tab.page.click(f"{form} button[type=submit]")
    assert tab.page.get_attribute("html", "lang") == "en"


def test_the_approve_form_without_its_token_is_refused(kanal: Kanal) -> None:
    report = kanal.report(kelurahan=GAMBIR)
    tab = kanal.signed_in(kanal.admin("lurah.gambir", scope_wilayah=[GAMBIR]))
    assert tab.goto(f"/admin/reports/{report.ticket_code}") == 200
    approve = tab.page.locator("form[action$='/approve']")
    approve.locator("input[name=csrf_token]").evaluate("field => field.remove()")
    with tab.page.expect_response(lambda r: r.url.endswith("/approve")) as answer:
        approve.locator("button[type=submit]").first.click()
    assert answer.value.status == 403
    assert RELOAD in tab.body_text()
    assert kanal.stored(report.ticket_code).state == ReportState.PENDING_REVIEW

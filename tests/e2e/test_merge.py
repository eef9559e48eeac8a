"""Acceptance 5: two reports of one problem become one CRM request that lists both sources."""

from __future__ import annotations

from review_queue.tables import ReportState
from tests.e2e.conftest import API, GAMBIR, WEB_FORM, Kanal, crm_requests, wait_for_crm_request


def test_merging_a_duplicate_sends_one_request_listing_both_sources(kanal: Kanal) -> None:
    primary = kanal.report(channel_id=WEB_FORM, kelurahan=GAMBIR, text="Got mampet di Jl. Majapahit, air meluap")
    duplicate = kanal.report(
        channel_id=API,
        kelurahan=GAMBIR,
        text="Saluran air di Jl. Majapahit tersumbat, jalan tergenang",
        duplicate_of=primary.id,
        duplicate_score=0.91,
    )
    tab = kanal.signed_in(kanal.admin("lurah.gambir", scope_wilayah=[GAMBIR]))

    assert tab.goto(f"/admin/reports/{duplicate.ticket_code}") == 200
    assert primary.ticket_code in tab.body_text(), "the possible duplicate is shown beside the report"
    # The duplicate's own "merge into it" button if the screen offers one, else the form taking a ticket code.
    merge = tab.page.locator(f"form[action$='/merge']:has(input[name=into][value='{primary.ticket_code}'])")
    if not merge.count():
        merge = tab.page.locator("form[action$='/merge']:has(input[name=into]:not([type=hidden]))").first
        merge.locator("[name=into]").fill(primary.ticket_code)
    merge = merge.first
    with tab.page.expect_navigation():
        merge.locator("button[type=submit]").first.click()
    assert kanal.stored(duplicate.ticket_code).state == ReportState.MERGED

    assert tab.goto(f"/admin/reports/{primary.ticket_code}") == 200
    assert duplicate.ticket_code in tab.body_text(), "the primary names the report merged into it"
    with tab.page.expect_navigation():
        tab.page.locator("form[action$='/approve'] button[type=submit]").first.click()

    request = wait_for_crm_request(kanal.crm, primary.ticket_code)
    assert primary.ticket_code in request["description"] and duplicate.ticket_code in request["description"]
    assert WEB_FORM in request["description"] and API in request["description"]
    naming_either = [
        r for r in crm_requests(kanal.crm) if {primary.ticket_code, duplicate.ticket_code} & set(_words(r))
    ]
    assert naming_either == [request], "one request for both, not two"


def _words(request: dict[str, object]) -> list[str]:
    return str(request.get("description") or "").replace("[", " ").replace("]", " ").split()

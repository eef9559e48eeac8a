"""Acceptance 1: a kelurahan admin sees only their kelurahan, approves one with an edit, and it reaches the CRM."""

from __future__ import annotations

from review_queue.tables import ReportState
from tests.e2e.conftest import CIDENG, GAMBIR, MENTENG, Kanal, wait_for_crm_request


def test_a_kelurahan_admin_approves_an_edited_report_into_the_crm(kanal: Kanal) -> None:
    mine = kanal.report(kelurahan=GAMBIR, text="Lampu jalan mati di Jl. Medan Merdeka Barat sejak Senin")
    also_mine = kanal.report(kelurahan=GAMBIR, text="Sampah menumpuk di pinggir kali dekat pasar")
    next_door = kanal.report(kelurahan=CIDENG, text="Trotoar rusak di Jl. Cideng Barat")
    elsewhere = kanal.report(kelurahan=MENTENG, text="Pohon tumbang di Jl. Teuku Umar, Menteng")
    tab = kanal.signed_in(kanal.admin("lurah.gambir", scope_wilayah=[GAMBIR]))

    assert tab.goto("/admin/queue") == 200
    queue = tab.body_text()
    assert mine.ticket_code in queue and also_mine.ticket_code in queue
    assert next_door.ticket_code not in queue and elsewhere.ticket_code not in queue

    # Open it from the queue, as an admin does, and correct the text before approving.
    with tab.page.expect_navigation():
        tab.page.click(f"a[href*='{mine.ticket_code}']")
    assert mine.ticket_code in tab.body_text()
    approve = tab.page.locator("form[action$='/approve']")
    edited = "Lampu jalan mati di depan Gedung Sapta Pesona, Jl. Medan Merdeka Barat, sejak Senin malam"
    approve.locator("[name=text]").fill(edited)
    with tab.page.expect_navigation():
        approve.locator("button[type=submit]").first.click()
    assert tab.page.url.startswith(kanal.url + "/admin/"), tab.page.url

    request = wait_for_crm_request(kanal.crm, mine.ticket_code)
    assert edited in request["description"]
    assert kanal.stored(mine.ticket_code).state in (ReportState.APPROVED, ReportState.FORWARDED)
    assert kanal.stored(also_mine.ticket_code).state == ReportState.PENDING_REVIEW

    # Another kelurahan's report by URL: the same 404 as a ticket that does not exist.
    for other in (next_door, elsewhere):
        assert tab.goto(f"/admin/reports/{other.ticket_code}") == 404
        assert other.text_masked not in tab.body_text()
    assert tab.goto("/admin/reports/ZZZZZ-ZZZZZ") == 404
    assert (
        tab.page.request.post(
            f"{kanal.url}/admin/reports/{elsewhere.ticket_code}/approve",
            form={"csrf_token": tab.page.get_attribute("meta[name=csrf-token]", "content") or ""},
        ).status
        == 404
    )
    assert kanal.stored(elsewhere.ticket_code).state == ReportState.PENDING_REVIEW

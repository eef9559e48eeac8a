"""Acceptance 6: a desk officer enters a walk-in complaint, prints the receipt, and it reaches the right queue."""

from __future__ import annotations

from typing import Any

from review_queue.tables import AdminRole, Report, ReportState
from tests.e2e.conftest import GAMBIR, MENTENG, Kanal
from tests.support.servers import wait_until

DESK = "walk_in:pendopo"
PENDOPO = {"desk_kind": "balai_kota", "desk_name": "Pendopo Balai Kota", "wilayah_code": "31"}
COMPLAINT = "Saluran air tersumbat di depan Kantor Kelurahan Gambir, banjir tiap hujan. Telp saya 0812-9876-5432"


def test_a_walk_in_complaint_gets_a_printable_receipt_and_lands_in_its_kelurahan_queue(make_kanal: Any) -> None:
    kanal: Kanal = make_kanal(channels={DESK: {"type": "walk_in", "settings": PENDOPO}})
    # The Balai Kota desk serves the whole city: its officers are scoped by channel (pages_intake.may_use_desk).
    officer = kanal.admin("petugas.pendopo", AdminRole.CHANNEL_ADMIN, scope_channels=[DESK])
    desk = kanal.signed_in(officer)

    assert desk.goto(f"/admin/intake?desk={DESK}") == 200
    form = desk.page.locator("form[action='/admin/intake']")
    form.locator("[name=text]").fill(COMPLAINT)
    form.locator("[name=address]").fill("Jl. Medan Merdeka Barat")
    form.locator("select[name=wilayah_code]").select_option(GAMBIR)
    form.locator("[name=citizen_name]").fill("Pak Rahmat")
    with desk.page.expect_navigation():
        form.locator("button[type=submit]").click()

    assert "/admin/intake/receipt/" in desk.page.url, desk.body_text()
    ticket = desk.page.inner_text(".receipt-ticket").strip()
    receipt = desk.page.inner_text(".receipt")
    assert ticket and ticket in desk.page.url
    assert "Pendopo Balai Kota" in receipt and officer in receipt, "the receipt names the desk and the officer"
    assert "0812-9876-5432" not in receipt, "the phone number is masked on the receipt"
    assert f"/status/{ticket}" in receipt, "the receipt says where to follow the report"

    # Printing: the print stylesheet hides the admin's controls and keeps the ticket; Chromium prints a PDF.
    desk.page.emulate_media(media="print")
    assert desk.page.is_visible(".receipt-ticket")
    assert not desk.page.is_visible(".receipt-controls")
    assert desk.page.pdf(format="A4")[:4] == b"%PDF"
    desk.page.emulate_media(media="screen")

    # The normalizer makes the report from the desk's delivery; it lands in Gambir's queue only.
    def waiting() -> Report | None:
        found = kanal.stored_or_none(ticket)
        return found if found is not None and found.state == ReportState.PENDING_REVIEW else None

    report = wait_until(waiting, timeout=30, what=f"the report {ticket} waiting for review")
    assert report is not None
    assert report.channel_id == DESK and report.kelurahan_code == GAMBIR
    for username, kelurahan, sees in (("lurah.gambir", GAMBIR, True), ("lurah.menteng", MENTENG, False)):
        with kanal.fresh_browser() as other:
            tab = other.signed_in(kanal.admin(username, scope_wilayah=[kelurahan]))
            assert tab.goto("/admin/queue") == 200
            assert (ticket in tab.body_text()) is sees, f"{username} {'should' if sees else 'should not'} see it"

"""Acceptance 3: markup in a complaint is shown as text on every page, and never runs."""

from __future__ import annotations

from tests.e2e.conftest import GAMBIR, Kanal

SCRIPT = "<script>alert('xss-script')</script>"
IMAGE = "<img src=x onerror=\"alert('xss-img')\">"
HOSTILE = f"Got mampet {SCRIPT} di gang 3 {IMAGE} tolong"


def test_markup_in_a_complaint_is_text_on_the_queue_the_decision_screen_and_the_status_page(kanal: Kanal) -> None:
    report = kanal.report(kelurahan=GAMBIR, text=HOSTILE, masked=HOSTILE)
    tab = kanal.signed_in(kanal.admin("lurah.gambir", scope_wilayah=[GAMBIR]))

    pages = {
        "queue": "/admin/queue",
        "decision screen": f"/admin/reports/{report.ticket_code}",
        # The original as received (personal data, opened on request): the raw delivery too.
        "original message": f"/admin/reports/{report.ticket_code}?original=1",
        "status page": f"/status/{report.ticket_code}",
    }
    for name, path in pages.items():
        assert tab.goto(path) == 200, name
        tab.page.wait_for_load_state("load")
        text = tab.body_text()
        # The queue may shorten a long text; what it shows must still be the literal characters.
        assert SCRIPT in text or "<script>" in text, f"{name}: the <script> text is not shown literally"
        if name != "queue":
            assert SCRIPT in text and IMAGE in text, f"{name}: the complaint is not shown literally:\n{text}"
        assert tab.page.locator("img[src=x]").count() == 0, f"{name}: the <img> became an element"
        assert tab.page.evaluate("document.querySelectorAll('script:not([src])').length") == 0, name
    assert tab.dialogs == [], f"a dialog fired: {tab.dialogs}"
    assert tab.errors == [], f"the pages raised: {tab.errors}"

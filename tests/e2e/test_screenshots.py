"""Acceptance 7: the run saves screenshots of the queue, the decision screen and the status page.

They go to pytest's temporary folder and are copied to var/screenshots/ (tests/e2e/README.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import API, CIDENG, GAMBIR, SCREENSHOT_COPY_DIR, Kanal, Tab


def test_screenshots_of_the_queue_the_decision_screen_and_the_status_page(
    kanal: Kanal, screenshot: Callable[[Tab, str], Path]
) -> None:
    shown = kanal.report(kelurahan=GAMBIR, text="Lampu jalan mati di Jl. Medan Merdeka Barat sejak Senin")
    kanal.report(channel_id=API, kelurahan=GAMBIR, text="Got mampet di Jl. Majapahit, air meluap ke jalan")
    kanal.report(kelurahan=CIDENG, text="Trotoar rusak di Jl. Cideng Barat, pejalan kaki turun ke jalan")
    tab = kanal.signed_in(kanal.admin("camat.gambir", scope_wilayah=["31.71.01"]))

    pages = {
        "queue": "/admin/queue",
        "decision-screen": f"/admin/reports/{shown.ticket_code}",
        "status-page": f"/status/{shown.ticket_code}",
    }
    for name, path in pages.items():
        assert tab.goto(path) == 200, name
        assert shown.ticket_code in tab.body_text(), name
        saved = screenshot(tab, name)
        assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (SCREENSHOT_COPY_DIR / saved.name).exists()

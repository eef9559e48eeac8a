"""The public status page: a citizen follows their report by ticket code, and sees no personal data."""

from __future__ import annotations

import re

import httpx

from crm_sim.server import RunningCRMSim
from tests.support.api_client import complaint, post_api
from tests.support.review import approve, wait_for_reports
from tests.support.servers import RunningGateway

# Not markup to the cleanup step, so it reaches the page as typed, and must be escaped there.
ANGLES = "tinggi air < 30 cm & arus > deras"
TEXT = f"Lampu jalan mati di Jl. Cikini Raya, Kel. Cikini, Menteng, {ANGLES}. Hubungi saya di 0812-7777-1234"
XSS = '<img src=x onerror="alert(1)">'


def _send(http: httpx.Client, external_id: str = "status-1") -> str:
    return str(post_api(http, complaint(external_id, TEXT)).json()["accepted"][0]["ticket"])


def test_a_citizen_follows_the_report_from_received_to_forwarded(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str], crm: RunningCRMSim
) -> None:
    ticket = _send(http)
    wait_for_reports(http, admin_headers, 1)
    page = http.get(f"/status/{ticket}")
    assert page.status_code == 200
    assert ticket in page.text and "Menunggu verifikasi petugas" in page.text and "Laporan diterima" in page.text
    assert "7777" not in page.text, "the phone number in the complaint is masked"
    assert ANGLES not in page.text and "tinggi air &lt; 30 cm &amp; arus &gt; deras" in page.text, "text is escaped"
    assert "Budi" not in page.text, "the reporter's name is not shown"
    assert "script-src" not in page.headers["content-security-policy"], "the page runs no script"

    assert approve(http, admin_headers, ticket).status_code == 200
    [forwarded] = wait_for_reports(http, admin_headers, 1, state="forwarded")
    page = http.get(f"/status/{ticket}")
    assert "Sudah diteruskan ke instansi terkait" in page.text
    assert [s for s in ("Laporan diterima", "Laporan diverifikasi", "Diteruskan ke instansi") if s in page.text] == [
        "Laporan diterima",
        "Laporan diverifikasi",
        "Diteruskan ke instansi",
    ]
    assert str(forwarded["crm_service_request_id"]) in page.text
    assert "Suku Dinas" in page.text or "Dinas" in page.text, "the agency in charge is named"

    english = http.get(f"/status/{ticket}", params={"lang": "en"})
    assert "Sent to the responsible agency" in english.text and 'lang="en"' in english.text


def test_a_rejection_shows_the_admins_reason_escaped(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str]
) -> None:
    ticket = _send(http, "status-3")
    wait_for_reports(http, admin_headers, 1)
    reason = f"Bukan wewenang Pemprov DKI, silakan hubungi PLN {XSS}"
    rejected = http.post(f"/api/v1/reports/{ticket}/reject", json={"reason": reason}, headers=admin_headers)
    assert rejected.status_code == 200
    page = http.get(f"/status/{ticket}")
    assert "Tidak dapat ditindaklanjuti" in page.text and "silakan hubungi PLN" in page.text
    assert XSS not in page.text and "&lt;img src=x" in page.text


def test_a_report_waiting_for_the_citizen_says_so_without_the_officers_note(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str]
) -> None:
    gateway.runtime.settings.notifications.templates = {"id": {"needs_info": "Laporan {ticket}: {note}"}}
    ticket = _send(http, "status-4")
    wait_for_reports(http, admin_headers, 1)
    note = "Nomor rumah Bapak Budi di Jl. Cikini Raya berapa?"
    asked = http.post(f"/api/v1/reports/{ticket}/ask-info", json={"missing": [], "note": note}, headers=admin_headers)
    assert asked.status_code == 200, asked.text
    page = http.get(f"/status/{ticket}")
    assert "Menunggu kelengkapan data dari Anda" in page.text and "Petugas meminta data tambahan" in page.text
    assert "needs_info" not in page.text, "no internal state names"
    assert "Budi" not in page.text, "the question went to the citizen, not to a public page"


def test_the_look_up_form_takes_a_code_as_typed(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str]
) -> None:
    ticket = _send(http, "status-2")
    wait_for_reports(http, admin_headers, 1)
    assert http.get("/status").status_code == 200
    typed = ticket.lower().replace("-", " ")
    answer = http.get("/status", params={"ticket": typed}, follow_redirects=True)
    assert answer.status_code == 200 and ticket in answer.text


def test_unknown_and_malformed_codes_say_what_to_check(http: httpx.Client, gateway: RunningGateway) -> None:
    unknown = http.get("/status/AB1CD-2EF3G")
    assert unknown.status_code == 404 and "tidak ditemukan" in unknown.text
    malformed = http.get("/status", params={"ticket": "hello<b>"})
    assert malformed.status_code == 400 and "10 huruf/angka" in malformed.text
    assert "<b>" not in malformed.text
    internal_id = http.get("/status/01234567-89ab-7cde-8f01-23456789abcd")
    assert internal_id.status_code == 404, "only ticket codes are public handles"
    assert re.search(r"Traceback|Internal Server Error", unknown.text + malformed.text) is None

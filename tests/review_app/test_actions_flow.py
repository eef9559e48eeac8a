"""The decisions end to end, through the running gateway and the reference CRM (both engines):
approve with an edit, ask the citizen and get the answer back, merge two reports into one CRM request.
The same actions through the JSON API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from crm_sim.server import RunningCRMSim
from review_queue.auth import create_admin
from review_queue.tables import AdminRole
from tests.conftest import base_settings
from tests.review_app.support import PASSWORD, Browser, form_post, signed_in
from tests.support.api_client import complaint, post_api
from tests.support.review import wait_for_reports
from tests.support.servers import RunningGateway, wait_until
from tests.test_notifications import PartnerInbox

NEEDS_INFO = "Laporan {ticket} perlu dilengkapi. {note} Sebutkan nomor {ticket} saat membalas."
MERGED = "Laporan {ticket} digabung dengan {primary}. Pantau di {status_url}"
IN_PROGRESS = "Laporan {ticket} sedang ditangani {agency}. {note}"


@pytest.fixture
def partner() -> Iterator[PartnerInbox]:
    inbox = PartnerInbox()
    yield inbox
    inbox.close()


@pytest.fixture
def settings(database_url: str, crm: RunningCRMSim, partner: PartnerInbox) -> dict[str, Any]:
    configured = base_settings(database_url, crm.base_url)
    configured["channels"]["api:partner"]["settings"]["reply_url"] = partner.url
    templates = {"needs_info": NEEDS_INFO, "merged": MERGED, "in_progress": IN_PROGRESS}
    configured["notifications"] = {"poll_interval_seconds": 0.1, "templates": {"id": templates}}
    configured["status_sync"] = {"poll_interval_seconds": 0.1}
    return configured


def crm_request(crm: RunningCRMSim, request_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{crm.base_url}requests.json", params={"service_request_id": request_id})
    assert answer.status_code == 200, answer.text
    [request] = answer.json()
    return dict(request)


def crm_count(crm: RunningCRMSim) -> int:
    return int(httpx.get(f"{crm.base_url}_sim/stats").json()["requests"])


def reviewer(gateway: RunningGateway, name: str = "lurah") -> None:
    create_admin(gateway.runtime.engine, username=name, password=PASSWORD, role=AdminRole.REVIEWER)


def test_approve_with_an_edit_reaches_the_crm(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str], crm: RunningCRMSim
) -> None:
    ticket = post_api(http, complaint("edit-1")).json()["accepted"][0]["ticket"]
    wait_for_reports(http, admin_headers, 1, state="pending_review")
    reviewer(gateway)
    with Browser(gateway) as browser:
        signed_in(browser, "lurah")
        page = browser.http.get(f"/admin/reports/{ticket}")
        assert page.status_code == 200, page.text
        edited = "Jalan berlubang besar di depan Pasar Senen, dua minggu belum diperbaiki (dicek admin)"
        done = form_post(browser, page, f"/admin/reports/{ticket}/approve", category_code="jalan", text=edited)
        assert done.status_code == 303, done.text
    [report] = wait_for_reports(http, admin_headers, 1, state="forwarded")
    request = crm_request(crm, report["crm_service_request_id"])
    assert request["description"] == f"[{ticket}] {edited}"


def test_ask_for_info_sends_a_message_and_the_answer_brings_it_back(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str], partner: PartnerInbox
) -> None:
    sent = complaint("ask-1", "Lampu jalan mati di depan rumah saya, gelap sekali kalau malam")
    sent.pop("location")
    ticket = post_api(http, sent).json()["accepted"][0]["ticket"]
    wait_for_reports(http, admin_headers, 1, state="pending_review")
    reviewer(gateway)
    with Browser(gateway) as browser:
        signed_in(browser, "lurah")
        page = browser.http.get(f"/admin/reports/{ticket}")
        asked = form_post(
            browser, page, f"/admin/reports/{ticket}/ask-info", missing="location_below_kelurahan", note="Dekat apa?"
        )
        assert asked.status_code == 303, asked.text
        wait_for_reports(http, admin_headers, 1, state="needs_info")
        wait_until(lambda: len(partner.received) >= 1, timeout=15, what="the question to the citizen")
        message = partner.received[0]
        assert ticket in message["text"] and "Mohon lengkapi lokasinya" in message["text"]
        assert "Dekat apa?" in message["text"]

        answer = complaint("ask-2", f"Untuk laporan {ticket}: lokasinya Jl. Cikini Raya depan Taman Ismail Marzuki")
        answer["sender"] = sent["sender"]
        assert post_api(http, answer).status_code == 200
        wait_for_reports(http, admin_headers, 1, state="pending_review", timeout=30)
        screen = browser.http.get(f"/admin/reports/{ticket}")
    assert "Taman Ismail Marzuki" in screen.text  # the answer, on the decision screen
    assert "info_received" in screen.text


def test_merge_makes_one_crm_request_listing_both_sources(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str], crm: RunningCRMSim
) -> None:
    first = post_api(http, complaint("merge-1")).json()["accepted"][0]["ticket"]
    second_body = complaint("merge-2", "Ada lubang besar di jalan depan pasar, bahaya untuk motor")
    second = post_api(http, second_body).json()["accepted"][0]["ticket"]
    wait_for_reports(http, admin_headers, 2, state="pending_review")
    reviewer(gateway)
    with Browser(gateway) as browser:
        signed_in(browser, "lurah")
        page = browser.http.get(f"/admin/reports/{second}")
        merged = form_post(browser, page, f"/admin/reports/{second}/merge", into=first)
        assert merged.status_code == 303, merged.text
        primary = browser.http.get(f"/admin/reports/{first}")
        assert second in primary.text  # listed among the merged sources
        approved = form_post(browser, primary, f"/admin/reports/{first}/approve")
        assert approved.status_code == 303, approved.text
    [report] = wait_for_reports(http, admin_headers, 1, state="forwarded")
    assert crm_count(crm) == 1
    description = crm_request(crm, report["crm_service_request_id"])["description"]
    assert f"{first} (api:partner)" in description and f"{second} (api:partner)" in description
    merged_report = http.get(f"/api/v1/reports/{second}", headers=admin_headers).json()
    assert merged_report["state"] == "merged" and merged_report["duplicate_of"] == report["id"]


def test_the_citizen_of_a_merged_report_is_told_and_then_hears_the_primarys_progress(
    http: httpx.Client,
    gateway: RunningGateway,
    admin_headers: dict[str, str],
    crm: RunningCRMSim,
    partner: PartnerInbox,
) -> None:
    first = post_api(http, complaint("told-1")).json()["accepted"][0]["ticket"]
    second_body = complaint("told-2", "Ada lubang besar di jalan depan pasar, bahaya untuk motor")
    second = post_api(http, second_body).json()["accepted"][0]["ticket"]
    wait_for_reports(http, admin_headers, 2, state="pending_review")
    reviewer(gateway)
    with Browser(gateway) as browser:
        signed_in(browser, "lurah")
        page = browser.http.get(f"/admin/reports/{second}")
        assert form_post(browser, page, f"/admin/reports/{second}/merge", into=first).status_code == 303
        primary = browser.http.get(f"/admin/reports/{first}")
        assert form_post(browser, primary, f"/admin/reports/{first}/approve").status_code == 303

    citizen = second_body["sender"]["id"]

    def to_second(needle: str) -> dict[str, Any] | None:
        return next((m for m in partner.received if m["recipient"]["id"] == citizen and needle in m["text"]), None)

    told = wait_until(lambda: to_second("digabung"), timeout=15, what="the merge told to the second citizen")
    assert told["text"].startswith(f"Laporan {second} digabung dengan {first}.")
    assert f"/status/{second}" in told["text"], "the citizen keeps their own ticket and status page"

    [report] = wait_for_reports(http, admin_headers, 1, state="forwarded")
    moved = httpx.post(
        f"{crm.base_url}_sim/requests/{report['crm_service_request_id']}/status",
        json={"crm_status": "Proses", "note": "Petugas menuju lokasi"},
    )
    assert moved.status_code == 200, moved.text
    news = wait_until(lambda: to_second("sedang ditangani"), timeout=30, what="the primary's progress, to the second")
    assert news["text"].startswith(f"Laporan {second} sedang ditangani") and "Petugas menuju lokasi" in news["text"]
    first_sender = complaint("told-1")["sender"]["id"]
    assert [m for m in partner.received if m["recipient"]["id"] == first_sender and "sedang ditangani" in m["text"]]

    status = http.get(f"/status/{second}")
    assert status.status_code == 200
    assert f">{first}<" in status.text, "the status page names the report it joined"
    assert "Sedang ditangani instansi" in status.text, "and shows that report's progress"
    assert "Petugas menuju lokasi" in status.text


def test_the_json_api_offers_the_same_actions(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str], partner: PartnerInbox
) -> None:
    a = post_api(http, complaint("api-1")).json()["accepted"][0]["ticket"]
    b = post_api(http, complaint("api-2", "Jalan rusak parah di Jl. Kramat Raya dekat halte")).json()["accepted"][0][
        "ticket"
    ]
    c = post_api(http, complaint("api-3", "Pohon tumbang menutup jalan di Jl. Kramat Raya")).json()["accepted"][0][
        "ticket"
    ]
    wait_for_reports(http, admin_headers, 3, state="pending_review")
    reasons = http.get("/api/v1/reject-reasons", headers=admin_headers).json()
    assert {"code": "spam_abuse", "id": "Spam atau kata-kata kasar", "en": "Spam or abusive"} in reasons
    asked = http.post(f"/api/v1/reports/{a}/ask-info", json={"missing": ["no_photo"]}, headers=admin_headers)
    assert asked.status_code == 200 and asked.json()["state"] == "needs_info", asked.text
    again = http.post(f"/api/v1/reports/{a}/ask-info", json={"missing": ["no_photo"]}, headers=admin_headers)
    assert again.status_code == 409
    merged = http.post(f"/api/v1/reports/{b}/merge", json={"into": c}, headers=admin_headers)
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert body["report"]["state"] == "merged" and body["crm"] == "request"
    assert body["primary"]["merged_sources"] == [{"ticket_code": b, "channel_id": "api:partner"}]
    moved = http.post(f"/api/v1/reports/{c}/reassign", json={"category_code": "pohon"}, headers=admin_headers)
    assert moved.status_code == 200 and moved.json()["category_code"] == "pohon", moved.text
    unknown = http.post(f"/api/v1/reports/{c}/reassign", json={"agency_code": "nope"}, headers=admin_headers)
    assert unknown.status_code == 422 and "choose one of" in unknown.json()["detail"]
    paths = http.get("/openapi.json").json()["paths"]
    assert {"/api/v1/reports/{key}/ask-info", "/api/v1/reports/{key}/merge", "/api/v1/reports/{key}/reassign"} <= set(
        paths
    )

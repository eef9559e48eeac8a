"""Status sync: a forwarded report is followed in the CRM until it is closed, each change recorded once."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from adapters import signing
from crm_sim.server import RunningCRMSim
from review_queue.feed import create_consumer
from tests.conftest import base_settings
from tests.support.api_client import complaint, post_api
from tests.support.review import approve, wait_for_reports
from tests.support.servers import RunningGateway, wait_until

WEBHOOK_SECRET = "crm-webhook-secret-0123456789"


@pytest.fixture
def settings(database_url: str, crm: RunningCRMSim) -> dict[str, Any]:
    configured = base_settings(database_url, crm.base_url)
    configured["status_sync"] = {"poll_interval_seconds": 0.1, "webhook_secret": WEBHOOK_SECRET}
    return configured


def _forwarded(http: httpx.Client, headers: dict[str, str], external_id: str) -> dict[str, Any]:
    text = "Lampu penerangan jalan mati di Jl. Cikini Raya, Kel. Cikini, Menteng sejak seminggu"
    ticket = post_api(http, complaint(external_id, text)).json()["accepted"][0]["ticket"]
    wait_for_reports(http, headers, 1)
    assert approve(http, headers, ticket).status_code == 200
    [report] = wait_for_reports(http, headers, 1, state="forwarded")
    return report


def _move(crm: RunningCRMSim, request_id: str, status: str, note: str) -> None:
    answer = httpx.post(f"{crm.base_url}_sim/requests/{request_id}/status", json={"crm_status": status, "note": note})
    assert answer.status_code == 200, answer.text


def _events(http: httpx.Client, headers: dict[str, str], ticket: str) -> list[dict[str, Any]]:
    return [
        e for e in http.get(f"/api/v1/reports/{ticket}/events", headers=headers).json() if e["action"] == "crm_status"
    ]


def test_a_report_is_followed_through_proses_to_selesai_and_each_change_is_recorded_once(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str], crm: RunningCRMSim
) -> None:
    report = _forwarded(http, admin_headers, "sync-1")
    ticket, request_id = report["ticket_code"], report["crm_service_request_id"]

    _move(crm, request_id, "Proses", "Petugas Sudin Bina Marga menuju lokasi")
    wait_for_reports(http, admin_headers, 1, state="in_progress")
    _move(crm, request_id, "Selesai", "Lampu sudah diganti")
    wait_for_reports(http, admin_headers, 1, state="resolved")
    time.sleep(0.5)  # several more polls of an unchanged CRM
    changes = _events(http, admin_headers, ticket)
    assert [e["after"]["crm_status"] for e in changes] == ["Proses", "Selesai"]
    assert [e["after"]["state"] for e in changes] == ["in_progress", "resolved"]
    assert changes[0]["actor"] == "system:crm"

    key, _consumer = create_consumer(gateway.runtime.engine, name="crm-reader")
    feed = http.get("/api/v1/feed", params={"limit": 100}, headers={"Authorization": f"Bearer {key}"}).json()
    mine = [e["report"] for e in feed["items"] if e["report"]["ticket_code"] == ticket]
    assert [(r["state"], r["crm_status"]) for r in mine][-2:] == [("in_progress", "Proses"), ("resolved", "Selesai")]

    page = http.get(f"/status/{ticket}").text
    assert "Selesai ditangani" in page
    assert "Status di instansi: Proses" in page and "Petugas Sudin Bina Marga menuju lokasi" in page
    assert "Status di instansi: Selesai" in page and "Lampu sudah diganti" in page


def _signed(body: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    return {
        "X-Kanal-Signature": signing.sign(secret.encode(), body, int(time.time())),
        "Content-Type": "application/json",
    }


def test_the_crm_can_push_a_status_change_once(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str], crm: RunningCRMSim
) -> None:
    report = _forwarded(http, admin_headers, "sync-2")
    ticket, request_id = report["ticket_code"], report["crm_service_request_id"]
    change = {
        "service_request_id": request_id,
        "status": "open",
        "crm_status": "Disposisi",
        "status_notes": "Didisposisikan ke Suku Dinas",
        "updated_datetime": "2030-01-01T08:00:00+07:00",
    }
    body = json.dumps(change).encode()

    forged = http.post("/api/v1/crm/status", content=body, headers=_signed(body, "not-the-secret-0123456789"))
    assert forged.status_code == 401
    first = http.post("/api/v1/crm/status", content=body, headers=_signed(body))
    assert first.status_code == 200 and first.json() == {"received": 1, "changed": 1}
    again = http.post("/api/v1/crm/status", content=body, headers=_signed(body))
    assert again.json()["changed"] == 0, "the same change told twice is recorded once"
    older = json.dumps({**change, "crm_status": "Koordinasi", "updated_datetime": "2029-12-31T08:00:00+07:00"})
    late = http.post("/api/v1/crm/status", content=older.encode(), headers=_signed(older.encode()))
    assert late.json()["changed"] == 0, "an older status does not undo a newer one"
    assert [e["after"]["crm_status"] for e in _events(http, admin_headers, ticket)] == ["Disposisi"]
    assert wait_until(
        lambda: http.get(f"/api/v1/reports/{ticket}", headers=admin_headers).json()["state"] == "in_progress",
        timeout=5,
        what="in progress",
    )
    garbage = http.post("/api/v1/crm/status", content=b"{not json", headers=_signed(b"{not json"))
    assert garbage.status_code == 400 and "JSON" in garbage.json()["detail"]


def test_the_crm_operator_page_moves_a_request_and_the_webhook_tells_kanal_at_once(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str], crm: RunningCRMSim
) -> None:
    report = _forwarded(http, admin_headers, "sync-3")
    ticket, request_id = report["ticket_code"], report["crm_service_request_id"]
    hook = httpx.post(
        f"{crm.base_url}_sim/status-webhook",
        json={"url": f"{gateway.url}/api/v1/crm/status", "secret": WEBHOOK_SECRET},
    )
    assert hook.status_code == 200

    page = httpx.get(f"{crm.base_url}_sim/operator")
    assert page.status_code == 200 and request_id in page.text and "<script" not in page.text
    moved = httpx.post(
        f"{crm.base_url}_sim/operator/{request_id}",
        data={"crm_status": "Koordinasi", "note": "Dikoordinasikan dengan Sudin"},
        follow_redirects=True,
    )
    assert moved.status_code == 200 and "webhook answered 200" in moved.text
    changes = _events(http, admin_headers, ticket)
    assert [e["after"]["crm_status"] for e in changes] == ["Koordinasi"], "one change, however many ways it arrived"

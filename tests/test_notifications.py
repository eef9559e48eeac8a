"""Acceptance 1 of issue 7: approved, forwarded, moved to Proses then Selesai in the CRM; the citizen hears
exactly two messages, on the channel they used, and the status page shows the history."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from adapters import signing
from crm_sim.server import RunningCRMSim
from tests.conftest import TEST_API_SECRET, base_settings
from tests.support.api_client import complaint, post_api
from tests.support.review import approve, wait_for_reports
from tests.support.servers import RunningGateway, wait_until


class PartnerInbox:
    """The partner system's reply endpoint on loopback: checks Kanal's signature, keeps what it gets."""

    def __init__(self, *, fail_first: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        self._fail_first = fail_first
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    signing.verify(
                        self.headers.get("X-Kanal-Signature"), body, [TEST_API_SECRET.encode()], now=datetime.now(UTC)
                    )
                except Exception:
                    inbox.refused += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                if inbox._fail_first > 0:
                    inbox._fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                inbox.received.append(json.loads(body))
                answer = json.dumps({"id": f"msg-{len(inbox.received)}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/kanal/replies"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def partner() -> Iterator[PartnerInbox]:
    inbox = PartnerInbox(fail_first=1)  # the partner is briefly down: the first message is retried
    yield inbox
    inbox.close()


@pytest.fixture
def settings(database_url: str, crm: RunningCRMSim, partner: PartnerInbox) -> dict[str, Any]:
    configured = base_settings(database_url, crm.base_url)
    configured["channels"]["api:partner"]["settings"]["reply_url"] = partner.url
    configured["status_sync"] = {"poll_interval_seconds": 0.1}
    configured["notifications"] = {
        "poll_interval_seconds": 0.1,
        "backoff_base_seconds": 0.1,
        "backoff_cap_seconds": 0.2,
        "templates": {
            "id": {
                "in_progress": "Laporan {ticket} sedang ditangani {agency}. {note}",
                "resolved": "Laporan {ticket} selesai. {note} {status_url}",
            }
        },
    }
    return configured


def _move(crm: RunningCRMSim, request_id: str, status: str, note: str) -> None:
    answer = httpx.post(f"{crm.base_url}_sim/requests/{request_id}/status", json={"crm_status": status, "note": note})
    assert answer.status_code == 200, answer.text


def test_the_citizen_hears_each_crm_step_exactly_once_on_their_channel(
    http: httpx.Client,
    gateway: RunningGateway,
    admin_headers: dict[str, str],
    crm: RunningCRMSim,
    partner: PartnerInbox,
) -> None:
    text = "Lampu penerangan jalan mati di Jl. Cikini Raya, Kel. Cikini, Menteng sejak seminggu"
    ticket = post_api(http, complaint("notify-1", text)).json()["accepted"][0]["ticket"]
    wait_for_reports(http, admin_headers, 1)
    assert approve(http, admin_headers, ticket).status_code == 200
    [report] = wait_for_reports(http, admin_headers, 1, state="forwarded")
    request_id = report["crm_service_request_id"]

    _move(crm, request_id, "Proses", "Petugas menuju lokasi")
    wait_until(lambda: len(partner.received) == 1, timeout=15, what="the first message to the citizen")
    _move(crm, request_id, "Selesai", "Lampu sudah diganti")
    wait_until(lambda: len(partner.received) == 2, timeout=15, what="the second message to the citizen")
    time.sleep(1.0)  # more polls of an unchanged CRM, more sender rounds: nothing more may be sent

    assert len(partner.received) == 2 and partner.refused == 0
    first, second = partner.received
    assert first["text"].startswith(f"Laporan {ticket} sedang ditangani") and "Petugas menuju lokasi" in first["text"]
    assert second["text"].startswith(f"Laporan {ticket} selesai.") and f"/status/{ticket}" in second["text"]
    assert first["recipient"]["id"] == "caller-notify-1", "told to the citizen who reported it"

    page = http.get(f"/status/{ticket}").text
    for step in (
        "Laporan diterima",
        "Laporan diverifikasi",
        "Diteruskan ke instansi",
        "Status di instansi: Proses",
        "Status di instansi: Selesai",
    ):
        assert step in page


def test_a_channel_without_a_reply_path_records_that_and_sends_nothing(
    http: httpx.Client,
    gateway: RunningGateway,
    admin_headers: dict[str, str],
    crm: RunningCRMSim,
    partner: PartnerInbox,
) -> None:
    from sqlmodel import Session, select

    from crm_client.notifications import CitizenNotification

    text = "Sampah menumpuk di pinggir Jl. Cikini Raya, Kel. Cikini, sudah seminggu tidak diangkut"
    ticket = post_api(http, complaint("notify-2", text), channel="api:trusted").json()["accepted"][0]["ticket"]
    [report] = wait_for_reports(http, admin_headers, 1, state="forwarded")
    assert report["ticket_code"] == ticket
    _move(crm, report["crm_service_request_id"], "Proses", "Truk dijadwalkan")

    def recorded() -> list[CitizenNotification]:
        with Session(gateway.runtime.engine) as session:
            return list(session.exec(select(CitizenNotification)))

    rows = wait_until(lambda: [r for r in recorded() if r.state != "pending"], timeout=15, what="the outcome")
    assert [r.state for r in rows] == ["undeliverable"] and "reply_url" in (rows[0].last_error or "")
    assert partner.received == []

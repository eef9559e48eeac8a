"""LAPOR! in a real Kanal: an outage of the LAPOR! API loses and doubles nothing, and the complaint on LAPOR!
hears "Diterima" when the report is made and "Diproses" when the CRM moves it."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from crm_sim.server import RunningCRMSim
from gateway import cursors
from gateway.db import read_session
from kanal_testing import inbound_messages, reports
from tests.conftest import base_settings
from tests.peers.lapor import LaporPeer
from tests.support.review import approve, wait_for_reports
from tests.support.servers import RunningGateway, wait_until

CHANNEL = "lapor:dki"
#: Generous: the machines these run on are shared, and a poll round may wait for the database.
TIMEOUT = 60


@pytest.fixture
def lapor_peer() -> Iterator[LaporPeer]:
    with LaporPeer(page_size=2) as peer:
        yield peer


def lapor_channel(peer: LaporPeer) -> dict[str, Any]:
    return {
        "type": "lapor",
        "poll_interval_seconds": 0.2,
        "poll_backoff_cap_seconds": 1,
        "settings": peer.settings(),
    }


@pytest.fixture
def settings(database_url: str, crm: RunningCRMSim, lapor_peer: LaporPeer) -> dict[str, Any]:
    configured = base_settings(database_url, crm.base_url)
    configured["channels"][CHANNEL] = lapor_channel(lapor_peer)
    configured["status_sync"] = {"poll_interval_seconds": 0.1}
    configured["notifications"] = {
        "poll_interval_seconds": 0.1,
        "backoff_base_seconds": 0.1,
        "backoff_cap_seconds": 0.2,
        "templates": {
            "id": {
                "received": "Laporan Anda kami terima dengan nomor {ticket}.",
                "in_progress": "Laporan {ticket} sedang ditangani {agency}. {note}",
            }
        },
    }
    return configured


def poll_state(gateway: RunningGateway) -> cursors.ChannelCursor:
    with read_session(gateway.runtime.engine) as session:
        return cursors.read_state(session.connection(), CHANNEL)


def stored_ids(gateway: RunningGateway) -> Counter[str]:
    return Counter(row.external_id for row in inbound_messages(gateway.runtime.engine) if row.channel_id == CHANNEL)


def test_lapor_down_for_three_polls_then_back_loses_nothing_and_doubles_nothing(
    lapor_peer: LaporPeer, gateway: RunningGateway
) -> None:
    before = [str(lapor_peer.add_fixture("complaint_sms.json")["id"]) for _ in range(3)]
    wait_until(lambda: set(stored_ids(gateway)) == set(before), timeout=TIMEOUT, what="the first three complaints")

    failed_before = sum(1 for r in lapor_peer.list_requests() if r.status == 503)
    lapor_peer.fail_next(3, status=503)
    wait_until(
        lambda: sum(1 for r in lapor_peer.list_requests() if r.status == 503) == failed_before + 3,
        timeout=TIMEOUT,
        what="three failed polls",
    )
    # Published while LAPOR! was failing, one of them in the same second as the last one stored.
    during = [
        str(lapor_peer.add_fixture("complaint_full.json", same_time=True)["id"]),
        str(lapor_peer.add_fixture("complaint_location.json")["id"]),
        str(lapor_peer.add_fixture("complaint_sms.json")["id"]),
    ]
    wait_until(lambda: set(stored_ids(gateway)) == set(before + during), timeout=TIMEOUT, what="all six complaints")
    polls = len(lapor_peer.list_requests())
    wait_until(lambda: len(lapor_peer.list_requests()) >= polls + 3, timeout=TIMEOUT, what="more polls after recovery")

    rows = [row for row in inbound_messages(gateway.runtime.engine) if row.channel_id == CHANNEL]
    assert sorted(row.external_id for row in rows) == sorted(before + during), "each complaint stored exactly once"
    assert all(count == 1 for count in stored_ids(gateway).values())
    # Each became a report or joined one (the same reporter's look-alike SMS are follow-ups): none is left over.
    engine = gateway.runtime.engine
    wait_until(
        lambda: all(row.state != "new" for row in inbound_messages(engine)), timeout=TIMEOUT, what="all normalized"
    )
    assert reports(engine), "the complaints became reports"
    state = poll_state(gateway)
    assert state.consecutive_failures == 0 and state.last_error is None
    health = httpx.get(f"{gateway.url}/healthz").json()["pull_channels"][CHANNEL]
    assert health["status"] == "ok"
    assert lapor_peer.token not in httpx.get(f"{gateway.url}/healthz").text


def test_the_complaint_on_lapor_hears_received_then_in_progress(
    lapor_peer: LaporPeer,
    gateway: RunningGateway,
    http: httpx.Client,
    admin_headers: dict[str, str],
    crm: RunningCRMSim,
) -> None:
    complaint = lapor_peer.add_fixture("complaint_full.json")
    complaint_id = str(complaint["id"])
    [report] = wait_for_reports(http, admin_headers, 1, channel_id=CHANNEL)
    ticket = report["ticket_code"]
    wait_until(lambda: len(lapor_peer.status_pushes) >= 1, timeout=TIMEOUT, what="the acknowledgement on LAPOR!")
    received = lapor_peer.status_pushes[0]
    assert (received.complaint_id, received.body["status"], received.body["ticket"]) == (
        complaint_id,
        "Diterima",
        ticket,
    )
    assert received.body["message"] == f"Laporan Anda kami terima dengan nomor {ticket}."

    assert approve(http, admin_headers, ticket).status_code == 200
    [forwarded] = wait_for_reports(http, admin_headers, 1, state="forwarded")
    answer = httpx.post(
        f"{crm.base_url}_sim/requests/{forwarded['crm_service_request_id']}/status",
        json={"crm_status": "Proses", "note": "Petugas dijadwalkan menambal jalan"},
    )
    assert answer.status_code == 200, answer.text
    wait_until(lambda: len(lapor_peer.status_pushes) >= 2, timeout=TIMEOUT, what="the status change on LAPOR!")
    time.sleep(0.5)  # more sender rounds: nothing more may be pushed
    assert len(lapor_peer.status_pushes) == 2
    change = lapor_peer.status_pushes[1]
    assert (change.complaint_id, change.body["status"]) == (complaint_id, "Diproses")
    assert change.body["note"] == "Petugas dijadwalkan menambal jalan"
    assert change.body["message"].startswith(f"Laporan {ticket} sedang ditangani")

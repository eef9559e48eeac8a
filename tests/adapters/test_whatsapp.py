"""The `whatsapp` channel type through the real route: the adapter kit's contract, Meta's documented payloads,
the URL verification, and a reply to a stored message reaching the (fake) Graph API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.contract import OutboundReply, Sender
from adapters.meta import sign
from kanal_testing import (
    Case,
    ChannelProfile,
    ContractSuite,
    Prepared,
    inbound_messages,
    inbox_count,
    quarantine_rows,
    raw_deliveries,
    reports,
    run_case,
)
from tests.peers.graph_api import GraphApiPeer
from tests.support.servers import RunningGateway, wait_until

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "whatsapp"
APP_SECRET = "wa-test-app-secret-0123456789"
VERIFY_TOKEN = "wa-test-verify-token-0123"
ACCESS_TOKEN = "EAAwaTestAccessToken0123456789"
PHONE_NUMBER_ID = "106540352242922"
CITIZEN = "6281234567890"
CHANNEL_ID = "whatsapp:pengaduan"
TEXT = "Selamat siang, lampu PJU di Jl. Kemang Raya depan SPBU mati sudah seminggu. Jalan jadi gelap dan rawan begal."


def channel_settings(**overrides: Any) -> dict[str, Any]:
    """The channel's `settings:` block; the fold window is short so a burst's report comes quickly."""
    return {
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        "phone_number_id": PHONE_NUMBER_ID,
        "display_phone_number": "628111272206",
        "fold_window_seconds": 1,
        **overrides,
    }


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign(secret.encode(), body)}


class WhatsAppProfile(ChannelProfile):
    channel_type = "whatsapp"
    channel_id = CHANNEL_ID
    channel_settings = channel_settings()
    fixtures = FIXTURES
    valid_fixture = "text.json"
    expected_text = TEXT

    def prepare_raw(self, http: httpx.Client, body: bytes) -> Prepared:
        return Prepared(body, signed(body))

    def tamper(self, prepared: Prepared) -> Prepared:
        return replace(prepared, headers=signed(prepared.content, secret="not-the-app-secret-000"))

    def strip(self, prepared: Prepared) -> Prepared:
        return replace(prepared, headers={"Content-Type": "application/json"})


PROFILE = WhatsAppProfile()


class TestWhatsAppContract(ContractSuite):
    profile = PROFILE

    @pytest.fixture
    def kanal_database_url(self, database_url: str) -> str:
        return database_url


# ------------------------------------------------------------------------------- through the real route


@pytest.fixture
def graph() -> Iterator[GraphApiPeer]:
    with GraphApiPeer(access_token=ACCESS_TOKEN, phone_number_id=PHONE_NUMBER_ID) as peer:
        yield peer


@pytest.fixture
def settings(settings: dict[str, Any], graph: GraphApiPeer) -> dict[str, Any]:
    """The suite's gateway with this channel added, replying through the fake Graph API."""
    block = channel_settings(access_token=ACCESS_TOKEN, graph_base_url=graph.base_url)
    settings["channels"][CHANNEL_ID] = {"type": "whatsapp", "settings": block}
    return settings


CASES = [
    Case("text complaint", "text.json", 200, text=TEXT, sender_name="Siti Rahmawati"),
    Case(
        "photo with a caption",
        "image.json",
        200,
        text="Sampah menumpuk di pinggir Kali Ciliwung, Kampung Melayu",
        media_count=1,
    ),
    Case("location pin", "location.json", 200, text="", address="Halte Kampung Melayu", media_count=0),
    Case("reply button tapped", "interactive_button_reply.json", 200, text="Jalan rusak"),
    Case("list row chosen", "interactive_list_reply.json", 200, text="Banjir / genangan"),
    Case("template quick reply", "button.json", 200, text="Masih belum diperbaiki"),
    Case("document kept as media", "document.json", 200, text="[Dokumen terlampir: surat_pengaduan_rt05.pdf]"),
    Case("voice note kept as media", "voice.json", 200, media_count=1),
    Case("a Messenger delivery on the WhatsApp URL", "page_object.json", 422, error="whatsapp_business_account"),
    Case("change without metadata", "text_without_metadata.json", 422, error="metadata"),
    Case("latitude and longitude swapped", "location_out_of_range.json", 422, error="lat"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_whatsapp_case(case: Case, http: httpx.Client, gateway: RunningGateway) -> None:
    run_case(PROFILE, case, http, gateway)


def test_photo_is_stored_as_a_media_id_to_resolve_later(http: httpx.Client, gateway: RunningGateway) -> None:
    assert PROFILE.send(http, PROFILE.prepare(http, "image.json")).status_code == 200
    [row] = inbound_messages(gateway.runtime.engine)
    assert row.message["media"] == [
        {"url": "whatsapp:1013859600285441", "platform_id": "1013859600285441", "content_type": "image/jpeg"}
    ]


@pytest.mark.parametrize("fixture", ["status_sent.json", "status_read.json", "status_failed.json"])
def test_status_callbacks_are_answered_200_and_nothing_is_stored(
    fixture: str, http: httpx.Client, gateway: RunningGateway
) -> None:
    response = PROFILE.send(http, PROFILE.prepare(http, fixture))
    assert response.status_code == 200, response.text
    assert "status update" in response.json()["ignored"]
    engine = gateway.runtime.engine
    assert inbox_count(engine) == 0 and quarantine_rows(engine) == [] and raw_deliveries(engine) == []


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("other_number.json", "not ours"),
        ("account_update.json", "account_update"),
        ("unsupported.json", "131051"),
        ("reaction.json", "reaction"),
    ],
)
def test_events_without_a_complaint_are_ignored(
    fixture: str, reason: str, http: httpx.Client, gateway: RunningGateway
) -> None:
    response = PROFILE.send(http, PROFILE.prepare(http, fixture))
    assert response.status_code == 200 and reason in response.json()["ignored"], response.text
    assert inbox_count(gateway.runtime.engine) == 0


def test_redelivery_is_stored_once(http: httpx.Client, gateway: RunningGateway) -> None:
    prepared = PROFILE.prepare(http, "text.json")
    first, second = PROFILE.send(http, prepared), PROFILE.send(http, prepared)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["accepted"][0]["duplicate"] is True
    [row] = inbound_messages(gateway.runtime.engine)
    assert row.delivery_count == 2


def test_bad_signature_is_rejected_and_quarantined(http: httpx.Client, gateway: RunningGateway) -> None:
    response = PROFILE.send(http, PROFILE.tamper(PROFILE.prepare(http, "text.json")))
    assert response.status_code == 401 and "app_secret" in response.json()["detail"]
    engine = gateway.runtime.engine
    assert inbox_count(engine) == 0
    [kept] = quarantine_rows(engine)
    assert kept.channel_id == CHANNEL_ID and kept.status_code == 401


def test_a_burst_in_one_delivery_is_stored_as_parts_of_one_conversation(
    http: httpx.Client, gateway: RunningGateway
) -> None:
    assert PROFILE.send(http, PROFILE.prepare(http, "burst.json")).status_code == 200
    rows = inbound_messages(gateway.runtime.engine)
    assert len(rows) == 3
    assert {row.assembly_key for row in rows} == {f"whatsapp:{CITIZEN}"}
    kinds = sorted((bool(r.message["text"]), bool(r.message.get("location")), bool(r.message["media"])) for r in rows)
    assert kinds == [(False, False, True), (False, True, False), (True, False, False)]


def test_text_then_location_then_photo_become_one_report(http: httpx.Client, gateway: RunningGateway) -> None:
    for fixture in ("text.json", "location.json", "image_without_caption.json"):
        assert PROFILE.send(http, PROFILE.prepare(http, fixture)).status_code == 200
    [report] = wait_until(lambda: reports(gateway.runtime.engine), timeout=20, what="the folded report")
    assert report.text_original.startswith("Selamat siang, lampu PJU")
    assert len(reports(gateway.runtime.engine)) == 1


# --------------------------------------------------------------------------------- URL verification


def test_meta_url_verification_echoes_the_challenge(http: httpx.Client, gateway: RunningGateway) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    response = http.get(PROFILE.url(), params=query)
    assert response.status_code == 200
    assert response.text == "1158201444" and response.headers["content-type"].startswith("text/plain")


def test_url_verification_with_the_wrong_token_is_refused(http: httpx.Client, gateway: RunningGateway) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": "somebody-elses-token", "hub.challenge": "1158201444"}
    response = http.get(PROFILE.url(), params=query)
    assert response.status_code == 403 and "1158201444" not in response.text


# ----------------------------------------------------------------------------------- reply round trip


def _reply_to_stored(gateway: RunningGateway, text: str, last_inbound_at: datetime) -> str:
    """Answer the stored message as Kanal does: to its sender, quoting it, knowing when they last wrote."""
    [row] = inbound_messages(gateway.runtime.engine)
    reply = OutboundReply(
        recipient=Sender(**row.message["sender"]),
        text=text,
        in_reply_to=row.external_id,
        thread_id=row.message["thread_id"],
        ticket=row.ticket_code,
        last_inbound_at=last_inbound_at,
    )
    return asyncio.run(gateway.runtime.channels[CHANNEL_ID].adapter.send(reply))


def test_reply_inside_the_window_quotes_the_citizens_message(
    http: httpx.Client, gateway: RunningGateway, graph: GraphApiPeer
) -> None:
    assert PROFILE.send(http, PROFILE.prepare(http, "text.json")).status_code == 200
    [row] = inbound_messages(gateway.runtime.engine)
    message_id = _reply_to_stored(gateway, "Laporan Anda kami terima.", row.received_at)
    assert message_id == "wamid.peer0001"
    [sent] = graph.sent
    assert sent == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CITIZEN,
        "type": "text",
        "text": {"body": "Laporan Anda kami terima."},
        "context": {"message_id": row.external_id},
    }


def test_reply_outside_the_window_uses_the_template(settings: dict[str, Any], graph: GraphApiPeer) -> None:
    block = settings["channels"][CHANNEL_ID]["settings"]
    block["reply_template"] = {"name": "status_laporan", "language": "id"}
    with RunningGateway(settings) as gateway, httpx.Client(base_url=gateway.url) as client:
        assert PROFILE.send(client, PROFILE.prepare(client, "text.json")).status_code == 200
        _reply_to_stored(gateway, "Laporan JKT-7 selesai\ndikerjakan.", datetime.now(UTC) - timedelta(days=3))
    [sent] = graph.sent
    assert sent["to"] == CITIZEN and sent["type"] == "template" and "context" not in sent
    assert sent["template"] == {
        "name": "status_laporan",
        "language": {"code": "id"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Laporan JKT-7 selesai dikerjakan."}]}],
    }

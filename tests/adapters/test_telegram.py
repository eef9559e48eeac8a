"""The `telegram` channel type in webhook mode, through Kanal's real route: the adapter kit's contract,
labelled Telegram updates, and a citizen's whole conversation with the bot (one report, the bot's
questions and the /status answer as the fake Bot API received them)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.telegram import TelegramAdapter
from adapters.telegram_conversation import LOCATION_MARK, PHOTO_MARK
from kanal_testing import (
    Case,
    ChannelProfile,
    ContractSuite,
    KanalUnderTest,
    Prepared,
    build_adapter,
    inbound_messages,
    inbox_count,
    kanal_settings,
    quarantine_rows,
    reports,
    run_case,
    wait_until,
)
from tests.peers.telegram_bot_api import Citizen, TelegramBotApi

TOKEN = "123456789:TEST-bot-token_0123456789abcdef"
SECRET = "kanal-webhook-secret_0123456789"
CHANNEL = "telegram:jakarta"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "telegram"
CAPTION = "Jalan berlubang besar di Jl. Kramat Raya depan halte Senen, motor sering jatuh."
PROBLEM = "Lampu PJU mati sudah seminggu di Jl. Salemba Raya, jalan gelap sekali kalau malam."


def webhook_settings(peer: TelegramBotApi, **extra: Any) -> dict[str, Any]:
    return {"bot_token": TOKEN, "webhook_secret_token": SECRET, "api_base_url": peer.url, **extra}


@contextmanager
def kanal_with_telegram(database_url: str, settings: dict[str, Any], **channel: Any) -> Iterator[KanalUnderTest]:
    """A real Kanal with one Telegram channel, `CHANNEL`, configured with `settings`."""
    config = {"type": "telegram", "settings": settings, **channel}
    with KanalUnderTest(kanal_settings(database_url, {CHANNEL: config})) as running:
        yield running


def register_webhook(gateway: KanalUnderTest, settings: dict[str, Any]) -> str:
    """What an operator does once: setWebhook to the channel's route, as docs/channels/telegram.md says."""
    adapter = build_adapter(TelegramAdapter, settings, channel_id=CHANNEL, public_base_url=gateway.url)
    assert isinstance(adapter, TelegramAdapter)

    async def register() -> str:
        try:
            return await adapter.register_webhook()
        finally:
            await adapter.aclose()

    return asyncio.run(register())


def ticket_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    [accepted] = response.json()["accepted"]
    return str(accepted["ticket"])


# ------------------------------------------------------------------------------------------ the kit


_PROFILE_PEER: TelegramBotApi | None = None


def profile_peer() -> TelegramBotApi:
    """The Bot API the contract suite's channel talks to, so the bot's answers stay on loopback."""
    global _PROFILE_PEER
    if _PROFILE_PEER is None:
        _PROFILE_PEER = TelegramBotApi(TOKEN).__enter__()
    return _PROFILE_PEER


class TelegramProfile(ChannelProfile):
    channel_type = "telegram"
    channel_id = CHANNEL
    channel_settings = {"bot_token": TOKEN, "mode": "webhook", "webhook_secret_token": SECRET}
    fixtures = FIXTURES
    expected_text = CAPTION

    def channel_config(self) -> dict[str, Any]:
        config = super().channel_config()
        config["settings"]["api_base_url"] = profile_peer().url
        return config

    def prepare_raw(self, http: httpx.Client, body: bytes) -> Prepared:
        return Prepared(body, {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET})

    def tamper(self, prepared: Prepared) -> Prepared:
        wrong = {**prepared.headers, "X-Telegram-Bot-Api-Secret-Token": "not-the-webhook-secret_0000"}
        return replace(prepared, headers=wrong)

    def strip(self, prepared: Prepared) -> Prepared:
        return replace(prepared, headers={"Content-Type": "application/json"})


PROFILE = TelegramProfile()


class TestTelegramContract(ContractSuite):
    profile = PROFILE

    @pytest.fixture
    def kanal_database_url(self, database_url: str) -> str:
        return database_url


# ------------------------------------------------------------------------- labelled updates, real route


@pytest.fixture
def peer() -> Iterator[TelegramBotApi]:
    with TelegramBotApi(TOKEN) as running:
        yield running


@pytest.fixture
def sqlite_kanal(tmp_path: Path, peer: TelegramBotApi) -> Iterator[KanalUnderTest]:
    with kanal_with_telegram(f"sqlite:///{tmp_path / 'kanal.sqlite3'}", webhook_settings(peer)) as running:
        yield running


@pytest.fixture
def kanal_http(sqlite_kanal: KanalUnderTest) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sqlite_kanal.url, timeout=30) as client:
        yield client


CASES = [
    Case(
        "photo with a caption",
        "full.json",
        200,
        text=CAPTION,
        external_id="1111111:1369",
        sender_name="Budi Santoso",
        media_count=1,
    ),
    Case("plain text complaint", "text.json", 200, text=PROBLEM, external_id="1111111:1365", media_count=0),
    Case("shared location", "location.json", 200, text="", external_id="1111111:1367", media_count=0),
    Case("address typed in answer to the location question", "address_reply.json", 200, text="", address="Kramat Raya"),
    Case("venue", "venue.json", 200, address="Monumen Nasional, Gambir"),
    Case("photo without caption", "photo_without_caption.json", 200, text="", media_count=1),
    Case("image sent as a file", "image_as_file.json", 200, media_count=1),
    Case("/selesai ends the complaint", "selesai.json", 200, text="", media_count=0),
    Case("a Bot API response instead of an update", "not_an_update.json", 422, error="update_id"),
    Case("message without its chat", "message_without_chat.json", 422, error="not a Telegram"),
    Case("latitude and longitude swapped", "coordinates_out_of_range.json", 422, error="location.lat"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_telegram_case(case: Case, kanal_http: httpx.Client, sqlite_kanal: KanalUnderTest) -> None:
    run_case(PROFILE, case, kanal_http, sqlite_kanal)


IGNORED = [
    "edited_message.json",
    "bot_message.json",
    "group_message.json",
    "channel_post.json",
    "my_chat_member.json",
    "sticker.json",
    "service_message.json",
    "start.json",
    "status.json",
]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB reading a service message
def test_updates_with_nothing_to_store_are_answered_200_and_not_stored(
    kanal_http: httpx.Client, sqlite_kanal: KanalUnderTest
) -> None:
    for fixture in IGNORED:
        response = PROFILE.send(kanal_http, PROFILE.prepare(kanal_http, fixture))
        # Telegram resends anything not answered 2xx; an ignored update must be answered 200.
        assert response.status_code == 200, f"{fixture}: {response.status_code} {response.text}"
        assert "ignored" in response.json(), f"{fixture}: {response.text}"
    engine = sqlite_kanal.runtime.engine
    assert inbox_count(engine) == 0
    assert quarantine_rows(engine) == []


def test_a_shared_location_is_stored_with_its_coordinates(
    kanal_http: httpx.Client, sqlite_kanal: KanalUnderTest
) -> None:
    assert PROFILE.send(kanal_http, PROFILE.prepare(kanal_http, "location.json")).status_code == 200
    [row] = inbound_messages(sqlite_kanal.runtime.engine)
    assert row.message["location"] == {"lat": -6.186486, "lng": 106.834091}
    assert row.message["assembly"] == {"key": "telegram:1111111", "complete": False, "window_seconds": 1800.0}


def test_a_photo_is_stored_as_a_reference_to_its_largest_size(
    kanal_http: httpx.Client, sqlite_kanal: KanalUnderTest
) -> None:
    assert PROFILE.send(kanal_http, PROFILE.prepare(kanal_http, "full.json")).status_code == 200
    [row] = inbound_messages(sqlite_kanal.runtime.engine)
    assert row.message["media"] == [
        {
            "url": "telegram:AgACAgUAAxkBAAIBZ2VxS-large",
            "platform_id": "AgACAgUAAxkBAAIBZ2VxS-large",
            "content_type": "image/jpeg",
            "size": 104321,
        }
    ]
    assert row.message["sent_at"] == "2015-09-07T17:05:32Z"
    assert row.message["thread_id"] == "telegram:1111111"


def test_the_secret_token_header_is_not_stored_with_the_delivery(
    kanal_http: httpx.Client, sqlite_kanal: KanalUnderTest
) -> None:
    from kanal_testing import raw_deliveries

    assert PROFILE.send(kanal_http, PROFILE.prepare(kanal_http, "text.json")).status_code == 200
    [raw] = raw_deliveries(sqlite_kanal.runtime.engine)
    assert "x-telegram-bot-api-secret-token" not in raw.headers
    assert SECRET not in json.dumps(raw.headers)


# --------------------------------------------------------------------- a citizen's whole conversation


def test_registering_the_webhook_gives_telegram_the_route_and_the_secret_token(
    sqlite_kanal: KanalUnderTest, peer: TelegramBotApi
) -> None:
    url = register_webhook(sqlite_kanal, webhook_settings(peer))
    assert url == f"{sqlite_kanal.url}/channels/{CHANNEL}/inbound"
    assert peer.webhook is not None
    assert peer.webhook["url"] == url and peer.webhook["secret_token"] == SECRET
    assert peer.webhook["allowed_updates"] == ["message"]


def test_a_delivery_with_the_wrong_secret_token_is_rejected_and_quarantined(
    sqlite_kanal: KanalUnderTest, peer: TelegramBotApi
) -> None:
    register_webhook(sqlite_kanal, webhook_settings(peer))
    citizen = Citizen(peer)
    response = peer.deliver(citizen.says(PROBLEM), secret_token="someone-elses-secret-token")
    assert response.status_code == 401
    assert "X-Telegram-Bot-Api-Secret-Token" in response.json()["detail"]
    engine = sqlite_kanal.runtime.engine
    assert inbox_count(engine) == 0
    assert len(quarantine_rows(engine)) == 1


def test_a_full_conversation_becomes_one_report(database_url: str, peer: TelegramBotApi) -> None:
    with kanal_with_telegram(database_url, webhook_settings(peer)) as kanal:
        register_webhook(kanal, webhook_settings(peer))
        citizen = Citizen(peer)
        peer.add_file("AgACPHOTO-kramat", b"\xff\xd8\xff\xe0 jpeg bytes")
        ticket = ticket_of(peer.deliver(citizen.says(PROBLEM)))
        location_question = bot_question(peer, citizen, f"nomor tiket {ticket}.")
        assert peer.deliver(citizen.shares_location(-6.19578, 106.84925, reply_to=location_question)).status_code == 200
        photo_question = bot_question(peer, citizen, f"Lokasi untuk tiket {ticket} kami terima.")
        assert PHOTO_MARK in photo_question["text"]
        assert peer.deliver(citizen.sends_photo("AgACPHOTO-kramat", reply_to=photo_question)).status_code == 200

        engine = kanal.runtime.engine
        [report] = wait_until(lambda: reports(engine), timeout=20, what="the conversation's report")
        assert report.ticket_code == ticket, "the report keeps the ticket announced after the first message"
        assert report.text_original == PROBLEM
        assert report.location is not None and report.location["lat"] == -6.19578
        assert len(report.media) == 1
        # Kanal's media worker fetches the photo through the adapter: getFile, then the file itself.
        wait_until(lambda: peer.downloads, timeout=20, what="the photo downloaded from the Bot API")
        assert peer.calls_to("getFile")[0]["file_id"] == "AgACPHOTO-kramat"
        assert len(inbound_messages(engine)) == 3, "each part is stored as it comes"
        assert len(reports(engine)) == 1, "three parts, one report"


def bot_question(peer: TelegramBotApi, citizen: Citizen, words: str) -> dict[str, Any]:
    """The bot's question holding `words`, as the citizen's reply quotes it."""
    return wait_until(lambda: _latest_from_bot(peer, citizen, words), timeout=10, what=f"the bot saying {words!r}")


def _latest_from_bot(peer: TelegramBotApi, citizen: Citizen, words: str) -> dict[str, Any]:
    """The bot's latest message holding `words`, as a reply quotes it; empty while there is none."""
    sent = [m for m in peer.sent_messages(citizen.chat_id) if words in m["text"]]
    return {k: v for k, v in sent[-1].items() if not k.startswith("_sent_")} if sent else {}


def test_the_bot_asks_for_the_place_then_a_photo_and_thanks_with_the_ticket(
    sqlite_kanal: KanalUnderTest, peer: TelegramBotApi
) -> None:
    register_webhook(sqlite_kanal, webhook_settings(peer))
    citizen = Citizen(peer)
    ticket = ticket_of(peer.deliver(citizen.says(PROBLEM)))
    first = wait_until(lambda: peer.sent_messages(citizen.chat_id), timeout=10, what="the location question")
    assert f"nomor tiket {ticket}" in first[0]["text"] and LOCATION_MARK in first[0]["text"]
    assert first[0]["_sent_reply_markup"]["force_reply"] is True, "the typed address must come as a reply"

    address = citizen.says("Jl. Salemba Raya No. 12, RT 05/RW 03, Kel. Kenari", reply_to=citizen.last_question())
    assert peer.deliver(address).status_code == 200
    second = wait_until(lambda: peer.sent_messages(citizen.chat_id)[1:], timeout=10, what="the photo question")
    assert f"Lokasi untuk tiket {ticket} kami terima" in second[0]["text"] and "/selesai" in second[0]["text"]

    assert peer.deliver(citizen.says("/selesai", reply_to=citizen.last_question())).status_code == 200
    third = wait_until(lambda: peer.sent_messages(citizen.chat_id)[2:], timeout=10, what="the thanks")
    assert third[0]["text"].startswith("Terima kasih!") and f"/status {ticket}" in third[0]["text"]
    stored = inbound_messages(sqlite_kanal.runtime.engine)
    assert stored[1].message["location"] == {"address": address["message"]["text"]}


def test_a_redelivered_update_is_stored_once_and_asked_about_once(
    sqlite_kanal: KanalUnderTest, peer: TelegramBotApi
) -> None:
    register_webhook(sqlite_kanal, webhook_settings(peer))
    update = Citizen(peer).says(PROBLEM)
    first, again = peer.deliver(update), peer.deliver(update)
    assert ticket_of(first) == ticket_of(again)
    wait_until(lambda: peer.sent_messages(), timeout=10, what="the location question")
    [row] = inbound_messages(sqlite_kanal.runtime.engine)
    assert row.delivery_count == 2
    assert len(peer.sent_messages()) == 1, "a redelivery must not ask the question again"


def test_status_command_is_answered_from_kanal(database_url: str, peer: TelegramBotApi) -> None:
    with kanal_with_telegram(database_url, webhook_settings(peer)) as kanal:
        register_webhook(kanal, webhook_settings(peer))
        citizen = Citizen(peer)
        peer.add_file("AgACPHOTO-salemba", b"\xff\xd8\xff\xe0 jpeg")
        ticket = ticket_of(peer.deliver(citizen.sends_photo("AgACPHOTO-salemba", caption=PROBLEM)))
        wait_until(lambda: reports(kanal.runtime.engine), timeout=20, what="the report")
        before = len(peer.sent_messages(citizen.chat_id))

        assert peer.deliver(citizen.says(f"/status {ticket.lower()}")).status_code == 200
        answer = wait_until(lambda: peer.sent_messages(citizen.chat_id)[before:], timeout=10, what="the answer")
        assert answer[0]["text"].startswith(f"Tiket {ticket}: menunggu pemeriksaan petugas.")
        assert "Rincian: http" in answer[0]["text"]

        assert peer.deliver(citizen.says("/status ZZZZ9-ZZZZ9")).status_code == 200
        unknown = wait_until(lambda: peer.sent_messages(citizen.chat_id)[before + 1 :], timeout=10, what="not found")
        assert "tidak kami temukan" in unknown[0]["text"]
        assert inbox_count(kanal.runtime.engine) == 1, "commands are answered, never stored"

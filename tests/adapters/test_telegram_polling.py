"""The `telegram` channel type in polling mode (getUpdates), for deployments without a public URL: offsets,
restarts, failures, the adapter kit's pull contract, and a whole conversation polled by a real Kanal.

Telegram pulls or not per instance (`mode: polling`); these tests build the adapter with
`kanal_testing.build_adapter` and call `fetch` on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.contract import FetchResult, StoredOutcome
from adapters.errors import ChannelUnavailable
from adapters.telegram import TelegramAdapter
from adapters.telegram_conversation import LOCATION_MARK, PHOTO_MARK
from kanal_testing import (
    KanalUnderTest,
    PullChannelProfile,
    PullContractSuite,
    build_adapter,
    inbound_messages,
    inbox_count,
    kanal_settings,
    quarantine_rows,
    reports,
    wait_until,
)
from tests.peers.telegram_bot_api import Citizen, TelegramBotApi

TOKEN = "123456789:TEST-bot-token_0123456789abcdef"
CHANNEL = "telegram:polling"
PROBLEM = "Got mampet di Jl. Kemuning Raya, air meluap ke jalan setiap hujan."


@pytest.fixture
def peer() -> Iterator[TelegramBotApi]:
    with TelegramBotApi(TOKEN) as running:
        yield running


def polling_settings(peer: TelegramBotApi, **extra: Any) -> dict[str, Any]:
    return {"bot_token": TOKEN, "mode": "polling", "api_base_url": peer.url, **extra}


def poller(peer: TelegramBotApi, **extra: Any) -> TelegramAdapter:
    """A fresh adapter instance: what Kanal has after a restart (nothing kept but the stored cursor)."""
    built = build_adapter(TelegramAdapter, polling_settings(peer, **extra), channel_id=CHANNEL)
    assert isinstance(built, TelegramAdapter) and built.pulls
    return built


def fetch(bot: TelegramAdapter, cursor: str | None) -> FetchResult:
    async def once() -> FetchResult:
        try:
            return await bot.fetch(cursor)
        finally:
            await bot.aclose()

    return asyncio.run(once())


def offsets_asked(peer: TelegramBotApi) -> list[Any]:
    return [call.get("offset") for call in peer.calls_to("getUpdates")]


# ----------------------------------------------------------------------------------------- offsets


def test_updates_are_fetched_in_order_and_confirmed_by_the_next_offset(peer: TelegramBotApi) -> None:
    citizen = Citizen(peer)
    first = peer.queue(citizen.says(PROBLEM))
    peer.queue(citizen.shares_location(-6.2, 106.85))
    bot = poller(peer)

    result = fetch(bot, None)
    assert [m.external_id for m in result.messages] == ["1111111:1365", "1111111:1366"]
    assert result.cursor == str(first["update_id"] + 2)
    assert peer.calls_to("getUpdates")[0]["allowed_updates"] == ["message"]

    again = fetch(bot, result.cursor)
    assert again.messages == [] and again.cursor == result.cursor
    assert offsets_asked(peer) == [None, result.cursor]
    assert peer.pending_update_ids() == [], "Telegram forgets updates once a higher offset is asked"


def test_a_restart_resumes_from_the_cursor_without_loss_or_doubles(peer: TelegramBotApi) -> None:
    citizen = Citizen(peer)
    peer.queue(citizen.says(PROBLEM))
    cursor = fetch(poller(peer), None).cursor
    peer.queue(citizen.shares_location(-6.2, 106.85))  # written while Kanal was down
    peer.queue(citizen.says("/selesai"))

    after_restart = fetch(poller(peer), cursor)
    assert [m.external_id for m in after_restart.messages] == ["1111111:1366", "1111111:1367"]


def test_a_poll_whose_messages_were_not_stored_is_fetched_again_alike(peer: TelegramBotApi) -> None:
    peer.queue(Citizen(peer).says(PROBLEM))
    lost = fetch(poller(peer), None)  # fetched, then Kanal stopped before storing: the cursor stays None
    again = fetch(poller(peer), None)
    assert [m.external_id for m in again.messages] == [m.external_id for m in lost.messages] == ["1111111:1365"]
    assert again.messages[0].text == PROBLEM, "the same id for the same update: the inbox recognises it"


def test_updates_with_nothing_to_store_are_passed_over(peer: TelegramBotApi) -> None:
    citizen = Citizen(peer)
    edit = peer.queue({"edited_message": citizen.says("Got mampet (ralat)")["message"]})
    result = fetch(poller(peer), None)
    assert result.messages == [] and result.rejected == []
    assert result.cursor == str(edit["update_id"] + 1)


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBUserWarning")  # the raw getUpdates fallback
def test_an_update_that_cannot_be_read_is_set_aside_and_the_rest_stored(peer: TelegramBotApi) -> None:
    citizen = Citizen(peer)
    broken = peer.queue({"message": "a message that is not an object"})
    swapped = peer.queue(citizen.shares_location(106.85, -6.2))
    peer.queue(citizen.says(PROBLEM))
    result = fetch(poller(peer), None)
    assert [m.text for m in result.messages] == [PROBLEM]
    assert [r.external_id for r in result.rejected] == [
        f"update:{broken['update_id']}",
        f"update:{swapped['update_id']}",
    ]
    assert b"not an object" in result.rejected[0].body and "location.lat" in result.rejected[1].reason
    assert result.cursor == str(swapped["update_id"] + 2), "the cursor moves past what cannot be read"


def test_long_polling_waits_for_the_next_update(peer: TelegramBotApi) -> None:
    later = threading.Timer(0.5, lambda: peer.queue(Citizen(peer).says(PROBLEM)))
    later.start()
    result = fetch(poller(peer, poll_timeout_seconds=3), None)
    later.join()
    assert [m.text for m in result.messages] == [PROBLEM]
    assert peer.calls_to("getUpdates")[-1]["timeout"] in (3, "3")


# ----------------------------------------------------------------------------------------- failures


def fetch_failure(bot: TelegramAdapter) -> ChannelUnavailable:
    with pytest.raises(ChannelUnavailable) as failed:
        fetch(bot, None)
    assert TOKEN.split(":")[1] not in str(failed.value)
    return failed.value


def test_a_webhook_still_set_stops_polling_with_what_to_do(peer: TelegramBotApi) -> None:
    peer.webhook = {"url": "https://kanal.example/channels/telegram:polling/inbound"}
    failed = fetch_failure(poller(peer))
    assert not failed.retryable and "deleteWebhook" in str(failed)


def test_an_outage_is_retried(peer: TelegramBotApi) -> None:
    peer.fail_next(502, method="getUpdates")
    assert fetch_failure(poller(peer)).retryable


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB's own RetryAfter()
def test_flood_control_is_honoured(peer: TelegramBotApi) -> None:
    peer.fail_next(429, method="getUpdates", retry_after=30)
    assert fetch_failure(poller(peer)).retry_after == 30


def test_a_webhook_instance_does_not_fetch(peer: TelegramBotApi) -> None:
    webhook = build_adapter(
        TelegramAdapter, {"bot_token": TOKEN, "webhook_secret_token": "s" * 20, "api_base_url": peer.url}
    )
    assert isinstance(webhook, TelegramAdapter)
    assert not fetch_failure(webhook).retryable
    assert peer.calls == []


# ---------------------------------------------------------------------------- the bot, when polling


def test_commands_are_answered_once_even_when_fetched_twice(peer: TelegramBotApi) -> None:
    citizen = Citizen(peer)
    peer.queue(citizen.says("/start"))
    bot = poller(peer)
    fetch(bot, None)
    fetch(bot, None)  # the first poll was not stored: same updates again
    [greeting] = peer.sent_messages(citizen.chat_id)
    assert greeting["text"].startswith("Halo, Siti!")


def test_pulled_parts_are_answered_after_kanal_stored_them(peer: TelegramBotApi) -> None:
    citizen = Citizen(peer)
    peer.queue(citizen.says(PROBLEM))
    bot = poller(peer)

    async def poll_and_store() -> None:
        try:
            result = await bot.fetch(None)
            assert peer.sent_messages() == [], "nothing is said before the part is stored"
            outcomes = [StoredOutcome(external_id=m.external_id, ticket_code="H2JX4-7PQ3A", duplicate=False)
                        for m in result.messages]  # fmt: skip
            await bot.after_delivery(None, result.messages, outcomes)
        finally:
            await bot.aclose()

    asyncio.run(poll_and_store())
    [question] = peer.sent_messages(citizen.chat_id)
    assert "nomor tiket H2JX4-7PQ3A" in question["text"] and LOCATION_MARK in question["text"]


# ------------------------------------------------------------------------------------ in a real Kanal


@contextlib.contextmanager
def polling_kanal(database_url: str, peer: TelegramBotApi) -> Iterator[KanalUnderTest]:
    channel = {
        "type": "telegram",
        "poll_interval_seconds": 0.2,
        "poll_backoff_cap_seconds": 1,
        "settings": polling_settings(peer),
    }
    with KanalUnderTest(kanal_settings(database_url, {CHANNEL: channel})) as running:
        yield running


def test_a_conversation_polled_by_kanal_becomes_one_report_and_survives_a_restart(
    database_url: str, peer: TelegramBotApi
) -> None:
    citizen = Citizen(peer)
    peer.add_file("AgACPHOTO-kemuning", b"\xff\xd8\xff\xe0 jpeg")
    peer.queue(citizen.says(PROBLEM))
    with polling_kanal(database_url, peer) as kanal:
        asked = wait_until(lambda: peer.sent_messages(citizen.chat_id), timeout=20, what="the location question")
        assert LOCATION_MARK in asked[0]["text"]
        peer.queue(citizen.says("Jl. Kemuning Raya No. 3, Utan Kayu", reply_to=citizen.last_question()))
        wait_until(lambda: peer.sent_messages(citizen.chat_id)[1:], timeout=20, what="the photo question")
    # Kanal is down while the citizen sends the photo.
    peer.queue(citizen.sends_photo("AgACPHOTO-kemuning", reply_to=citizen.last_question()))
    with polling_kanal(database_url, peer) as kanal:
        engine = kanal.runtime.engine
        [report] = wait_until(lambda: reports(engine), timeout=20, what="the report after the restart")
        thanks = wait_until(lambda: peer.sent_messages(citizen.chat_id)[2:], timeout=20, what="the thanks")
        assert thanks[0]["text"].startswith("Terima kasih!") and report.ticket_code in thanks[0]["text"]
        assert PHOTO_MARK in peer.sent_messages(citizen.chat_id)[1]["text"]
        assert report.text_original == PROBLEM
        assert report.location is not None and "Kemuning" in (report.location.get("address") or "")
        assert [m.external_id for m in inbound_messages(engine)] == ["1111111:1365", "1111111:1367", "1111111:1369"]
        assert all(m.delivery_count == 1 for m in inbound_messages(engine)), "nothing fetched twice was stored twice"
        assert len(reports(engine)) == 1


def test_a_polling_channel_refuses_webhook_deliveries(tmp_path: Any, peer: TelegramBotApi) -> None:
    with polling_kanal(f"sqlite:///{tmp_path / 'kanal.sqlite3'}", peer) as kanal:
        response = httpx.post(
            f"{kanal.url}/channels/{CHANNEL}/inbound",
            content=b'{"update_id": 1, "message": {}}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 405 and "mode: polling" in response.json()["detail"]
        assert inbox_count(kanal.runtime.engine) == 0 and len(quarantine_rows(kanal.runtime.engine)) == 1


# ---------------------------------------------------------------------------------- the pull contract


class TelegramPollingProfile(PullChannelProfile):
    channel_type = "telegram"
    channel_id = CHANNEL
    expected_text = "Trotoar rusak parah di depan Stasiun Manggarai, pejalan kaki terpaksa turun ke jalan."

    def start_peer(self) -> contextlib.AbstractContextManager[Any]:
        return TelegramBotApi(TOKEN)

    def channel_settings(self, peer: Any) -> dict[str, Any]:
        return polling_settings(peer)

    def add_item(self, peer: Any, name: str) -> str:
        # A photo with its caption is a whole complaint: it becomes a report without waiting for more.
        citizen = Citizen(peer, user_id=2222222 if name == "valid" else 3333333)
        caption = self.expected_text if name == "valid" else "Pohon tumbang menutup Jl. Tebet Raya."
        update = peer.queue(citizen.sends_photo(f"AgAC-{name}", caption=caption))
        return f"{citizen.chat_id}:{update['message']['message_id']}"

    def set_failing(self, peer: Any, failing: bool) -> None:
        peer.failing = failing


class TestTelegramPollingContract(PullContractSuite):
    profile = TelegramPollingProfile()

    @pytest.fixture
    def kanal_database_url(self, database_url: str) -> str:
        return database_url

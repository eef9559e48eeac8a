"""The bot's side of the `telegram` channel against a fake Bot API (python-telegram-bot speaking real HTTP):
what it says after each stored part and to each command, replies from Kanal (`send`), photos
(`download_media`) and webhook registration. Assertions are on what the Bot API received."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from adapters.contract import (
    AdapterContext,
    InboundMessage,
    MediaRef,
    OutboundReply,
    RawRequest,
    Sender,
    StoredOutcome,
    TicketStatus,
)
from adapters.errors import ChannelUnavailable, MediaUnavailable
from adapters.telegram import TelegramAdapter, TelegramSettings
from adapters.telegram_conversation import LOCATION_MARK, PHOTO_MARK
from tests.peers.telegram_bot_api import TelegramBotApi

TOKEN = "123456789:TEST-bot-token_0123456789abcdef"
SECRET = "kanal-webhook-secret_0123456789"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "telegram"
CHAT = 1111111
TICKET = "K7F3Q-9Q2MX"  # the ticket the fixtures' bot questions quote
NEW_TICKET = "H2JX4-7PQ3A"

T = TypeVar("T")


class Tickets:
    """Kanal's `lookup_ticket`, with the tickets a test puts in it; remembers what it was asked."""

    def __init__(self) -> None:
        self.known: dict[str, TicketStatus] = {}
        self.asked: list[str] = []
        self.broken = False

    async def __call__(self, code: str) -> TicketStatus | None:
        self.asked.append(code)
        if self.broken:
            raise RuntimeError("database unavailable")
        return self.known.get(code.upper())


@pytest.fixture
def peer() -> Iterator[TelegramBotApi]:
    with TelegramBotApi(TOKEN) as running:
        yield running


@pytest.fixture
def tickets() -> Tickets:
    return Tickets()


def make_bot(peer: TelegramBotApi, tickets: Tickets | None = None, *, token: str = TOKEN) -> TelegramAdapter:
    settings = TelegramSettings.model_validate(
        {"bot_token": token, "webhook_secret_token": SECRET, "api_base_url": peer.url}
    )
    context = AdapterContext(
        channel_id="telegram:jakarta",
        instance_secret=b"k" * 32,
        public_base_url="http://127.0.0.1:8080",
        lookup_ticket=tickets or Tickets(),
    )
    return TelegramAdapter(settings=settings, context=context)


@pytest.fixture
def bot(peer: TelegramBotApi, tickets: Tickets) -> TelegramAdapter:
    return make_bot(peer, tickets)


def run(bot: TelegramAdapter, work: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await work()
        finally:
            await bot.aclose()

    return asyncio.run(main())


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


def delivered(
    bot: TelegramAdapter, update: dict[str, Any], *, ticket: str = NEW_TICKET, duplicate: bool = False
) -> None:
    """What Kanal does with a webhook delivery: parse, store (here: pretend), then `after_delivery`."""
    request = RawRequest(
        method="POST",
        url="http://127.0.0.1/channels/telegram:jakarta/inbound",
        headers={"content-type": "application/json", "x-telegram-bot-api-secret-token": SECRET},
        query={},
        body=json.dumps(update).encode(),
        client_ip="127.0.0.1",
        received_at=datetime.now(UTC),
    )
    try:
        messages: list[InboundMessage] = bot.parse(request)
    except Exception:
        messages = []
    outcomes = [StoredOutcome(external_id=m.external_id, ticket_code=ticket, duplicate=duplicate) for m in messages]
    run(bot, lambda: bot.after_delivery(request, messages, outcomes))


def said(peer: TelegramBotApi) -> list[str]:
    return [m["text"] for m in peer.sent_messages(CHAT)]


# ----------------------------------------------------------------------------- the conversation's turns


def test_after_the_problem_the_bot_gives_the_ticket_and_asks_where_as_a_reply(
    bot: TelegramAdapter, peer: TelegramBotApi
) -> None:
    delivered(bot, fixture("text.json"))
    [question] = peer.sent_messages(CHAT)
    assert question["text"].startswith(f"Laporan Anda kami catat dengan nomor tiket {NEW_TICKET}.")
    assert LOCATION_MARK in question["text"]
    assert question["_sent_reply_markup"] == {"force_reply": True, "input_field_placeholder": "Alamat lokasi masalah"}


@pytest.mark.parametrize("name", ["location.json", "address_reply.json"])
def test_after_the_place_the_bot_asks_for_a_photo_quoting_the_ticket(
    name: str, bot: TelegramAdapter, peer: TelegramBotApi
) -> None:
    delivered(bot, fixture(name))
    [question] = peer.sent_messages(CHAT)
    assert question["text"].startswith(f"Lokasi untuk tiket {TICKET} kami terima.")
    assert PHOTO_MARK in question["text"] and "/selesai" in question["text"]
    assert question["_sent_reply_markup"]["force_reply"] is True


def test_more_words_instead_of_a_photo_are_acknowledged_and_the_photo_asked_again(
    bot: TelegramAdapter, peer: TelegramBotApi
) -> None:
    delivered(bot, fixture("detail_reply.json"))
    [question] = said(peer)
    assert question.startswith(f"Keterangan tambahan untuk tiket {TICKET} kami terima.") and PHOTO_MARK in question


@pytest.mark.parametrize("name", ["full.json", "selesai.json"])
def test_a_photo_or_selesai_gets_thanks_with_the_ticket_to_ask_about(
    name: str, bot: TelegramAdapter, peer: TelegramBotApi
) -> None:
    delivered(bot, fixture(name))
    [thanks] = said(peer)
    assert thanks.startswith(f"Terima kasih! Laporan Anda dengan nomor tiket {TICKET} sudah lengkap")
    assert f"/status {TICKET}" in thanks


def test_thanks_without_a_quoted_question_points_to_the_earlier_ticket(
    bot: TelegramAdapter, peer: TelegramBotApi
) -> None:
    update = fixture("full.json")
    del update["message"]["reply_to_message"]
    delivered(bot, update)
    [thanks] = said(peer)
    assert thanks.startswith("Terima kasih!") and "pesan kami sebelumnya" in thanks
    assert NEW_TICKET not in thanks, "a photo's own ticket is not the report's: the first part's is"


def test_selesai_answering_no_question_does_not_claim_a_complete_report(
    bot: TelegramAdapter, peer: TelegramBotApi
) -> None:
    update = fixture("selesai.json")
    del update["message"]["reply_to_message"]
    delivered(bot, update)
    [answer] = said(peer)
    assert "lengkap" not in answer and "ceritakan masalahnya" in answer


def test_a_photo_of_an_album_asks_for_selesai_instead_of_thanking(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    delivered(bot, fixture("album_photo.json"))
    [answer] = said(peer)
    assert "/selesai" in answer and "Terima kasih" not in answer


def test_a_redelivered_part_is_not_answered_again(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    delivered(bot, fixture("text.json"), duplicate=True)
    assert said(peer) == []


@pytest.mark.parametrize(
    "name",
    ["edited_message.json", "bot_message.json", "group_message.json", "channel_post.json", "my_chat_member.json"],
)
def test_updates_for_nobody_get_no_answer(name: str, bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    delivered(bot, fixture(name))
    assert peer.sent_messages() == []


def test_a_sticker_is_answered_with_what_the_bot_can_take(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    delivered(bot, fixture("sticker.json"))
    [answer] = said(peer)
    assert answer.startswith("Maaf, stiker belum dapat kami terima.")


# ------------------------------------------------------------------------------------------ commands


def command(text: str) -> dict[str, Any]:
    update = fixture("start.json")
    update["message"]["text"] = text
    return update


def test_start_greets_by_name_and_asks_for_the_problem(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    delivered(bot, fixture("start.json"))
    [greeting] = said(peer)
    assert greeting.startswith("Halo, Budi! Ini layanan pengaduan warga DKI Jakarta.")
    assert "Ceritakan masalah" in greeting


def test_status_answers_from_kanal_with_state_agency_time_and_link(
    bot: TelegramAdapter, peer: TelegramBotApi, tickets: Tickets
) -> None:
    tickets.known[TICKET] = TicketStatus(
        ticket=TICKET,
        state="in_progress",
        agency_unit="Suku Dinas Bina Marga Jakarta Pusat",
        updated_at=datetime(2024, 5, 12, 3, 30, tzinfo=UTC),
        status_url=f"https://kanal.jakarta.go.id/status/{TICKET}",
    )
    delivered(bot, command("/status k7f3q-9q2mx"))
    assert tickets.asked == ["k7f3q-9q2mx"], "the code goes to Kanal as typed; Kanal reads it"
    assert said(peer) == [
        f"Tiket {TICKET}: sedang ditindaklanjuti.\n"
        "Instansi: Suku Dinas Bina Marga Jakarta Pusat\n"
        "Diperbarui: 12 Mei 2024, 10.30 WIB\n"
        f"Rincian: https://kanal.jakarta.go.id/status/{TICKET}"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/status ZZZZ9-ZZZZ9", "Tiket ZZZZ9-ZZZZ9 tidak kami temukan."),
        ("/status", "Tulis nomor tiketnya setelah /status"),
        ("/status@kanal_jakarta_bot", "Tulis nomor tiketnya setelah /status"),
        ("/bantuan", "Cara melapor:"),
        ("/help", "Cara melapor:"),
        ("/lapor", "Perintah /lapor tidak kami kenal."),
    ],
)
def test_commands_are_answered_politely(text: str, expected: str, bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    delivered(bot, command(text))
    [answer] = said(peer)
    assert answer.startswith(expected)


def test_status_says_to_try_later_when_kanal_cannot_look(
    bot: TelegramAdapter, peer: TelegramBotApi, tickets: Tickets
) -> None:
    tickets.broken = True
    delivered(bot, command(f"/status {TICKET}"))
    assert said(peer) == ["Maaf, status tiket sedang tidak dapat dicek. Silakan coba lagi beberapa saat lagi."]


def test_a_failing_bot_api_does_not_break_the_delivery_nor_show_the_token(
    bot: TelegramAdapter, peer: TelegramBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    peer.failing = True
    delivered(bot, fixture("text.json"))  # must not raise
    assert "could not answer the citizen" in caplog.text
    assert TOKEN.split(":")[1] not in caplog.text


# ------------------------------------------------------------------------------------------- replies


def reply(**fields: Any) -> OutboundReply:
    base: dict[str, Any] = {
        "recipient": Sender(id=str(CHAT), name="Budi Santoso"),
        "text": f"Laporan {TICKET} sedang ditindaklanjuti oleh Suku Dinas Bina Marga Jakarta Pusat.",
        "thread_id": f"telegram:{CHAT}",
        "in_reply_to": f"{CHAT}:1365",
        "ticket": TICKET,
    }
    return OutboundReply(**{**base, **fields})


def test_a_reply_reaches_the_citizens_chat_quoting_their_message(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    message_id = run(bot, lambda: bot.send(reply()))
    [sent] = peer.sent_messages()
    assert message_id == str(sent["message_id"])
    assert sent["chat"]["id"] == CHAT
    assert sent["text"] == f"Laporan {TICKET} sedang ditindaklanjuti oleh Suku Dinas Bina Marga Jakarta Pusat."
    assert sent["_sent_reply_parameters"] == {"message_id": 1365, "allow_sending_without_reply": True}


def test_a_reply_without_a_thread_goes_to_the_recipient(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    run(bot, lambda: bot.send(reply(thread_id=None, in_reply_to=None)))
    [sent] = peer.sent_messages()
    assert sent["chat"]["id"] == CHAT and "_sent_reply_parameters" not in sent


def test_a_group_reply_goes_to_the_group(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    run(bot, lambda: bot.send(reply(thread_id="telegram:-1001234567890", in_reply_to="-1001234567890:52")))
    [sent] = peer.sent_messages()
    assert sent["chat"]["id"] == -1001234567890 and sent["_sent_reply_parameters"]["message_id"] == 52


def send_failure(bot: TelegramAdapter, **fields: Any) -> ChannelUnavailable:
    with pytest.raises(ChannelUnavailable) as failed:
        run(bot, lambda: bot.send(reply(**fields)))
    assert TOKEN.split(":")[1] not in str(failed.value)
    return failed.value


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB's own RetryAfter()
def test_too_many_requests_is_retried_after_the_wait_telegram_asks(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    peer.fail_next(429, method="sendMessage", retry_after=7)
    failed = send_failure(bot)
    assert failed.retryable and failed.retry_after == 7


def test_a_blocked_bot_is_not_retried(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    peer.blocked_chats.add(CHAT)
    failed = send_failure(bot)
    assert not failed.retryable and "blocked the bot" in str(failed)


def test_a_telegram_outage_is_retried(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    peer.fail_next(502, method="sendMessage")
    assert send_failure(bot).retryable


def test_a_refused_message_is_not_retried_and_says_why(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    peer.fail_next(400, method="sendMessage", description="Bad Request: chat not found")
    failed = send_failure(bot)
    assert not failed.retryable and "chat not found" in str(failed).lower()


def test_a_revoked_token_is_not_retried_and_not_shown(peer: TelegramBotApi) -> None:
    revoked = make_bot(peer, token="123456789:REVOKED-token_0123456789")
    failed = send_failure(revoked)
    assert not failed.retryable and "bot_token" in str(failed)
    assert "REVOKED" not in str(failed)


def test_a_reply_with_no_chat_to_answer_is_not_retried(bot: TelegramAdapter) -> None:
    failed = send_failure(bot, thread_id="whatsapp:628123", recipient=Sender(name="Budi"))
    assert not failed.retryable


# --------------------------------------------------------------------------------------------- media


def photo_ref() -> MediaRef:
    return MediaRef(url="telegram:AgACPHOTO", platform_id="AgACPHOTO", content_type="image/jpeg", size=12)


def test_a_photo_is_downloaded_through_get_file(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    path = peer.add_file("AgACPHOTO", b"\xff\xd8\xff\xe0photo")
    content = run(bot, lambda: bot.download_media(photo_ref(), max_bytes=1024))
    assert (content.content_type, content.data) == ("image/jpeg", b"\xff\xd8\xff\xe0photo")
    assert peer.calls_to("getFile") == [{"file_id": "AgACPHOTO"}] and peer.downloads == [path]


def test_a_file_server_that_does_not_say_the_type_keeps_the_messages(
    bot: TelegramAdapter, peer: TelegramBotApi
) -> None:
    peer.add_file("AgACPHOTO", b"\xff\xd8\xff\xe0photo", content_type="application/octet-stream")
    assert run(bot, lambda: bot.download_media(photo_ref(), max_bytes=1024)).content_type == "image/jpeg"


def test_a_photo_too_large_is_not_downloaded(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    peer.add_file("AgACPHOTO", b"x" * 5000)
    with pytest.raises(MediaUnavailable, match="too large"):
        run(bot, lambda: bot.download_media(photo_ref(), max_bytes=1000))
    assert peer.downloads == []


def test_a_file_telegram_does_not_have_is_unavailable(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    with pytest.raises(MediaUnavailable, match="(?i)invalid file_id"):
        run(bot, lambda: bot.download_media(photo_ref(), max_bytes=1000))


def test_a_download_redirected_to_a_foreign_host_is_refused(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    peer.add_file("AgACPHOTO", b"", redirect_to="https://cdn.example.net/photo.jpg")
    with pytest.raises(MediaUnavailable, match="not an allowed host"):
        run(bot, lambda: bot.download_media(photo_ref(), max_bytes=1000))


def test_a_reference_that_is_no_telegram_file_is_refused(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    with pytest.raises(MediaUnavailable, match="not a Telegram file"):
        run(bot, lambda: bot.download_media(MediaRef(url="https://example.net/x.jpg"), max_bytes=1000))
    assert peer.calls == []


def test_get_file_failing_for_now_is_retried_later(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    peer.add_file("AgACPHOTO", b"photo")
    peer.fail_next(503, method="getFile")
    with pytest.raises(ChannelUnavailable) as failed:
        run(bot, lambda: bot.download_media(photo_ref(), max_bytes=1000))
    assert failed.value.retryable


def test_the_token_in_download_urls_never_reaches_the_logs(
    bot: TelegramAdapter, peer: TelegramBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    peer.add_file("AgACPHOTO", b"\xff\xd8photo")
    run(bot, lambda: bot.download_media(photo_ref(), max_bytes=1024))
    run(bot, lambda: bot.register_webhook())
    assert "getFile" in caplog.text and "/file/bot***/photos/" in caplog.text, "the calls are logged, redacted"
    assert TOKEN.split(":")[1] not in caplog.text
    assert SECRET not in caplog.text


# ------------------------------------------------------------------------------------- webhook set-up


def test_the_webhook_can_be_removed_to_poll_instead(bot: TelegramAdapter, peer: TelegramBotApi) -> None:
    run(bot, lambda: bot.register_webhook(drop_pending_updates=True))
    assert peer.webhook is not None and peer.webhook["drop_pending_updates"] is True
    run(bot, bot.unregister_webhook)
    assert peer.webhook is None


def test_a_polling_instance_registers_no_webhook(peer: TelegramBotApi) -> None:
    polling = TelegramAdapter(
        settings=TelegramSettings.model_validate({"bot_token": TOKEN, "mode": "polling", "api_base_url": peer.url}),
        context=AdapterContext(channel_id="telegram:polling", instance_secret=b"k" * 32, public_base_url="http://x"),
    )
    with pytest.raises(ChannelUnavailable, match="mode: webhook"):
        run(polling, polling.register_webhook)
    assert peer.webhook is None

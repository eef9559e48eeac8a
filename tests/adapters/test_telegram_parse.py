"""The `telegram` adapter without Kanal: its settings, the secret-token check, what each update is stored
as (the conversation's assembly fields above all), and that no input makes `parse` raise anything else
than the contract allows."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from adapters.contract import Assembly, InboundMessage, Location, RawRequest
from adapters.errors import PayloadIgnored, PayloadRejected, SignatureInvalid
from adapters.telegram import TelegramAdapter, TelegramSettings
from kanal_testing import build_adapter

TOKEN = "123456789:TEST-bot-token_0123456789abcdef"
SECRET = "kanal-webhook-secret_0123456789"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "telegram"
WEBHOOK = {"bot_token": TOKEN, "webhook_secret_token": SECRET}


def adapter(**extra: Any) -> TelegramAdapter:
    built = build_adapter(TelegramAdapter, {**WEBHOOK, **extra}, channel_id="telegram:jakarta")
    assert isinstance(built, TelegramAdapter)
    return built


def request(body: bytes, secret: str | None = SECRET) -> RawRequest:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    return RawRequest(
        method="POST",
        url="http://127.0.0.1/channels/telegram:jakarta/inbound",
        headers=headers,
        query={},
        body=body,
        client_ip="127.0.0.1",
        received_at=datetime.now(UTC),
    )


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


def parse(document: dict[str, Any] | bytes, bot: TelegramAdapter | None = None) -> list[InboundMessage]:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    bot = bot or adapter()
    delivery = request(body)
    bot.verify(delivery)
    return bot.parse(delivery)


def parse_one(name: str, bot: TelegramAdapter | None = None) -> InboundMessage:
    [message] = parse(fixture(name), bot)
    return message


# ----------------------------------------------------------------------------------------- settings


def test_webhook_mode_needs_a_secret_token() -> None:
    with pytest.raises(ValidationError, match="webhook_secret_token"):
        TelegramSettings.model_validate({"bot_token": TOKEN})


def test_polling_mode_needs_no_secret_token_and_pulls() -> None:
    polling = build_adapter(TelegramAdapter, {"bot_token": TOKEN, "mode": "polling"})
    webhook = adapter()
    assert polling.pulls is True and webhook.pulls is False
    assert TelegramAdapter.pulls is False, "one instance polling must not make every Telegram channel poll"


@pytest.mark.parametrize(
    ("settings_", "problem"),
    [
        ({"bot_token": "not-a-token"}, "bot token"),
        ({"webhook_secret_token": "short"}, "16 to 256 characters"),
        ({"webhook_secret_token": "has spaces in it, not allowed"}, "16 to 256 characters"),
        ({"api_base_url": "ftp://api.telegram.org"}, "http(s) URL"),
        ({"poll_limit": 101}, "poll_limit"),
        ({"bot_tokn": TOKEN}, "bot_tokn"),
    ],
)
def test_settings_refused_say_what_is_wrong(settings_: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        TelegramSettings.model_validate({**WEBHOOK, **settings_})


def test_settings_never_show_the_token_or_the_secret() -> None:
    shown = repr(TelegramSettings.model_validate(WEBHOOK))
    assert TOKEN.split(":")[1] not in shown and SECRET not in shown


def test_the_media_host_is_the_configured_bot_api() -> None:
    assert adapter().allowed_media_hosts() == frozenset({"api.telegram.org"})
    assert adapter(api_base_url="http://127.0.0.1:8081/").allowed_media_hosts() == frozenset({"127.0.0.1"})


# ------------------------------------------------------------------------------------- secret token


def test_the_right_secret_token_passes() -> None:
    adapter().verify(request(b"{}"))


@pytest.mark.parametrize("given", [None, "", "kanal-webhook-secret_0123456780", SECRET + "x", SECRET[:-1]])
def test_a_missing_or_wrong_secret_token_is_refused(given: str | None) -> None:
    with pytest.raises(SignatureInvalid, match="X-Telegram-Bot-Api-Secret-Token") as refused:
        adapter().verify(request(b"{}", secret=given))
    assert SECRET not in refused.value.message


def test_a_polling_instance_refuses_webhook_deliveries() -> None:
    polling = build_adapter(TelegramAdapter, {"bot_token": TOKEN, "mode": "polling"})
    with pytest.raises(PayloadRejected, match="mode: polling") as refused:
        polling.verify(request(json.dumps(fixture("text.json")).encode()))
    assert refused.value.status_code == 405


# ---------------------------------------------------------------------------- what is stored, per step


def test_the_problem_starts_a_conversation_part() -> None:
    message = parse_one("text.json")
    assert message.external_id == "1111111:1365"
    assert message.text.startswith("Lampu PJU mati")
    assert message.sender is not None
    assert (message.sender.id, message.sender.handle, message.sender.name) == ("1111111", "budisantoso", "Budi Santoso")
    assert message.sent_at == datetime(2015, 9, 7, 17, 5, 32, tzinfo=UTC)
    assert message.thread_id == "telegram:1111111"
    assert message.assembly == Assembly(key="telegram:1111111", complete=False, window_seconds=1800)


def test_the_conversation_window_is_a_setting() -> None:
    message = parse_one("text.json", adapter(conversation_window_seconds=600))
    assert message.assembly is not None and message.assembly.window_seconds == 600


@pytest.mark.parametrize(
    ("name", "complete"),
    [
        ("text.json", False),
        ("location.json", False),
        ("address_reply.json", False),
        ("venue.json", False),
        ("detail_reply.json", False),
        ("album_photo.json", False),
        ("full.json", True),
        ("photo_without_caption.json", True),
        ("image_as_file.json", True),
        ("selesai.json", True),
    ],
)
def test_a_photo_or_selesai_completes_the_complaint_and_nothing_else_does(name: str, complete: bool) -> None:
    message = parse_one(name)
    assert message.assembly is not None
    assert message.assembly.key == "telegram:1111111"
    assert message.assembly.complete is complete


def test_an_address_typed_in_answer_to_the_location_question_is_a_location() -> None:
    message = parse_one("address_reply.json")
    assert message.location == Location(address="Jl. Kramat Raya No. 5, RT 03/RW 02, Kel. Kenari, Senen")
    assert message.text == "", "the address is the place, not more of the problem"


def test_text_replying_to_another_bots_question_is_not_taken_for_an_address() -> None:
    document = fixture("address_reply.json")
    document["message"]["reply_to_message"]["from"]["id"] = 987654321  # some other bot
    message = parse(document)[0]
    assert message.location is None and message.text.startswith("Jl. Kramat Raya")


def test_a_venue_keeps_its_name_and_address() -> None:
    message = parse_one("venue.json")
    assert message.location == Location(
        lat=-6.175392, lng=106.827153, address="Monumen Nasional, Gambir, Jakarta Pusat"
    )


def test_an_image_sent_as_a_file_keeps_its_own_type_and_name() -> None:
    [media] = parse_one("image_as_file.json").media
    assert (media.platform_id, media.content_type, media.filename) == (
        "BQACAgUAAxkBAAIBaGVxS-doc",
        "image/jpeg",
        "IMG_20240512.jpg",
    )


def test_selesai_adds_no_words_to_the_report() -> None:
    message = parse_one("selesai.json")
    assert message.text == "" and message.media == [] and message.location is None


def test_a_group_message_is_stored_when_the_channel_takes_groups() -> None:
    message = parse_one("group_message.json", adapter(private_chats_only=False))
    assert message.thread_id == "telegram:-1001234567890"
    assert message.assembly is not None and message.assembly.key == "telegram:-1001234567890"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("edited_message.json", "edited_message"),
        ("bot_message.json", "from a bot"),
        ("group_message.json", "private chats only"),
        ("channel_post.json", "channel_post"),
        ("my_chat_member.json", "my_chat_member"),
        ("sticker.json", "stiker"),
        ("service_message.json", "service message"),
        ("start.json", "command /start"),
        ("status.json", "command /status"),
    ],
)
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_updates_with_nothing_to_store_are_ignored_with_a_reason(name: str, reason: str) -> None:
    with pytest.raises(PayloadIgnored, match=reason):
        parse(fixture(name))


def test_a_command_addressed_to_the_bot_by_name_is_still_a_command() -> None:
    document = fixture("status.json")
    document["message"]["text"] = "/status@kanal_jakarta_bot K7F3Q-9Q2MX"
    with pytest.raises(PayloadIgnored, match="command /status"):
        parse(document)


@pytest.mark.parametrize(
    ("body", "status", "phrase"),
    [
        (b"", 400, "empty body"),
        (b"\xff\xfe not json", 400, "not JSON"),
        (b"[1, 2]", 400, "one JSON object"),
        (b'{"message": {}}', 422, "update_id"),
        (b'{"update_id": 1, "message": {"message_id": 1}}', 422, "not a Telegram"),
        (b'{"update_id": 1, "message": "hello"}', 422, "not a Telegram"),
    ],
)
def test_what_is_no_telegram_update_is_rejected_with_what_to_fix(body: bytes, status: int, phrase: str) -> None:
    with pytest.raises(PayloadRejected, match=phrase) as rejected:
        parse(body)
    assert rejected.value.status_code == status


# ----------------------------------------------------------------------------------------- hypothesis

ALLOWED = (PayloadRejected, PayloadIgnored)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
FIXTURE_NAMES = sorted(p.name for p in FIXTURES.glob("*.json"))
BOT = adapter()


def only_allowed_outcomes(body: bytes) -> None:
    delivery = request(body)
    BOT.verify(delivery)
    try:
        messages = BOT.parse(delivery)
    except ALLOWED:
        return
    assert isinstance(messages, list) and messages
    assert all(isinstance(m, InboundMessage) for m in messages)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_messages_or_refused_or_ignored(body: bytes) -> None:
    only_allowed_outcomes(body)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_any_json_is_messages_or_refused_or_ignored(document: Any) -> None:
    only_allowed_outcomes(json.dumps(document).encode())


@settings(max_examples=150, deadline=None)
@given(st.integers(), json_values)
def test_any_message_object_is_messages_or_refused_or_ignored(update_id: int, message: Any) -> None:
    only_allowed_outcomes(json.dumps({"update_id": update_id, "message": message}).encode())


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> Any:
    document = copy.deepcopy(fixture(draw(st.sampled_from(FIXTURE_NAMES))))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(document) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return document


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_fixtures())
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_mutated_fixtures_are_messages_or_refused_or_ignored(document: Any) -> None:
    only_allowed_outcomes(json.dumps(document).encode())

"""The LINE adapter on its own: signatures, every fixture taken from LINE's documented shapes, and push replies
against a fake LINE push API on loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from adapters.contract import AdapterContext, OutboundReply, RawRequest, Sender
from adapters.errors import ChannelUnavailable, PayloadIgnored, PayloadRejected, SignatureInvalid
from gateway.plugins import adapter_types, get_plugin_manager
from pydantic import ValidationError

from kanal_adapter_line.adapter import LineAdapter

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "8c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f"
OLD_SECRET = "0f9e8d7c6b5a49382716a5b4c3d2e1f0"
TOKEN = "line-test-access-token/7Hk2Qw9zLx3Vb8Nm4Rt6Yp1Ju5="
USER_ID = "U4af4980629a3c1d5e8f0b2c4d6e8f0a1"
FULL_TEXT = (
    "Lampu jalan mati di Jl. Cikini Raya depan Taman Ismail Marzuki, Kel. Cikini, Menteng. "
    "Sudah tiga malam gelap total, rawan jambret. Mohon segera diperbaiki."
)


def make_adapter(**settings: Any) -> LineAdapter:
    values = {"channel_secret": SECRET, "channel_access_token": TOKEN, **settings}
    return LineAdapter(
        settings=LineAdapter.settings_model.model_validate(values),  # type: ignore[arg-type]
        context=AdapterContext(channel_id="line:test", instance_secret=b"k" * 32, public_base_url="http://127.0.0.1"),
    )


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def request(body: bytes, signature: str | None = None) -> RawRequest:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-line-signature"] = signature
    return RawRequest(
        method="POST",
        url="http://127.0.0.1/channels/line:test/inbound",
        headers=headers,
        query={},
        body=body,
        client_ip="127.0.0.1",
        received_at=datetime.now(UTC),
    )


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def events_body(*events: dict[str, Any]) -> bytes:
    return json.dumps({"destination": "U8f2a1c9d4e7b3a6058c1d2e3f4a5b6c7", "events": list(events)}).encode()


def first_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(fixture(name))["events"][0]
    return event


# --- plugin and settings -------------------------------------------------------------------------------


def test_registered_with_kanal_through_the_entry_point() -> None:
    assert adapter_types(get_plugin_manager())["line"] is LineAdapter


def test_signature_header_is_never_stored() -> None:
    assert "x-line-signature" in LineAdapter.secret_headers


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"channel_secret": "short"}, "channel_secret"),
        ({"channel_access_token": ""}, "channel_access_token"),
        ({"api_base_url": "api.line.me"}, "api_base_url"),
        ({"channel_secrte": SECRET}, "channel_secrte"),
    ],
    ids=["secret too short", "empty token", "url without scheme", "typo in a key"],
)
def test_bad_settings_are_refused_at_start(settings: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make_adapter(**settings)
    assert field in str(caught.value)


def test_base_urls_lose_their_trailing_slash() -> None:
    adapter = make_adapter(data_api_base_url="http://127.0.0.1:9/")
    [message] = adapter.parse(request(fixture("image.json")))
    assert message.media[0].url == "http://127.0.0.1:9/v2/bot/message/533918771201837057/content"


# --- verify -------------------------------------------------------------------------------------------


def test_good_signature_passes() -> None:
    body = fixture("full.json")
    make_adapter().verify(request(body, sign(body)))


def test_tampered_body_is_refused() -> None:
    body = fixture("full.json")
    tampered = body.replace(b"Lampu jalan mati", b"Lampu jalan MATI")
    with pytest.raises(SignatureInvalid) as caught:
        make_adapter().verify(request(tampered, sign(body)))
    assert caught.value.status_code == 401
    assert "channel_secret" in caught.value.message


def test_reserialised_json_is_refused() -> None:
    # The signature covers the exact bytes: the same document serialised differently is not what LINE signed.
    body = fixture("full.json")
    reserialised = json.dumps(json.loads(body), separators=(",", ":")).encode()
    with pytest.raises(SignatureInvalid):
        make_adapter().verify(request(reserialised, sign(body)))


def test_signature_with_another_secret_is_refused() -> None:
    body = fixture("full.json")
    with pytest.raises(SignatureInvalid):
        make_adapter().verify(request(body, sign(body, "ffffffffffffffffffffffffffffffff")))


@pytest.mark.parametrize("header", [None, ""], ids=["absent", "empty"])
def test_missing_signature_is_refused(header: str | None) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        make_adapter().verify(request(fixture("full.json"), header))
    assert "missing X-Line-Signature" in caught.value.message


@pytest.mark.parametrize("header", ["not base64 at all!", "é" * 44, "abc"], ids=["punctuation", "latin-1", "short"])
def test_garbled_signature_is_refused(header: str) -> None:
    with pytest.raises(SignatureInvalid):
        make_adapter().verify(request(fixture("full.json"), header))


def test_previous_secret_still_accepted_during_rotation() -> None:
    body = fixture("full.json")
    rotating = make_adapter(previous_channel_secrets=[OLD_SECRET])
    rotating.verify(request(body, sign(body, OLD_SECRET)))
    rotating.verify(request(body, sign(body, SECRET)))
    with pytest.raises(SignatureInvalid):
        make_adapter().verify(request(body, sign(body, OLD_SECRET)))


# --- parse: what is stored ------------------------------------------------------------------------------


def test_text_message_from_a_user() -> None:
    [message] = make_adapter().parse(request(fixture("full.json")))
    assert message.text == FULL_TEXT
    assert message.external_id == "01JDBQ7F9W3K5M8N2P4R6T8V0X"
    assert message.sender is not None and message.sender.id == USER_ID
    assert message.thread_id == USER_ID
    assert message.sent_at == datetime(2026, 11, 27, 13, 41, 7, tzinfo=UTC)
    assert message.location is None and message.media == []


def test_redelivery_has_the_same_external_id() -> None:
    # LINE keeps webhookEventId on a redelivery, so Kanal's inbox recognises it as a duplicate.
    [first] = make_adapter().parse(request(fixture("full.json")))
    [again] = make_adapter().parse(request(fixture("redelivery.json")))
    assert first == again


def test_image_points_at_line_content_api() -> None:
    [message] = make_adapter().parse(request(fixture("image.json")))
    assert message.text == ""
    [photo] = message.media
    assert photo.url == "https://api-data.line.me/v2/bot/message/533918771201837057/content"
    assert photo.content_type == "image/jpeg"


def test_image_hosted_elsewhere_keeps_its_own_url() -> None:
    event = first_event("image.json")
    event["message"]["contentProvider"] = {
        "type": "external",
        "originalContentUrl": "https://cdn.example.id/laporan/417.jpg",
        "previewImageUrl": "https://cdn.example.id/laporan/417-kecil.jpg",
    }
    [message] = make_adapter().parse(request(events_body(event)))
    assert message.media[0].url == "https://cdn.example.id/laporan/417.jpg"


def test_file_keeps_its_name() -> None:
    event = first_event("image.json")
    event["message"] = {"type": "file", "id": "533918900000000001", "fileName": "foto-jalan.pdf", "fileSize": 2138}
    [message] = make_adapter().parse(request(events_body(event)))
    assert message.media[0].filename == "foto-jalan.pdf" and message.media[0].content_type is None


def test_location_message() -> None:
    [message] = make_adapter().parse(request(fixture("location.json")))
    assert message.location is not None
    assert (message.location.lat, message.location.lng) == (-6.189548, 106.838763)
    assert message.location.address is not None and "Jl. Cikini Raya No.73" in message.location.address
    assert message.text.startswith("Taman Ismail Marzuki, Jl. Cikini Raya No.73")


def test_location_without_address_uses_its_title() -> None:
    event = first_event("location.json")
    del event["message"]["address"]
    [message] = make_adapter().parse(request(events_body(event)))
    assert message.text == "Taman Ismail Marzuki"
    assert message.location is not None and message.location.address == "Taman Ismail Marzuki"


def test_text_in_a_group_threads_by_group() -> None:
    [message] = make_adapter().parse(request(fixture("group_text.json")))
    assert message.thread_id == "Ca56f94637cc4347f90a25382909b24b9"
    assert message.sender is not None and message.sender.id == "U206d25c2ea6bd87c17655609a1c37cb8"


def test_group_member_without_user_id_has_no_sender() -> None:
    event = first_event("group_text.json")
    del event["source"]["userId"]
    [message] = make_adapter().parse(request(events_body(event)))
    assert message.sender is None and message.thread_id == "Ca56f94637cc4347f90a25382909b24b9"


def test_batch_keeps_the_messages_and_skips_the_rest() -> None:
    follow = {
        "type": "follow",
        "timestamp": 1795786860000,
        "source": {"type": "user", "userId": USER_ID},
        "replyToken": "85cbe770fa8b4f45bbe077b1d4be4a36",
        "mode": "active",
        "webhookEventId": "01JDBQ7E0A2B4C6D8E0F2G4H6J",
        "deliveryContext": {"isRedelivery": False},
        "follow": {"isUnblocked": False},
    }
    body = events_body(follow, first_event("sticker.json"), first_event("full.json"), first_event("location.json"))
    messages = make_adapter().parse(request(body))
    assert [m.external_id for m in messages] == ["01JDBQ7F9W3K5M8N2P4R6T8V0X", "01JDBQ8R5T7V9X1Z3B5D7F9H1K"]


def test_unknown_properties_from_line_are_ignored() -> None:
    # LINE adds properties over time (quoteToken, markAsReadToken, ...); a new one must not stop intake.
    event = first_event("full.json")
    event["message"]["markAsReadToken"] = "30yhdy232"
    event["someFutureProperty"] = {"nested": [1, 2]}
    [message] = make_adapter().parse(request(events_body(event)))
    assert message.text == FULL_TEXT


# --- parse: what is acknowledged and not stored --------------------------------------------------------------


def test_console_verification_is_ignored() -> None:
    with pytest.raises(PayloadIgnored) as caught:
        make_adapter().parse(request(fixture("verification.json")))
    assert caught.value.reason == "webhook verification"


def test_sticker_is_ignored() -> None:
    with pytest.raises(PayloadIgnored) as caught:
        make_adapter().parse(request(fixture("sticker.json")))
    assert "1 sticker message" in caught.value.reason


@pytest.mark.parametrize("kind", ["follow", "unfollow", "join", "leave", "postback", "unsend", "videoPlayComplete"])
def test_events_that_are_not_messages_are_ignored(kind: str) -> None:
    event = {"type": kind, "timestamp": 1795786860000, "source": {"type": "user", "userId": USER_ID}, "mode": "active"}
    with pytest.raises(PayloadIgnored) as caught:
        make_adapter().parse(request(events_body(event)))
    assert f"1 {kind} event" in caught.value.reason


# --- parse: what is refused ---------------------------------------------------------------------------------


def _broken(change: str) -> bytes:
    event = first_event("full.json")
    if change == "no webhookEventId":
        del event["webhookEventId"]
    elif change == "no source":
        del event["source"]
    elif change == "unknown source type":
        event["source"]["type"] = "channel"
    elif change == "no message id":
        del event["message"]["id"]
    elif change == "text is a number":
        event["message"]["text"] = 42
    elif change == "text missing":
        del event["message"]["text"]
    elif change == "timestamp is text":
        event["timestamp"] = "yesterday"
    elif change == "timestamp past year 9999":
        event["timestamp"] = 10**20
    elif change == "event has no type":
        del event["type"]
    return events_body(event)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "empty body"),
        (b"   \n", "empty body"),
        (b"\x00\xff{not json", "not UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "one JSON object"),
        (b'"events"', "one JSON object"),
        (b'{"destination": "U1"}', "events: Field required"),
        (b'{"destination": "U1", "events": {}}', "events: Input should be a valid list"),
        (b'{"destination": "U1", "events": [7]}', "events.0: each event must be an object with a type"),
        (b'{"events": []}', "destination"),
        (_broken("no webhookEventId"), "events.0.webhookEventId"),
        (_broken("no source"), "events.0.source"),
        (_broken("unknown source type"), "events.0.source.type"),
        (_broken("no message id"), "events.0.message.id"),
        (_broken("text is a number"), "events.0.message.text"),
        (_broken("text missing"), "events.0.message.text: a text message must have text"),
        (_broken("timestamp is text"), "events.0.timestamp"),
        (_broken("timestamp past year 9999"), "events.0.timestamp"),
        (_broken("event has no type"), "events.0: each event must be an object with a type"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_malformed_payloads_are_refused_with_a_reason(body: bytes, expected: str) -> None:
    with pytest.raises(PayloadRejected) as caught:
        make_adapter().parse(request(body))
    assert caught.value.status_code in (400, 422)
    assert expected in caught.value.message


def test_text_longer_than_kanal_stores_is_refused() -> None:
    event = first_event("full.json")
    event["message"]["text"] = "lampu mati " * 2_000
    with pytest.raises(PayloadRejected) as caught:
        make_adapter().parse(request(events_body(event)))
    assert "events.0.text" in caught.value.message


def test_coordinates_out_of_range_are_refused() -> None:
    event = first_event("location.json")
    event["message"]["latitude"] = 106.838763  # latitude and longitude swapped
    with pytest.raises(PayloadRejected) as caught:
        make_adapter().parse(request(events_body(event)))
    assert "events.0.message.latitude" in caught.value.message


# --- send: push messages against a fake LINE API on loopback --------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeLinePushAPI:
    """Answers `POST /v2/bot/message/push` like LINE would: the next queued answer, or 200 with a request id."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)

    def answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.answers.append((status, body, headers or {}))


@pytest.fixture
def line_api() -> Iterator[FakeLinePushAPI]:
    fake = FakeLinePushAPI()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            fake.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status: int
            answer: dict[str, Any]
            extra: dict[str, str] = {}
            if self.headers.get("authorization") != f"Bearer {TOKEN}":
                status, answer = 401, {"message": "Authentication failed. Confirm that the access token."}
            elif self.path != "/v2/bot/message/push":
                status, answer = 404, {"message": "Not found"}
            elif fake.answers:
                status, answer, extra = fake.answers.pop(0)
            else:
                status, answer = 200, {"sentMessages": [{"id": "534011600000000001"}]}
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-Line-Request-Id", f"req-{len(fake.received)}")
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class names it so
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-line-api", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def reply(text: str = "Laporan Anda kami terima, nomor tiket KNL-7Q2M4X. Terima kasih.", **extra: Any) -> OutboundReply:
    return OutboundReply(recipient=Sender(id=USER_ID), text=text, **extra)


def push(adapter: LineAdapter, outbound: OutboundReply) -> str:
    return asyncio.run(adapter.send(outbound))


def test_push_sends_bearer_token_and_text(line_api: FakeLinePushAPI) -> None:
    request_id = push(make_adapter(api_base_url=line_api.url), reply())
    assert request_id == "req-1"
    [sent] = line_api.received
    assert sent.path == "/v2/bot/message/push"
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {
        "to": USER_ID,
        "messages": [{"type": "text", "text": "Laporan Anda kami terima, nomor tiket KNL-7Q2M4X. Terima kasih."}],
    }


def test_retried_reply_carries_the_same_retry_key(line_api: FakeLinePushAPI) -> None:
    adapter = make_adapter(api_base_url=line_api.url)
    push(adapter, reply(in_reply_to="01JDBQ7F9W3K5M8N2P4R6T8V0X"))
    push(adapter, reply(in_reply_to="01JDBQ7F9W3K5M8N2P4R6T8V0X"))
    push(adapter, reply(in_reply_to="01JDBQ8R5T7V9X1Z3B5D7F9H1K"))
    keys = [r.headers["x-line-retry-key"] for r in line_api.received]
    assert keys[0] == keys[1] != keys[2]


def test_reply_without_a_message_to_answer_has_no_retry_key(line_api: FakeLinePushAPI) -> None:
    # Without one, two identical notices would share a key and LINE would drop the second as a retry.
    push(make_adapter(api_base_url=line_api.url), reply())
    assert "x-line-retry-key" not in line_api.received[0].headers


def test_retry_of_an_accepted_reply_counts_as_sent(line_api: FakeLinePushAPI) -> None:
    line_api.answer(
        409,
        {"message": "The retry key is already accepted"},
        {"X-Line-Accepted-Request-Id": "first-attempt-request-id"},
    )
    assert push(make_adapter(api_base_url=line_api.url), reply(in_reply_to="x")) == "first-attempt-request-id"


def test_rate_limited_push_is_retryable(line_api: FakeLinePushAPI) -> None:
    line_api.answer(429, {"message": "The API rate limit has been exceeded. Try again later."}, {"Retry-After": "30"})
    with pytest.raises(ChannelUnavailable) as caught:
        push(make_adapter(api_base_url=line_api.url), reply())
    assert caught.value.retryable
    assert caught.value.retry_after == 30
    assert "429" in str(caught.value) and "rate limit" in str(caught.value)


def test_line_server_error_is_retryable(line_api: FakeLinePushAPI) -> None:
    line_api.answer(500, {"message": "Internal server error"})
    with pytest.raises(ChannelUnavailable) as caught:
        push(make_adapter(api_base_url=line_api.url), reply())
    assert caught.value.retryable


def test_bad_request_is_not_retryable_and_says_why(line_api: FakeLinePushAPI) -> None:
    line_api.answer(
        400,
        {
            "message": "The request body has 1 error(s)",
            "details": [{"message": "May not be empty", "property": "messages[0].text"}],
        },
    )
    with pytest.raises(ChannelUnavailable) as caught:
        push(make_adapter(api_base_url=line_api.url), reply())
    assert not caught.value.retryable
    assert "400" in str(caught.value) and "messages[0].text: May not be empty" in str(caught.value)
    assert "req-1" in str(caught.value), "LINE's request id helps LINE support find the request"


def test_wrong_token_is_not_retryable_and_not_echoed(line_api: FakeLinePushAPI) -> None:
    adapter = make_adapter(api_base_url=line_api.url, channel_access_token="a-revoked-token-0123456789")
    with pytest.raises(ChannelUnavailable) as caught:
        push(adapter, reply())
    assert not caught.value.retryable and "401" in str(caught.value)
    assert "a-revoked-token" not in str(caught.value)


def test_unreachable_line_is_retryable() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ChannelUnavailable) as caught:
        push(make_adapter(api_base_url=f"http://127.0.0.1:{port}"), reply())
    assert caught.value.retryable
    assert TOKEN not in str(caught.value)


def test_reply_without_a_user_id_is_not_retryable(line_api: FakeLinePushAPI) -> None:
    with pytest.raises(ChannelUnavailable) as caught:
        push(make_adapter(api_base_url=line_api.url), OutboundReply(recipient=Sender(name="Budi"), text="Halo"))
    assert not caught.value.retryable
    assert line_api.received == []

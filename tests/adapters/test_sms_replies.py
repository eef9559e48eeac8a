"""Answers by SMS and MMS photos, against a fake provider speaking Twilio's REST API and a generic gateway's."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from adapters.contract import MediaRef, OutboundReply, Sender
from adapters.errors import ChannelUnavailable, MediaUnavailable
from adapters.sms import SmsAdapter
from kanal_testing import KanalUnderTest, build_adapter, reports, wait_until
from tests.adapters.test_sms import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CITIZEN,
    COMPLAINT_NUMBER,
    GATEWAY_SECRET,
    PROFILE,
    generic_settings,
    twilio_settings,
)
from tests.peers.sms_provider import SmsProvider

SEND_TOKEN = "gateway-api-token-778899"  # noqa: S105
PHOTO = b"\xff\xd8\xff\xe0" + b"jpeg" * 200


@pytest.fixture
def provider() -> Iterator[SmsProvider]:
    with SmsProvider(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, send_token=SEND_TOKEN) as peer:
        yield peer


def twilio(provider: SmsProvider, **overrides: Any) -> SmsAdapter:
    adapter = build_adapter(SmsAdapter, twilio_settings(api_base_url=provider.url, **overrides), channel_id="sms:test")
    assert isinstance(adapter, SmsAdapter)
    return adapter


def generic(provider: SmsProvider, **overrides: Any) -> SmsAdapter:
    settings = generic_settings(send_url=provider.send_url, send_token=SEND_TOKEN, **overrides)
    adapter = build_adapter(SmsAdapter, settings, channel_id="sms:test")
    assert isinstance(adapter, SmsAdapter)
    return adapter


def reply(
    text: str = "Laporan Anda diterima dengan nomor tiket KNL-7QX4. Terima kasih.", **sender: Any
) -> OutboundReply:
    recipient = Sender(**(sender or {"id": CITIZEN, "phone": CITIZEN}))
    return OutboundReply(
        recipient=recipient, text=text, in_reply_to="SM0a1b2c3d4e5f60718293a4b5c6d7e8f9", ticket="KNL-7QX4"
    )


def test_twilio_reply_reaches_the_messages_api_with_the_account_credentials(provider: SmsProvider) -> None:
    sid = asyncio.run(twilio(provider).send(reply()))
    [request] = provider.sent()
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.form() == {
        "To": CITIZEN,
        "From": COMPLAINT_NUMBER,
        "Body": "Laporan Anda diterima dengan nomor tiket KNL-7QX4. Terima kasih.",
    }
    assert (
        request.headers["authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    )
    assert sid.startswith("SM") and len(sid) == 34


def test_twilio_reply_through_a_messaging_service(provider: SmsProvider) -> None:
    service = "MG" + "4" * 32
    asyncio.run(twilio(provider, messaging_service_sid=service, from_number=None).send(reply()))
    form = provider.sent()[0].form()
    assert form["MessagingServiceSid"] == service and "From" not in form


def test_a_national_number_is_answered_in_e164(provider: SmsProvider) -> None:
    asyncio.run(twilio(provider).send(reply(id="081311223344", phone="0813-1122-3344")))
    assert provider.sent()[0].form()["To"] == CITIZEN


def test_a_long_reply_is_cut_at_a_word_under_the_limit(provider: SmsProvider) -> None:
    text = "Status laporan KNL-7QX4: sedang dikerjakan oleh Suku Dinas Bina Marga Jakarta Pusat. " * 12
    asyncio.run(twilio(provider).send(reply(text)))
    body = provider.sent()[0].form()["Body"]
    assert len(body) <= 600 and body.endswith("...") and text.startswith(body[:-3])


def test_twilio_throttling_is_retried_after_what_it_asks(provider: SmsProvider) -> None:
    provider.fail_next(429, headers={"Retry-After": "30"}, body={"code": 20429, "message": "Too Many Requests"})
    with pytest.raises(ChannelUnavailable) as failure:
        asyncio.run(twilio(provider).send(reply()))
    assert failure.value.retryable and failure.value.retry_after == 30


def test_twilio_server_error_is_retried(provider: SmsProvider) -> None:
    provider.fail_next(503)
    with pytest.raises(ChannelUnavailable) as failure:
        asyncio.run(twilio(provider).send(reply()))
    assert failure.value.retryable


def test_a_slow_provider_is_retried_later(provider: SmsProvider) -> None:
    provider.delay_seconds = 1.0
    with pytest.raises(ChannelUnavailable, match="unreachable") as failure:
        asyncio.run(twilio(provider, reply_timeout_seconds=0.2).send(reply()))
    assert failure.value.retryable


def test_a_refused_number_is_not_retried_and_says_twilios_error(provider: SmsProvider) -> None:
    provider.fail_next(400, body={"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400})
    with pytest.raises(ChannelUnavailable, match="error 21610: Attempt to send to unsubscribed") as failure:
        asyncio.run(twilio(provider).send(reply()))
    assert not failure.value.retryable


def test_wrong_credentials_are_not_retried_and_say_what_to_check(provider: SmsProvider) -> None:
    with pytest.raises(ChannelUnavailable, match="check account_sid and auth_token") as failure:
        asyncio.run(twilio(provider, auth_token="a-wrong-auth-token-000").send(reply()))
    assert not failure.value.retryable


def test_a_sender_without_a_number_cannot_be_answered_by_sms(provider: SmsProvider) -> None:
    with pytest.raises(ChannelUnavailable, match="not a phone number") as failure:
        asyncio.run(twilio(provider).send(reply(id="TELKOMSEL", handle="TELKOMSEL")))
    assert not failure.value.retryable and provider.sent() == []


def test_no_sender_number_configured_means_no_reply_path(provider: SmsProvider) -> None:
    with pytest.raises(NotImplementedError, match="from_number"):
        asyncio.run(twilio(provider, from_number=None).send(reply()))


def test_generic_reply_is_posted_as_json_with_the_bearer_token(provider: SmsProvider) -> None:
    message_id = asyncio.run(generic(provider).send(reply()))
    [request] = provider.sent()
    assert request.path == "/send" and request.headers["authorization"] == f"Bearer {SEND_TOKEN}"
    assert request.json() == {
        "to": CITIZEN,
        "from": "08111272206",
        "text": "Laporan Anda diterima dengan nomor tiket KNL-7QX4. Terima kasih.",
    }
    assert message_id.startswith("gw-")


def test_generic_reply_signed_with_hmac(provider: SmsProvider) -> None:
    provider.send_token, provider.send_secret = None, GATEWAY_SECRET
    asyncio.run(generic(provider, send_auth="hmac").send(reply()))
    [request] = provider.sent()
    expected = hmac.new(GATEWAY_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-sms-signature"] == expected and "authorization" not in request.headers
    assert json.loads(request.body)["to"] == CITIZEN


def test_generic_gateway_failure_is_retried_and_refusal_is_not(provider: SmsProvider) -> None:
    provider.fail_next(502)
    with pytest.raises(ChannelUnavailable) as failure:
        asyncio.run(generic(provider).send(reply()))
    assert failure.value.retryable
    provider.fail_next(422)
    with pytest.raises(ChannelUnavailable, match="refused") as refusal:
        asyncio.run(generic(provider).send(reply()))
    assert not refusal.value.retryable


# --------------------------------------------------------------------------------------------- media


def test_twilio_photo_is_downloaded_with_credentials_and_the_cdn_gets_none(provider: SmsProvider) -> None:
    url = provider.add_media("MM" + "5" * 32, "ME" + "9" * 32, "image/jpeg", PHOTO)
    content = asyncio.run(twilio(provider).download_media(MediaRef(url=url), max_bytes=10_000))
    assert (content.content_type, content.data) == ("image/jpeg", PHOTO)
    api, cdn = provider.received
    assert api.headers["authorization"].startswith("Basic ")
    assert cdn.path.startswith("/cdn/") and "authorization" not in cdn.headers


def test_a_photo_over_the_size_limit_is_not_downloaded(provider: SmsProvider) -> None:
    url = provider.add_media("MM" + "5" * 32, "ME" + "8" * 32, "image/jpeg", PHOTO)
    with pytest.raises(MediaUnavailable, match="too large"):
        asyncio.run(twilio(provider).download_media(MediaRef(url=url), max_bytes=100))


@pytest.mark.parametrize(
    "url",
    ["https://evil.example/photo.jpg", "https://mms.twiliocdn.com/x/photo.jpg", "file:///etc/passwd", "http://[::1"],
)
def test_a_photo_not_on_the_twilio_api_host_is_never_fetched(provider: SmsProvider, url: str) -> None:
    with pytest.raises(MediaUnavailable):
        asyncio.run(twilio(provider).download_media(MediaRef(url=url), max_bytes=10_000))
    assert provider.received == []


def test_a_generic_gateway_has_no_media_to_download(provider: SmsProvider) -> None:
    adapter = generic(provider)
    assert adapter.allowed_media_hosts() == frozenset()
    with pytest.raises(MediaUnavailable):
        asyncio.run(adapter.download_media(MediaRef(url=f"{provider.url}/x.jpg"), max_bytes=10_000))


# ------------------------------------------------------------------------------------ through Kanal


def test_a_new_sms_complaint_is_acknowledged_by_sms_with_its_ticket(
    provider: SmsProvider, kanal_start: Callable[..., KanalUnderTest]
) -> None:
    received = "Laporan Anda kami terima dengan nomor {ticket}."
    channel = {"type": "sms", "settings": twilio_settings(api_base_url=provider.url)}
    gateway = kanal_start(
        {PROFILE.channel_id: channel},
        notifications={"templates": {"id": {"received": received}}, "poll_interval_seconds": 0.05},
    )
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        assert PROFILE.send(http, PROFILE.prepare(http, "twilio_text.json")).status_code == 200
    [report] = wait_until(lambda: reports(gateway.runtime.engine), timeout=20, what="the report")
    [sms] = wait_until(provider.sent, timeout=20, what="the acknowledgement reaching Twilio")
    assert sms.form() == {"To": CITIZEN, "From": COMPLAINT_NUMBER, "Body": received.format(ticket=report.ticket_code)}

"""`facebook` replies and media against a fake Graph API on loopback (tests/peers/meta_pages.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.contract import MediaRef, OutboundReply, Sender, StatusUpdate
from adapters.errors import ChannelUnavailable, MediaUnavailable
from adapters.facebook import FacebookAdapter
from kanal_testing import build_adapter
from tests.peers.meta_pages import TINY_JPEG, MetaPagesPeer

PAGE_ID = "104857392011223"
ACCESS_TOKEN = "EAAB-page-access-token-for-tests-0123456789"
PSID = "7412589630258741"
COMMENT = "912345678901234_1187654321098765"
POST = f"{PAGE_ID}_912345678901234"


@pytest.fixture
def peer() -> Iterator[MetaPagesPeer]:
    with MetaPagesPeer(access_token=ACCESS_TOKEN) as running:
        yield running


def adapter_for(peer: MetaPagesPeer, **overrides: Any) -> FacebookAdapter:
    settings = {
        "app_secret": "fb-app-secret-0123456789abcdef",
        "verify_token": "fb-verify-token-kanal-2026",
        "access_token": ACCESS_TOKEN,
        "page_id": PAGE_ID,
        "graph_base_url": peer.graph_base_url,
        **overrides,
    }
    adapter = build_adapter(FacebookAdapter, settings, channel_id="facebook:dki")
    assert isinstance(adapter, FacebookAdapter)
    return adapter


def status(state: str = "in_progress") -> StatusUpdate:
    return StatusUpdate(
        ticket="KNL-7QX2", state=state, changed_at=datetime.now(UTC), status_url="https://kanal.example/s/KNL-7QX2"
    )


def messenger_reply(
    text: str = "Laporan KNL-7QX2 sedang ditangani Suku Dinas Bina Marga.", **fields: Any
) -> OutboundReply:
    return OutboundReply(
        recipient=Sender(id=PSID),
        text=text,
        thread_id=f"messenger:{PSID}",
        in_reply_to="m_1Qx7kB2mN5pL8sT3vW6yZ9aC4dF0gH-text",
        **fields,
    )


def send(adapter: FacebookAdapter, reply: OutboundReply) -> str:
    return asyncio.run(adapter.send(reply))


# ------------------------------------------------------------------------------------------ comments


def test_a_reply_to_a_comment_is_posted_in_the_citizens_comment_thread(peer: MetaPagesPeer) -> None:
    reply = OutboundReply(
        recipient=Sender(id="6021847712345678", name="Budi Santoso"),
        text="Terima kasih, laporan Anda kami terima. Tiket: KNL-7QX2",
        in_reply_to="912345678901234_1187654321099999",
        thread_id=COMMENT,
    )
    created = send(adapter_for(peer), reply)
    [call] = peer.posts_to("/comments")
    assert call.path == f"{COMMENT}/comments"
    assert call.body == {"message": "Terima kasih, laporan Anda kami terima. Tiket: KNL-7QX2"}
    assert call.authorization == f"Bearer {ACCESS_TOKEN}"
    assert created.startswith("912345678901234_")


def test_a_reply_to_a_visitor_post_is_a_comment_under_it(peer: MetaPagesPeer) -> None:
    reply = OutboundReply(recipient=Sender(id="6021847700000004"), text="Sudah kami teruskan.", thread_id=POST)
    send(adapter_for(peer), reply)
    assert [c.path for c in peer.posts_to("/comments")] == [f"{POST}/comments"]


def test_without_a_thread_the_reply_goes_under_the_citizens_comment(peer: MetaPagesPeer) -> None:
    reply = OutboundReply(recipient=Sender(id="6021847712345678"), text="Sudah kami teruskan.", in_reply_to=COMMENT)
    send(adapter_for(peer), reply)
    assert [c.path for c in peer.posts_to("/comments")] == [f"{COMMENT}/comments"]


def test_a_thread_id_that_is_not_a_graph_id_is_never_put_in_a_path(peer: MetaPagesPeer) -> None:
    reply = OutboundReply(recipient=Sender(id="1"), text="Halo", thread_id="../../me/feed")
    with pytest.raises(ChannelUnavailable, match="not a Graph id") as refused:
        send(adapter_for(peer), reply)
    assert refused.value.retryable is False
    assert peer.calls == []


# ----------------------------------------------------------------------------------------- Messenger


def test_a_messenger_reply_inside_24_hours_is_a_response(peer: MetaPagesPeer) -> None:
    reply = messenger_reply(last_inbound_at=datetime.now(UTC) - timedelta(hours=2))
    created = send(adapter_for(peer), reply)
    [call] = peer.posts_to("/messages")
    assert call.path == f"{PAGE_ID}/messages"
    assert call.body == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Laporan KNL-7QX2 sedang ditangani Suku Dinas Bina Marga."},
    }
    assert call.authorization == f"Bearer {ACCESS_TOKEN}"
    assert created.startswith("m_peer")


def test_a_status_update_after_24_hours_goes_out_tagged_account_update(peer: MetaPagesPeer) -> None:
    reply = messenger_reply(last_inbound_at=datetime.now(UTC) - timedelta(days=3), status=status())
    send(adapter_for(peer), reply)
    [call] = peer.posts_to("/messages")
    assert (call.body["messaging_type"], call.body["tag"]) == ("MESSAGE_TAG", "ACCOUNT_UPDATE")


@pytest.mark.parametrize("last_inbound_at", [None, datetime.now(UTC) - timedelta(hours=25)])
def test_a_free_text_after_24_hours_is_refused_for_good(peer: MetaPagesPeer, last_inbound_at: datetime | None) -> None:
    reply = messenger_reply("Mohon kirim foto lokasinya.", last_inbound_at=last_inbound_at)
    with pytest.raises(ChannelUnavailable, match="more than 24 hours") as refused:
        send(adapter_for(peer), reply)
    assert refused.value.retryable is False
    assert peer.calls == []


def test_a_page_that_sends_no_tagged_messages_refuses_late_status_updates(peer: MetaPagesPeer) -> None:
    reply = messenger_reply(last_inbound_at=datetime.now(UTC) - timedelta(days=2), status=status())
    with pytest.raises(ChannelUnavailable, match="tag_status_updates: false") as refused:
        send(adapter_for(peer, tag_status_updates=False), reply)
    assert refused.value.retryable is False
    assert peer.calls == []


def test_a_text_longer_than_messenger_allows_goes_in_parts(peer: MetaPagesPeer) -> None:
    text = ("Perbaikan jalan dijadwalkan minggu depan oleh Suku Dinas Bina Marga Jakarta Pusat. " * 45).strip()
    send(adapter_for(peer), messenger_reply(text, last_inbound_at=datetime.now(UTC)))
    parts = [c.body["message"]["text"] for c in peer.posts_to("/messages")]
    assert len(parts) == 2 and all(len(p) <= 2000 for p in parts)
    assert " ".join(parts) == text


# -------------------------------------------------------------------------------------------- errors


def test_a_failing_graph_api_is_retried_later(peer: MetaPagesPeer) -> None:
    peer.fail_next(503)
    with pytest.raises(ChannelUnavailable, match="503") as failed:
        send(adapter_for(peer), messenger_reply(last_inbound_at=datetime.now(UTC)))
    assert failed.value.retryable is True


def test_a_rate_limit_is_retried_after_the_time_meta_asks(peer: MetaPagesPeer) -> None:
    peer.fail_next(
        429, code=613, message="Calls to this api have exceeded the rate limit.", headers={"Retry-After": "30"}
    )
    with pytest.raises(ChannelUnavailable) as failed:
        send(adapter_for(peer), messenger_reply(last_inbound_at=datetime.now(UTC)))
    assert (failed.value.retryable, failed.value.retry_after) == (True, 30.0)


def test_a_rate_limit_answered_400_with_its_code_is_retried(peer: MetaPagesPeer) -> None:
    usage = '{"104857392011223": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 5}]}'
    peer.fail_next(
        400, code=4, message="Application request limit reached", headers={"X-Business-Use-Case-Usage": usage}
    )
    with pytest.raises(ChannelUnavailable) as failed:
        send(adapter_for(peer), messenger_reply(last_inbound_at=datetime.now(UTC)))
    assert (failed.value.retryable, failed.value.retry_after) == (True, 300.0)


def test_a_wrong_token_is_a_final_failure_that_says_what_to_do_and_hides_the_token(peer: MetaPagesPeer) -> None:
    adapter = adapter_for(peer, access_token="EAAB-an-expired-token-0000000000")
    with pytest.raises(ChannelUnavailable, match="access_token is invalid or expired") as failed:
        send(adapter, messenger_reply(last_inbound_at=datetime.now(UTC)))
    assert failed.value.retryable is False
    assert "EAAB" not in str(failed.value)


def test_a_graph_refusal_is_final(peer: MetaPagesPeer) -> None:
    peer.fail_next(400, code=100, message="(#100) Object with ID does not exist")
    with pytest.raises(ChannelUnavailable, match="code 100") as failed:
        send(adapter_for(peer), OutboundReply(recipient=Sender(id="1"), text="Halo", thread_id=COMMENT))
    assert failed.value.retryable is False


def test_a_graph_api_slower_than_the_timeout_is_retried_later(peer: MetaPagesPeer) -> None:
    peer.delay = 1.0
    with pytest.raises(ChannelUnavailable, match="did not answer within 0.2 s") as failed:
        send(adapter_for(peer, timeout_seconds=0.2), messenger_reply(last_inbound_at=datetime.now(UTC)))
    assert failed.value.retryable is True


def test_a_page_without_an_access_token_has_no_reply_path(peer: MetaPagesPeer) -> None:
    adapter = adapter_for(peer, access_token=None)
    with pytest.raises(NotImplementedError, match="no access_token"):
        send(adapter, messenger_reply(last_inbound_at=datetime.now(UTC)))
    assert peer.calls == []


# --------------------------------------------------------------------------------------------- media


def test_an_attachment_is_downloaded_without_the_token(peer: MetaPagesPeer) -> None:
    content = asyncio.run(adapter_for(peer).download_media(MediaRef(url=peer.media_url("photo.jpg")), max_bytes=10_000))
    assert (content.content_type, content.data) == ("image/jpeg", TINY_JPEG)
    [call] = [c for c in peer.calls if c.method == "GET"]
    assert call.authorization is None, "the Page token must never travel to a media host"


def test_an_attachment_over_the_size_limit_is_not_downloaded(peer: MetaPagesPeer) -> None:
    peer.media["big.jpg"] = (b"\xff" * 5000, "image/jpeg")
    with pytest.raises(MediaUnavailable, match="too large"):
        asyncio.run(adapter_for(peer).download_media(MediaRef(url=peer.media_url("big.jpg")), max_bytes=1000))


def test_an_attachment_on_a_foreign_host_is_not_downloaded(peer: MetaPagesPeer) -> None:
    ref = MediaRef(url="https://203.0.113.9/internal/photo.jpg")
    with pytest.raises(MediaUnavailable, match="not an allowed host"):
        asyncio.run(adapter_for(peer).download_media(ref, max_bytes=10_000))


def test_meta_cdn_hosts_are_allowed_for_media() -> None:
    adapter = build_adapter(FacebookAdapter, {"app_secret": "x" * 10, "verify_token": "y" * 10, "page_id": PAGE_ID})
    assert {"lookaside.fbsbx.com", "fbcdn.net", "cdninstagram.com"} <= adapter.allowed_media_hosts()

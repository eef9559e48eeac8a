"""`instagram` replies and media against a fake Graph API on loopback (tests/peers/meta_pages.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.contract import MediaRef, OutboundReply, Sender, StatusUpdate
from adapters.errors import ChannelUnavailable, MediaUnavailable
from adapters.instagram import InstagramAdapter
from kanal_testing import build_adapter
from tests.peers.meta_pages import TINY_JPEG, MetaPagesPeer

IG_USER_ID = "17841455512345678"
ACCESS_TOKEN = "IGQ-access-token-for-tests-0123456789"
IGSID = "1123581321345589"
COMMENT = "17865799348089039"


@pytest.fixture
def peer() -> Iterator[MetaPagesPeer]:
    with MetaPagesPeer(access_token=ACCESS_TOKEN) as running:
        yield running


def adapter_for(peer: MetaPagesPeer, **overrides: Any) -> InstagramAdapter:
    settings = {
        "app_secret": "ig-app-secret-0123456789abcdef",
        "verify_token": "ig-verify-token-kanal-2026",
        "access_token": ACCESS_TOKEN,
        "ig_user_id": IG_USER_ID,
        "graph_base_url": peer.graph_base_url,
        **overrides,
    }
    adapter = build_adapter(InstagramAdapter, settings, channel_id="instagram:dkijakarta")
    assert isinstance(adapter, InstagramAdapter)
    return adapter


def send(adapter: InstagramAdapter, reply: OutboundReply) -> str:
    return asyncio.run(adapter.send(reply))


def direct_reply(text: str = "Terima kasih, laporan Anda kami terima. Tiket: KNL-8PZ4", **fields: Any) -> OutboundReply:
    return OutboundReply(recipient=Sender(id=IGSID), text=text, thread_id=f"instagram-dm:{IGSID}", **fields)


def test_a_reply_to_a_comment_is_posted_under_it(peer: MetaPagesPeer) -> None:
    reply = OutboundReply(
        recipient=Sender(id="1789012345678901", handle="budi.santoso"),
        text="@budi.santoso Terima kasih, laporan Anda kami teruskan. Tiket: KNL-8PZ4",
        in_reply_to="17865799348089555",
        thread_id=COMMENT,
    )
    created = send(adapter_for(peer), reply)
    [call] = peer.posts_to("/replies")
    assert call.path == f"{COMMENT}/replies"
    assert call.body == {"message": "@budi.santoso Terima kasih, laporan Anda kami teruskan. Tiket: KNL-8PZ4"}
    assert call.authorization == f"Bearer {ACCESS_TOKEN}"
    assert created


def test_a_direct_reply_inside_24_hours_goes_to_the_accounts_messages(peer: MetaPagesPeer) -> None:
    created = send(adapter_for(peer), direct_reply(last_inbound_at=datetime.now(UTC) - timedelta(minutes=5)))
    [call] = peer.posts_to("/messages")
    assert call.path == f"{IG_USER_ID}/messages"
    assert call.body == {
        "recipient": {"id": IGSID},
        "message": {"text": "Terima kasih, laporan Anda kami terima. Tiket: KNL-8PZ4"},
    }
    assert created.startswith("m_peer")


@pytest.mark.parametrize("last_inbound_at", [None, datetime.now(UTC) - timedelta(hours=30)])
def test_a_direct_reply_after_24_hours_is_refused_for_good(
    peer: MetaPagesPeer, last_inbound_at: datetime | None
) -> None:
    update = StatusUpdate(
        ticket="KNL-8PZ4", state="resolved", changed_at=datetime.now(UTC), status_url="https://kanal.example/s/KNL-8PZ4"
    )
    with pytest.raises(ChannelUnavailable, match="more than 24 hours") as refused:
        send(adapter_for(peer), direct_reply(last_inbound_at=last_inbound_at, status=update))
    assert refused.value.retryable is False
    assert peer.calls == []


def test_a_direct_reply_longer_than_1000_bytes_goes_in_parts(peer: MetaPagesPeer) -> None:
    text = ("Petugas Dinas Sumber Daya Air sudah dijadwalkan membersihkan saluran di lokasi Anda. " * 20).strip()
    send(adapter_for(peer), direct_reply(text, last_inbound_at=datetime.now(UTC)))
    parts = [c.body["message"]["text"] for c in peer.posts_to("/messages")]
    assert len(parts) == 2 and all(len(p.encode()) <= 1000 for p in parts)
    assert " ".join(parts) == text


def test_a_reply_to_a_comment_mention_goes_through_the_mentions_edge(peer: MetaPagesPeer) -> None:
    reply = OutboundReply(
        recipient=Sender(),
        text="Terima kasih sudah melapor. Tiket: KNL-9AB1",
        thread_id="instagram-mention:17920238422030506:17858893269000001",
    )
    send(adapter_for(peer), reply)
    [call] = peer.posts_to("/mentions")
    assert call.path == f"{IG_USER_ID}/mentions"
    assert call.body == {
        "media_id": "17920238422030506",
        "comment_id": "17858893269000001",
        "message": "Terima kasih sudah melapor. Tiket: KNL-9AB1",
    }


def test_a_reply_to_a_caption_mention_comments_on_that_media(peer: MetaPagesPeer) -> None:
    reply = OutboundReply(
        recipient=Sender(), text="Kami tindak lanjuti.", thread_id="instagram-mention:17920238422030507"
    )
    send(adapter_for(peer), reply)
    [call] = peer.posts_to("/mentions")
    assert call.body == {"media_id": "17920238422030507", "message": "Kami tindak lanjuti."}


def test_a_failing_graph_api_is_retried_later(peer: MetaPagesPeer) -> None:
    peer.fail_next(500, code=2, message="Service temporarily unavailable")
    with pytest.raises(ChannelUnavailable, match="500") as failed:
        send(adapter_for(peer), OutboundReply(recipient=Sender(), text="Halo", thread_id=COMMENT))
    assert failed.value.retryable is True


def test_a_rate_limit_is_retried_after_the_time_meta_asks(peer: MetaPagesPeer) -> None:
    peer.fail_next(429, code=4, headers={"Retry-After": "120"})
    with pytest.raises(ChannelUnavailable) as failed:
        send(adapter_for(peer), direct_reply(last_inbound_at=datetime.now(UTC)))
    assert (failed.value.retryable, failed.value.retry_after) == (True, 120.0)


def test_a_deleted_comment_is_a_final_failure(peer: MetaPagesPeer) -> None:
    peer.fail_next(400, code=100, message="(#100) Unsupported post request. Object does not exist")
    with pytest.raises(ChannelUnavailable, match="does not exist") as failed:
        send(adapter_for(peer), OutboundReply(recipient=Sender(), text="Halo", thread_id=COMMENT))
    assert failed.value.retryable is False


def test_an_account_without_an_access_token_has_no_reply_path(peer: MetaPagesPeer) -> None:
    with pytest.raises(NotImplementedError, match="no access_token"):
        send(adapter_for(peer, access_token=None), OutboundReply(recipient=Sender(), text="Halo", thread_id=COMMENT))


def test_a_story_is_downloaded_without_the_token(peer: MetaPagesPeer) -> None:
    ref = MediaRef(url=peer.media_url("photo.jpg"))
    content = asyncio.run(adapter_for(peer).download_media(ref, max_bytes=10_000))
    assert content.data == TINY_JPEG
    assert [c.authorization for c in peer.calls if c.method == "GET"] == [None]


def test_a_story_over_the_size_limit_is_not_downloaded(peer: MetaPagesPeer) -> None:
    peer.media["story.mp4"] = (b"\x00" * 4096, "video/mp4")
    with pytest.raises(MediaUnavailable, match="too large"):
        asyncio.run(adapter_for(peer).download_media(MediaRef(url=peer.media_url("story.mp4")), max_bytes=1024))


def test_media_from_a_foreign_host_is_not_downloaded(peer: MetaPagesPeer) -> None:
    ref = MediaRef(url="https://instagram.evil.example/story.jpg")
    with pytest.raises(MediaUnavailable, match="not an allowed host"):
        asyncio.run(adapter_for(peer).download_media(ref, max_bytes=10_000))


def test_an_account_set_up_with_facebook_login_answers_direct_messages_through_its_page(peer: MetaPagesPeer) -> None:
    adapter = adapter_for(peer, page_id="104857392011223")
    send(adapter, direct_reply(last_inbound_at=datetime.now(UTC)))
    assert [c.path for c in peer.posts_to("/messages")] == ["104857392011223/messages"]

"""The `twitter` adapter against the fake X API, without Kanal: what it asks, how it pages, what its
cursor holds, how it fails, how it replies and downloads photos. tweepy really talks HTTP to the peer."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.contract import FetchResult, MediaRef, OutboundReply, RawRequest, Sender
from adapters.errors import ChannelUnavailable, MediaUnavailable, SignatureInvalid
from adapters.twitter import TwitterAdapter, TwitterCursor, snowflake_time, tweet_weight
from gateway.plugins import resolve_channel_defaults
from gateway.settings import ChannelConfig, ConfigError
from kanal_testing import build_adapter
from tests.peers.x_api import (
    ACCESS_TOKEN,
    ACCESS_TOKEN_SECRET,
    BEARER_TOKEN,
    CONSUMER_KEY,
    CONSUMER_SECRET,
    TINY_JPEG,
    XApiPeer,
)

SECRETS = [BEARER_TOKEN, CONSUMER_KEY, CONSUMER_SECRET, ACCESS_TOKEN, ACCESS_TOKEN_SECRET]


@pytest.fixture
def peer() -> Iterator[XApiPeer]:
    with XApiPeer() as running:
        yield running


def settings_for(peer: XApiPeer, *, reply: bool = True, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "user_id": peer.user_id,
        "bearer_token": BEARER_TOKEN,
        "api_base_url": peer.base_url,
        "timeout_seconds": 5,
        **extra,
    }
    if reply:
        settings |= {
            "consumer_key": CONSUMER_KEY,
            "consumer_secret": CONSUMER_SECRET,
            "access_token": ACCESS_TOKEN,
            "access_token_secret": ACCESS_TOKEN_SECRET,
        }
    return settings


def adapter_for(peer: XApiPeer, **settings: Any) -> TwitterAdapter:
    adapter = build_adapter(TwitterAdapter, settings_for(peer, **settings), channel_id="twitter:dkijakarta")
    assert isinstance(adapter, TwitterAdapter)
    return adapter


def fetch(adapter: TwitterAdapter, cursor: str | None = None) -> FetchResult:
    return asyncio.run(adapter.fetch(cursor))


def ids(result: FetchResult) -> list[str]:
    return [m.external_id for m in result.messages]


def mention(peer: XApiPeer, text: str, **kwargs: Any) -> str:
    return peer.tweet(f"@{peer.username} {text}", **kwargs)


# ------------------------------------------------------------------------------------------------- reading


def test_a_poll_asks_for_mentions_with_the_documented_expansions_and_fields(peer: XApiPeer) -> None:
    tweet = mention(peer, "Jalan rusak di Jl. Raya Bogor km 20.")
    result = fetch(adapter_for(peer))
    assert ids(result) == [tweet]
    [asked] = peer.api_requests()
    assert asked.path == f"/2/users/{peer.user_id}/mentions"
    assert asked.headers["authorization"] == f"Bearer {BEARER_TOKEN}"
    assert set(asked.params["expansions"].split(",")) >= {"author_id", "attachments.media_keys", "geo.place_id"}
    assert set(asked.params["tweet.fields"].split(",")) >= {
        "created_at",
        "conversation_id",
        "in_reply_to_user_id",
        "referenced_tweets",
        "geo",
        "entities",
    }
    assert set(asked.params["user.fields"].split(",")) >= {"username", "name"}
    assert set(asked.params["media.fields"].split(",")) >= {"url", "preview_image_url", "type"}
    assert set(asked.params["place.fields"].split(",")) >= {"full_name", "geo", "country_code"}
    assert asked.params["max_results"] == "100"


def test_the_first_poll_reads_back_one_day_and_not_the_whole_history(peer: XApiPeer) -> None:
    old = mention(peer, "Keluhan lama dari minggu lalu.", created_at=datetime.now(UTC) - timedelta(days=3))
    recent = mention(
        peer, "Sampah belum diangkut tiga hari di RT 04.", created_at=datetime.now(UTC) - timedelta(hours=2)
    )
    assert ids(fetch(adapter_for(peer))) == [recent]
    assert old in ids(fetch(adapter_for(peer, first_poll_lookback_seconds=5 * 86_400))), "the look-back is a setting"


def test_the_cursor_keeps_the_checkpoint_and_the_next_poll_rescans_before_it(peer: XApiPeer) -> None:
    adapter = adapter_for(peer, rescan_seconds=600)
    first = mention(peer, "Air PAM keruh di Rawamangun.")
    result = fetch(adapter)
    assert result.cursor is not None
    state = json.loads(result.cursor)
    assert state["mentions"]["since_id"] == first
    assert not any(secret in result.cursor for secret in SECRETS)

    fetch(adapter, result.cursor)
    asked = peer.api_requests()[-1]
    expected = snowflake_time(int(first)) - timedelta(seconds=600)
    asked_from = datetime.strptime(asked.params["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(0) <= expected - asked_from < timedelta(seconds=1), "start_time is the window before the newest"
    assert "since_id" not in asked.params, "since_id would take precedence over start_time and skip late tweets"


def test_a_tweet_indexed_late_is_found_by_the_rescan_and_the_checkpoint_never_goes_back(peer: XApiPeer) -> None:
    adapter = adapter_for(peer)
    newest = mention(peer, "Genangan di underpass Senen.")
    cursor = fetch(adapter).cursor
    late = mention(peer, "Lubang besar di Jl. Matraman.", created_at=datetime.now(UTC) - timedelta(minutes=5))
    result = fetch(adapter, cursor)
    assert late in ids(result) and int(late) < int(newest)
    assert result.cursor is not None
    assert json.loads(result.cursor)["mentions"]["since_id"] == newest


def test_pages_are_followed_and_a_burst_larger_than_the_page_budget_is_finished_next_poll(peer: XApiPeer) -> None:
    adapter = adapter_for(peer, max_results=10, max_pages=2)
    first_batch = [mention(peer, f"Keluhan nomor {n} di Jakarta Timur.") for n in range(25)]
    one = fetch(adapter)
    assert sorted(ids(one)) == sorted(first_batch[-20:]), "two pages of ten, newest first"
    assert [r.params.get("pagination_token") is not None for r in peer.api_requests()] == [False, True]
    two = fetch(adapter, one.cursor)
    assert set(first_batch[:5]) <= set(ids(two)), "the rest of the burst comes next poll"

    # A second burst beyond the checkpoint: the part between it and the pages read is read next poll.
    second_batch = [mention(peer, f"Keluhan lanjutan {n} di Jakarta Barat.") for n in range(25)]
    three = fetch(adapter, two.cursor)
    four = fetch(adapter, three.cursor)
    five = fetch(adapter, four.cursor)
    seen = set(ids(one)) | set(ids(two)) | set(ids(three)) | set(ids(four)) | set(ids(five))
    assert seen == set(first_batch) | set(second_batch)
    assert five.cursor is not None and "gap_until_id" not in five.cursor, "the gap is closed"


def test_the_search_adds_its_tweets_once_and_leaves_out_ours_and_retweets(peer: XApiPeer) -> None:
    both = mention(peer, "Banjir di Cawang #jakartabanjir")
    only_search = peer.tweet("Kali Ciliwung meluap ke Kampung Pulo #jakartabanjir", author="warga_pulo")
    peer.tweet("Tim sudah menuju lokasi #jakartabanjir", author=peer.username)
    peer.tweet("RT @warga_pulo: Kali Ciliwung meluap #jakartabanjir", retweet_of=only_search, author="penerus")
    result = fetch(adapter_for(peer, search_query="#jakartabanjir -is:retweet"))
    assert ids(result) == sorted([both, only_search], key=int), "each tweet once, oldest first"
    searched = [r for r in peer.api_requests() if r.path == "/2/tweets/search/recent"]
    assert searched and searched[0].params["query"] == "#jakartabanjir -is:retweet"
    assert searched[0].params["sort_order"] == "recency"


def test_a_changed_search_query_starts_afresh_from_the_first_poll_lookback(peer: XApiPeer) -> None:
    peer.tweet("Jalan rusak #jakartarusak", author="warga_a")
    cursor = fetch(adapter_for(peer, search_query="#jakartarusak")).cursor
    older = peer.tweet(
        "Pohon tumbang #pohontumbang", author="warga_b", created_at=datetime.now(UTC) - timedelta(hours=3)
    )
    result = fetch(adapter_for(peer, search_query="#pohontumbang"), cursor)
    assert older in ids(result)
    assert result.cursor is not None and json.loads(result.cursor)["search"]["query"] == "#pohontumbang"


def test_an_unreadable_cursor_starts_as_a_first_poll() -> None:
    assert TwitterCursor.load("not json at all") == TwitterCursor()
    assert TwitterCursor.load('{"v": 1, "mentions": {"since_id": "12; DROP"}}') == TwitterCursor()


def test_a_tweet_that_cannot_be_used_is_quarantined_once_not_at_every_rescan(peer: XApiPeer) -> None:
    entities = {"mentions": [{"start": 0, "end": 11, "username": peer.username, "id": peer.user_id}]}
    [bad] = peer.publish({"data": [{"id": "1", "text": 12345, "entities": entities}]})
    good = mention(peer, "Drainase tersumbat di Jl. Percetakan Negara.")
    adapter = adapter_for(peer)
    first = fetch(adapter)
    assert ids(first) == [good]
    assert [item.external_id for item in first.rejected] == [bad]
    assert "text" in first.rejected[0].reason
    again = fetch(adapter, first.cursor)
    assert again.rejected == [], "the rescan meets it again but it was already quarantined"


# ------------------------------------------------------------------------------------------------ failures


def test_a_rate_limit_says_when_to_come_back(peer: XApiPeer) -> None:
    reset = int(time.time()) + 120
    peer.rate_limit_until(reset)
    with pytest.raises(ChannelUnavailable) as raised:
        fetch(adapter_for(peer))
    assert raised.value.retryable is True
    assert raised.value.retry_after is not None
    assert reset - time.time() <= raised.value.retry_after <= reset - time.time() + 2


@pytest.mark.parametrize(
    ("status", "retryable", "says"),
    [
        (401, False, "bearer_token"),
        (403, False, "access level"),
        (500, True, "500"),
        (503, True, "503"),
    ],
)
def test_platform_failures_are_retried_or_not_as_they_deserve(
    peer: XApiPeer, status: int, retryable: bool, says: str
) -> None:
    peer.fail(status)
    with pytest.raises(ChannelUnavailable) as raised:
        fetch(adapter_for(peer))
    assert raised.value.retryable is retryable
    assert says in str(raised.value)
    assert not any(secret in str(raised.value) for secret in SECRETS)


def test_a_wrong_bearer_token_is_not_retried(peer: XApiPeer) -> None:
    adapter = build_adapter(TwitterAdapter, settings_for(peer, bearer_token="revoked-token-0000000000"))
    with pytest.raises(ChannelUnavailable) as raised:
        fetch(adapter)  # type: ignore[arg-type]
    assert raised.value.retryable is False and "revoked-token" not in str(raised.value)


def test_an_unknown_account_is_not_retried_and_the_setting_named(peer: XApiPeer) -> None:
    adapter = build_adapter(TwitterAdapter, {**settings_for(peer), "user_id": "42"})
    with pytest.raises(ChannelUnavailable) as raised:
        fetch(adapter)  # type: ignore[arg-type]
    assert raised.value.retryable is False and "user_id" in str(raised.value)


def test_a_slow_api_times_out_and_is_retried(peer: XApiPeer) -> None:
    peer.delay = 1.5
    started = time.monotonic()
    with pytest.raises(ChannelUnavailable) as raised:
        fetch(adapter_for(peer, timeout_seconds=0.3))
    assert raised.value.retryable is True and "unreachable" in str(raised.value)
    assert time.monotonic() - started < 1.4, "the timeout applies: tweepy sets none of its own"


def test_a_page_that_is_not_json_is_retried_not_skipped(peer: XApiPeer, monkeypatch: pytest.MonkeyPatch) -> None:
    mention(peer, "Halte rusak di Jl. Pemuda.")
    original = peer._page

    def garbled(*args: Any, **kwargs: Any) -> tuple[int, Any]:
        original(*args, **kwargs)
        return 200, ("application/json", b"<html>upstream error</html>")

    monkeypatch.setattr(peer, "_page", garbled)
    with pytest.raises(ChannelUnavailable) as raised:
        fetch(adapter_for(peer))
    assert raised.value.retryable is True and "not JSON" in str(raised.value)


# ------------------------------------------------------------------------------------------------ replying


def reply_to(tweet_id: str | None, text: str, **extra: Any) -> OutboundReply:
    return OutboundReply(recipient=Sender(id="77", handle="budi_jkt"), text=text, in_reply_to=tweet_id, **extra)


def test_a_reply_answers_the_citizens_tweet_with_user_context_and_returns_its_id(peer: XApiPeer) -> None:
    complaint = mention(peer, "Lampu jalan mati di Jl. Kenari.", author="budi_jkt")
    adapter = adapter_for(peer)
    text = "Laporan Anda sudah kami terima dengan nomor K7M2Q9. Pantau di https://kanal.jakarta.go.id/status/K7M2Q9"
    sent_id = asyncio.run(adapter.send(reply_to(complaint, text, ticket="K7M2Q9")))
    [body] = peer.posted
    assert body == {"text": text, "reply": {"in_reply_to_tweet_id": complaint}}
    [post] = peer.api_requests("POST")
    assert post.headers["authorization"].startswith("OAuth ") and BEARER_TOKEN not in post.headers["authorization"]
    assert sent_id and sent_id != complaint and int(sent_id) > int(complaint)


def test_a_long_reply_is_cut_to_280_keeping_the_ticket_and_the_status_link(peer: XApiPeer) -> None:
    complaint = mention(peer, "Saluran air tersumbat.", author="budi_jkt")
    link = "https://kanal.jakarta.go.id/status/K7M2Q9"
    note = "Petugas Suku Dinas Sumber Daya Air Jakarta Pusat sudah meninjau lokasi dan menjadwalkan pengerukan. " * 4
    text = f"Laporan K7M2Q9 diproses. {note} Pantau di {link}"
    asyncio.run(adapter_for(peer).send(reply_to(complaint, text, ticket="K7M2Q9")))
    [body] = peer.posted
    assert tweet_weight(body["text"]) <= 280
    assert link in body["text"] and "K7M2Q9" in body["text"] and "\u2026" in body["text"]


def test_a_reply_without_the_citizens_tweet_answers_the_conversation_and_names_them(peer: XApiPeer) -> None:
    root = mention(peer, "Jembatan penyeberangan rusak.", author="ani_jkt")
    reply = OutboundReply(recipient=Sender(handle="budi_jkt"), text="Laporan Anda sedang diproses.", thread_id=root)
    asyncio.run(adapter_for(peer).send(reply))
    [body] = peer.posted
    assert body["reply"] == {"in_reply_to_tweet_id": root}
    assert body["text"].startswith("@budi_jkt ")


def test_a_reply_with_no_tweet_to_answer_is_not_retried(peer: XApiPeer) -> None:
    with pytest.raises(ChannelUnavailable) as raised:
        asyncio.run(adapter_for(peer).send(reply_to(None, "Laporan diterima.")))
    assert raised.value.retryable is False
    assert peer.posted == []


def test_a_read_only_channel_says_what_to_configure_to_reply(peer: XApiPeer) -> None:
    adapter = adapter_for(peer, reply=False)
    with pytest.raises(NotImplementedError) as raised:
        asyncio.run(adapter.send(reply_to("1", "Laporan diterima.")))
    assert "consumer_key" in str(raised.value) and "access_token_secret" in str(raised.value)
    assert peer.api_requests("POST") == []


@pytest.mark.parametrize(("status", "retryable"), [(403, False), (401, False), (429, True), (503, True)])
def test_a_refused_reply_is_retried_only_when_it_may_pass(peer: XApiPeer, status: int, retryable: bool) -> None:
    complaint = mention(peer, "Pipa bocor di Jl. Tebet Raya.")
    if status == 429:
        peer.rate_limit_until(int(time.time()) + 60)
    else:
        peer.fail(status)
    with pytest.raises(ChannelUnavailable) as raised:
        asyncio.run(adapter_for(peer).send(reply_to(complaint, "Laporan diterima.")))
    assert raised.value.retryable is retryable
    if status == 429:
        assert raised.value.retry_after is not None and raised.value.retry_after > 50


# ------------------------------------------------------------------------------------------------ media


def test_a_photo_is_downloaded_from_the_media_host(peer: XApiPeer) -> None:
    key = peer.photo("lubang.jpg", TINY_JPEG)
    tweet = mention(peer, "Lubang di Jl. Cempaka Putih Raya.", media=[key])
    [message] = fetch(adapter_for(peer)).messages
    assert message.external_id == tweet
    [ref] = message.media
    assert ref.platform_id == key and ref.content_type == "image/jpeg"
    content = asyncio.run(adapter_for(peer).download_media(ref, max_bytes=1024))
    assert content.data == TINY_JPEG and content.content_type == "image/jpeg"


def test_a_photo_larger_than_the_limit_is_not_downloaded(peer: XApiPeer) -> None:
    key = peer.photo("besar.jpg", TINY_JPEG * 100)
    mention(peer, "Foto besar.", media=[key])
    [message] = fetch(adapter_for(peer)).messages
    with pytest.raises(MediaUnavailable, match="too large"):
        asyncio.run(adapter_for(peer).download_media(message.media[0], max_bytes=len(TINY_JPEG)))


def test_a_photo_on_a_foreign_host_is_not_downloaded(peer: XApiPeer) -> None:
    ref = MediaRef(url="https://evil.example/media/x.jpg", content_type="image/jpeg")
    with pytest.raises(MediaUnavailable, match="not an allowed host"):
        asyncio.run(adapter_for(peer).download_media(ref, max_bytes=1024))
    assert adapter_for(peer).allowed_media_hosts() >= {"pbs.twimg.com", "127.0.0.1"}


# --------------------------------------------------------------------------------------- configuration


def test_replying_needs_all_four_user_context_credentials(peer: XApiPeer) -> None:
    partial = {**settings_for(peer, reply=False), "consumer_key": CONSUMER_KEY, "access_token": ACCESS_TOKEN}
    with pytest.raises(ValidationError) as raised:
        TwitterAdapter.settings_model.model_validate(partial)
    assert "consumer_secret" in str(raised.value) and "access_token_secret" in str(raised.value)


def test_a_numeric_user_id_from_yaml_is_accepted(peer: XApiPeer) -> None:
    validated = TwitterAdapter.settings_model.model_validate({**settings_for(peer), "user_id": 1501000000000000001})
    assert validated.user_id == "1501000000000000001"  # type: ignore[attr-defined]


def test_a_twitter_channel_cannot_be_trusted() -> None:
    with pytest.raises(ConfigError, match="cannot be trusted"):
        resolve_channel_defaults("twitter:x", ChannelConfig(type="twitter", trusted=True), TwitterAdapter)


def test_nothing_can_be_pushed_to_a_twitter_channel(peer: XApiPeer) -> None:
    request = RawRequest("POST", "/channels/twitter:x/inbound", {}, {}, b"{}", "203.0.113.9", datetime.now(UTC))
    with pytest.raises(SignatureInvalid):
        adapter_for(peer).verify(request)


def test_no_credential_is_logged_even_at_debug(peer: XApiPeer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    complaint = mention(peer, "Jalan licin oli tumpah di Jl. Gatot Subroto.")
    adapter = adapter_for(peer)
    fetch(adapter)
    asyncio.run(adapter.send(reply_to(complaint, "Laporan diterima.")))
    peer.fail(401)
    with pytest.raises(ChannelUnavailable):
        fetch(adapter)
    for secret in SECRETS:
        assert secret not in caplog.text, f"{secret[:4]}... was logged"

"""The `twitter` channel type through a real Kanal polling a fake X API: the pull contract kit, the
documented payloads, rescans, restarts, rate limits and the reply to the citizen's tweet."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from adapters.twitter import snowflake_time
from gateway import cursors
from gateway.db import read_session
from kanal_testing import (
    KanalUnderTest,
    PullChannelProfile,
    PullContractSuite,
    inbound_messages,
    kanal_settings,
    reports,
    wait_until,
)
from tests.peers.x_api import ACCESS_TOKEN, ACCESS_TOKEN_SECRET, BEARER_TOKEN, CONSUMER_KEY, CONSUMER_SECRET, XApiPeer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "twitter"
CHANNEL = "twitter:dkijakarta"
TIMEOUT = 20.0
VALID_TEXT = "Lampu jalan mati di Jl. Salemba Raya depan RSCM sejak tiga hari, gelap dan rawan begal."


def channel_settings(peer: XApiPeer, **extra: Any) -> dict[str, Any]:
    return {
        "user_id": peer.user_id,
        "bearer_token": BEARER_TOKEN,
        "consumer_key": CONSUMER_KEY,
        "consumer_secret": CONSUMER_SECRET,
        "access_token": ACCESS_TOKEN,
        "access_token_secret": ACCESS_TOKEN_SECRET,
        "api_base_url": peer.base_url,
        "timeout_seconds": 5,
        **extra,
    }


class TwitterProfile(PullChannelProfile):
    channel_type = "twitter"
    channel_id = "twitter:test"
    expected_text = VALID_TEXT

    def start_peer(self) -> contextlib.AbstractContextManager[Any]:
        return XApiPeer()

    def channel_settings(self, peer: XApiPeer) -> dict[str, Any]:
        return channel_settings(peer)

    def add_item(self, peer: XApiPeer, name: str) -> str:
        text = (
            VALID_TEXT
            if name == "valid"
            else "Trotoar di Jl. Cikini Raya rusak dan berlubang, pejalan kaki turun ke jalan."
        )
        return peer.tweet(f"@{peer.username} {text}")

    def set_failing(self, peer: XApiPeer, failing: bool) -> None:
        if failing:
            peer.fail(503)
        else:
            peer.recover()


class TestTwitterContract(PullContractSuite):
    profile = TwitterProfile()

    @pytest.fixture
    def kanal_database_url(self, database_url: str) -> str:
        return database_url


# ------------------------------------------------------------------------------- end to end, on both engines


@pytest.fixture
def peer() -> Iterator[XApiPeer]:
    with XApiPeer() as running:
        yield running


def kanal_config(database_url: str, peer: XApiPeer, *, poll: float = 0.2, **settings: Any) -> dict[str, Any]:
    channel = {
        "type": "twitter",
        "poll_interval_seconds": poll,
        "poll_backoff_cap_seconds": 1,
        "settings": channel_settings(peer, **settings),
    }
    return kanal_settings(
        database_url,
        {CHANNEL: channel},
        # Fixture photos live on pbs.twimg.com, which tests never reach; downloads are tested on the peer.
        media={"enabled": False},
    )


def stored(engine: Engine) -> dict[str, dict[str, Any]]:
    """External id -> stored message of the channel."""
    return {row.external_id: row.message for row in inbound_messages(engine) if row.channel_id == CHANNEL}


def delivery_counts(engine: Engine) -> dict[str, int]:
    return {row.external_id: row.delivery_count for row in inbound_messages(engine) if row.channel_id == CHANNEL}


def channel_state(engine: Engine) -> cursors.ChannelCursor:
    with read_session(engine) as session:
        return cursors.read_state(session.connection(), CHANNEL)


def successful_polls(engine: Engine, count: int) -> None:
    for _ in range(count):
        last = channel_state(engine).last_success_at
        wait_until(
            lambda last=last: (after := channel_state(engine).last_success_at) is not None and after != last,  # type: ignore[misc]
            timeout=TIMEOUT,
            what="another successful poll",
        )


def test_documented_mentions_are_stored_as_complaints_and_the_rest_is_left_out(
    database_url: str, peer: XApiPeer
) -> None:
    [plain] = peer.publish_fixture(FIXTURES / "mentions_plain.json")
    [photo] = peer.publish_fixture(FIXTURES / "mentions_photo.json")
    poi, pinned = peer.publish_fixture(FIXTURES / "mentions_place.json")
    retweet, own_reply, bare = peer.publish_fixture(FIXTURES / "mentions_ignored.json")
    [tag_only] = peer.publish_fixture(FIXTURES / "mentions_reply_tag.json")
    with KanalUnderTest(kanal_config(database_url, peer)) as gateway:
        engine = gateway.runtime.engine
        wait_until(lambda: len(stored(engine)) >= 5, timeout=TIMEOUT, what="five complaints polled")
        successful_polls(engine, 2)
        messages = stored(engine)
        assert sorted(messages) == sorted([plain, photo, poi, pinned, tag_only])
        assert not {retweet, own_reply, bare} & set(messages), "retweets, our own reply and bare mentions are left out"

        assert messages[plain]["text"] == (
            "Jalan berlubang besar di Jl. Kramat Raya depan halte Senen, sudah dua minggu belum diperbaiki. "
            "Motor sering jatuh & macet parah."
        )
        assert messages[plain]["sender"] == {
            "id": "1345678901234567890",
            "name": "Budi Santoso",
            "handle": "budisantoso_jkt",
        }
        assert messages[plain]["thread_id"] == plain
        assert messages[plain]["sent_at"].endswith("Z") or messages[plain]["sent_at"][-6] in "+-"

        assert messages[photo]["text"].endswith("Bau!"), "the photo's t.co link is dropped from the text"
        assert [(m["url"], m["content_type"]) for m in messages[photo]["media"]] == [
            ("https://pbs.twimg.com/media/GkSampahKali1.jpg", "image/jpeg"),
            ("https://pbs.twimg.com/ext_tw_video_thumb/1897002234567890002/pu/img/KaliSunter.jpg", "image/jpeg"),
        ]

        assert messages[poi]["location"] == {
            "lat": pytest.approx(-6.21),
            "lng": pytest.approx(106.8499),
            "address": "Stasiun Manggarai",
        }
        assert messages[pinned]["location"] == {"lat": -6.2615, "lng": 106.8012, "address": "Kebayoran Baru, Indonesia"}

        assert "Banjir setinggi lutut di Jl. Kemang Raya" in messages[tag_only]["text"]
        wait_until(lambda: len(reports(engine)) == 5, timeout=TIMEOUT, what="a report per complaint")


def test_rescans_find_a_late_indexed_tweet_and_store_nothing_twice(database_url: str, peer: XApiPeer) -> None:
    first = peer.tweet(f"@{peer.username} Got mampet di Jl. Pramuka, air meluap ke jalan.")
    with KanalUnderTest(kanal_config(database_url, peer)) as gateway:
        engine = gateway.runtime.engine
        wait_until(lambda: first in stored(engine), timeout=TIMEOUT, what="the first tweet")
        # X indexed this one late: created two minutes ago, so its id is below the checkpoint.
        late = peer.tweet(
            f"@{peer.username} Kabel listrik menjuntai rendah di Gang Sawo, Utan Kayu.",
            created_at=datetime.now(UTC) - timedelta(minutes=2),
        )
        assert int(late) < int(first)
        wait_until(lambda: late in stored(engine), timeout=TIMEOUT, what="the late-indexed tweet")
        successful_polls(engine, 3)
        counts = delivery_counts(engine)
        assert sorted(counts) == sorted([first, late])
        assert counts[first] >= 3, "every poll rescans the window, and the inbox recognises the tweet"
        wait_until(lambda: len(reports(engine)) == 2, timeout=TIMEOUT, what="two reports")
        successful_polls(engine, 1)
        assert len(reports(engine)) == 2


def test_a_restart_between_polls_loses_nothing_and_stores_nothing_twice(database_url: str, peer: XApiPeer) -> None:
    before = peer.tweet(f"@{peer.username} Pohon tumbang di Jl. Diponegoro menutup satu lajur.")
    config = kanal_config(database_url, peer)
    with KanalUnderTest(config) as gateway:
        wait_until(lambda: before in stored(gateway.runtime.engine), timeout=TIMEOUT, what="the tweet before")
        # The cursor is saved in a commit after the messages': wait for it rather than read it in between.
        wait_until(
            lambda: before in (channel_state(gateway.runtime.engine).cursor or ""), timeout=TIMEOUT, what="the cursor"
        )
    # While Kanal is down: a new tweet, and one X indexes late (older than what was already read).
    during = peer.tweet(f"@{peer.username} Lampu lalu lintas Bundaran HI mati sejak pagi.")
    late = peer.tweet(
        f"@{peer.username} Trotoar amblas di depan Stasiun Sudirman.",
        created_at=datetime.now(UTC) - timedelta(minutes=1),
    )
    asked_before_restart = len(peer.api_requests())
    with KanalUnderTest(config) as gateway:
        engine = gateway.runtime.engine
        wait_until(lambda: {during, late} <= set(stored(engine)), timeout=TIMEOUT, what="the tweets from the gap")
        successful_polls(engine, 2)
        assert sorted(stored(engine)) == sorted([before, during, late])
        wait_until(lambda: len(reports(engine)) == 3, timeout=TIMEOUT, what="three reports")
    resumed = peer.api_requests()[asked_before_restart]
    rescan_from = snowflake_time(int(before)) - timedelta(seconds=900)
    asked_from = datetime.strptime(resumed.params["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((asked_from - rescan_from).total_seconds()) < 2, "the restarted process resumes from the stored cursor"


def test_a_rate_limit_delays_the_next_poll_until_the_reset(database_url: str, peer: XApiPeer) -> None:
    waiting = peer.tweet(f"@{peer.username} Parkir liar memenuhi bahu jalan di Jl. Hayam Wuruk.")
    peer.rate_limit_for(4)  # from Kanal's first request, however long it takes to start
    with KanalUnderTest(kanal_config(database_url, peer)) as gateway:
        engine = gateway.runtime.engine
        limited = wait_until(
            lambda: (s := channel_state(engine)).consecutive_failures >= 1 and s, timeout=TIMEOUT, what="the 429"
        )
        reset = peer.rate_limit_reset
        assert reset is not None
        assert isinstance(limited, cursors.ChannelCursor) and limited.next_attempt_at is not None
        assert limited.next_attempt_at >= datetime.fromtimestamp(reset, UTC), "the next poll waits for the reset"
        assert limited.last_error_retryable is True and "rate limit" in (limited.last_error or "")
        wait_until(lambda: waiting in stored(engine), timeout=TIMEOUT, what="the tweet after the reset")
        # The messages are committed before the poll records its success: wait for that second commit.
        wait_until(lambda: channel_state(engine).consecutive_failures == 0, timeout=TIMEOUT, what="the recovery")
    asked = peer.api_requests()
    limited_requests = [r for r in asked if r.status == 429]
    assert len(limited_requests) == 1, "one refused request, then nothing until the reset"
    assert all(r.at >= reset for r in asked if r.status != 429), "no request before the reset time"


def test_a_new_report_is_answered_in_reply_to_the_citizens_tweet_and_the_echo_is_ignored(
    database_url: str, peer: XApiPeer
) -> None:
    complaint = peer.tweet(f"@{peer.username} Banjir 50 cm di Jl. Gunung Sahari, mobil mogok.", author="ratna_ancol")
    config = kanal_config(database_url, peer, search_query="Laporan")
    config["notifications"] = {
        "poll_interval_seconds": 0.1,
        "templates": {
            "id": {"received": "Laporan Anda sudah kami terima dengan nomor {ticket}. Pantau di {status_url}"}
        },
    }
    with KanalUnderTest(config) as gateway:
        engine = gateway.runtime.engine
        [report] = wait_until(lambda: reports(engine), timeout=TIMEOUT, what="the report")
        [posted] = wait_until(lambda: peer.posted, timeout=TIMEOUT, what="the acknowledgement tweet")
        assert posted["reply"] == {"in_reply_to_tweet_id": complaint}
        assert report.ticket_code in posted["text"] and "/status/" in posted["text"]
        # Our reply matches the search query and comes back on the next polls: it must not become a complaint.
        successful_polls(engine, 2)
        [post] = peer.api_requests("POST")
        searched = [r for r in peer.api_requests() if r.path == "/2/tweets/search/recent" and r.at > post.at]
        assert searched, "the search was polled after the reply was posted"
        assert list(stored(engine)) == [complaint]
        assert len(reports(engine)) == 1

"""The `news` channel type: the pull contract kit, and what reviewers notice of complaints in the mass media.

Feeds are served on loopback by tests/peers/feeds.py: the fixture files (RSS 2.0 and Atom) or live
feeds a test publishes articles to.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.contract import FetchResult, InboundMessage, MediaRef, OutboundReply, Sender
from adapters.errors import ChannelUnavailable, MediaUnavailable, PayloadRejected
from adapters.news import (
    ArticleFilter,
    FeedState,
    NewsAdapter,
    article_external_id,
    canonical_url,
    decode_cursor,
    feed_key,
    read_feed,
)
from gateway.plugins import resolve_channel_defaults
from gateway.settings import ChannelConfig, ConfigError
from kanal_testing import PullChannelProfile, PullContractSuite, build_adapter
from tests.peers.feeds import FIXTURES, IMAGE, Article, FeedsPeer

CHANNEL = "news:media"
KEYWORDS = ["jalan berlubang", "jalan rusak", "sampah", "keluhkan", "mengeluh", "genangan", "banjir", "lampu pju"]
POTHOLE_URL = "https://harianibukota.example/megapolitan/2026/11/25/jalan-berlubang-raya-bogor"
POTHOLE_TEXT = (
    "Jalan Berlubang di Jalan Raya Bogor Bikin Pengendara Celaka, Warga Keluhkan Lambatnya Perbaikan\n\n"
    "Warga Kramat Jati, Jakarta Timur, mengeluhkan jalan berlubang di Jalan Raya Bogor yang sudah tiga minggu "
    "belum diperbaiki. Sedikitnya dua pengendara motor terjatuh & luka ringan."
)
LIVE_TITLE = "Jalan Berlubang di Jalan Pemuda, Warga Rawamangun Keluhkan Perbaikan Lambat"
LIVE_SUMMARY = "Warga Rawamangun, Jakarta Timur, mengeluhkan lubang di Jalan Pemuda yang belum ditambal."


def news_settings(*feeds: str, **overrides: Any) -> dict[str, Any]:
    # The fixtures are dated November 2026: a long max age keeps them in whatever year the tests run.
    return {"feeds": list(feeds), "keywords": KEYWORDS, "max_age_days": 3650, "timeout_seconds": 5, **overrides}


def news(settings: dict[str, Any]) -> NewsAdapter:
    built = build_adapter(NewsAdapter, settings, channel_id=CHANNEL)
    assert isinstance(built, NewsAdapter)
    return built


def fetch(adapter: NewsAdapter, cursor: str | None = None) -> FetchResult:
    return asyncio.run(adapter.fetch(cursor))


def by_id(result: FetchResult) -> dict[str, InboundMessage]:
    return {m.external_id: m for m in result.messages}


# -- the contract kit -------------------------------------------------------------------------------

_links = itertools.count(1)


class NewsProfile(PullChannelProfile):
    channel_type = "news"
    channel_id = CHANNEL
    expected_text = f"{LIVE_TITLE}\n\n{LIVE_SUMMARY}"

    @contextlib.contextmanager
    def start_peer(self) -> Iterator[FeedsPeer]:
        with FeedsPeer() as peer:
            peer.add_feed("megapolitan", "rss", "Harian Ibukota - Megapolitan")
            peer.add_feed("warga", "atom", "Portal Warga Jakarta")
            yield peer

    def channel_settings(self, peer: FeedsPeer) -> dict[str, Any]:
        return news_settings(peer.url("megapolitan"), peer.url("warga"))

    def add_item(self, peer: FeedsPeer, name: str) -> str:
        link = f"https://harianibukota.example/megapolitan/artikel-{next(_links)}/"
        if name == "valid":
            article = Article(LIVE_TITLE, link, f"<p>{LIVE_SUMMARY}</p>", datetime.now(UTC))
            peer.publish("megapolitan", article)
        else:
            summary = "Tumpukan sampah di Pasar Minggu, Jakarta Selatan, belum diangkut."
            peer.publish("warga", Article("Sampah Menumpuk", link, summary, datetime.now(UTC)))
        external_id = article_external_id(link)
        assert external_id is not None
        return external_id

    def set_failing(self, peer: FeedsPeer, failing: bool) -> None:
        peer.fail_status = 503 if failing else None


class TestNewsContract(PullContractSuite):
    profile = NewsProfile()

    @pytest.fixture
    def kanal_database_url(self, database_url: str) -> str:
        return database_url


@pytest.fixture
def peer() -> Iterator[FeedsPeer]:
    with FeedsPeer() as running:
        yield running


# -- articles ---------------------------------------------------------------------------------------


def test_a_complaint_article_arrives_as_title_and_summary_with_its_photo(peer: FeedsPeer) -> None:
    url = peer.add_fixture("megapolitan", "megapolitan.rss.xml")
    result = fetch(news(news_settings(url)))
    pothole = by_id(result)[article_external_id(POTHOLE_URL) or ""]
    assert pothole.text == POTHOLE_TEXT, "HTML stripped, entities decoded"
    assert pothole.sender == Sender(name="Harian Ibukota - Megapolitan")
    assert pothole.thread_id == POTHOLE_URL, "the canonical article URL: no utm_*, no trailing slash"
    assert pothole.sent_at == datetime(2026, 11, 25, 3, 15, tzinfo=UTC)
    assert [(m.url, m.content_type) for m in pothole.media] == [
        ("https://img.harianibukota.example/2026/11/lubang-raya-bogor.jpg", "image/jpeg")
    ]
    assert pothole.location is None, "the normalizer finds the place in the text"


def test_a_media_rss_photo_is_kept(peer: FeedsPeer) -> None:
    url = peer.add_fixture("megapolitan", "megapolitan.rss.xml")
    [rubbish] = [m for m in fetch(news(news_settings(url))).messages if m.text.startswith("Sampah")]
    assert [m.url for m in rubbish.media] == ["https://img.harianibukota.example/2026/11/sampah-ciliwung.jpg"]


def test_an_article_that_is_no_complaint_or_not_in_jakarta_is_left_out(peer: FeedsPeer) -> None:
    url = peer.add_fixture("megapolitan", "megapolitan.rss.xml")
    texts = [m.text for m in fetch(news(news_settings(url))).messages]
    assert len(texts) == 3
    assert not any("Konser" in t for t in texts), "a Jakarta article without a complaint"
    assert not any("Cibiru" in t for t in texts), "a complaint outside Jakarta"


def test_an_article_without_a_link_is_known_by_its_guid(peer: FeedsPeer) -> None:
    url = peer.add_fixture("megapolitan", "megapolitan.rss.xml")
    [lamp] = [m for m in fetch(news(news_settings(url))).messages if m.text.startswith("Lampu PJU")]
    assert lamp.external_id.startswith("entry:") and lamp.thread_id == lamp.external_id
    again = [m for m in fetch(news(news_settings(url))).messages if m.text.startswith("Lampu PJU")]
    assert again[0].external_id == lamp.external_id


def test_the_same_article_in_two_feeds_is_one_message(peer: FeedsPeer) -> None:
    rss = peer.add_fixture("megapolitan", "megapolitan.rss.xml")
    atom = peer.add_fixture("warga", "portal_warga.atom.xml")
    result = fetch(news(news_settings(rss, atom)))
    ids = [m.external_id for m in result.messages]
    assert len(ids) == len(set(ids)) == 4
    pothole = by_id(result)[article_external_id(POTHOLE_URL) or ""]
    assert pothole.sender is not None and pothole.sender.name == "Harian Ibukota - Megapolitan", "first feed wins"
    # Reading the feeds the other way round still makes the same message id.
    swapped = fetch(news(news_settings(atom, rss)))
    assert set(by_id(swapped)) == set(ids)


def test_an_atom_entry_with_a_relative_link_and_an_enclosure_arrives(peer: FeedsPeer) -> None:
    atom = peer.add_fixture("warga", "portal_warga.atom.xml")
    [flood] = [m for m in fetch(news(news_settings(atom))).messages if m.text.startswith("Genangan")]
    assert flood.thread_id == f"{peer.base_url}/berita/2026/11/25/genangan-kemang-raya"
    assert [m.url for m in flood.media] == ["https://portalwarga.example/media/genangan-kemang.png"]
    assert flood.sent_at == datetime(2026, 11, 24, 23, 10, tzinfo=UTC)
    assert "drainase tersumbat" in flood.text and "<i>" not in flood.text


def test_places_can_be_listed_instead_of_the_gazetteer(peer: FeedsPeer) -> None:
    url = peer.add_fixture("megapolitan", "megapolitan.rss.xml")
    texts = [m.text for m in fetch(news(news_settings(url, places=["Cibiru"]))).messages]
    assert len(texts) == 1 and "Cibiru" in texts[0]


def test_articles_older_than_the_max_age_are_left_out() -> None:
    body = (FIXTURES / "megapolitan.rss.xml").read_bytes()
    articles = ArticleFilter(KEYWORDS, [])
    kwargs: dict[str, Any] = {"feed_url": "https://x.example/rss", "content_type": None, "articles": articles}
    week_after = datetime(2026, 12, 1, tzinfo=UTC)
    assert len(read_feed(body, now=week_after, max_age=timedelta(days=7), **kwargs).messages) == 3
    later = read_feed(body, now=week_after, max_age=timedelta(days=5), **kwargs)
    assert later.messages == [] and later.skipped == 5
    assert later.newest == datetime(2026, 11, 25, 5, 45, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Warga Tebet keluhkan sampah menumpuk", True),
        ("Persampahan di Tebet dibahas DPRD", False),  # "sampah" only inside another word
        ("JALAN   BERLUBANG di Cengkareng", True),  # a phrase across spaces, any case
        ("Sampah menumpuk di Bekasi", False),
        ("Harga tanah tinggi, warga mengeluh", False),  # "Tanah Tinggi" is a kelurahan, but here just words
        ("Sampah menumpuk di kelurahan Tanah Tinggi", True),
        ("Banjir rendam permukiman di DKI", True),
        ("Banjir di Kramat Jati belum surut", True),
    ],
)
def test_a_keyword_and_a_place_are_both_needed(text: str, kept: bool) -> None:
    assert ArticleFilter(KEYWORDS, []).accepts(text) is kept


# -- identity ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        "https://harianibukota.example/megapolitan/2026/11/25/jalan-berlubang-raya-bogor/",
        "https://HarianIbukota.EXAMPLE/megapolitan/2026/11/25/jalan-berlubang-raya-bogor#komentar",
        "https://harianibukota.example:443/megapolitan/2026/11/25/jalan-berlubang-raya-bogor?utm_source=x&utm_campaign=y",
        "http://harianibukota.example/megapolitan/2026/11/25/jalan-berlubang-raya-bogor?fbclid=abc",
    ],
)
def test_one_article_has_one_id_whatever_the_link_carries(variant: str) -> None:
    assert article_external_id(variant) == article_external_id(POTHOLE_URL)


def test_a_different_article_or_query_is_a_different_id() -> None:
    assert article_external_id(POTHOLE_URL + "-2") != article_external_id(POTHOLE_URL)
    assert article_external_id(POTHOLE_URL + "?page=2") != article_external_id(POTHOLE_URL)
    assert canonical_url("HTTPS://A.example/x/?b=1&utm_medium=rss#top") == "https://a.example/x?b=1"
    assert canonical_url("javascript:alert(1)") is None and article_external_id("mailto:x@y") is None


# -- polling ----------------------------------------------------------------------------------------


def test_an_unchanged_feed_is_asked_conditionally_and_costs_a_304(peer: FeedsPeer) -> None:
    url = peer.add_fixture("megapolitan", "megapolitan.rss.xml")
    adapter = news(news_settings(url))
    first = fetch(adapter)
    state = decode_cursor(first.cursor)[feed_key(url)]
    assert state.etag and state.last_modified and state.newest == datetime(2026, 11, 25, 5, 45, tzinfo=UTC)
    second = fetch(adapter, first.cursor)
    assert second.messages == [] and second.cursor == first.cursor
    [asked_first, asked_again] = peer.requests_for("megapolitan")
    assert asked_first.if_none_match is None and asked_first.status == 200
    assert (asked_again.if_none_match, asked_again.status) == (state.etag, 304)
    assert asked_again.if_modified_since == state.last_modified
    assert asked_first.user_agent and "Kanal" in asked_first.user_agent


def test_a_feed_with_only_last_modified_is_asked_with_if_modified_since(peer: FeedsPeer) -> None:
    plain = FeedsPeer(send_etag=False)
    with plain:
        url = plain.add_fixture("megapolitan", "megapolitan.rss.xml")
        adapter = news(news_settings(url))
        second = fetch(adapter, fetch(adapter).cursor)
        [_, again] = plain.requests_for("megapolitan")
    assert second.messages == [] and again.if_none_match is None and again.status == 304


def test_a_changed_feed_brings_the_new_article_and_rereads_only_the_lookback(peer: FeedsPeer) -> None:
    url = peer.add_feed("live")
    now = datetime.now(UTC).replace(microsecond=0)
    old, recent, new = (f"{POTHOLE_URL}-{n}" for n in "abc")
    peer.publish("live", Article(LIVE_TITLE, old, LIVE_SUMMARY, now - timedelta(hours=30)))
    peer.publish("live", Article("Banjir di Kampung Melayu", recent, "Air setinggi 1 meter.", now - timedelta(hours=2)))
    adapter = news(news_settings(url, lookback_hours=1))
    first = fetch(adapter)
    assert len(first.messages) == 2
    peer.publish("live", Article("Sampah di Kali Sunter", new, "Sampah menyumbat aliran kali di Tanjung Priok.", now))
    second = fetch(adapter, first.cursor)
    assert {m.external_id for m in second.messages} == {article_external_id(recent), article_external_id(new)}, (
        "the newest entry already seen comes again (the inbox knows it); older ones are not read again"
    )
    assert decode_cursor(second.cursor)[feed_key(url)].newest == now


def test_a_broken_feed_does_not_stop_the_others(peer: FeedsPeer) -> None:
    good = peer.add_fixture("megapolitan", "megapolitan.rss.xml")
    bad = peer.add_fixture("warga", "portal_warga.atom.xml")
    peer.fail("warga", 503)
    adapter = news(news_settings(good, bad))
    result = fetch(adapter)
    assert len(result.messages) == 3
    assert decode_cursor(result.cursor)[feed_key(bad)] == FeedState(), "a failed feed keeps its state"
    peer.fail("warga", None)
    recovered = fetch(adapter, result.cursor)
    pothole = article_external_id(POTHOLE_URL)
    assert pothole in by_id(result), "the pothole article came from the RSS feed"
    assert {m.text.split("\n")[0] for m in recovered.messages} == {
        "Warga Keluhkan Jalan Berlubang di Raya Bogor",
        "Genangan Setinggi 40 Sentimeter di Jalan Kemang Raya, Warga Minta Drainase Diperbaiki",
    }, "the recovered feed is read; the unchanged RSS feed answers 304 and brings nothing"
    assert pothole in by_id(recovered), "the Atom copy has the same id: the inbox takes it as a redelivery"


def test_every_feed_failing_makes_the_channel_unavailable(peer: FeedsPeer) -> None:
    first = peer.add_fixture("megapolitan", "megapolitan.rss.xml")
    second = peer.add_fixture("warga", "portal_warga.atom.xml")
    peer.fail_status = 503
    with pytest.raises(ChannelUnavailable) as caught:
        fetch(news(news_settings(first, second)))
    assert caught.value.retryable and "every feed failed (2)" in str(caught.value)


def test_a_rate_limited_feed_waits_as_asked(peer: FeedsPeer) -> None:
    url = peer.add_fixture("megapolitan", "megapolitan.rss.xml")
    peer.fail_next(1, status=429, retry_after=90)
    with pytest.raises(ChannelUnavailable) as caught:
        fetch(news(news_settings(url)))
    assert caught.value.retryable and caught.value.retry_after == 90


def test_feeds_that_are_gone_are_not_retried_soon(peer: FeedsPeer) -> None:
    with pytest.raises(ChannelUnavailable) as caught:
        fetch(news(news_settings(peer.url("nowhere"))))
    assert not caught.value.retryable and "404" in str(caught.value) and "check the URL" in str(caught.value)


def test_a_feed_key_in_the_query_is_never_shown_or_stored(peer: FeedsPeer) -> None:
    url = peer.add_fixture("megapolitan", "megapolitan.rss.xml") + "?apikey=subscriber-key-778899"
    other = url.replace("778899", "112233")
    result = fetch(news(news_settings(url, other)))
    assert result.cursor is not None and "subscriber-key" not in result.cursor
    assert len(decode_cursor(result.cursor)) == 2, "feeds differing only in their query keep their own state"
    peer.fail_status = 500
    with pytest.raises(ChannelUnavailable) as caught:
        fetch(news(news_settings(url)))
    assert "subscriber-key-778899" not in str(caught.value) and "/feeds/megapolitan" in str(caught.value)


def test_a_malformed_feed_is_skipped_and_quarantined_once_per_version() -> None:
    with FeedsPeer(send_etag=False, send_last_modified=False) as peer:
        good = peer.add_fixture("megapolitan", "megapolitan.rss.xml")
        bad = peer.add_fixture("warga", "malformed.xml")
        adapter = news(news_settings(good, bad))
        first = fetch(adapter)
        assert len(first.messages) == 3
        [rejected] = first.rejected
        assert "/feeds/warga" in rejected.reason and "not a readable RSS or Atom feed" in rejected.reason
        assert rejected.body == (FIXTURES / "malformed.xml").read_bytes()
        second = fetch(adapter, first.cursor)
        assert second.rejected == [], "the same broken body is not quarantined again"
        peer.replace_body("warga", b"<rss><channel><<< still broken")
        assert len(fetch(adapter, second.cursor).rejected) == 1, "a new broken version is"
        peer.replace_body("warga", (FIXTURES / "portal_warga.atom.xml").read_bytes())
        fixed = fetch(adapter, second.cursor)
        assert fixed.rejected == [] and any(m.text.startswith("Genangan") for m in fixed.messages)


def test_a_feed_url_answering_an_html_page_is_reported(peer: FeedsPeer) -> None:
    url = peer.add_fixture("gone", "not_a_feed.html", content_type="text/html")
    result = fetch(news(news_settings(url)))
    [rejected] = result.rejected
    assert result.messages == [] and "RSS or Atom" in rejected.reason and "/feeds/gone" in rejected.reason
    served_as_xml = read_feed(
        (FIXTURES / "not_a_feed.html").read_bytes(),
        feed_url=url,
        content_type="application/xml",
        articles=ArticleFilter(KEYWORDS, []),
        now=datetime.now(UTC),
        max_age=timedelta(days=7),
    )
    assert served_as_xml.problem is not None and "not RSS or Atom" in served_as_xml.problem


def test_a_feed_larger_than_the_cap_is_not_read(peer: FeedsPeer) -> None:
    url = peer.add_fixture("megapolitan", "megapolitan.rss.xml")
    with pytest.raises(ChannelUnavailable) as caught:
        fetch(news(news_settings(url, max_feed_bytes=1000)))
    assert not caught.value.retryable and "max_feed_bytes" in str(caught.value)


def test_feedparser_never_opens_a_file_named_by_the_body(tmp_path: Path) -> None:
    planted = tmp_path / "planted.xml"
    planted.write_bytes((FIXTURES / "megapolitan.rss.xml").read_bytes())
    reading = read_feed(
        str(planted).encode(),
        feed_url="https://x.example/rss",
        content_type=None,
        articles=ArticleFilter(KEYWORDS, []),
        now=datetime(2026, 11, 26, tzinfo=UTC),
        max_age=timedelta(days=7),
    )
    assert reading.messages == [] and reading.problem is not None


# -- settings, replies, trust -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"feeds": []}, "feeds"),
        ({"feeds": ["ftp://feeds.example/rss"]}, "not an http(s) URL"),
        ({"feeds": ["https://a.example/rss", "https://a.example/rss"]}, "listed twice"),
        ({"keywords": []}, "keywords"),
        ({"keywords": ["banjir", " "]}, "blank"),
        ({"max_age_days": 0}, "max_age_days"),
        ({"feed": ["https://a.example/rss"]}, "feed"),
    ],
)
def test_a_settings_mistake_names_the_key(change: dict[str, Any], named: str) -> None:
    settings = {**news_settings("https://a.example/rss"), **change}
    with pytest.raises(ValidationError) as caught:
        NewsAdapter.settings_model.model_validate(settings)
    assert named in str(caught.value)


def test_news_articles_have_no_reply_path() -> None:
    adapter = news(news_settings("https://a.example/rss"))
    with pytest.raises(NotImplementedError, match="news articles have no reply path"):
        asyncio.run(adapter.send(OutboundReply(recipient=Sender(name="Harian Ibukota"), text="Terima kasih")))
    assert NewsAdapter.acknowledge_receipt is False


def test_a_news_channel_can_never_be_trusted() -> None:
    assert NewsAdapter.may_be_trusted is False and NewsAdapter.trusted_by_default is False
    with pytest.raises(ConfigError, match="cannot be trusted"):
        resolve_channel_defaults(CHANNEL, ChannelConfig(type="news", trusted=True), NewsAdapter)


def test_nothing_may_be_pushed_to_a_news_channel() -> None:
    from adapters.contract import RawRequest

    adapter = news(news_settings("https://a.example/rss"))
    request = RawRequest("POST", "/", {}, {}, b"<rss/>", "127.0.0.1", datetime.now(UTC))
    adapter.verify(request)
    with pytest.raises(PayloadRejected) as caught:
        adapter.parse(request)
    assert caught.value.status_code == 405


# -- photos -----------------------------------------------------------------------------------------


def test_a_photo_on_the_feeds_host_is_downloaded(peer: FeedsPeer) -> None:
    adapter = news(news_settings(peer.url("megapolitan")))
    content = asyncio.run(adapter.download_media(MediaRef(url=f"{peer.base_url}/img/a.jpg"), max_bytes=100_000))
    assert (content.content_type, content.data) == ("image/jpeg", IMAGE)


def test_a_photo_larger_than_the_cap_is_not_downloaded(peer: FeedsPeer) -> None:
    adapter = news(news_settings(peer.url("megapolitan")))
    with pytest.raises(MediaUnavailable, match="too large"):
        asyncio.run(adapter.download_media(MediaRef(url=f"{peer.base_url}/img/a.jpg"), max_bytes=100))


def test_a_photo_on_another_host_needs_media_hosts(peer: FeedsPeer) -> None:
    ref = MediaRef(url="https://img.harianibukota.example/2026/11/lubang-raya-bogor.jpg")
    adapter = news(news_settings(peer.url("megapolitan")))
    with pytest.raises(MediaUnavailable, match="not an allowed host"):
        asyncio.run(adapter.download_media(ref, max_bytes=100_000))
    widened = news(news_settings(peer.url("megapolitan"), media_hosts=["harianibukota.example"]))
    assert "harianibukota.example" in widened.allowed_media_hosts()


def test_the_cursor_is_readable_json(peer: FeedsPeer) -> None:
    url = peer.add_fixture("megapolitan", "megapolitan.rss.xml")
    cursor = fetch(news(news_settings(url))).cursor
    assert cursor is not None
    assert set(json.loads(cursor)["feeds"][feed_key(url)]) == {"etag", "last_modified", "newest", "broken"}
    assert decode_cursor("not json") == {} and decode_cursor('{"feeds": 3}') == {}

"""Whatever a feed URL answers, the news adapter gives articles or skips the feed, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.contract import InboundMessage, RawRequest
from adapters.errors import PayloadIgnored, PayloadRejected
from adapters.news import ArticleFilter, NewsAdapter, canonical_url, decode_cursor, encode_cursor, read_feed
from kanal_testing import build_adapter
from tests.peers.feeds import FIXTURES

KEYWORDS = ["jalan berlubang", "sampah", "keluhkan", "mengeluh", "genangan", "banjir", "lampu pju"]
ARTICLES = ArticleFilter(KEYWORDS, [])
NOW = datetime(2026, 11, 26, tzinfo=UTC)
SAMPLES = [(FIXTURES / name).read_bytes() for name in ("megapolitan.rss.xml", "portal_warga.atom.xml")]


def read(body: bytes, content_type: str | None = "application/rss+xml") -> Any:
    return read_feed(
        body,
        feed_url="http://127.0.0.1:9/feeds/x",
        content_type=content_type,
        articles=ARTICLES,
        now=NOW,
        max_age=timedelta(days=3650),
    )


def check(reading: Any) -> None:
    assert reading.problem is None or not reading.messages
    for message in reading.messages:
        assert isinstance(message, InboundMessage)
        InboundMessage.model_validate(message.model_dump())  # what the inbox stores reads back
        assert message.sent_at is None or message.sent_at.tzinfo is not None
        assert message.external_id.split(":")[0] in ("url", "entry", "text")
        assert ARTICLES.accepts(message.text)


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=2048))
def test_any_bytes_as_a_feed_are_articles_or_a_skip(body: bytes) -> None:
    check(read(body))


@settings(max_examples=150, deadline=None)
@given(
    sample=st.sampled_from(SAMPLES),
    cuts=st.lists(st.tuples(st.integers(min_value=0, max_value=6000), st.binary(max_size=16)), max_size=4),
    truncate=st.none() | st.integers(min_value=0, max_value=6000),
    content_type=st.sampled_from([None, "application/rss+xml", "text/html", "text/xml; charset=iso-8859-1"]),
)
def test_a_damaged_fixture_is_articles_or_a_skip(
    sample: bytes, cuts: list[tuple[int, bytes]], truncate: int | None, content_type: str | None
) -> None:
    body = bytearray(sample)
    for position, junk in cuts:
        at = position % (len(body) + 1)
        body[at : at + len(junk)] = junk
    check(read(bytes(body[:truncate] if truncate is not None else body), content_type))


ITEM_TEXT = st.text(max_size=80)


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(
        st.fixed_dictionaries(
            {
                "title": ITEM_TEXT.map(lambda t: f"Warga keluhkan sampah di Tebet {t}"),
                "link": ITEM_TEXT | st.just("https://a.example/x?utm_source=y#z"),
                "description": ITEM_TEXT,
                "pubDate": ITEM_TEXT | st.just("Wed, 25 Nov 2026 03:15:00 +0000") | st.just("Mon, 31 Feb 99999 99:99"),
                "guid": ITEM_TEXT,
                "enclosure": ITEM_TEXT,
            }
        ),
        max_size=5,
    )
)
def test_any_field_values_in_a_well_formed_feed_are_read(items: list[dict[str, str]]) -> None:
    rendered = "".join(
        "<item>"
        f"<title>{escape(i['title'])}</title><link>{escape(i['link'])}</link>"
        f"<description>{escape(i['description'])}</description><pubDate>{escape(i['pubDate'])}</pubDate>"
        f'<guid>{escape(i["guid"])}</guid><enclosure url={quoteattr(i["enclosure"])} type="image/jpeg"/>'
        "</item>"
        for i in items
    )
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>T</title>{rendered}</channel></rss>'
    )
    check(read(body.encode("utf-8", "surrogatepass")))


@settings(max_examples=150, deadline=None)
@given(
    url=st.text(max_size=120) | st.from_regex(r"https?://[A-Za-z0-9.\-]{1,20}(:\d{1,6})?/[^\s]{0,40}", fullmatch=True)
)
def test_any_link_is_canonicalised_once_and_for_all(url: str) -> None:
    canonical = canonical_url(url)
    if canonical is not None:
        assert canonical_url(canonical) == canonical


@settings(max_examples=150, deadline=None)
@given(cursor=st.text(max_size=300))
def test_any_stored_cursor_is_read_without_a_crash(cursor: str) -> None:
    states = decode_cursor(cursor)
    assert decode_cursor(encode_cursor(states)).keys() == states.keys()


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=512))
def test_anything_pushed_to_the_route_is_refused(body: bytes) -> None:
    adapter = build_adapter(NewsAdapter, {"feeds": ["https://a.example/rss"], "keywords": ["banjir"]})
    request = RawRequest("POST", "/", {}, {}, body, "127.0.0.1", datetime.now(UTC))
    adapter.verify(request)
    with pytest.raises((PayloadRejected, PayloadIgnored)):
        adapter.parse(request)

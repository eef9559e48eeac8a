"""News in a real Kanal: one article carried by two feeds is one inbound message, an unchanged feed costs a
304 per poll, a broken feed is quarantined once, and every article waits for an admin's review."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from kanal_testing import KanalUnderTest, inbound_messages, kanal_settings, quarantine_rows, reports, wait_until
from tests.peers.feeds import FeedsPeer

CHANNEL = "news:media"
KEYWORDS = ["jalan berlubang", "sampah", "keluhkan", "mengeluh", "genangan", "lampu pju"]
TIMEOUT = 60


@pytest.fixture
def feeds() -> Iterator[FeedsPeer]:
    with FeedsPeer() as peer:
        peer.add_fixture("megapolitan", "megapolitan.rss.xml")
        peer.add_fixture("warga", "portal_warga.atom.xml")
        peer.add_fixture("rusak", "malformed.xml")
        yield peer


@pytest.fixture
def kanal(database_url: str, feeds: FeedsPeer) -> Iterator[KanalUnderTest]:
    channel: dict[str, Any] = {
        "type": "news",
        "poll_interval_seconds": 0.2,
        "poll_backoff_cap_seconds": 1,
        "settings": {
            "feeds": [feeds.url("megapolitan"), feeds.url("warga"), feeds.url("rusak")],
            "keywords": KEYWORDS,
            "max_age_days": 3650,  # the fixtures are dated November 2026
            "timeout_seconds": 5,
        },
    }
    with KanalUnderTest(kanal_settings(database_url, {CHANNEL: channel})) as running:
        yield running


def test_two_feeds_one_article_one_message_and_a_broken_feed_quarantined_once(
    feeds: FeedsPeer, kanal: KanalUnderTest
) -> None:
    engine = kanal.runtime.engine
    wait_until(lambda: len(inbound_messages(engine)) == 4, timeout=TIMEOUT, what="four articles stored")
    polls = len(feeds.requests_for("megapolitan"))
    wait_until(lambda: len(feeds.requests_for("megapolitan")) >= polls + 3, timeout=TIMEOUT, what="three more polls")

    rows = inbound_messages(engine)
    assert len(rows) == 4 and all(n == 1 for n in Counter(r.external_id for r in rows).values())
    texts = [r.message["text"] for r in rows]
    assert sum("Raya Bogor" in t for t in texts) == 1, "the pothole article of both feeds is stored once"
    assert not any("Konser" in t or "Cibiru" in t for t in texts)
    statuses = [r.status for r in feeds.requests_for("megapolitan")]
    assert statuses[0] == 200 and set(statuses[1:]) == {304}, "an unchanged feed is not downloaded again"
    kept = [q for q in quarantine_rows(engine) if q.channel_id == CHANNEL]
    assert len(kept) == 1 and "/feeds/rusak" in (kept[0].reason or ""), "the broken feed is quarantined once"

    wait_until(lambda: all(r.state != "new" for r in inbound_messages(engine)), timeout=TIMEOUT, what="normalized")
    made = [r for r in reports(engine) if r.channel_id == CHANNEL]
    assert made and all(r.state == "pending_review" for r in made), "articles always wait for an admin"

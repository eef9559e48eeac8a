"""Pull channels: polled on the scheduler, stored like push deliveries, resumed from a durable cursor."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select, text
from sqlmodel import col

from adapters.errors import ChannelUnavailable
from gateway import cursors
from gateway.db import make_engine, utcnow
from gateway.inbox import InboundMessageRow, RawDelivery
from gateway.scheduler import PullScheduler, advisory_lock_key, backoff_seconds, describe_error
from review_queue.tables import Report
from tests.conftest import base_settings
from tests.support.databases import sqlite_url
from tests.support.pull_adapter import FeedServer
from tests.support.servers import RunningGateway, wait_until

CHANNEL = "test_pull:feed"
TOKEN = "feed-token-do-not-show-0123456789"
#: No test here forwards a report, so the CRM is never called; nothing listens at this address.
UNUSED_CRM = "http://127.0.0.1:9/"


@pytest.fixture(autouse=True)
def pull_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the test adapter the way a built-in is registered, under its channel type's name."""
    from gateway import plugins

    monkeypatch.setitem(plugins.BUILTIN_PLUGINS, "test_pull", "tests.support.pull_adapter")


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def with_pull_channel(settings: dict[str, Any], feed: FeedServer, **channel: Any) -> dict[str, Any]:
    settings["channels"][CHANNEL] = {
        "type": "test_pull",
        "poll_interval_seconds": 0.2,
        "poll_backoff_cap_seconds": 2,
        "settings": {"feed_url": feed.url, "token": TOKEN, "timeout_seconds": 2},
        **channel,
    }
    return settings


def state(engine: Engine) -> cursors.ChannelCursor:
    with engine.connect() as connection:
        return cursors.read_state(connection, CHANNEL)


def inbound(engine: Engine) -> dict[str, int]:
    """External id -> delivery count, for the pull channel's inbound messages."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(col(InboundMessageRow.external_id), col(InboundMessageRow.delivery_count)).where(
                col(InboundMessageRow.channel_id) == CHANNEL
            )
        )
        return {external_id: count for external_id, count in rows}


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(model).where(model.channel_id == CHANNEL)  # type: ignore[attr-defined]
            ).scalar_one()
        )


def pull_health_all(gateway: RunningGateway) -> dict[str, Any]:
    entries: dict[str, Any] = httpx.get(f"{gateway.url}/healthz").json()["pull_channels"]
    return entries


def pull_health(gateway: RunningGateway) -> dict[str, Any]:
    entry: dict[str, Any] = pull_health_all(gateway)[CHANNEL]
    return entry


def job_ids(gateway: RunningGateway) -> list[str]:
    scheduler: PullScheduler = gateway.app.state.pull_scheduler
    return scheduler.job_ids()


def test_pulled_messages_become_inbound_messages_and_reports(database_url: str, feed: FeedServer) -> None:
    feed.add("Jalan berlubang di Jl. Kramat Raya", "Lampu jalan mati di RT 03", "Sampah menumpuk di kali")
    settings = with_pull_channel(base_settings(database_url, UNUSED_CRM), feed)
    with RunningGateway(settings) as gateway:
        engine = gateway.runtime.engine
        assert job_ids(gateway) == [f"pull:{CHANNEL}"]
        wait_until(lambda: count(engine, Report) == 3, timeout=15, what="three reports from the feed")
        assert state(engine).cursor == "3"
        assert set(inbound(engine)) == {"feed-1", "feed-2", "feed-3"}
        with engine.connect() as connection:
            bodies = connection.execute(
                select(col(RawDelivery.body), col(RawDelivery.content_type)).where(
                    col(RawDelivery.channel_id) == CHANNEL
                )
            ).all()
        assert len(bodies) == 1 and bodies[0][1] == "application/json", "one raw delivery holds the fetched batch"
        assert [m["text"] for m in json.loads(bodies[0][0])][0] == "Jalan berlubang di Jl. Kramat Raya"
        health = pull_health(gateway)
        assert health["status"] == "ok" and health["consecutive_failures"] == 0 and health["last_error"] is None
        assert health["last_success_at"] is not None


def test_the_cursor_survives_a_restart(database_url: str, feed: FeedServer) -> None:
    feed.add("Pohon tumbang", "Trotoar rusak")
    settings = with_pull_channel(base_settings(database_url, UNUSED_CRM), feed)
    with RunningGateway(settings) as first:
        wait_until(lambda: state(first.runtime.engine).cursor == "2", timeout=10, what="cursor 2")
    feed.add("Banjir di Kampung Melayu", "Got mampet")
    asked_before = len(feed.since_values())
    with RunningGateway(settings) as second:
        engine = second.runtime.engine
        wait_until(lambda: state(engine).cursor == "4", timeout=10, what="cursor 4 after the restart")
        assert feed.since_values()[asked_before] == "2", "the new process resumes from the stored cursor"
        assert inbound(engine) == {f"feed-{n}": 1 for n in range(1, 5)}


def test_a_rescanned_window_stores_nothing_twice(database_url: str, feed: FeedServer) -> None:
    feed.overlap = 2  # every answer repeats the two items before the cursor
    feed.add("Parkir liar", "Pedagang di trotoar", "Drainase tersumbat")
    settings = with_pull_channel(base_settings(database_url, UNUSED_CRM), feed)
    with RunningGateway(settings) as gateway:
        engine = gateway.runtime.engine
        wait_until(lambda: state(engine).cursor == "3", timeout=10, what="cursor 3")
        polls = len(feed.since_values())
        wait_until(lambda: len(feed.since_values()) >= polls + 2, timeout=10, what="two rescans")
        feed.add("Kabel menjuntai")
        wait_until(lambda: state(engine).cursor == "4", timeout=10, what="cursor 4")
        wait_until(lambda: count(engine, Report) == 4, timeout=15, what="four reports")
        seen = inbound(engine)
        assert sorted(seen) == ["feed-1", "feed-2", "feed-3", "feed-4"]
        assert seen["feed-2"] > 1 and seen["feed-3"] > 1, "the rescans are counted as redeliveries"
        assert count(engine, RawDelivery) == 2, "a batch holding nothing new keeps no raw delivery"


def test_a_feed_outage_backs_off_and_recovers_without_losing_messages(database_url: str, feed: FeedServer) -> None:
    feed.fail_status = 500
    feed.add("Air PAM tidak mengalir", "Jembatan retak")
    settings = with_pull_channel(base_settings(database_url, UNUSED_CRM), feed)
    with RunningGateway(settings) as gateway:
        engine = gateway.runtime.engine
        wait_until(lambda: state(engine).consecutive_failures >= 4, timeout=10, what="four failed polls")
        down = state(engine)
        assert down.cursor is None and down.last_error == "feed answered 500" and down.last_success_at is None
        assert down.next_attempt_at is not None and down.next_attempt_at > down.updated_at
        failed_at = [t for t, _, status in feed.requests if status == 500]
        # Rounds come every 0.2 s, but after the third failure in a row the wait is at least 0.5 x 0.2 x 4 s.
        assert failed_at[3] - failed_at[2] >= 0.4 - 0.05, "polls are skipped while backing off"
        health = pull_health(gateway)
        assert health["status"] == "retrying" and health["consecutive_failures"] >= 4
        assert health["last_error"] == "feed answered 500"

        feed.fail_status = None
        wait_until(lambda: state(engine).cursor == "2", timeout=10, what="recovery")
        up = state(engine)
        assert up.consecutive_failures == 0 and up.last_error is None and up.next_attempt_at is None
        assert inbound(engine) == {"feed-1": 1, "feed-2": 1}, "nothing published during the outage is lost"
        assert pull_health(gateway)["status"] == "ok"


def test_a_refusal_waits_the_longest_back_off_even_across_a_restart(database_url: str, feed: FeedServer) -> None:
    feed.fail_status = 401
    feed.add("Jalan rusak")
    settings = with_pull_channel(base_settings(database_url, UNUSED_CRM), feed, poll_backoff_cap_seconds=60)
    with RunningGateway(settings) as gateway:
        engine = gateway.runtime.engine
        wait_until(lambda: state(engine).consecutive_failures == 1, timeout=10, what="a refused poll")
        refused = state(engine)
        assert refused.last_error_retryable is False and refused.next_attempt_at is not None
        assert 55 < (refused.next_attempt_at - utcnow()).total_seconds() <= 60
        health = pull_health(gateway)
        assert health["status"] == "error" and "not retryable" in health["last_error"]
        assert TOKEN not in httpx.get(f"{gateway.url}/healthz").text
    asked = len(feed.since_values())
    with RunningGateway(settings) as again:
        time.sleep(1.0)
        assert len(feed.since_values()) == asked, "a restarted process keeps to the stored next attempt"
        assert state(again.runtime.engine).consecutive_failures == 1


def test_disabled_channels_and_types_get_no_job(tmp_path: Path, feed: FeedServer) -> None:
    settings = with_pull_channel(base_settings(sqlite_url(tmp_path), UNUSED_CRM), feed)
    settings["channels"]["test_pull:off"] = {**settings["channels"][CHANNEL], "enabled": False}
    with RunningGateway(settings) as gateway:
        assert job_ids(gateway) == [f"pull:{CHANNEL}"]
        assert sorted(pull_health_all(gateway)) == [CHANNEL]
    settings["adapters"] = {"disabled": ["test_pull"]}
    with RunningGateway(settings) as gateway:
        assert job_ids(gateway) == []
        assert pull_health_all(gateway) == {}
    settings["adapters"] = {"disabled": []}
    settings["workers"] = {"enabled": False}  # `kanal run --no-workers`: web only
    asked = len(feed.since_values())
    with RunningGateway(settings) as gateway:
        assert job_ids(gateway) == []
        time.sleep(0.5)
    assert len(feed.since_values()) == asked


def test_two_processes_on_postgresql_never_poll_a_channel_at_once(postgres_url: str, feed: FeedServer) -> None:
    feed.delay = 0.1  # long enough that polls from the two processes would overlap at the feed
    feed.add(*(f"Keluhan nomor {n}" for n in range(1, 4)))
    settings = with_pull_channel(base_settings(postgres_url, UNUSED_CRM), feed, poll_interval_seconds=0.05)
    with RunningGateway(settings) as one, RunningGateway(settings) as two:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            feed.add(f"Keluhan baru {len(feed.items) + 1}")
            time.sleep(0.2)
        total = len(feed.items)
        wait_until(lambda: state(one.runtime.engine).cursor == str(total), timeout=10, what="all items pulled")
        assert len(feed.since_values()) >= 8
        assert feed.max_in_flight == 1, "only one process polls the channel at a time"
        assert inbound(two.runtime.engine) == {f"feed-{n}": 1 for n in range(1, total + 1)}


def test_the_advisory_lock_keeps_every_process_off_the_channel(postgres_url: str, feed: FeedServer) -> None:
    feed.add("Lampu merah mati")
    settings = with_pull_channel(base_settings(postgres_url, UNUSED_CRM), feed, poll_interval_seconds=0.05)
    holder = make_engine(postgres_url)
    try:
        with holder.connect() as connection:
            # As if another Kanal process were in the middle of polling this channel.
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": advisory_lock_key(CHANNEL)})
            connection.commit()
            with RunningGateway(settings) as gateway:
                time.sleep(0.6)
                assert feed.since_values() == [], "no poll while another process holds the channel"
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": advisory_lock_key(CHANNEL)})
                connection.commit()
                wait_until(lambda: state(gateway.runtime.engine).cursor == "1", timeout=10, what="poll after unlock")
    finally:
        holder.dispose()


def test_back_off_doubles_up_to_the_cap_with_jitter() -> None:
    waits = [backoff_seconds(n, base=1, cap=60, jitter=lambda: 1.0) for n in range(1, 9)]
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_seconds(3, base=1, cap=60, jitter=lambda: 0.0) == 2.0, "jitter takes at most half off"


def test_errors_are_described_without_secrets() -> None:
    try:
        raise RuntimeError(f"GET http://feed.example/?token={TOKEN} failed")
    except RuntimeError as exc:
        described = describe_error(exc, [TOKEN])
    assert TOKEN not in described and described.startswith("RuntimeError at test_pull_scheduler.py:")
    assert describe_error(ChannelUnavailable("gone", retryable=False), []) == "not retryable: gone"

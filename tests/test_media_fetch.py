"""Photos are referenced at once and downloaded later: the message and its report never wait for them.

End to end: a real gateway with the `test_media` channel (tests/support/media_adapter.py) and a media
host on loopback (tests/peers/media_host.py) that fails, floods or stalls on demand. Then the loop on
its own (`MediaFetcher`) with adapters that fail in the ways a platform does. Both engines.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select, update

from adapters.contract import Adapter, AdapterContext, MediaContent, MediaRef
from adapters.errors import ChannelUnavailable, MediaUnavailable
from gateway import migrate
from gateway.db import make_engine, utcnow, write_connection
from gateway.inbox import InboundMessageRow
from gateway.media_fetch import MediaFetcher, MediaFile, MediaState, backoff, pending_rows, sniff
from gateway.settings import MediaConfig
from gateway.write_queue import WriteQueue
from kanal_testing.network import LoopbackOnly
from review_queue.tables import Report
from tests.conftest import base_settings
from tests.peers.media_host import TINY_JPEG, TINY_PNG, MediaHost
from tests.support.media_adapter import MediaTestAdapter, MediaTestSettings
from tests.support.servers import RunningGateway, wait_until

CHANNEL = "test_media:photos"
#: No report is forwarded here; nothing listens at this address.
UNUSED_CRM = "http://127.0.0.1:9/"
MAX_BYTES = 64 * 1024


@pytest.fixture(autouse=True)
def media_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import plugins

    monkeypatch.setitem(plugins.BUILTIN_PLUGINS, "test_media", "tests.support.media_adapter")


@pytest.fixture
def host() -> Iterator[MediaHost]:
    with MediaHost() as server:
        yield server


def gateway_settings(database_url: str, **media: Any) -> dict[str, Any]:
    settings = base_settings(database_url, UNUSED_CRM)
    settings["channels"][CHANNEL] = {"type": "test_media", "settings": {}}
    settings["media"] = {
        "poll_interval_seconds": 0.05,
        "backoff_base_seconds": 0.2,
        "backoff_cap_seconds": 1.0,
        "max_bytes": MAX_BYTES,
        "max_attempts": 50,
        **media,
    }
    return settings


def send(gateway: RunningGateway, external_id: str, *photos: str, **extra: Any) -> httpx.Response:
    body = {"id": external_id, "text": "Jalan berlubang di Jl. Salemba Raya depan kampus", "photos": list(photos)}
    response = httpx.post(f"{gateway.url}/channels/{CHANNEL}/inbound", json={**body, **extra}, timeout=10)
    assert response.status_code == 200, response.text
    return response


def report_of(engine: Engine, external_id: str) -> Report | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(Report.__table__)  # type: ignore[attr-defined]
            .join(InboundMessageRow, Report.inbound_message_id == InboundMessageRow.id)  # type: ignore[arg-type]
            .where(InboundMessageRow.external_id == external_id)  # type: ignore[arg-type]
        ).first()
    return Report.model_validate(row._mapping) if row is not None else None


def wait_for_report(engine: Engine, external_id: str, timeout: float = 15) -> Report:
    report = wait_until(lambda: report_of(engine, external_id), timeout=timeout, what=f"the report of {external_id}")
    assert report is not None
    return report


def media_files(engine: Engine) -> list[dict[str, Any]]:
    table = MediaFile.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.created_at, table.c.position)).all()
    return [dict(row._mapping) for row in rows]


def in_state(engine: Engine, state: str, count: int = 1) -> bool:
    return sum(1 for f in media_files(engine) if f["state"] == state) == count


def media_health(gateway: RunningGateway) -> dict[str, Any]:
    media: dict[str, Any] = httpx.get(f"{gateway.url}/healthz").json()["media"]
    return media


# --- End to end -------------------------------------------------------------------------------------------


def test_a_photo_message_is_a_report_at_once_while_the_host_is_down_and_its_photo_follows(
    database_url: str, host: MediaHost
) -> None:
    # A PNG the platform calls a JPEG: Kanal says what the bytes are.
    photo = host.add("/p/lubang.jpg", TINY_PNG, "image/jpeg")
    host.fail(503)
    with RunningGateway(gateway_settings(database_url)) as gateway:
        engine = gateway.runtime.engine
        send(gateway, "m-1", photo)
        report = wait_for_report(engine, "m-1")
        assert report.text_original.startswith("Jalan berlubang")
        (published,) = report.media
        assert published["url"].startswith(f"{gateway.url}/media/"), "reports only hold Kanal's own address"
        assert "platform_id" not in published and host.base_url not in json.dumps(report.media)

        wait_until(lambda: host.requests_for("/p/lubang.jpg"), timeout=10, what="a first download attempt")
        waiting = httpx.get(published["url"])
        assert waiting.status_code == 404 and waiting.json()["state"] == "pending"
        assert 1 <= int(waiting.headers["retry-after"]) <= 60
        assert media_health(gateway)["pending"] == 1

        host.recover()
        wait_until(lambda: in_state(engine, MediaState.STORED), timeout=15, what="the photo downloaded")
        served = httpx.get(published["url"])
        assert served.status_code == 200 and served.content == TINY_PNG
        assert served.headers["content-type"] == "image/png"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.headers["content-disposition"] == "inline"
        assert "default-src 'none'" in served.headers["content-security-policy"]
        assert httpx.get(published["url"][:-1] + ("0" if published["url"][-1] != "0" else "1")).status_code == 404
        health = media_health(gateway)
        assert (health["pending"], health["stored"], health["unavailable"]) == (0, 1, 0)


@pytest.mark.parametrize("how", ["content-length", "no content-length"])
def test_an_oversized_photo_is_marked_unavailable_and_the_report_is_unaffected(
    database_url: str, host: MediaHost, how: str
) -> None:
    huge = b"\xff\xd8\xff" + bytes(4 * MAX_BYTES)
    photo = host.add("/p/besar.jpg", huge, chunked=how == "no content-length")
    with RunningGateway(gateway_settings(database_url)) as gateway:
        engine = gateway.runtime.engine
        send(gateway, "m-big", photo)
        report = wait_for_report(engine, "m-big")
        wait_until(lambda: in_state(engine, MediaState.UNAVAILABLE), timeout=15, what="the photo refused")
        (file,) = media_files(engine)
        assert file["data"] is None and file["attempts"] == 1, "a file too large is not tried again"
        assert file["last_error"].startswith("too large"), file["last_error"]
        answer = httpx.get(report.media[0]["url"])
        assert answer.status_code == 404 and answer.json()["state"] == "unavailable"
        assert "too large" in answer.json()["reason"] and "retry-after" not in answer.headers
        again = report_of(engine, "m-big")
        assert again is not None and again.media == report.media, "the report does not change for its photo"
        assert media_health(gateway)["unavailable"] == 1


def test_photos_on_hosts_the_channel_does_not_allow_are_never_fetched(
    database_url: str, host: MediaHost, network_guard: LoopbackOnly
) -> None:
    host.add("/p/1.jpg", TINY_JPEG)
    # The same server under a name the channel does not allow, and a host off this machine.
    by_other_name = f"http://localhost:{host.port}/p/1.jpg"
    with RunningGateway(gateway_settings(database_url)) as gateway:
        engine = gateway.runtime.engine
        send(gateway, "m-foreign", by_other_name, "https://cdn.example.net/p/2.jpg", "ftp://127.0.0.1/p/3.jpg")
        wait_until(lambda: in_state(engine, MediaState.UNAVAILABLE, 3), timeout=15, what="three photos refused")
        assert all("not an allowed host" in f["last_error"] for f in media_files(engine))
        assert wait_for_report(engine, "m-foreign").media[0]["url"].startswith(gateway.url)
    assert host.requests == [], "a host the channel does not allow is never contacted"
    assert network_guard.blocked == []


def test_a_failing_host_is_retried_with_backoff_until_it_recovers(database_url: str, host: MediaHost) -> None:
    photo = host.add("/p/banjir.jpg", TINY_JPEG)
    host.fail(503, path="/p/banjir.jpg", times=3)
    with RunningGateway(gateway_settings(database_url)) as gateway:
        engine = gateway.runtime.engine
        send(gateway, "m-retry", photo)
        wait_until(lambda: in_state(engine, MediaState.STORED), timeout=20, what="the photo after three failures")
    (file,) = media_files(engine)
    assert file["attempts"] == 4 and file["last_error"] is None and file["content_type"] == "image/jpeg"
    times = [r.at for r in host.requests_for("/p/banjir.jpg")]
    assert len(times) == 4, "one request per attempt, none after the file is stored"
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # Waits of base x 2^(n-1), jittered down to half: at least 0.1, 0.2 and 0.4 s (the poll adds some).
    assert gaps[0] >= 0.1 - 0.02 and gaps[1] >= 0.2 - 0.02 and gaps[2] >= 0.4 - 0.02, gaps


def test_pending_photos_survive_a_restart_and_the_next_process_fetches_them(database_url: str, host: MediaHost) -> None:
    photo = host.add("/p/sampah.jpg", TINY_JPEG)
    host.fail(503)
    settings = gateway_settings(database_url)
    with RunningGateway(settings) as first:
        send(first, "m-restart", photo)
        wait_for_report(first.runtime.engine, "m-restart")
        wait_until(lambda: media_files(first.runtime.engine)[0]["attempts"] >= 1, timeout=10, what="a failed attempt")
    (file,) = media_files(make_engine(database_url))
    assert file["state"] == MediaState.PENDING and file["attempts"] >= 1
    host.recover()
    with RunningGateway(settings) as second:
        engine = second.runtime.engine
        wait_until(lambda: in_state(engine, MediaState.STORED), timeout=15, what="the photo after the restart")
        # Reports keep the address of the process that made them; this one listens elsewhere.
        url = wait_for_report(engine, "m-restart").media[0]["url"].replace(first.url, second.url)
        served = httpx.get(url)
        assert served.status_code == 200 and served.content == TINY_JPEG


def test_with_downloads_switched_off_refs_wait_and_are_fetched_once_switched_on(
    database_url: str, host: MediaHost
) -> None:
    photo = host.add("/p/pohon.jpg", TINY_JPEG)
    with RunningGateway(gateway_settings(database_url, enabled=False)) as off:
        send(off, "m-off", photo)
        url = wait_for_report(off.runtime.engine, "m-off").media[0]["url"]
        answer = httpx.get(url)
        assert answer.status_code == 404 and "switched off" in answer.json()["detail"]
        assert media_health(off)["pending"] == 1
    assert host.requests == []
    with RunningGateway(gateway_settings(database_url)) as on:
        wait_until(lambda: in_state(on.runtime.engine, MediaState.STORED), timeout=15, what="the photo")
        assert httpx.get(url.replace(off.url, on.url)).content == TINY_JPEG


def test_a_redelivered_message_adds_no_second_download(database_url: str, host: MediaHost) -> None:
    photo = host.add("/p/kabel.jpg", TINY_JPEG)
    with RunningGateway(gateway_settings(database_url)) as gateway:
        engine = gateway.runtime.engine
        first = send(gateway, "m-dup", photo, photo)
        again = send(gateway, "m-dup", photo, photo)
        assert again.json()["accepted"][0]["duplicate"] is True and first.json()["accepted"][0]["duplicate"] is False
        wait_until(lambda: in_state(engine, MediaState.STORED, 2), timeout=15, what="both photos")
        send(gateway, "m-dup", photo, photo)
        time.sleep(0.3)
        files = media_files(engine)
        assert [(f["position"], f["state"]) for f in files] == [(0, "stored"), (1, "stored")]
        assert len(host.requests_for("/p/kabel.jpg")) == 2, "one download per ref of the first delivery"


def test_a_file_that_is_not_what_it_claims_is_served_as_a_download(database_url: str, host: MediaHost) -> None:
    page = b"<html><script>alert(document.cookie)</script></html>"
    photo = host.add("/p/foto.jpg", page, "image/jpeg")
    with RunningGateway(gateway_settings(database_url)) as gateway:
        engine = gateway.runtime.engine
        send(gateway, "m-html", photo)
        wait_until(lambda: in_state(engine, MediaState.STORED), timeout=15, what="the file")
        served = httpx.get(wait_for_report(engine, "m-html").media[0]["url"])
    assert served.content == page and served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"] == "attachment"
    assert served.headers["x-content-type-options"] == "nosniff"


def test_photos_of_a_conversation_follow_its_parts_into_the_one_report(database_url: str, host: MediaHost) -> None:
    first_photo = host.add("/p/a.jpg", TINY_JPEG)
    second_photo = host.add("/p/b.png", TINY_PNG, "image/png")
    with RunningGateway(gateway_settings(database_url)) as gateway:
        engine = gateway.runtime.engine
        send(gateway, "c-1", first_photo, assembly={"key": "warga-7"})
        send(gateway, "c-2", assembly={"key": "warga-7"})
        send(gateway, "c-3", second_photo, assembly={"key": "warga-7", "complete": True})
        report = wait_for_report(engine, "c-1")
        wait_until(lambda: in_state(engine, MediaState.STORED, 2), timeout=15, what="both photos")
        urls = [m["url"] for m in report.media]
        assert len(urls) == 2
        assert [httpx.get(url).content for url in urls] == [TINY_JPEG, TINY_PNG]


# --- The loop on its own ----------------------------------------------------------------------------------


class ScriptedAdapter(MediaTestAdapter):
    """Answers each download with the next item of `script`: bytes, or an exception to raise."""

    script: list[Any]
    calls: list[MediaRef]
    hold: asyncio.Event | None = None

    async def download_media(self, ref: MediaRef, *, max_bytes: int) -> MediaContent:
        self.calls.append(ref)
        if self.hold is not None:
            await self.hold.wait()
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        return MediaContent("image/jpeg", step)


class _Channel:
    def __init__(self, adapter: Adapter) -> None:  # type: ignore[type-arg]
        self.adapter = adapter


def scripted(*script: Any) -> ScriptedAdapter:
    context = AdapterContext(channel_id=CHANNEL, instance_secret=b"x" * 32, public_base_url="http://127.0.0.1")
    adapter = ScriptedAdapter(settings=MediaTestSettings(), context=context)
    adapter.script, adapter.calls = list(script), []
    return adapter


_write_queues: list[WriteQueue] = []


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    while _write_queues:
        _write_queues.pop().shutdown()
    engine.dispose()


def add_message(engine: Engine, *urls: str, channel_id: str = CHANNEL) -> str:
    """An inbound message with remote photos, stored as the inbox writer stores one."""
    from gateway.ids import new_id, new_ticket_code
    from gateway.inbox import RawDelivery

    now = utcnow()
    delivery, message = new_id(), new_id()
    media = [{"url": url, "content_type": "image/jpeg"} for url in urls]
    with write_connection(engine) as connection:
        connection.execute(
            RawDelivery.__table__.insert(),  # type: ignore[attr-defined]
            {"id": delivery, "channel_id": channel_id, "received_at": now, "headers": {}, "body": b"{}"},
        )
        connection.execute(
            InboundMessageRow.__table__.insert(),  # type: ignore[attr-defined]
            {
                "id": message,
                "channel_id": channel_id,
                "external_id": message,
                "ticket_code": new_ticket_code(),
                "delivery_id": delivery,
                "received_at": now,
                "message": {"external_id": message, "text": "x", "media": media},
                "state": "normalized",
            },
        )
        connection.execute(MediaFile.__table__.insert(), pending_rows(message, channel_id, media, now))  # type: ignore[attr-defined]
    return message


def make_due(engine: Engine) -> None:
    table = MediaFile.__table__  # type: ignore[attr-defined]
    with write_connection(engine) as connection:
        connection.execute(update(table).where(table.c.state == "pending").values(next_attempt_at=utcnow()))


def fetcher(
    engine: Engine,
    adapter: Adapter | None,  # type: ignore[type-arg]
    deadline_seconds: float = 120.0,
    **config: Any,
) -> MediaFetcher:
    channels = {CHANNEL: _Channel(adapter)} if adapter is not None else {}
    settings = MediaConfig(max_bytes=MAX_BYTES, max_attempts=3, backoff_base_seconds=1, **config)
    _write_queues.append(WriteQueue(engine))
    return MediaFetcher(engine, _write_queues[-1], channels, settings, deadline_seconds=deadline_seconds)


def test_a_platforms_retry_after_is_honoured(engine: Engine) -> None:
    add_message(engine, "https://media.example/1.jpg")
    asyncio.run(fetcher(engine, scripted(ChannelUnavailable("429 from the platform", retry_after=600))).run_once())
    (file,) = media_files(engine)
    assert file["state"] == "pending" and file["attempts"] == 1 and file["last_error"] == "429 from the platform"
    assert file["next_attempt_at"] - utcnow() > timedelta(seconds=590)


def test_a_platform_failing_every_time_ends_in_unavailable_after_max_attempts(engine: Engine) -> None:
    add_message(engine, "https://media.example/1.jpg")
    adapter = scripted(ChannelUnavailable("the platform answered 503; will retry"))
    loop = fetcher(engine, adapter)
    for _ in range(3):
        make_due(engine)
        asyncio.run(loop.run_once())
    (file,) = media_files(engine)
    assert file["state"] == "unavailable" and file["attempts"] == 3 and len(adapter.calls) == 3
    assert file["last_error"] == "gave up after 3 attempts; last: the platform answered 503; will retry"


def test_a_refusal_for_good_and_a_missing_channel_are_not_retried(engine: Engine) -> None:
    add_message(engine, "https://media.example/1.jpg")
    add_message(engine, "https://media.example/2.jpg", channel_id="test_media:removed")
    asyncio.run(fetcher(engine, scripted(ChannelUnavailable("token revoked", retryable=False))).run_once())
    by_channel = {f["channel_id"]: f for f in media_files(engine)}
    assert by_channel[CHANNEL]["state"] == "unavailable" and by_channel[CHANNEL]["last_error"] == "token revoked"
    removed = by_channel["test_media:removed"]
    assert removed["state"] == "unavailable" and "test_media:removed is not configured" in removed["last_error"]


def test_an_adapter_bug_is_logged_and_counted_as_a_failed_attempt(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    add_message(engine, "https://media.example/1.jpg")
    adapter = scripted(KeyError("file_path"), TINY_JPEG)
    loop = fetcher(engine, adapter)
    asyncio.run(loop.run_once())
    (file,) = media_files(engine)
    assert file["state"] == "pending" and file["attempts"] == 1 and file["last_error"] == "KeyError: 'file_path'"
    assert "failed to download" in caplog.text
    make_due(engine)
    assert asyncio.run(loop.run_once()) == 1
    assert media_files(engine)[0]["state"] == "stored"


def test_an_adapter_ignoring_the_cap_or_sending_nothing_gets_nothing_stored(engine: Engine) -> None:
    add_message(engine, "https://media.example/1.jpg", "https://media.example/2.jpg")
    adapter = scripted(b"\xff\xd8\xff" + bytes(MAX_BYTES), b"")
    asyncio.run(fetcher(engine, adapter, batch=1).run_once())
    asyncio.run(fetcher(engine, adapter, batch=1).run_once())
    errors = {f["last_error"] for f in media_files(engine)}
    assert errors == {f"too large: {MAX_BYTES + 3} bytes, limit {MAX_BYTES}", "the platform sent an empty file"}
    assert all(f["state"] == "unavailable" and f["data"] is None for f in media_files(engine))


def test_a_media_unavailable_reason_is_kept(engine: Engine) -> None:
    add_message(engine, "https://media.example/1.jpg")
    asyncio.run(fetcher(engine, scripted(MediaUnavailable("the platform no longer has the file (404)"))).run_once())
    (file,) = media_files(engine)
    assert (file["state"], file["attempts"]) == ("unavailable", 1)
    assert file["last_error"] == "the platform no longer has the file (404)"


def test_two_processes_never_download_the_same_file(engine: Engine) -> None:
    for n in range(6):
        add_message(engine, f"https://media.example/{n}.jpg")
    adapter = scripted(TINY_JPEG)

    async def both() -> list[int]:
        return list(await asyncio.gather(fetcher(engine, adapter).run_once(), fetcher(engine, adapter).run_once()))

    stored = asyncio.run(both())
    assert sum(stored) == 6 and len(adapter.calls) == 6, "each file taken by exactly one of the two"
    assert sorted(ref.url for ref in adapter.calls) == [f"https://media.example/{n}.jpg" for n in range(6)]


def test_a_download_that_stalls_is_cut_off_and_tried_again_later(engine: Engine, host: MediaHost) -> None:
    url = host.add("/p/lambat.jpg", TINY_JPEG)
    host.delay["/p/lambat.jpg"] = 2.0
    add_message(engine, url)
    context = AdapterContext(channel_id=CHANNEL, instance_secret=b"x" * 32, public_base_url="http://127.0.0.1")
    adapter = MediaTestAdapter(settings=MediaTestSettings(), context=context)
    loop = fetcher(engine, adapter, deadline_seconds=0.3)  # a deployment's 120 s, shortened for the test
    started = time.monotonic()
    assert asyncio.run(loop.run_once()) == 0
    assert time.monotonic() - started < 1.5, "the loop did not wait for the stalled host"
    (file,) = media_files(engine)
    assert file["state"] == "pending" and file["attempts"] == 1
    assert file["last_error"] == "the download took longer than 0.3 s; will retry"


def test_a_download_cut_short_by_a_stop_is_handed_back_at_once(engine: Engine) -> None:
    add_message(engine, "https://media.example/1.jpg")
    adapter = scripted(TINY_JPEG)

    async def start_then_stop() -> None:
        adapter.hold = asyncio.Event()  # never set: the download hangs until the stop
        loop = fetcher(engine, adapter, poll_interval_seconds=0.01)
        await loop.start()
        while not adapter.calls:
            await asyncio.sleep(0.01)
        leased = media_files(engine)[0]["next_attempt_at"]
        assert leased - utcnow() > timedelta(seconds=60), "taken for the length of the lease"
        await loop.stop()

    asyncio.run(start_then_stop())
    (file,) = media_files(engine)
    assert file["state"] == "pending" and file["attempts"] == 0
    assert file["next_attempt_at"] <= utcnow(), "due again at once, not when the lease would have ended"


# --- Pure functions ---------------------------------------------------------------------------------------


def test_file_types_come_from_the_bytes() -> None:
    assert sniff(TINY_PNG) == "image/png" and sniff(TINY_JPEG) == "image/jpeg"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"\x00\x00\x00\x18ftypheic\x00\x00") == "image/heic"
    assert sniff(b"\x00\x00\x00\x18ftypisom\x00\x00") == "video/mp4"
    assert sniff(b"OggS\x00\x02") == "audio/ogg"
    assert sniff(b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>") == "application/octet-stream"
    assert sniff(b"") == "application/octet-stream"


def test_backoff_grows_to_its_cap_and_a_retry_after_wins_when_longer() -> None:
    config = MediaConfig(backoff_base_seconds=5, backoff_cap_seconds=60)
    assert timedelta(seconds=2.5) <= backoff(config, 1) <= timedelta(seconds=5)
    assert timedelta(seconds=20) <= backoff(config, 4) <= timedelta(seconds=40)
    assert timedelta(seconds=30) <= backoff(config, 20) <= timedelta(seconds=60)
    assert backoff(config, 1, retry_after=120) == timedelta(seconds=120)
    assert backoff(config, 1, retry_after=10**9) == timedelta(days=1)


def test_inline_refs_need_no_download_row() -> None:
    refs = [{"url": "inline:photo"}, {"url": "https://x.example/1.jpg"}, {"url": "inline:photo2"}]
    rows = pending_rows("m", CHANNEL, refs, utcnow())
    assert [(r["position"], r["ref"]["url"]) for r in rows] == [(1, "https://x.example/1.jpg")]


def test_the_migration_creates_the_table_the_model_describes(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert [d for d in differences if "media_file" in repr(d)] == []

"""Progress sent back to the JAKI app, and report photos fetched from it, against a fake JAKI backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from adapters.contract import MediaRef, OutboundReply, Sender, StatusUpdate
from adapters.errors import ChannelUnavailable, MediaUnavailable
from adapters.jaki import JakiAdapter
from kanal_testing import KanalUnderTest, build_adapter, reports, wait_until
from tests.adapters.test_jaki import JAKI_SECRET, PROFILE, jaki_settings
from tests.peers.jaki_app import JakiApp

REPORT_ID = "JAKI-2026-03-000123"
CHANGED_AT = datetime(2026, 3, 12, 4, 30, tzinfo=UTC)
RECEIVED = "Laporan Anda kami terima dengan nomor {ticket}."
TEXT = "Laporan KNL-7QX4 sedang dikerjakan oleh Suku Dinas Bina Marga Jakarta Pusat."


@pytest.fixture
def app() -> Iterator[JakiApp]:
    with JakiApp(secret=JAKI_SECRET) as peer:
        yield peer


def jaki(app: JakiApp, **overrides: Any) -> JakiAdapter:
    built = build_adapter(JakiAdapter, jaki_settings(status_url=app.status_url, **overrides), channel_id="jaki:test")
    assert isinstance(built, JakiAdapter)
    return built


def update(*, status: bool = True, in_reply_to: str | None = REPORT_ID) -> OutboundReply:
    change = StatusUpdate(
        ticket="KNL-7QX4",
        state="in_progress",
        agency_unit="Suku Dinas Bina Marga Jakarta Pusat",
        note="Tim sudah dijadwalkan menambal lubang besok pagi.",
        changed_at=CHANGED_AT,
        status_url="https://kanal.jakarta.go.id/status/KNL-7QX4",
    )
    return OutboundReply(
        recipient=Sender(id="jaki-u-7731904", name="Siti Rahmawati"),
        text=TEXT,
        in_reply_to=in_reply_to,
        ticket="KNL-7QX4",
        status=change if status else None,
    )


def test_a_status_change_reaches_the_app_signed_with_every_field(app: JakiApp) -> None:
    callback_id = asyncio.run(jaki(app).send(update()))
    [callback] = app.callbacks
    assert callback.signed, "the app could not verify the callback's signature"
    assert callback.json() == {
        "report_id": REPORT_ID,
        "ticket": "KNL-7QX4",
        "state": "in_progress",
        "agency_unit": "Suku Dinas Bina Marga Jakarta Pusat",
        "note": "Tim sudah dijadwalkan menambal lubang besok pagi.",
        "changed_at": "2026-03-12T04:30:00+00:00",
        "status_url": "https://kanal.jakarta.go.id/status/KNL-7QX4",
        "message": TEXT,
    }
    assert callback_id == "cb-1"


def test_a_plain_message_sends_the_text_with_the_report_and_ticket(app: JakiApp) -> None:
    asyncio.run(jaki(app).send(update(status=False)))
    assert app.callbacks[0].json() == {"report_id": REPORT_ID, "ticket": "KNL-7QX4", "message": TEXT}


def test_the_apps_own_header_name_signs_the_callback(app: JakiApp) -> None:
    app.signature_header = "x-jaki-signature"
    asyncio.run(jaki(app, signature_header="X-Jaki-Signature").send(update()))
    [callback] = app.callbacks
    assert callback.signed and "x-kanal-signature" not in callback.headers


def test_an_app_outage_is_retried_after_what_it_asks(app: JakiApp) -> None:
    app.fail_next(503, headers={"Retry-After": "120"})
    with pytest.raises(ChannelUnavailable) as failure:
        asyncio.run(jaki(app).send(update()))
    assert failure.value.retryable and failure.value.retry_after == 120


def test_a_slow_app_is_retried_later(app: JakiApp) -> None:
    app.delay_seconds = 1.0
    with pytest.raises(ChannelUnavailable, match="unreachable") as failure:
        asyncio.run(jaki(app, status_timeout_seconds=0.2).send(update()))
    assert failure.value.retryable


def test_a_refused_callback_is_not_retried_and_says_why(app: JakiApp) -> None:
    with pytest.raises(ChannelUnavailable, match=r"refused the status update \(401\)") as failure:
        asyncio.run(jaki(app, secret="a-different-secret-0000000").send(update()))
    assert not failure.value.retryable


def test_a_message_not_about_a_jaki_report_is_not_sent(app: JakiApp) -> None:
    with pytest.raises(ChannelUnavailable, match="no JAKI report id") as failure:
        asyncio.run(jaki(app).send(update(in_reply_to=None)))
    assert not failure.value.retryable and app.callbacks == []


def test_without_a_status_url_there_is_no_reply_path() -> None:
    built = build_adapter(JakiAdapter, jaki_settings(), channel_id="jaki:test")
    with pytest.raises(NotImplementedError, match="status_url"):
        asyncio.run(built.send(update()))


# --------------------------------------------------------------------------------------------- photos

PHOTO = b"\xff\xd8\xff\xe0" + b"foto" * 300


def test_a_report_photo_is_downloaded_from_the_configured_host(app: JakiApp) -> None:
    url = app.add_photo("JAKI-2026-03-000123-1.jpg", "image/jpeg", PHOTO)
    content = asyncio.run(jaki(app, media_hosts=["127.0.0.1"]).download_media(MediaRef(url=url), max_bytes=10_000))
    assert (content.content_type, content.data) == ("image/jpeg", PHOTO)


def test_a_photo_over_the_limit_is_not_downloaded(app: JakiApp) -> None:
    url = app.add_photo("big.jpg", "image/jpeg", PHOTO)
    with pytest.raises(MediaUnavailable, match="too large"):
        asyncio.run(jaki(app, media_hosts=["127.0.0.1"]).download_media(MediaRef(url=url), max_bytes=100))


def test_a_photo_on_another_host_is_never_fetched(app: JakiApp) -> None:
    url = app.add_photo("x.jpg", "image/jpeg", PHOTO)
    with pytest.raises(MediaUnavailable, match="not an allowed host"):
        asyncio.run(jaki(app).download_media(MediaRef(url=url), max_bytes=10_000))  # only foto.jaki... allowed


# ------------------------------------------------------------------------------------ through Kanal


def test_a_new_report_is_acknowledged_to_the_app_with_its_ticket(
    app: JakiApp, kanal_start: Callable[..., KanalUnderTest]
) -> None:
    channel = {"type": "jaki", "settings": jaki_settings(status_url=app.status_url)}
    gateway = kanal_start(
        {"jaki:app": channel},
        notifications={"templates": {"id": {"received": RECEIVED}}, "poll_interval_seconds": 0.05},
    )
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        assert PROFILE.send(http, PROFILE.prepare(http, "full.json")).status_code == 200
    [report] = wait_until(lambda: reports(gateway.runtime.engine), timeout=20, what="the report")
    [callback] = wait_until(lambda: app.callbacks, timeout=20, what="the acknowledgement reaching the app")
    assert callback.signed
    document = callback.json()
    assert (document["report_id"], document["ticket"], document["state"]) == (
        "JAKI-2026-03-000123",
        report.ticket_code,
        "received",
    )
    assert document["message"] == RECEIVED.format(ticket=report.ticket_code)

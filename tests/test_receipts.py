"""A new report is acknowledged on the citizen's channel, and replies carry what the platform needs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from adapters.contract import InboundMessage, Sender
from crm_client.notifications import CitizenNotification
from gateway.plugins import build_channels, get_plugin_manager
from gateway.settings import ConfigError, KanalSettings
from review_queue.tables import Report
from tests.conftest import TEST_SECRET_KEY, base_settings
from tests.support import parts_adapter
from tests.support.servers import RunningGateway, wait_until

UNUSED_CRM = "http://127.0.0.1:9/"
TEMPLATES = {"id": {"received": "Laporan {ticket} diterima. Pantau di {status_url}"}}


@pytest.fixture(autouse=True)
def parts_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import plugins

    monkeypatch.setitem(plugins.BUILTIN_PLUGINS, "test_parts", "tests.support.parts_adapter")
    parts_adapter.SENT.clear()


def settings_for(database_url: str, **channels: dict[str, Any]) -> dict[str, Any]:
    settings = base_settings(database_url, UNUSED_CRM)
    settings["channels"].update(channels)
    settings["notifications"] = {"templates": TEMPLATES, "poll_interval_seconds": 0.1}
    return settings


def post(gateway: RunningGateway, channel: str, message: InboundMessage) -> str:
    response = httpx.post(f"{gateway.url}/channels/{channel}/inbound", content=message.model_dump_json())
    assert response.status_code == 200, response.text
    ticket: str = response.json()["accepted"][0]["ticket"]
    return ticket


COMPLAINT = InboundMessage(
    external_id="msg-123",
    text="Jalan berlubang di Jl. Salemba Raya depan kampus, bahaya untuk motor",
    sender=Sender(id="628111", phone="+628111"),
    thread_id="thread-9",
)


def test_a_new_report_is_acknowledged_with_its_ticket_in_reply_to_the_citizens_message(database_url: str) -> None:
    with RunningGateway(settings_for(database_url, **{"test_parts:sms": {"type": "test_parts"}})) as gateway:
        ticket = post(gateway, "test_parts:sms", COMPLAINT)
        [(channel, reply)] = wait_until(lambda: parts_adapter.SENT or None, timeout=15, what="the acknowledgement")
    assert channel == "test_parts:sms"
    assert reply.text == f"Laporan {ticket} diterima. Pantau di {gateway.url}/status/{ticket}"
    assert reply.recipient.phone == "+628111"
    assert (reply.in_reply_to, reply.thread_id, reply.ticket) == ("msg-123", "thread-9", ticket)
    assert reply.status is not None and reply.status.state == "received" and reply.status.ticket == ticket
    assert reply.last_inbound_at is not None


def test_a_channel_can_switch_acknowledgements_off(database_url: str) -> None:
    quiet = {"type": "test_parts", "acknowledge_receipt": False}
    with RunningGateway(settings_for(database_url, **{"test_parts:quiet": quiet})) as gateway:
        engine = gateway.runtime.engine
        post(gateway, "test_parts:quiet", COMPLAINT)
        wait_until(lambda: _count(engine, Report) == 1, timeout=15, what="the report")
        assert _count(engine, CitizenNotification) == 0
    assert parts_adapter.SENT == []


def _count(engine: Any, model: Any) -> int:
    with engine.connect() as connection:
        return len(connection.execute(select(col(model.id))).all())


def _channels(**channels: dict[str, Any]) -> dict[str, Any]:
    settings = KanalSettings.model_validate(
        {"secret_key": TEST_SECRET_KEY, "channels": channels, "database_url": "sqlite://"}
    )
    return build_channels(settings, get_plugin_manager())


def test_the_channel_type_decides_trust_when_the_configuration_does_not() -> None:
    channels = _channels(
        **{
            "test_app_parts:jaki": {"type": "test_app_parts"},
            "test_app_parts:reviewed": {"type": "test_app_parts", "trusted": False},
            "test_parts:plain": {"type": "test_parts"},
        }
    )
    assert channels["test_app_parts:jaki"].config.trusted is True
    assert channels["test_app_parts:reviewed"].config.trusted is False
    assert channels["test_parts:plain"].config.trusted is False
    assert channels["test_parts:plain"].config.acknowledge_receipt is True


def test_a_public_channel_configured_as_trusted_stops_kanal_at_start() -> None:
    with pytest.raises(ConfigError, match=r"channels\.test_public_parts:news\.trusted: .*cannot be trusted"):
        _channels(**{"test_public_parts:news": {"type": "test_public_parts", "trusted": True}})


def test_a_channel_without_a_way_back_replies_through_its_reply_via_channel(database_url: str) -> None:
    from tests.conftest import TEST_API_SECRET
    from tests.support.api_client import post_api

    channels = {
        # The partner gave no reply_url: it cannot send, so the citizen hears through the mail channel.
        "api:desk": {
            "type": "api",
            "acknowledge_receipt": True,
            "reply_via": ["test_parts:mail"],
            "settings": {"secret": TEST_API_SECRET},
        },
        "test_parts:mail": {"type": "test_parts"},
    }
    with RunningGateway(settings_for(database_url, **channels)) as gateway, httpx.Client(base_url=gateway.url) as http:
        body = {"external_id": "desk-7", "text": COMPLAINT.text, "sender": {"email": "warga@example.org"}}
        response = post_api(http, body, channel="api:desk")
        assert response.status_code == 200, response.text
        ticket = response.json()["accepted"][0]["ticket"]
        [(channel, reply)] = wait_until(lambda: parts_adapter.SENT or None, timeout=15, what="the acknowledgement")
        engine = gateway.runtime.engine

        def recorded_as_sent() -> list[Any] | None:
            # The adapter hands the reply over before the notifier commits what it sent.
            with engine.connect() as connection:
                rows = connection.execute(
                    select(col(CitizenNotification.platform_message_id), col(CitizenNotification.state))
                ).all()
            return list(rows) if rows and rows[0][1] != "pending" else None

        [(platform_id, state)] = wait_until(recorded_as_sent, timeout=15, what="the notification's sent record")
    assert channel == "test_parts:mail" and reply.ticket == ticket and reply.recipient.email == "warga@example.org"
    assert reply.in_reply_to is None, "the mail channel knows nothing of the partner's message id"
    assert (platform_id, state) == ("test_parts:mail:sent-1", "sent")


def test_reply_via_must_name_another_enabled_channel() -> None:
    with pytest.raises(ConfigError, match=r"channels\.test_parts:a\.reply_via: email:nowhere is not another"):
        _channels(**{"test_parts:a": {"type": "test_parts", "reply_via": ["email:nowhere"]}})

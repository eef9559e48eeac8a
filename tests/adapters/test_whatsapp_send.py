"""Replies on WhatsApp, against the fake Graph API: free text inside the 24-hour window, the template outside
it, and which Graph failures are worth retrying."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.contract import Adapter, OutboundReply, Sender
from adapters.errors import ChannelUnavailable
from adapters.whatsapp import WhatsAppAdapter
from kanal_testing import build_adapter
from tests.adapters.test_whatsapp import ACCESS_TOKEN, CITIZEN, PHONE_NUMBER_ID, channel_settings
from tests.peers.graph_api import GraphApiPeer

TEMPLATE = {"name": "status_laporan", "language": "id"}
CITIZEN_MESSAGE = "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFDNBMDFURVhUMDAwMDAwMDAwMDAwMQA="


@pytest.fixture
def graph() -> Iterator[GraphApiPeer]:
    with GraphApiPeer(access_token=ACCESS_TOKEN, phone_number_id=PHONE_NUMBER_ID) as peer:
        yield peer


def adapter_for(graph: GraphApiPeer, **overrides: Any) -> Adapter[Any]:
    block = channel_settings(access_token=ACCESS_TOKEN, graph_base_url=graph.base_url, **overrides)
    return build_adapter(WhatsAppAdapter, block, channel_id="whatsapp:pengaduan")


def reply(
    *,
    hours_ago: float | None = 1,
    text: str = "Laporan JKT-7 sedang diproses.",
    recipient: Sender | None = None,
    in_reply_to: str | None = CITIZEN_MESSAGE,
) -> OutboundReply:
    return OutboundReply(
        recipient=recipient or Sender(id=CITIZEN, phone=f"+{CITIZEN}", name="Siti Rahmawati"),
        text=text,
        in_reply_to=in_reply_to,
        last_inbound_at=None if hours_ago is None else datetime.now(UTC) - timedelta(hours=hours_ago),
    )


def send(adapter: Adapter[Any], outbound: OutboundReply) -> str:
    return asyncio.run(adapter.send(outbound))


def test_inside_the_window_the_reply_is_text_quoting_the_citizens_message(graph: GraphApiPeer) -> None:
    assert send(adapter_for(graph), reply(hours_ago=23.5)) == "wamid.peer0001"
    [sent] = graph.sent
    assert sent["to"] == CITIZEN and sent["type"] == "text"
    assert sent["text"] == {"body": "Laporan JKT-7 sedang diproses."}
    assert sent["context"] == {"message_id": CITIZEN_MESSAGE}
    assert graph.requests == [("POST", f"/v21.0/{PHONE_NUMBER_ID}/messages", True)]


def test_a_reply_to_nothing_in_particular_has_no_context(graph: GraphApiPeer) -> None:
    send(adapter_for(graph), reply(in_reply_to=None))
    assert "context" not in graph.sent[0]


@pytest.mark.parametrize("hours_ago", [24.5, None], ids=["after 24 hours", "last message unknown"])
def test_outside_the_window_the_reply_goes_as_the_template(graph: GraphApiPeer, hours_ago: float | None) -> None:
    text = "Laporan JKT-7 selesai.\n\nTerima kasih\tatas laporannya."
    assert send(adapter_for(graph, reply_template=TEMPLATE), reply(hours_ago=hours_ago, text=text))
    [sent] = graph.sent
    assert sent["type"] == "template" and "text" not in sent
    assert sent["template"]["name"] == "status_laporan" and sent["template"]["language"] == {"code": "id"}
    # Meta refuses line breaks and tabs in a template parameter.
    [component] = sent["template"]["components"]
    assert component["parameters"] == [{"type": "text", "text": "Laporan JKT-7 selesai. Terima kasih atas laporannya."}]


def test_outside_the_window_without_a_template_the_owner_is_told_what_to_set(graph: GraphApiPeer) -> None:
    with pytest.raises(ChannelUnavailable) as caught:
        send(adapter_for(graph), reply(hours_ago=30))
    assert not caught.value.retryable
    assert "24 hours" in str(caught.value) and "reply_template" in str(caught.value)
    assert graph.sent == []


def test_when_meta_says_the_window_closed_the_template_is_sent_instead(graph: GraphApiPeer) -> None:
    graph.fail_next(400, code=131047, message="Re-engagement message")
    assert send(adapter_for(graph, reply_template=TEMPLATE), reply(hours_ago=23.99)) == "wamid.peer0001"
    [sent] = graph.sent
    assert sent["type"] == "template"


def test_a_long_reply_is_shortened_to_fit_a_template_parameter(graph: GraphApiPeer) -> None:
    send(adapter_for(graph, reply_template=TEMPLATE), reply(hours_ago=None, text="kata " * 700))
    parameter = graph.sent[0]["template"]["components"][0]["parameters"][0]["text"]
    assert len(parameter) == 900 and parameter.endswith("…")


def test_a_citizen_known_only_by_the_business_scoped_id_is_written_to_by_it(graph: GraphApiPeer) -> None:
    send(adapter_for(graph), reply(recipient=Sender(id="ID.13491208655302741918", name="Rina")))
    [sent] = graph.sent
    assert sent["recipient"] == "ID.13491208655302741918" and "to" not in sent


def test_a_recipient_without_number_or_id_is_not_retried(graph: GraphApiPeer) -> None:
    with pytest.raises(ChannelUnavailable) as caught:
        send(adapter_for(graph), reply(recipient=Sender(name="Anonim")))
    assert not caught.value.retryable and graph.requests == []


def test_without_an_access_token_the_channel_has_no_reply_path(graph: GraphApiPeer) -> None:
    adapter = build_adapter(WhatsAppAdapter, channel_settings(graph_base_url=graph.base_url))
    with pytest.raises(NotImplementedError, match="access_token"):
        send(adapter, reply())
    assert graph.requests == []


@pytest.mark.parametrize(
    ("status", "code", "retry_after"),
    [
        (429, 130429, "30"),
        (400, 131056, None),
        (400, 130429, None),
        (500, 131000, None),
        (503, None, None),
    ],
    ids=["429 throughput", "pair rate limit", "rate limit as 400", "500 something went wrong", "503 no body code"],
)
def test_rate_limits_and_meta_outages_are_retried_later(
    graph: GraphApiPeer, status: int, code: int | None, retry_after: str | None
) -> None:
    graph.fail_next(status, code=code, retry_after=retry_after)
    with pytest.raises(ChannelUnavailable) as caught:
        send(adapter_for(graph), reply())
    assert caught.value.retryable
    assert caught.value.retry_after == (float(retry_after) if retry_after else None)
    assert graph.sent == []


@pytest.mark.parametrize(
    ("status", "code", "phrase"),
    [
        (400, 131026, "131026"),
        (400, 132001, "not retried"),
        (400, 100, "Invalid parameter"),
    ],
    ids=["undeliverable number", "template missing", "invalid parameter"],
)
def test_refusals_are_not_retried_and_say_what_meta_said(
    graph: GraphApiPeer, status: int, code: int, phrase: str
) -> None:
    graph.fail_next(status, code=code, message="Invalid parameter")
    with pytest.raises(ChannelUnavailable) as caught:
        send(adapter_for(graph), reply())
    assert not caught.value.retryable and phrase in str(caught.value)


def test_a_wrong_access_token_is_not_retried_and_names_the_setting(graph: GraphApiPeer) -> None:
    block = channel_settings(access_token="EAAwrongToken", graph_base_url=graph.base_url)
    with pytest.raises(ChannelUnavailable) as caught:
        send(build_adapter(WhatsAppAdapter, block), reply())
    assert not caught.value.retryable and "access_token" in str(caught.value)
    assert "EAAwrongToken" not in str(caught.value)


def test_a_graph_api_that_does_not_answer_in_time_is_retried(graph: GraphApiPeer) -> None:
    graph.delay = 1.0
    with pytest.raises(ChannelUnavailable) as caught:
        send(adapter_for(graph, timeout_seconds=0.2), reply())
    assert caught.value.retryable and "Timeout" in str(caught.value)


def test_the_access_token_never_appears_in_an_error(graph: GraphApiPeer) -> None:
    graph.fail_next(500, code=1, message="An unknown error occurred")
    with pytest.raises(ChannelUnavailable) as caught:
        send(adapter_for(graph), reply())
    assert ACCESS_TOKEN not in str(caught.value)

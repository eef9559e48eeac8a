"""Downloading a citizen's WhatsApp photo: the media id is resolved with the Graph API, then the file is fetched
with the access token, only from Meta's hosts, and never beyond the size cap."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.contract import Adapter, MediaContent, MediaRef
from adapters.errors import ChannelUnavailable, MediaUnavailable
from adapters.whatsapp import WhatsAppAdapter
from kanal_testing import build_adapter
from tests.adapters.test_whatsapp import ACCESS_TOKEN, PHONE_NUMBER_ID, channel_settings
from tests.peers.graph_api import GraphApiPeer

MEDIA_ID = "1013859600285441"
PHOTO = b"\xff\xd8\xff\xe0" + b"JFIF-foto-jalan-berlubang" * 40
REF = MediaRef(url=f"whatsapp:{MEDIA_ID}", platform_id=MEDIA_ID, content_type="image/jpeg")


@pytest.fixture
def graph() -> Iterator[GraphApiPeer]:
    with GraphApiPeer(access_token=ACCESS_TOKEN, phone_number_id=PHONE_NUMBER_ID) as peer:
        yield peer


def adapter_for(graph: GraphApiPeer, **overrides: Any) -> Adapter[Any]:
    block = channel_settings(access_token=ACCESS_TOKEN, graph_base_url=graph.base_url, **overrides)
    return build_adapter(WhatsAppAdapter, block)


def fetch(adapter: Adapter[Any], ref: MediaRef = REF, max_bytes: int = 10_000_000) -> MediaContent:
    return asyncio.run(adapter.download_media(ref, max_bytes=max_bytes))


def test_a_photo_is_resolved_and_downloaded_with_the_token(graph: GraphApiPeer) -> None:
    graph.add_media(MEDIA_ID, PHOTO, "image/jpeg")
    content = fetch(adapter_for(graph))
    assert content == MediaContent(content_type="image/jpeg", data=PHOTO)
    assert graph.downloads == [MEDIA_ID]
    assert graph.requests == [("GET", f"/v21.0/{MEDIA_ID}", True), ("GET", f"/download/{MEDIA_ID}", True)]


def test_the_media_id_alone_in_the_url_is_enough(graph: GraphApiPeer) -> None:
    graph.add_media(MEDIA_ID, PHOTO)
    assert fetch(adapter_for(graph), MediaRef(url=f"whatsapp:{MEDIA_ID}")).data == PHOTO


def test_a_file_meta_says_is_too_large_is_not_downloaded_at_all(graph: GraphApiPeer) -> None:
    graph.add_media(MEDIA_ID, PHOTO, file_size="52428800")
    with pytest.raises(MediaUnavailable, match="too large: 52428800 bytes"):
        fetch(adapter_for(graph), max_bytes=5_000_000)
    assert graph.downloads == []


def test_a_file_larger_than_declared_is_cut_off_at_the_cap(graph: GraphApiPeer) -> None:
    graph.add_media(MEDIA_ID, PHOTO, file_size="10")
    with pytest.raises(MediaUnavailable, match="too large"):
        fetch(adapter_for(graph), max_bytes=100)


def test_a_download_url_on_a_foreign_host_is_refused_and_gets_no_token(graph: GraphApiPeer) -> None:
    graph.add_media(MEDIA_ID, PHOTO, url="https://files.example.net/steal?mid=1013859600285441")
    with pytest.raises(MediaUnavailable, match="not an allowed host"):
        fetch(adapter_for(graph))
    assert graph.downloads == []


def test_meta_hosts_and_the_configured_graph_host_are_allowed(graph: GraphApiPeer) -> None:
    hosts = adapter_for(graph).allowed_media_hosts()
    assert {"lookaside.fbsbx.com", "graph.facebook.com", "127.0.0.1"} <= hosts


def test_a_media_id_meta_no_longer_has_is_unavailable(graph: GraphApiPeer) -> None:
    with pytest.raises(MediaUnavailable, match="does not give media"):
        fetch(adapter_for(graph))


def test_a_reference_that_is_not_a_whatsapp_media_id_is_not_looked_up(graph: GraphApiPeer) -> None:
    with pytest.raises(MediaUnavailable, match="not a WhatsApp media reference"):
        fetch(adapter_for(graph), MediaRef(url="https://example.net/../../etc/passwd"))
    assert graph.requests == []


def test_a_graph_outage_is_retried_later(graph: GraphApiPeer) -> None:
    graph.add_media(MEDIA_ID, PHOTO)
    graph.fail_next(503)
    with pytest.raises(ChannelUnavailable) as caught:
        fetch(adapter_for(graph))
    assert caught.value.retryable


def test_a_wrong_token_is_reported_as_configuration_not_a_lost_photo(graph: GraphApiPeer) -> None:
    graph.add_media(MEDIA_ID, PHOTO)
    block = channel_settings(access_token="EAAwrongToken", graph_base_url=graph.base_url)
    with pytest.raises(ChannelUnavailable, match="access_token") as caught:
        fetch(build_adapter(WhatsAppAdapter, block))
    assert not caught.value.retryable


def test_without_an_access_token_media_cannot_be_downloaded(graph: GraphApiPeer) -> None:
    adapter = build_adapter(WhatsAppAdapter, channel_settings(graph_base_url=graph.base_url))
    with pytest.raises(MediaUnavailable, match="access_token"):
        fetch(adapter)
    assert graph.requests == []

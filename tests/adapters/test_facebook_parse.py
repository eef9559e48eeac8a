"""`facebook` parsing on its own: threads, conversations, what a batch keeps, and that no input breaks it."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from adapters.contract import Assembly, InboundMessage, RawRequest
from adapters.errors import PayloadIgnored, PayloadRejected, SignatureInvalid
from adapters.facebook import FacebookAdapter
from adapters.meta import sign
from kanal_testing import build_adapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "facebook"
PAGE_ID = "104857392011223"
APP_SECRET = "fb-app-secret-0123456789abcdef"
SETTINGS = {"app_secret": APP_SECRET, "verify_token": "fb-verify-token-kanal-2026", "page_id": PAGE_ID}
ADAPTER = build_adapter(FacebookAdapter, SETTINGS, channel_id="facebook:dki")
POST = f"{PAGE_ID}_912345678901234"


def request(body: bytes | dict[str, Any], *, secret: str | None = APP_SECRET) -> RawRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-hub-signature-256"] = sign(secret.encode(), raw)
    return RawRequest("POST", "/channels/facebook:dki/inbound", headers, {}, raw, "127.0.0.1", datetime.now(UTC))


def parse(body: bytes | dict[str, Any]) -> list[InboundMessage]:
    delivery = request(body)
    ADAPTER.verify(delivery)
    return ADAPTER.parse(delivery)


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


def feed(**value: Any) -> dict[str, Any]:
    base = {"from": {"id": "6021847712345678", "name": "Budi Santoso"}, "post_id": POST, "verb": "add"}
    return {
        "object": "page",
        "entry": [{"id": PAGE_ID, "time": 1767240005, "changes": [{"field": "feed", "value": {**base, **value}}]}],
    }


def chat(message: dict[str, Any], **event: Any) -> dict[str, Any]:
    body = {"sender": {"id": "7412589630258741"}, "recipient": {"id": PAGE_ID}, "timestamp": 1767240000123}
    return {
        "object": "page",
        "entry": [{"id": PAGE_ID, "time": 1767240000900, "messaging": [{**body, "message": message, **event}]}],
    }


# ------------------------------------------------------------------------------------------- threads


def test_comments_of_different_citizens_under_one_post_are_different_threads() -> None:
    first = parse(feed(item="comment", comment_id="912345678901234_1", parent_id=POST, message="Jalan rusak"))
    second = parse(feed(item="comment", comment_id="912345678901234_2", parent_id=POST, message="Banjir"))
    assert first[0].thread_id == "912345678901234_1"
    assert second[0].thread_id == "912345678901234_2"


def test_a_reply_under_a_comment_joins_that_comments_thread() -> None:
    [reply] = parse(fixture("feed_comment_reply.json"))
    [comment] = parse(fixture("feed_comment.json"))
    assert reply.thread_id == comment.external_id == "912345678901234_1187654321098765"


def test_a_visitor_post_is_its_own_thread() -> None:
    [post] = parse(fixture("feed_visitor_status.json"))
    assert post.external_id == post.thread_id == f"{PAGE_ID}_913000000000003"


def test_each_photo_event_of_one_post_is_kept() -> None:
    one = parse(feed(item="photo", photo_id="1", link="https://scontent.xx.fbcdn.net/a.jpg", message="Foto 1"))
    two = parse(feed(item="photo", photo_id="2", link="https://scontent.xx.fbcdn.net/b.jpg", message="Foto 2"))
    assert one[0].external_id != two[0].external_id
    assert one[0].thread_id == two[0].thread_id == POST


def test_messenger_messages_are_one_conversation_per_person() -> None:
    [message] = parse(fixture("messenger_text.json"))
    assert message.thread_id == "messenger:7412589630258741"
    assert message.assembly == Assembly(key="facebook:7412589630258741", window_seconds=120)
    assert message.sender is not None and message.sender.id == "7412589630258741"


def test_feed_items_are_not_assembled() -> None:
    [comment] = parse(fixture("feed_comment.json"))
    assert comment.assembly is None


# ---------------------------------------------------------------------------------------- contents


def test_times_are_timezone_aware_from_seconds_and_milliseconds() -> None:
    [comment] = parse(fixture("feed_comment.json"))
    [chat_message] = parse(fixture("messenger_text.json"))
    assert comment.sent_at == datetime(2026, 1, 1, 4, 0, tzinfo=UTC)
    assert chat_message.sent_at == datetime(2026, 1, 1, 4, 0, 0, 123000, tzinfo=UTC)


def test_a_link_to_elsewhere_stays_in_the_text_and_is_not_fetched() -> None:
    [post] = parse(feed(item="status", message="Lihat beritanya", link="https://news.example.id/banjir"))
    assert post.media == []
    assert post.text == "Lihat beritanya\n[Tautan] https://news.example.id/banjir"


def test_every_photo_of_a_multi_photo_post_is_referenced() -> None:
    photos = ["https://scontent.xx.fbcdn.net/1.jpg", "https://scontent.xx.fbcdn.net/2.jpg"]
    [post] = parse(feed(item="status", message="Dua foto", photos=photos, link=photos[0]))
    assert [m.url for m in post.media] == photos


def test_a_quick_reply_without_text_keeps_its_payload() -> None:
    [message] = parse(chat({"mid": "m_qr", "quick_reply": {"payload": "KATEGORI_JALAN_RUSAK"}}))
    assert message.text == "KATEGORI_JALAN_RUSAK"


def test_a_shared_link_in_messenger_is_kept_for_the_admin() -> None:
    link = {"type": "fallback", "payload": {"url": "https://maps.example/x", "title": "Lokasi banjir"}}
    [message] = parse(chat({"mid": "m_link", "text": "Ini", "attachments": [link]}))
    assert message.text == "Ini\n[Tautan] Lokasi banjir https://maps.example/x"
    assert message.media == []


def test_a_location_without_coordinates_keeps_its_title() -> None:
    place = {"type": "location", "title": "Monas", "payload": {}}
    [message] = parse(chat({"mid": "m_loc", "attachments": [place]}))
    assert message.location is not None
    assert (message.location.lat, message.location.address) == (None, "Monas")


def test_coordinates_out_of_range_do_not_lose_the_message() -> None:
    place = {"type": "location", "title": "Di sini", "payload": {"coordinates": {"lat": 106.8, "long": -6.2}}}
    [message] = parse(chat({"mid": "m_swapped", "text": "Banjir", "attachments": [place]}))
    assert message.text == "Banjir"
    assert message.location is not None and message.location.lat is None


def test_a_very_long_visitor_post_is_cut_not_lost() -> None:
    [post] = parse(feed(item="status", message="Jalan rusak. " * 2000))
    assert len(post.text) <= 20_000 and post.text.endswith("[...]")


# ----------------------------------------------------------------------------------------- batches


def test_a_malformed_event_does_not_lose_the_good_one_beside_it() -> None:
    body = fixture("messenger_text.json")
    body["entry"][0]["messaging"].append({"sender": {"id": "1"}, "message": {"text": "no mid"}})
    [message] = parse(body)
    assert message.external_id == "m_1Qx7kB2mN5pL8sT3vW6yZ9aC4dF0gH-text"


def test_a_delivery_of_only_malformed_events_is_refused_with_the_reason() -> None:
    with pytest.raises(PayloadRejected, match="without comment_id") as refused:
        parse(feed(item="comment", message="tanpa id"))
    assert refused.value.status_code == 422


def test_a_delivery_of_receipts_and_echoes_is_ignored_with_its_reasons() -> None:
    body = fixture("messenger_read.json")
    body["entry"] += fixture("messenger_echo.json")["entry"]
    with pytest.raises(PayloadIgnored, match="read event; echo of our own message"):
        parse(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty body"),
        (b"<xml/>", "not valid UTF-8 JSON"),
        (b"[]", "one JSON object"),
        (b'{"object": "page"}', "`entry` must be a list"),
        (b'{"object": "whatsapp_business_account", "entry": []}', "object 'page'"),
    ],
)
def test_what_is_not_a_page_webhook_is_refused_saying_what_was_expected(body: bytes, message: str) -> None:
    with pytest.raises(PayloadRejected, match=message):
        parse(body)


# ----------------------------------------------------------------------------------- authenticity


def test_a_delivery_signed_with_the_app_secret_verifies() -> None:
    ADAPTER.verify(request(fixture("feed_comment.json")))


@pytest.mark.parametrize("secret", [None, "another-app-secret-000"])
def test_a_delivery_without_our_signature_does_not_verify(secret: str | None) -> None:
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(request(fixture("feed_comment.json"), secret=secret))


def test_the_page_id_must_be_the_numeric_id() -> None:
    with pytest.raises(ValidationError, match="page_id"):
        build_adapter(FacebookAdapter, {**SETTINGS, "page_id": "PemprovDKI"})


def test_the_channel_is_never_trusted_and_acknowledges_reports() -> None:
    assert FacebookAdapter.may_be_trusted is False
    assert FacebookAdapter.acknowledge_receipt is True


# ------------------------------------------------------------------------------------- hypothesis

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)
FIXTURE_NAMES = sorted(p.name for p in FIXTURES.glob("*.json"))


def outcome(body: bytes) -> list[InboundMessage] | Exception:
    """What verify+parse make of `body` with a valid signature; anything but these three fails the test."""
    try:
        return parse(body)
    except (PayloadRejected, PayloadIgnored) as expected:
        return expected


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def mutated(document: Any, path: tuple[Any, ...], replacement: Any) -> Any:
    if not path:
        return replacement
    copied = copy.deepcopy(document)
    parent = copied
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = replacement
    return copied


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_are_refused_or_ignored_never_crash(body: bytes) -> None:
    assert isinstance(outcome(body), PayloadRejected | PayloadIgnored | list)


@settings(max_examples=150, deadline=None)
@given(JSON)
def test_arbitrary_json_is_refused_or_ignored_never_crash(document: Any) -> None:
    assert isinstance(outcome(json.dumps(document).encode()), PayloadRejected | PayloadIgnored | list)


@settings(max_examples=150, deadline=None)
@given(JSON, st.sampled_from(["page", "instagram", 1, None]))
def test_arbitrary_entries_of_a_page_webhook_never_crash(entries: Any, kind: Any) -> None:
    body = json.dumps({"object": kind, "entry": entries if isinstance(entries, list) else [entries]}).encode()
    assert isinstance(outcome(body), PayloadRejected | PayloadIgnored | list)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIXTURE_NAMES), st.data())
def test_mutated_fixtures_are_parsed_refused_or_ignored_never_crash(name: str, data: st.DataObject) -> None:
    document = fixture(name)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(paths(document)), label="path")
        document = mutated(document, path, data.draw(JSON, label="replacement"))
    result = outcome(json.dumps(document).encode())
    assert isinstance(result, PayloadRejected | PayloadIgnored | list)
    if isinstance(result, list):
        assert all(m.sent_at is None or m.sent_at.tzinfo is not None for m in result)


def test_ids_too_long_for_kanal_refuse_only_their_event() -> None:
    long_sender = chat({"mid": "m_long", "text": "Halo"})
    long_sender["entry"][0]["messaging"][0]["sender"]["id"] = "7" * 199
    with pytest.raises(PayloadRejected, match="out of range"):
        parse(long_sender)


def test_a_deeply_nested_body_is_refused() -> None:
    with pytest.raises(PayloadRejected, match="nests too deeply"):
        parse(b"[" * 100_000 + b"]" * 100_000)

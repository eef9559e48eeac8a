"""`instagram` parsing on its own: threads, mentions, Direct messages, and that no input breaks it."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.contract import Assembly, InboundMessage, RawRequest
from adapters.errors import PayloadIgnored, PayloadRejected, SignatureInvalid
from adapters.instagram import InstagramAdapter
from adapters.meta import sign
from kanal_testing import build_adapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "instagram"
IG_USER_ID = "17841455512345678"
APP_SECRET = "ig-app-secret-0123456789abcdef"
SETTINGS = {"app_secret": APP_SECRET, "verify_token": "ig-verify-token-kanal-2026", "ig_user_id": IG_USER_ID}
ADAPTER = build_adapter(InstagramAdapter, SETTINGS, channel_id="instagram:dkijakarta")
IGSID = "1123581321345589"


def request(body: bytes | dict[str, Any], *, secret: str | None = APP_SECRET) -> RawRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-hub-signature-256"] = sign(secret.encode(), raw)
    return RawRequest("POST", "/channels/instagram:x/inbound", headers, {}, raw, "127.0.0.1", datetime.now(UTC))


def parse(body: bytes | dict[str, Any], adapter: Any = ADAPTER) -> list[InboundMessage]:
    delivery = request(body)
    adapter.verify(delivery)
    messages: list[InboundMessage] = adapter.parse(delivery)
    return messages


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


def comment(**value: Any) -> dict[str, Any]:
    base = {"from": {"id": "1789012345678901", "username": "budi.santoso"}, "media": {"id": "17913046069542327"}}
    entry = {"id": IG_USER_ID, "time": 1767240005, "changes": [{"field": "comments", "value": {**base, **value}}]}
    return {"object": "instagram", "entry": [entry]}


# ------------------------------------------------------------------------------------------- comments


def test_a_comment_is_its_own_thread_and_a_reply_joins_its_parent() -> None:
    [top] = parse(fixture("comment.json"))
    [reply] = parse(fixture("comment_reply.json"))
    assert top.thread_id == reply.thread_id == "17865799348089039"
    assert top.assembly is None


def test_a_comment_has_the_time_of_its_notification() -> None:
    [top] = parse(fixture("comment.json"))
    assert top.sent_at == datetime(2026, 1, 1, 4, 0, 5, tzinfo=UTC)


def test_our_own_reply_is_recognised_by_username_when_its_id_differs() -> None:
    adapter = build_adapter(InstagramAdapter, {**SETTINGS, "username": "DKIJakarta"})
    body = comment(id="1", text="Terima kasih", **{"from": {"id": "9999", "username": "dkijakarta"}})
    with pytest.raises(PayloadIgnored, match="our own comment"):
        parse(body, adapter)


def test_a_comment_without_text_has_nothing_to_store() -> None:
    with pytest.raises(PayloadIgnored, match="no text"):
        parse(comment(id="17865799348089040", text="   "))


# ------------------------------------------------------------------------------------------- mentions


def test_a_comment_mention_is_stored_with_its_ids_and_no_invented_author() -> None:
    [mention] = parse(fixture("mention_comment.json"))
    assert mention.external_id == "mention:17858893269000001"
    assert "komentar 17858893269000001 pada media 17920238422030506" in mention.text
    assert mention.sender is None


def test_a_mention_without_media_id_is_refused() -> None:
    body = fixture("mention_comment.json")
    del body["entry"][0]["changes"][0]["value"]["media_id"]
    with pytest.raises(PayloadRejected, match="without media_id"):
        parse(body)


# ------------------------------------------------------------------------------------ Direct messages


def test_direct_messages_are_one_conversation_per_person() -> None:
    [message] = parse(fixture("dm_text.json"))
    assert message.thread_id == f"instagram-dm:{IGSID}"
    assert message.assembly == Assembly(key=f"instagram:{IGSID}", window_seconds=120)
    assert message.sender is not None and message.sender.id == IGSID


def test_a_story_mention_keeps_the_story_as_media() -> None:
    [story] = parse(fixture("dm_story_mention.json"))
    assert [m.url for m in story.media] == [
        "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=18098765432109876&signature=CdEf12"
    ]


def test_a_story_reply_does_not_pass_our_story_off_as_the_citizens_photo() -> None:
    [reply] = parse(fixture("dm_story_reply.json"))
    assert reply.media == []
    assert reply.text == "[Balasan story] Di Cempaka Mas juga belum ada petugas."


def test_an_unsupported_message_is_ignored_with_a_pointer_to_the_app() -> None:
    body = fixture("dm_text.json")
    body["entry"][0]["messaging"][0]["message"] = {"mid": "x", "is_unsupported": True}
    with pytest.raises(PayloadIgnored, match="Meta's app"):
        parse(body)


def test_a_reaction_is_ignored() -> None:
    body = fixture("dm_seen.json")
    event = body["entry"][0]["messaging"][0]
    del event["read"]
    event["reaction"] = {"mid": "x", "action": "react", "reaction": "love", "emoji": "\u2764"}
    with pytest.raises(PayloadIgnored, match="reaction event"):
        parse(body)


# ------------------------------------------------------------------------------------ the envelope


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty body"),
        (b"\xff\xfe", "not valid UTF-8 JSON"),
        (b'"instagram"', "one JSON object"),
        (b'{"object": "instagram", "entry": {}}', "`entry` must be a list"),
        (b'{"object": "page", "entry": []}', "object 'instagram'"),
    ],
)
def test_what_is_not_an_instagram_webhook_is_refused_saying_what_was_expected(body: bytes, message: str) -> None:
    with pytest.raises(PayloadRejected, match=message):
        parse(body)


def test_an_empty_entry_list_is_ignored() -> None:
    with pytest.raises(PayloadIgnored, match="no entries"):
        parse({"object": "instagram", "entry": []})


@pytest.mark.parametrize("secret", [None, "fb-app-secret-0123456789abcdef"])
def test_a_delivery_without_our_signature_does_not_verify(secret: str | None) -> None:
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(request(fixture("comment.json"), secret=secret))


def test_the_channel_is_never_trusted_and_acknowledges_reports() -> None:
    assert InstagramAdapter.may_be_trusted is False
    assert InstagramAdapter.acknowledge_receipt is True


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
@given(JSON)
def test_arbitrary_changes_of_an_instagram_webhook_never_crash(changes: Any) -> None:
    entry = {"id": IG_USER_ID, "time": 1767240005, "changes": changes, "messaging": changes}
    body = json.dumps({"object": "instagram", "entry": [entry]}).encode()
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

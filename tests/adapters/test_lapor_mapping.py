"""Whatever LAPOR! answers, the mapping gives messages, quarantined items or a clear channel error, never a crash."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.contract import InboundMessage, RawRequest
from adapters.errors import ChannelUnavailable, PayloadIgnored, PayloadRejected
from adapters.field_mapping import MISSING, get_path, set_path, split_path
from adapters.lapor import LaporAdapter, LaporCursor, LaporSettings, _next_since, map_items, order_key, read_page
from kanal_testing import build_adapter
from tests.peers.lapor import fixture

SETTINGS = LaporSettings.model_validate(
    {
        "endpoint": "http://127.0.0.1:9/api/v1/complaints",
        "auth_value": "Bearer mapping-test",
        "items_path": "data.complaints",
        "next_page_path": "data.pagination.next",
        "filter": {"field": "disposition.institution_id", "values": ["pemprov-dki-jakarta"]},
    }
)
UNFILTERED = SETTINGS.model_copy(update={"filter": None})

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
FIXTURES = ["complaint_full.json", "complaint_sms.json", "complaint_location.json", "complaint_no_description.json"]


def leaf_paths(document: Any, prefix: str = "") -> list[str]:
    """Every dotted path in `document` (objects and list items), so a mutation can land anywhere."""
    paths: list[str] = []
    items = (
        document.items() if isinstance(document, dict) else enumerate(document) if isinstance(document, list) else []
    )
    for key, value in items:
        path = f"{prefix}{key}"
        paths.append(path)
        paths += leaf_paths(value, path + ".")
    return paths


def check(mapped_total: int, items: list[Any], mapped: Any) -> None:
    assert len(mapped.messages) + len(mapped.rejected) + mapped.skipped == mapped_total == len(items)
    for message in mapped.messages:
        assert isinstance(message, InboundMessage) and message.external_id and message.text
        assert message.sent_at is None or message.sent_at.tzinfo is not None
        InboundMessage.model_validate(message.model_dump())  # survives the inbox's round trip
    for _, item in mapped.rejected:
        assert item.reason and isinstance(item.body, bytes)


@settings(max_examples=150, deadline=None)
@given(document=JSON)
def test_any_json_answer_is_read_or_refused_with_a_channel_error(document: Any) -> None:
    try:
        mapped = read_page(document, SETTINGS)
    except ChannelUnavailable as exc:
        assert not exc.retryable and "items_path" in str(exc)
        return
    items = get_path(document, "data.complaints")
    check(len(items), items, mapped)


@settings(max_examples=150, deadline=None)
@given(items=st.lists(JSON, max_size=6))
def test_any_list_of_items_maps_without_a_crash(items: list[Any]) -> None:
    for config in (SETTINGS, UNFILTERED):
        check(len(items), items, map_items(items, config))


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(FIXTURES), data=st.data())
def test_a_mutated_complaint_is_a_message_a_quarantined_item_or_passed_over(name: str, data: st.DataObject) -> None:
    item = copy.deepcopy(fixture(name))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        paths = leaf_paths(item)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        value = data.draw(JSON)
        try:
            split_path(path)
        except ValueError:
            continue  # keys the mapper could never be configured for; still fine as content
        parent, _, key = path.rpartition(".")
        holder = get_path(item, parent) if parent else item
        if isinstance(holder, dict):
            holder[key] = value
        elif isinstance(holder, list) and key.isdigit():
            holder[int(key)] = value
    mapped = map_items([item], SETTINGS)
    check(1, [item], mapped)


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=512) | JSON.map(lambda d: json.dumps(d).encode()))
def test_anything_pushed_to_the_route_is_refused(body: bytes) -> None:
    adapter = build_adapter(LaporAdapter, SETTINGS.model_dump(mode="json") | {"auth_value": "x"}, channel_id="lapor:t")
    request = RawRequest("POST", "/", {"content-type": "application/json"}, {}, body, "127.0.0.1", datetime.now(UTC))
    adapter.verify(request)
    with pytest.raises((PayloadRejected, PayloadIgnored)):
        adapter.parse(request)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200) | JSON.map(json.dumps))
def test_any_stored_cursor_is_read_without_a_crash(text: str) -> None:
    state = LaporCursor.decode(text)
    assert state.since is None or isinstance(state.since, str)
    once = LaporCursor.decode(state.encode())
    assert LaporCursor.decode(once.encode()) == once, "a cursor Kanal stored reads back as itself"


@settings(max_examples=150, deadline=None)
@given(
    previous=st.none() | st.text(max_size=30),
    values=st.lists(st.text(max_size=30) | st.integers().map(str) | st.datetimes().map(str), max_size=8),
    truncated=st.booleans(),
)
def test_the_cursor_never_moves_back(previous: str | None, values: list[str], truncated: bool) -> None:
    keyed = [(v, order_key(v)) for v in values]
    since = _next_since(previous, keyed, truncated=truncated)
    if previous is not None:
        assert since is not None and not order_key(since) < order_key(previous)
    if not truncated and keyed and (previous is None or max(k for _, k in keyed) >= order_key(previous)):
        assert order_key(since or "") == max(k for _, k in keyed)


def test_numbers_compare_as_numbers_and_times_as_instants() -> None:
    assert order_key("10") > order_key("9")
    assert order_key("2026-11-23T08:00:00+07:00") < order_key("2026-11-23T02:00:00Z")


def test_dotted_paths_read_objects_and_lists() -> None:
    document = {"data": {"items": [{"url": "a"}, {"url": "b"}]}}
    assert get_path(document, "data.items.1.url") == "b"
    assert get_path(document, "data.items.2.url") is MISSING
    assert get_path(document, "data.items.x") is MISSING
    assert get_path("text", "a") is MISSING
    body: dict[str, Any] = {}
    set_path(body, "tindak_lanjut.status", "Proses")
    set_path(body, "tindak_lanjut.isi", "ok")
    assert body == {"tindak_lanjut": {"status": "Proses", "isi": "ok"}}


@pytest.mark.parametrize("path", ["", "a..b", ".a", "a.", "a b", "a[0]", ".".join("x" * 13)])
def test_a_bad_dotted_path_is_refused(path: str) -> None:
    with pytest.raises(ValueError):
        split_path(path)


def test_the_documented_list_answer_maps_one_complaint_one_passed_over_one_quarantined() -> None:
    mapped = read_page(fixture("list_answer.json"), SETTINGS)
    assert [m.external_id for m in mapped.messages] == ["4812345"]
    assert mapped.skipped == 1
    [(identity, rejected)] = mapped.rejected
    assert identity == "id:4812349" and "no description" in rejected.reason
    assert mapped.messages[0].media[0].url == "https://www.lapor.go.id/files/4812345-1.jpg"


def test_a_complaint_without_the_filter_field_is_quarantined_not_silently_dropped() -> None:
    item = fixture("complaint_full.json")
    del item["disposition"]
    mapped = map_items([item], SETTINGS)
    assert mapped.messages == [] and mapped.skipped == 0
    assert "filter.field" in mapped.rejected[0][1].reason


def test_half_a_coordinate_or_one_out_of_range_places_nothing_but_keeps_the_address() -> None:
    item = fixture("complaint_full.json")
    item["location"] = {"latitude": 123.0, "longitude": 106.8, "address": "Jl. Raya Bogor"}
    [message] = map_items([item], SETTINGS).messages
    assert message.location is not None
    assert (message.location.lat, message.location.lng, message.location.address) == (None, None, "Jl. Raya Bogor")


def test_a_title_repeated_in_the_description_is_not_written_twice() -> None:
    item = fixture("complaint_full.json")
    item["content"] = f"{item['title']}. Sudah tiga minggu."
    [message] = map_items([item], SETTINGS).messages
    assert message.text == item["content"]


def test_unix_times_in_seconds_and_milliseconds_are_understood() -> None:
    item = fixture("complaint_sms.json")
    for value in (1_795_400_000, 1_795_400_000_000, "1795400000"):
        item["created_at"] = value
        [message] = map_items([item], SETTINGS).messages
        assert message.sent_at == datetime.fromtimestamp(1_795_400_000, tz=UTC)

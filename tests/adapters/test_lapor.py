"""The `lapor` channel type: the pull contract kit, and what the city notices of LAPOR! 1708 complaints.

Complaints addressed to the city are pulled from a fake LAPOR! API (tests/peers/lapor.py), mapped by
the channel's dotted-path settings, and status changes go back to the complaint on LAPOR!.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.contract import FetchResult, MediaRef, OutboundReply, Sender, StatusUpdate
from adapters.errors import ChannelUnavailable, MediaUnavailable, PayloadRejected
from adapters.lapor import LaporAdapter, LaporCursor
from kanal_testing import PullChannelProfile, PullContractSuite, build_adapter
from tests.peers.lapor import JPEG, LaporPeer, fixture

CHANNEL = "lapor:dki"
FULL = fixture("complaint_full.json")
FULL_TEXT = f"{FULL['title']}\n\n{FULL['content']}"


class LaporProfile(PullChannelProfile):
    channel_type = "lapor"
    channel_id = CHANNEL
    expected_text = FULL_TEXT

    def start_peer(self) -> contextlib.AbstractContextManager[Any]:
        return LaporPeer()

    def channel_settings(self, peer: LaporPeer) -> dict[str, Any]:
        return peer.settings()

    def add_item(self, peer: LaporPeer, name: str) -> str:
        fixture_name = "complaint_full.json" if name == "valid" else "complaint_sms.json"
        return str(peer.add_fixture(fixture_name)["id"])

    def set_failing(self, peer: LaporPeer, failing: bool) -> None:
        peer.fail_status = 503 if failing else None

    def secrets(self, peer: LaporPeer) -> list[str]:
        # The credential's setting is `auth_value`, a name the kit's default does not recognise.
        return [peer.token, *super().secrets(peer)]


class TestLaporContract(PullContractSuite):
    profile = LaporProfile()

    @pytest.fixture
    def kanal_database_url(self, database_url: str) -> str:
        return database_url


@pytest.fixture
def peer() -> Iterator[LaporPeer]:
    with LaporPeer() as running:
        yield running


def lapor(peer: LaporPeer, **overrides: Any) -> LaporAdapter:
    built = build_adapter(LaporAdapter, peer.settings(**overrides), channel_id=CHANNEL)
    assert isinstance(built, LaporAdapter)
    return built


def fetch(adapter: LaporAdapter, cursor: str | None = None) -> FetchResult:
    return asyncio.run(adapter.fetch(cursor))


def ids(result: FetchResult) -> list[str]:
    return [m.external_id for m in result.messages]


# -- what comes in ----------------------------------------------------------------------------------


def test_a_complaint_arrives_with_its_title_reporter_place_and_photo(peer: LaporPeer) -> None:
    item = peer.add_fixture("complaint_full.json")
    [message] = fetch(lapor(peer)).messages
    assert message.external_id == str(item["id"]) and message.thread_id == message.external_id
    assert message.text == FULL_TEXT
    assert message.sender is not None
    assert (message.sender.id, message.sender.name, message.sender.phone, message.sender.email) == (
        "u-558120",
        "Rahmat Hidayat",
        "081234567890",
        "rahmat.h@example.id",
    )
    assert message.location is not None
    assert (message.location.lat, message.location.lng) == (-6.2745, 106.8669)
    assert message.location.address == "Jl. Raya Bogor, Kramat Jati, Jakarta Timur"
    assert [(m.url, m.content_type) for m in message.media] == [(f"{peer.base_url}/files/4812345-1.jpg", "image/jpeg")]
    assert message.sent_at == datetime(2026, 11, 23, 0, 41, tzinfo=UTC)


def test_an_sms_complaint_without_title_or_place_is_its_text_alone(peer: LaporPeer) -> None:
    peer.add_fixture("complaint_sms.json")
    [message] = fetch(lapor(peer)).messages
    assert message.text == fixture("complaint_sms.json")["content"]
    assert message.location is None and message.media == []
    assert message.sender is not None and message.sender.phone == "081298765432" and message.sender.name is None
    # Written without an offset: LAPOR! means WIB.
    assert message.sent_at == datetime(2026, 11, 23, 2, 15, tzinfo=UTC)


def test_coordinates_written_as_text_still_place_the_complaint(peer: LaporPeer) -> None:
    peer.add_fixture("complaint_location.json")
    [message] = fetch(lapor(peer)).messages
    assert message.location is not None
    assert (message.location.lat, message.location.lng) == (-6.2249, 106.8667)
    assert message.sent_at == datetime(2026, 11, 23, 10, 2, 11, tzinfo=UTC)


def test_a_complaint_for_another_government_is_passed_over_but_the_cursor_moves(peer: LaporPeer) -> None:
    ours = peer.add_fixture("complaint_full.json")
    theirs = peer.add_fixture("complaint_other_institution.json")
    result = fetch(lapor(peer))
    assert ids(result) == [str(ours["id"])] and result.rejected == []
    assert LaporCursor.decode(result.cursor).since == theirs["updated_at"]


def test_without_a_filter_every_complaint_the_account_sees_comes_in(peer: LaporPeer) -> None:
    peer.add_fixture("complaint_full.json")
    peer.add_fixture("complaint_other_institution.json")
    assert len(fetch(lapor(peer, filter=None)).messages) == 2


def test_a_complaint_without_description_is_quarantined_once_and_the_rest_go_on(peer: LaporPeer) -> None:
    broken = peer.add_fixture("complaint_no_description.json")
    adapter = lapor(peer)
    first = fetch(adapter)
    assert first.messages == []
    [rejected] = first.rejected
    assert rejected.external_id == str(broken["id"]) and "no description" in rejected.reason
    assert json.loads(rejected.body)["title"] == "Pohon tumbang" and rejected.content_type == "application/json"
    # The item sits at the cursor and comes again (asked inclusive): it is not quarantined twice.
    second = fetch(adapter, first.cursor)
    assert second.rejected == [] and second.messages == []
    good = peer.add_fixture("complaint_sms.json")
    third = fetch(adapter, second.cursor)
    assert ids(third) == [str(good["id"])] and third.rejected == []


def test_items_that_are_not_objects_are_quarantined_not_fatal(peer: LaporPeer) -> None:
    peer.add_fixture("complaint_full.json")
    original = peer._list

    def with_garbage(query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        status, body, headers = original(query)
        body["data"]["complaints"].append("not a complaint")
        return status, body, headers

    peer._list = with_garbage  # type: ignore[method-assign]
    result = fetch(lapor(peer))
    assert len(result.messages) == 1
    assert [r.reason for r in result.rejected] == ["a complaint must be a JSON object, got str"]


# -- cursor and pages -------------------------------------------------------------------------------


def test_all_pages_are_read_and_the_next_poll_asks_from_the_newest_inclusive(peer: LaporPeer) -> None:
    added = [peer.add_fixture("complaint_sms.json") for _ in range(5)]  # three pages of two
    adapter = lapor(peer)
    first = fetch(adapter)
    assert ids(first) == [str(c["id"]) for c in added]
    assert LaporCursor.decode(first.cursor).since == added[-1]["updated_at"]
    asked = peer.list_requests()
    assert [r.query.get("page", "1") for r in asked] == ["1", "2", "3"]
    assert all(r.query.get("updated_since") is None for r in asked), "a new channel starts at the beginning"

    again = fetch(adapter, first.cursor)
    assert ids(again) == [str(added[-1]["id"])], "the newest item comes again; the inbox knows it"
    assert peer.list_requests()[-1].query["updated_since"] == added[-1]["updated_at"]


def test_an_item_updated_in_the_same_second_as_the_cursor_is_not_skipped(peer: LaporPeer) -> None:
    first_item = peer.add_fixture("complaint_full.json")
    adapter = lapor(peer)
    first = fetch(adapter)
    late = peer.add_fixture("complaint_sms.json", same_time=True)
    assert late["updated_at"] == first_item["updated_at"]
    assert str(late["id"]) in ids(fetch(adapter, first.cursor))


def test_the_page_limit_bounds_a_poll_and_the_next_poll_goes_on(peer: LaporPeer) -> None:
    added = [str(peer.add_fixture("complaint_sms.json")["id"]) for _ in range(7)]
    adapter = lapor(peer, page_limit=2)
    seen: list[str] = []
    cursor = None
    for _ in range(4):
        result = fetch(adapter, cursor)
        seen += ids(result)
        cursor = result.cursor
    assert len(peer.list_requests()) <= 8
    assert sorted(set(seen)) == sorted(added), "nothing beyond the page limit is lost"
    assert LaporCursor.decode(cursor).since == peer.complaints[-1]["updated_at"]


def test_a_cursor_typed_by_an_operator_is_taken_as_the_starting_point(peer: LaporPeer) -> None:
    old = peer.add_fixture("complaint_full.json")
    new = peer.add_fixture("complaint_sms.json")
    assert ids(fetch(lapor(peer), new["updated_at"])) == [str(new["id"])]
    assert str(old["id"]) not in ids(fetch(lapor(peer), new["updated_at"]))


def test_a_page_token_is_sent_as_the_configured_parameter(peer: LaporPeer) -> None:
    for _ in range(3):
        peer.add_fixture("complaint_sms.json")
    adapter = lapor(peer, next_page_path="data.pagination.page_token", next_page_param="page")

    original = peer._list

    def with_token(query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        status, body, headers = original(query)
        nxt = body["data"]["pagination"]["next"]
        body["data"]["pagination"]["page_token"] = str(int(query.get("page", "1")) + 1) if nxt else None
        return status, body, headers

    peer._list = with_token  # type: ignore[method-assign]
    assert len(fetch(adapter).messages) == 3
    assert [r.query.get("page") for r in peer.list_requests()] == [None, "2"]


def test_a_next_page_link_to_another_host_is_not_followed_with_the_credential(peer: LaporPeer) -> None:
    peer.add_fixture("complaint_sms.json")
    original = peer._list

    def elsewhere(query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        status, body, headers = original(query)
        body["data"]["pagination"]["next"] = "https://collector.example/steal"
        return status, body, headers

    peer._list = elsewhere  # type: ignore[method-assign]
    with pytest.raises(ChannelUnavailable) as caught:
        fetch(lapor(peer))
    assert not caught.value.retryable and "collector.example" in str(caught.value)
    assert len(peer.requests) == 1


# -- failures ---------------------------------------------------------------------------------------


def test_lapor_down_is_retryable_and_says_so(peer: LaporPeer) -> None:
    peer.fail_next(1, status=503)
    with pytest.raises(ChannelUnavailable) as caught:
        fetch(lapor(peer))
    assert caught.value.retryable and "503" in str(caught.value)


def test_lapor_unreachable_is_retryable() -> None:
    with LaporPeer() as gone:
        settings = gone.settings()
    adapter = build_adapter(LaporAdapter, settings, channel_id=CHANNEL)
    with pytest.raises(ChannelUnavailable) as caught:
        asyncio.run(adapter.fetch(None))
    assert caught.value.retryable and "unreachable" in str(caught.value)


def test_a_rate_limit_waits_as_long_as_lapor_asks(peer: LaporPeer) -> None:
    peer.fail_next(1, status=429, retry_after=120)
    with pytest.raises(ChannelUnavailable) as caught:
        fetch(lapor(peer))
    assert caught.value.retryable and caught.value.retry_after == 120


def test_a_refused_credential_is_not_retried_and_is_never_shown(peer: LaporPeer) -> None:
    wrong = "Bearer wrong-token-do-not-show-123"
    with pytest.raises(ChannelUnavailable) as caught:
        fetch(lapor(peer, auth_value=wrong))
    assert not caught.value.retryable and "auth_value" in str(caught.value)
    assert "wrong-token" not in str(caught.value) and peer.token not in str(caught.value)
    assert peer.requests[0].authorised is False


def test_an_answer_without_the_list_names_the_setting_to_fix(peer: LaporPeer) -> None:
    with pytest.raises(ChannelUnavailable) as caught:
        fetch(lapor(peer, items_path="data.laporan"))
    assert not caught.value.retryable and "items_path 'data.laporan'" in str(caught.value)


def test_a_proxy_error_page_is_retried(peer: LaporPeer) -> None:
    original = peer._list
    peer._list = lambda query: (200, b"<html>Gateway timeout</html>", {"Content-Type": "text/html"})  # type: ignore[method-assign]
    with pytest.raises(ChannelUnavailable) as caught:
        fetch(lapor(peer))
    assert caught.value.retryable and "not JSON" in str(caught.value)
    peer._list = original  # type: ignore[method-assign]


# -- settings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"cursor_field": "updated..at"}, "cursor_field"),
        ({"items_path": "data[0]"}, "items_path"),
        ({"fields": {"sender_name": "reporter name"}}, "fields.sender_name"),
        ({"filter": {"field": "", "values": ["x"]}}, "filter.field"),
        ({"status_url": "https://lapor.example/{id}/status"}, "status_url"),
        ({"status_url": "ftp://lapor.example/{external_id}"}, "status_url"),
        ({"query": {"updated_since": "2020-01-01"}}, "query must not set"),
        ({"timezone": "Jakarta"}, "timezone"),
        ({"auth_header": "X Token"}, "auth_header"),
        ({"page_limt": 3}, "page_limt"),
    ],
)
def test_a_settings_mistake_names_the_key(peer: LaporPeer, change: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        LaporAdapter.settings_model.model_validate(peer.settings(**change))
    assert named in str(caught.value)


def test_the_credential_is_a_secret(peer: LaporPeer) -> None:
    settings = LaporAdapter.settings_model.model_validate(peer.settings())
    assert peer.token not in repr(settings) and peer.token not in str(settings.model_dump())


# -- the push route ---------------------------------------------------------------------------------


def test_nothing_may_be_pushed_to_a_lapor_channel(peer: LaporPeer) -> None:
    from adapters.contract import RawRequest

    request = RawRequest("POST", "/", {}, {}, b'{"id": 1}', "127.0.0.1", datetime.now(UTC))
    adapter = lapor(peer)
    adapter.verify(request)
    with pytest.raises(PayloadRejected) as caught:
        adapter.parse(request)
    assert caught.value.status_code == 405 and "pulls" in caught.value.message


# -- status back to LAPOR! --------------------------------------------------------------------------


def status_reply(complaint_id: str, state: str = "in_progress", **changes: Any) -> OutboundReply:
    status = StatusUpdate(
        ticket="KNL-7Q2M",
        state=state,
        agency_unit="Suku Dinas Bina Marga Jakarta Timur",
        note="Petugas dijadwalkan menambal jalan pekan ini.",
        changed_at=datetime(2026, 11, 24, 2, 0, tzinfo=UTC),
        status_url="http://127.0.0.1:8080/status/KNL-7Q2M",
    )
    values: dict[str, Any] = {
        "recipient": Sender(id="u-558120", name="Rahmat Hidayat"),
        "text": fixture("status_push.json")["message"],
        "in_reply_to": complaint_id,
        "thread_id": complaint_id,
        "ticket": "KNL-7Q2M",
        "status": status,
    }
    values.update(changes)
    return OutboundReply(**values)


def test_a_status_change_reaches_the_complaint_on_lapor_in_its_words(peer: LaporPeer) -> None:
    complaint_id = str(peer.add_fixture("complaint_full.json")["id"])
    message_id = asyncio.run(lapor(peer).send(status_reply(complaint_id)))
    [push] = peer.status_pushes
    assert (push.method, push.complaint_id) == ("POST", complaint_id)
    assert push.body == fixture("status_push.json")
    assert message_id == "upd-1"
    assert peer.requests[-1].authorised


@pytest.mark.parametrize(
    ("state", "label"), [("received", "Diterima"), ("resolved", "Selesai"), ("rejected", "Ditolak")]
)
def test_each_kanal_state_has_a_lapor_word(peer: LaporPeer, state: str, label: str) -> None:
    complaint_id = str(peer.add_fixture("complaint_full.json")["id"])
    asyncio.run(lapor(peer).send(status_reply(complaint_id, state)))
    assert peer.status_pushes[0].body["status"] == label


def test_the_status_words_and_field_names_are_the_channels_to_choose(peer: LaporPeer) -> None:
    complaint_id = str(peer.add_fixture("complaint_full.json")["id"])
    adapter = lapor(
        peer,
        status_method="PUT",
        status_labels={"in_progress": "Proses"},
        status_body={"status": "tindak_lanjut.status", "message": "tindak_lanjut.isi", "note": None, "agency": None},
    )
    asyncio.run(adapter.send(status_reply(complaint_id)))
    [push] = peer.status_pushes
    assert push.method == "PUT"
    assert push.body["tindak_lanjut"] == {"status": "Proses", "isi": status_reply(complaint_id).text}
    assert "note" not in push.body and "agency" not in push.body


def test_a_state_lapor_has_no_word_for_still_carries_the_message(peer: LaporPeer) -> None:
    complaint_id = str(peer.add_fixture("complaint_full.json")["id"])
    asyncio.run(lapor(peer).send(status_reply(complaint_id, "forwarded")))
    body = peer.status_pushes[0].body
    assert "status" not in body and body["message"].startswith("Laporan KNL-7Q2M")


def test_a_plain_message_without_status_is_sent_as_a_note(peer: LaporPeer) -> None:
    complaint_id = str(peer.add_fixture("complaint_full.json")["id"])
    reply = status_reply(complaint_id, status=None, text="Mohon kirim foto lokasi yang lebih jelas.")
    asyncio.run(lapor(peer).send(reply))
    assert peer.status_pushes[0].body == {"message": "Mohon kirim foto lokasi yang lebih jelas.", "ticket": "KNL-7Q2M"}


def test_a_status_push_for_an_unknown_complaint_is_not_retried(peer: LaporPeer) -> None:
    with pytest.raises(ChannelUnavailable) as caught:
        asyncio.run(lapor(peer).send(status_reply("999")))
    assert not caught.value.retryable and "999" in str(caught.value)


def test_a_status_push_while_lapor_is_down_is_retried(peer: LaporPeer) -> None:
    complaint_id = str(peer.add_fixture("complaint_full.json")["id"])
    peer.fail_next(1, status=502, path=None)
    with pytest.raises(ChannelUnavailable) as caught:
        asyncio.run(lapor(peer).send(status_reply(complaint_id)))
    assert caught.value.retryable
    asyncio.run(lapor(peer).send(status_reply(complaint_id)))
    assert len(peer.status_pushes) == 1


def test_without_status_url_the_channel_says_it_has_no_reply_path(peer: LaporPeer) -> None:
    with pytest.raises(NotImplementedError, match="status_url"):
        asyncio.run(lapor(peer, status_url=None).send(status_reply("1")))


def test_a_reply_without_a_complaint_id_is_refused_for_good(peer: LaporPeer) -> None:
    with pytest.raises(ChannelUnavailable) as caught:
        asyncio.run(lapor(peer).send(status_reply("1", in_reply_to=None, thread_id=None)))
    assert not caught.value.retryable


def test_lapor_acknowledges_receipt_and_is_not_trusted_by_default() -> None:
    assert LaporAdapter.acknowledge_receipt is True
    assert LaporAdapter.trusted_by_default is False
    assert LaporAdapter.pulls is True


# -- attachments ------------------------------------------------------------------------------------


def test_a_photo_on_lapor_is_downloaded_with_the_credential(peer: LaporPeer) -> None:
    peer.add_fixture("complaint_full.json")
    adapter = lapor(peer)
    [message] = fetch(adapter).messages
    content = asyncio.run(adapter.download_media(message.media[0], max_bytes=1_000_000))
    assert (content.content_type, content.data) == ("image/jpeg", JPEG)
    assert peer.requests[-1].path == "/files/4812345-1.jpg" and peer.requests[-1].authorised


def test_a_photo_larger_than_the_cap_is_not_downloaded(peer: LaporPeer) -> None:
    ref = MediaRef(url=f"{peer.base_url}/files/big.jpg", content_type="image/jpeg")
    with pytest.raises(MediaUnavailable, match="too large"):
        asyncio.run(lapor(peer).download_media(ref, max_bytes=100))


def test_a_photo_on_a_foreign_host_is_not_downloaded(peer: LaporPeer) -> None:
    ref = MediaRef(url="https://images.example/lubang.jpg", content_type="image/jpeg")
    with pytest.raises(MediaUnavailable, match="not an allowed host"):
        asyncio.run(lapor(peer).download_media(ref, max_bytes=1_000_000))
    assert peer.requests == []
